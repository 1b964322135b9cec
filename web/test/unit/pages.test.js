import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PUBLIC = resolve(dirname(fileURLToPath(import.meta.url)), "../../public");

/** Every module `entry` imports, directly or not, as paths under public/. */
function importGraph(entry) {
  const seen = new Set();
  const walk = (file) => {
    for (const m of readFileSync(file, "utf8").matchAll(/^import\s[^;]*?\sfrom\s+"(\.[^"]+)"/gms)) {
      const dep = resolve(dirname(file), m[1]);
      if (seen.has(dep)) continue;
      seen.add(dep);
      walk(dep);
    }
  };
  walk(resolve(PUBLIC, entry));
  return [...seen].map((f) => relative(PUBLIC, f)).sort();
}

test("the room page preloads every module room.js imports, and nothing else", () => {
  const html = readFileSync(resolve(PUBLIC, "room.html"), "utf8");
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="\/static\/([^"]+)">/g)].map((m) => m[1]);
  // early.js is loaded on its own, ahead of the rest, and room.js imports it too.
  const early = [...html.matchAll(/<script type="module" async src="\/static\/([^"]+)">/g)].map((m) => m[1]);
  assert.deepEqual(early, ["js/early.js"]);
  const graph = importGraph("js/room.js");
  assert.ok(graph.length > 10, `found only ${graph.length} modules`);
  assert.deepEqual([...preloaded, ...early].sort(), graph);
  // What early.js needs is fetched first.
  assert.deepEqual(preloaded.slice(0, importGraph("js/early.js").length).sort(), importGraph("js/early.js"));
});
