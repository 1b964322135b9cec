// Replays the stepped (Firefox) viewers' currentTime readings of traced bench-sync runs
// (SYNC_TRACE=1 with SYNC_DUMP) through this tree's PositionReader and staleReading, and through
// other versions of position.js given as well (`git show <rev>:web/public/js/position.js >
// /tmp/position-<rev>.mjs`), with a stand-in for the sync loop: it decides every 100 ms, or 20 ms
// while `staleReading` says wait, on the room's target taken from the bench's own samples
// (interpolated, steady play at 1.25 only), and counts a seek where the estimate is more than
// SYNC.SEEK_THRESHOLD off (then skips 2 s, as a seek resets the reader and the cooldown holds).
// It prints, per version, those would-seek decisions and how far the estimates it decided on lay
// from the target (p50, p95, p99, p99.9). The 2 s after each seek the real page made are left
// out (the readings there follow that seek). It decides at readings, not at the page's own
// ticks, so it does not reproduce every live decision: it compares readers on the same readings.
// No browser, no server.
//
//   node web/bench/decision-replay.mjs /tmp/s53-*-mixed-loopback.json [/tmp/position-<rev>.mjs ...]
//
// Ends with RESULT decision_replay_would_seek and decision_replay_error_p999 (this tree's reader).

import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as tree from "../public/js/position.js";
import { playerReadings } from "./trace-readings.js";
import { SYNC } from "../public/js/sync.js";

const args = process.argv.slice(2);
const dumps = args.filter((a) => a.endsWith(".json"));
const others = args.filter((a) => !a.endsWith(".json"));
if (!dumps.length) throw new Error("usage: node web/bench/decision-replay.mjs <dump.json>... [<other position.js>...]");
const versions = [["this tree", tree]];
for (const file of others) versions.push([file, await import(pathToFileURL(path.resolve(file)).href)]);

const TICK_MS = 100;
const WAIT_TICK_MS = 20;
const AFTER_SEEK_MS = 2000;
const ROOM_RATE = 1.25;

/** The room's target at wall-clock ms `w` from a viewer's samples, or null outside steady play at
 * ROOM_RATE (the two samples around `w` more than 600 ms apart, or moving at another rate). */
function targetFrom(samples) {
  const usable = samples.filter((s) => Number.isFinite(s.target));
  return (w) => {
    const i = usable.findIndex((s) => s.now > w);
    if (i <= 0) return null;
    const [a, b] = [usable[i - 1], usable[i]];
    if (b.now - a.now > 600) return null;
    const rate = (b.target - a.target) / ((b.now - a.now) / 1000);
    if (Math.abs(rate - ROOM_RATE) > 0.05) return null;
    return a.target + ((w - a.now) / 1000) * rate;
  };
}

const totals = versions.map(() => ({ seeks: [], errors: [] }));
for (const file of dumps) {
  const dump = JSON.parse(readFileSync(file, "utf8"));
  if (!dump.traces) throw new Error(`${file} holds no traces: run bench-sync with SYNC_TRACE=1 and SYNC_DUMP`);
  dump.traces.forEach((trace, viewer) => {
    if (dump.kinds?.[viewer] !== "firefox") return;
    const origin = trace[0][0];
    const targetAt = targetFrom(dump.samples[viewer]);
    const start = dump.events[0].sentAt - dump.events[0].at * 1000;
    versions.forEach(([, mod], v) => {
      const reader = new mod.PositionReader();
      let since = null;
      let nextDecision = 0;
      let skipUntil = -Infinity;
      for (const r of playerReadings(trace)) {
        const w = origin + r.now;
        if (r.reset) {
          reader.reset();
          if (r.seek) skipUntil = Math.max(skipUntil, w + AFTER_SEEK_MS);
          continue;
        }
        const estimate = reader.read(r.value, r.at, r.rate, true);
        if (w < nextDecision) continue;
        const stale = mod.staleReading({ held: reader.heldFor(r.at), behind: reader.behind?.() ?? 0, playing: true, since, now: r.at });
        since = stale.since;
        if (stale.wait) {
          nextDecision = w + WAIT_TICK_MS;
          continue;
        }
        nextDecision = w + TICK_MS;
        const target = targetAt(w);
        if (target === null || w < skipUntil) continue;
        const off = estimate - target;
        // Seconds off is no sync error but the item's end: its reading stops at its duration
        // while the target runs on.
        if (Math.abs(off) > 10) continue;
        totals[v].errors.push(Math.abs(off));
        if (Math.abs(off) > SYNC.SEEK_THRESHOLD) {
          totals[v].seeks.push(`${path.basename(file)} viewer ${viewer} at ${((w - start) / 1000).toFixed(2)} s, ${(off * 1000).toFixed(0)} ms off`);
          skipUntil = w + AFTER_SEEK_MS;
          reader.reset();
        }
      }
    });
  });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
versions.forEach(([name], v) => {
  const e = totals[v].errors.sort((a, b) => a - b);
  const ms = (q) => (quantile(e, q) * 1000).toFixed(1);
  console.log(`${name}: ${e.length} decisions, would seek ${totals[v].seeks.length}; |estimate - target| p50 ${ms(0.5)}, p95 ${ms(0.95)}, p99 ${ms(0.99)}, p99.9 ${ms(0.999)} ms`);
  for (const s of totals[v].seeks) console.log(`  ${s}`);
});
const mine = totals[0].errors;
console.log(`RESULT decision_replay_would_seek ${totals[0].seeks.length} count`);
console.log(`RESULT decision_replay_error_p999 ${(quantile(mine, 0.999) * 1000).toFixed(1)} ms`);
