// The readings of currentTime a page's player takes itself, out of one viewer's trace from a
// traced bench-sync run (SYNC_TRACE=1 with SYNC_DUMP; sync.mjs `traceMedia`), for the replays
// (reader-replay.mjs, decision-replay.mjs): the trace holds the bench's own readings too
// (Firefox's every 4 ms), so a reading is fed once `pollDelayMs` has passed since the last one
// fed, as the player's own between ticks, from a seeded stand-in for Math.random (repeatable).

import { pollDelayMs } from "../public/js/position.js";

/**
 * Yields, in order, {reset: true, now, seek} where the reader starts again (a pause, or a seek:
 * `seek` true) and {now, at, value, rate} for each reading fed: `now` the page's performance.now()
 * (ms), `at` the same in s, `rate` the playbackRate set last. Trace entries: [performance.now(),
 * kind, value, tag], kind 0 a reading (tag 1: the bench's), 1 a rate set, 2 play() (1) or pause()
 * (0), 3 a "playing" event, 4 a seek; the first entry holds the page's timeOrigin.
 */
export function* playerReadings(trace) {
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  let rate = 1;
  let fed = -Infinity;
  let wait = 0;
  for (const [now, kind, value, tag] of trace.slice(1)) {
    if (kind === 1) rate = value;
    if ((kind === 2 && value === 0) || kind === 4) yield { reset: true, now, seek: kind === 4 };
    if (kind !== 0 || tag === 1 || now - fed < wait) continue;
    fed = now;
    wait = pollDelayMs(random);
    yield { now, at: now / 1000, value, rate };
  }
}
