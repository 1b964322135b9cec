import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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
