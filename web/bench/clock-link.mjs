// The page's clock estimate (web/public/js/clock.js) against simulated links, no browser and no
// server: a connection pings as a page does (`nextPingDelay`: the burst, the warm-up, then every
// 2.5 s) for two minutes, each way through a link of ONE_WAY ms ±20% that keeps its order (a
// chunk waits for the one before, as a TCP stream's do), with the two clocks at the same pace (or
// the server's SKEW_PPM fast). Prints, per link, how far the estimate was off after the first
// WARM s (its worst, and how often it moved more than 5 ms from one sample to the next), and how
// many samples had a skew fitted. Deterministic (RUNS runs from SEED). `pingThroughLink` is the
// link, for the unit tests too.
//
//   node web/bench/clock-link.mjs            (LINKS="10 40 150", RUNS=200, SEED=1, WARM=8, SKEW_PPM=0)

import { pathToFileURL } from "node:url";
import { ClockEstimator } from "../public/js/clock.js";

const JITTER = 0.2;

/**
 * A connection's pings for `ms` (by `est`'s schedule, `nextPingDelay`), each way through a link
 * of `oneWay` ms ±20% that keeps its order, the server's clock reading `server(local ms)` and
 * taking 0.05 ms to answer: the exchanges as [t0, t1, t2, t3] (`addSample`'s), in order of
 * arrival. `random`: a generator in [0, 1).
 */
export function pingThroughLink(est, { oneWay, random, server, ms = 120_000 }) {
  const arrivals = [];
  let up = 0;
  let down = 0;
  for (let t = 0; t < ms; t += est.nextPingDelay()) {
    up = Math.max(up, t + oneWay * (1 - JITTER + 2 * JITTER * random()));
    down = Math.max(down, up + 0.05 + oneWay * (1 - JITTER + 2 * JITTER * random()));
    arrivals.push([t, server(up), server(up) + 0.05, down]);
  }
  return arrivals.sort((a, b) => a[3] - b[3]);
}

/** A seeded generator in [0, 1) (Park-Miller). */
function rng(seed) {
  let s = seed % 2147483647 || 1;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

function main() {
  const links = (process.env.LINKS ?? "10 40 150").split(/[\s,]+/).filter(Boolean).map(Number);
  const runs = Number(process.env.RUNS ?? 200);
  const warmMs = Number(process.env.WARM ?? 8) * 1000;
  const skew = Number(process.env.SKEW_PPM ?? 0) * 1e-6;
  /** The server's clock at local time `t` (ms). */
  const server = (t) => 500 + t * (1 + skew);
  for (const oneWay of links) {
    const random = rng(Number(process.env.SEED ?? 1));
    let worst = 0;
    let jumps = 0;
    let skewed = 0;
    const errors = [];
    for (let run = 0; run < runs; run++) {
      const est = new ClockEstimator();
      est.connected(0);
      let last = null;
      for (const sample of pingThroughLink(est, { oneWay, random, server })) {
        est.addSample(...sample);
        if (est.skew !== 0) skewed += 1;
        const error = est.offsetAt(sample[3]) - (server(sample[3]) - sample[3]);
        if (sample[3] > warmMs) {
          worst = Math.max(worst, Math.abs(error));
          errors.push(Math.abs(error));
          if (last !== null && Math.abs(error - last) > 5) jumps += 1;
        }
        last = error;
      }
    }
    errors.sort((a, b) => a - b);
    const p99 = errors[Math.floor(0.99 * (errors.length - 1))];
    console.log(`${oneWay} ms ±${JITTER * 100}% each way${skew ? `, the server ${Math.round(skew * 1e6)} ppm fast` : ""}, ${runs} runs of 2 min: after ${warmMs / 1000} s, |error| p99 ${p99.toFixed(1)} ms, worst ${worst.toFixed(1)} ms; moves beyond 5 ms ${jumps}; samples with a skew fitted ${skewed}`);
    console.log(`RESULT clock_link${oneWay}_error_p99 ${p99.toFixed(1)} ms`);
    console.log(`RESULT clock_link${oneWay}_error_max ${worst.toFixed(1)} ms`);
    console.log(`RESULT clock_link${oneWay}_jumps ${jumps} count`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
