// Replays the currentTime readings of a traced bench-sync run (SYNC_TRACE=1 with SYNC_DUMP) through
// PositionReader, this tree's and, given a second position.js (another commit's, say
// `git show <rev>:web/public/js/position.js > /tmp/position-old.mjs`), that one too, and prints per
// viewer how far each reader's estimates lie from the median of its own estimates over ±0.5 s
// (p95, p99, how many over 10 ms), at rates within 2.5% of 1, once the player is read as
// stepped. The position moves on a straight line between the room's events, so a reader whose
// estimates jump about that line is misreading its player. The readers are fed at the player's
// pace (trace-readings.js), and start again at a pause or a seek. No browser, no server.
//
//   node web/bench/reader-replay.mjs /tmp/x-firefox-loopback.json [/tmp/position-old.mjs]
//
// Ends with RESULT reader_line_distance_p95_max and _p99_max (this tree's reader, the worst viewer).

import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { PositionReader } from "../public/js/position.js";
import { playerReadings } from "./trace-readings.js";

const [dumpFile, otherFile] = process.argv.slice(2);
if (!dumpFile) throw new Error("usage: node web/bench/reader-replay.mjs <dump.json> [<other position.js>]");
const dump = JSON.parse(readFileSync(dumpFile, "utf8"));
if (!dump.traces) throw new Error(`${dumpFile} holds no traces: run bench-sync with SYNC_TRACE=1 and SYNC_DUMP`);
const readers = [["this tree", PositionReader]];
if (otherFile) readers.push([otherFile, (await import(pathToFileURL(path.resolve(otherFile)).href)).PositionReader]);

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const worst = { p95: 0, p99: 0 };
dump.traces.forEach((trace, viewer) => {
  const instances = readers.map(([, Reader]) => new Reader());
  const rows = [];
  for (const r of playerReadings(trace)) {
    if (r.reset) {
      for (const reader of instances) reader.reset();
      continue;
    }
    const estimates = instances.map((reader) => reader.read(r.value, r.at, r.rate, true) - r.at);
    rows.push({ at: r.at, rate: r.rate, estimates, stepped: instances[0].stepped && instances[0].bounds !== null });
  }
  const distances = readers.map(() => []);
  let from = 0;
  let to = 0;
  for (const row of rows) {
    while (rows[from].at < row.at - 0.5) from++;
    while (to < rows.length && rows[to].at <= row.at + 0.5) to++;
    if (!row.stepped || Math.abs(row.rate - 1) > 0.025) continue;
    row.estimates.forEach((e, i) => {
      const around = rows.slice(from, to).map((r) => r.estimates[i]).sort((a, b) => a - b);
      distances[i].push(Math.abs(e - around[around.length >> 1]));
    });
  }
  readers.forEach(([name], i) => {
    const d = distances[i].sort((a, b) => a - b);
    if (!d.length) return;
    const p95 = quantile(d, 0.95) * 1000;
    const p99 = quantile(d, 0.99) * 1000;
    if (i === 0) {
      worst.p95 = Math.max(worst.p95, p95);
      worst.p99 = Math.max(worst.p99, p99);
    }
    console.log(`viewer ${viewer} (${dump.kinds?.[viewer] ?? "?"}), ${name}: ${d.length} readings, from the line p95 ${p95.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, over 10 ms ${d.filter((x) => x > 0.01).length}`);
  });
});
console.log(`RESULT reader_line_distance_p95_max ${worst.p95.toFixed(2)} ms`);
console.log(`RESULT reader_line_distance_p99_max ${worst.p99.toFixed(2)} ms`);
