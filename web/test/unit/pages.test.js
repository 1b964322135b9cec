import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { RoomConnection } from "../../public/js/connection.js";
import { ClockEstimator } from "../../public/js/clock.js";
import { RoomModel } from "../../public/js/model.js";

const PUBLIC = resolve(dirname(fileURLToPath(import.meta.url)), "../../public");

/** Every module `entry` imports statically, directly or not, as paths under public/ (`dynamic`:
 * the modules it imports with `import("./x.js")` instead, and theirs). */
function importGraph(entry, { dynamic = false } = {}) {
  const seen = new Set();
  const later = new Set();
  const walk = (file) => {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^import\s[^;]*?\sfrom\s+"(\.[^"]+)"/gms)) {
      const dep = resolve(dirname(file), m[1]);
      if (seen.has(dep)) continue;
      seen.add(dep);
      walk(dep);
    }
    for (const m of text.matchAll(/\bimport\("(\.[^"]+)"\)/g)) later.add(resolve(dirname(file), m[1]));
  };
  walk(resolve(PUBLIC, entry));
  if (!dynamic) return [...seen].map((f) => relative(PUBLIC, f)).sort();
  const lazy = new Set();
  for (const f of later) for (const g of [relative(PUBLIC, f), ...importGraph(relative(PUBLIC, f))]) lazy.add(g);
  const eager = new Set([...seen].map((f) => relative(PUBLIC, f)));
  return [...lazy].filter((f) => !eager.has(f)).sort();
}

test("the room page preloads every module room.js imports, and nothing else: what plays first, the panels last and at low priority", () => {
  const html = readFileSync(resolve(PUBLIC, "room.html"), "utf8");
  const links = [...html.matchAll(/<link rel="modulepreload" href="\/static\/([^"]+)"( fetchpriority="low")?>/g)].map((m) => ({ file: m[1], low: Boolean(m[2]) }));
  const preloaded = links.map((l) => l.file);
  // early.js is loaded on its own, ahead of the rest, and room.js imports it too.
  const early = [...html.matchAll(/<script type="module" async src="\/static\/([^"]+)">/g)].map((m) => m[1]);
  assert.deepEqual(early, ["js/early.js"]);
  const graph = importGraph("js/room.js");
  const panels = importGraph("js/room.js", { dynamic: true });
  assert.ok(graph.length > 8, `found only ${graph.length} modules`);
  assert.ok(panels.length > 5, `found only ${panels.length} panel modules`);
  // What early.js needs is fetched first, then what room.js needs, then the panels.
  const first = importGraph("js/early.js");
  assert.deepEqual(preloaded.slice(0, first.length).sort(), first);
  assert.deepEqual([...preloaded.slice(0, graph.length - 1), ...early].sort(), graph);
  assert.deepEqual(preloaded.slice(graph.length - 1).sort(), panels);
  assert.deepEqual(links.filter((l) => l.low).map((l) => l.file).sort(), panels);
});

/** Runs room.html's inline script (it opens the room's socket as the page is parsed) at `href`,
 * with a WebSocket that opens when told. Returns the socket it made, if any, and what it left. */
function runFirstScript(href, now = 1234.5) {
  const html = readFileSync(resolve(PUBLIC, "room.html"), "utf8");
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, "one inline script");
  // Before any other script: nothing the page loads may come ahead of it.
  assert.ok(html.indexOf("<script>") < html.indexOf("<script "), "the inline script comes first");
  const made = [];
  class Socket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      made.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close() {
      this.closed = true;
    }
  }
  const window = {};
  const location = new URL(href);
  const performance = { timeOrigin: 1000, now: () => now - 1000 };
  const timers = [];
  const setTimeout = (fn, ms) => timers.push({ fn, ms });
  new Function("window", "location", "performance", "WebSocket", "setTimeout", scripts[0])(window, location, performance, Socket, setTimeout);
  return { socket: made[0], left: window.lockstepFirstSocket, count: made.length, window, timers };
}

test("room.html opens the room's socket as it is parsed and says on it what a connection says on opening", (t) => {
  const { socket, left, count } = runFirstScript("https://watch.example/r/0192-abc");
  assert.equal(count, 1);
  assert.equal(socket.url, "wss://watch.example/api/rooms/0192-abc/ws");
  assert.equal(left.socket, socket);
  socket.onopen();
  socket.onmessage({ data: '{"t":"pong"}' });
  assert.deepEqual(left.heard, [{ data: '{"t":"pong"}', at: 1234.5 }]);
  assert.equal(left.pinged, 1234.5);
  // What RoomConnection itself says when a socket it opened opens: the same frames.
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let own;
  const conn = new RoomConnection({
    url: socket.url, model: new RoomModel(), clock: new ClockEstimator(), now: () => 1234.5,
    WebSocketImpl: class {
      constructor() {
        own = this;
        this.readyState = 1;
        this.sent = [];
      }
      send(text) {
        this.sent.push(JSON.parse(text));
      }
    },
  });
  conn.start();
  own.onopen();
  assert.deepEqual(socket.sent, own.sent);
});

test("room.html's socket, if nobody takes it over in 20 s (the page's modules did not come), is closed and forgotten", () => {
  const waited = runFirstScript("https://watch.example/r/0192-abc");
  assert.deepEqual(waited.timers.map((t) => t.ms), [20_000]);
  waited.timers[0].fn();
  assert.ok(waited.socket.closed);
  assert.equal(waited.window.lockstepFirstSocket, undefined, "early.js, if it comes, opens its own");
  // Taken over in time (early.js deletes it as it takes it): left alone.
  const taken = runFirstScript("https://watch.example/r/0192-abc");
  delete taken.window.lockstepFirstSocket;
  taken.timers[0].fn();
  assert.equal(taken.socket.closed, undefined);
});

test("room.html opens no socket for an invite's address: its room is known only from the invite", () => {
  assert.equal(runFirstScript("http://127.0.0.1:8080/i/key123").count, 0);
  assert.equal(runFirstScript("http://127.0.0.1:8080/r/").count, 0);
});
