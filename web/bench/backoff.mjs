// How long a room page takes to be back after an outage it is not told of (a server restarting),
// by its reconnection backoff alone, simulated: full-jitter delays (connection.js's BASE_MS and
// MAX_MS) drawn one after another until their sum passes the outage, every try made during it
// failing at once. Compares a ceiling that doubles per failed try with one growing by
// BACKOFF.FACTOR, for several outage lengths; prints the mean and p90 of the wait past the
// outage's end and the tries made, then RESULT lines.
//
//   node web/bench/backoff.mjs        (RUNS=20000 outages per length and factor)

import { BACKOFF } from "../public/js/connection.js";

const RUNS = Number(process.env.RUNS ?? 20_000);
const OUTAGES_MS = [2_000, 5_000, 10_000, 30_000, 120_000];

/** The wait past an outage of `outage` ms, and the tries made, for one simulated page. */
function once(outage, factor) {
  let t = 0;
  for (let attempt = 0; ; attempt++) {
    t += Math.random() * Math.min(BACKOFF.MAX_MS, BACKOFF.BASE_MS * factor ** attempt);
    if (t >= outage) return { wait: t - outage, tries: attempt + 1 };
  }
}

for (const factor of [2, BACKOFF.FACTOR]) {
  for (const outage of OUTAGES_MS) {
    const runs = Array.from({ length: RUNS }, () => once(outage, factor));
    const waits = runs.map((r) => r.wait).sort((a, b) => a - b);
    const mean = waits.reduce((a, b) => a + b, 0) / RUNS / 1000;
    const p90 = waits[Math.floor(RUNS * 0.9)] / 1000;
    const tries = runs.reduce((a, r) => a + r.tries, 0) / RUNS;
    const name = `backoff_x${factor}_${outage / 1000}s`;
    console.log(`ceiling x${factor} per try, ${outage / 1000} s outage: back ${mean.toFixed(1)} s after it on average, p90 ${p90.toFixed(1)} s, ${tries.toFixed(0)} tries`);
    console.log(`RESULT ${name}_mean ${mean.toFixed(2)} s`);
    console.log(`RESULT ${name}_p90 ${p90.toFixed(2)} s`);
  }
}
