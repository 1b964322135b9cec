import test from "node:test";
import assert from "node:assert/strict";
import { ClockEstimator, CLOCK } from "../../public/js/clock.js";

/** A deterministic pseudo-random generator (mulberry32), so failures reproduce. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Simulates one ping: the server's clock is `offset` ms ahead of ours; the request takes `up` ms,
 * the server spends `work` ms, the reply takes `down` ms.
 */
function exchange(est, localSend, offset, up, down, work = 0.05) {
  const t0 = localSend;
  const t1 = t0 + up + offset;
  const t2 = t1 + work;
  const t3 = t2 - offset + down;
  est.addSample(t0, t1, t2, t3);
  return t3;
}

test("exact with symmetric delay", () => {
  const est = new ClockEstimator();
  let now = 1000;
  for (let i = 0; i < 5; i++) now = exchange(est, now + 100, 12345.678, 20, 20) ;
  assert.ok(est.ready);
  assert.ok(Math.abs(est.offset - 12345.678) < 1e-6);
  assert.equal(est.serverNow(1000), 1000 + est.offset);
});

test("jitter: the lowest round trips win, within a millisecond", () => {
  const random = rng(7);
  const est = new ClockEstimator();
  let now = 0;
  const offset = -50_000.25;
  for (let i = 0; i < 30; i++) {
    // Base 5 ms each way plus up to 80 ms of queueing on either leg.
    const up = 5 + (random() < 0.7 ? random() * 80 : random() * 2);
    const down = 5 + (random() < 0.7 ? random() * 80 : random() * 2);
    now = exchange(est, now + 150, offset, up, down);
  }
  assert.ok(Math.abs(est.offset - offset) < 1.0, `off by ${est.offset - offset}`);
  assert.ok(est.uncertainty < 8);
});

test("asymmetric delay: the error is bounded by half the round trip", () => {
  const est = new ClockEstimator();
  let now = 0;
  // Always 30 ms up, 10 ms down: the estimate is biased by (30 - 10) / 2 = 10 ms, no more.
  for (let i = 0; i < 10; i++) now = exchange(est, now + 100, 500, 30, 10);
  assert.ok(Math.abs(est.offset - 500 - 10) < 1e-6);
  assert.ok(Math.abs(est.offset - 500) <= est.uncertainty);
});

test("old samples age out so the estimate follows drift", () => {
  const est = new ClockEstimator();
  let now = 0;
  for (let i = 0; i < 10; i++) now = exchange(est, now + 100, 1000, 2, 2);
  // Later the clocks disagree by 5 ms more, and the old (equally good) samples expire.
  now += CLOCK.MAX_AGE_MS + 1;
  for (let i = 0; i < 10; i++) now = exchange(est, now + 100, 1005, 2, 2);
  assert.ok(Math.abs(est.offset - 1005) < 1e-6);
  assert.ok(est.samples.length <= CLOCK.WINDOW);
});

test("nonsense samples are refused; pongs are read in microseconds", () => {
  const est = new ClockEstimator();
  assert.equal(est.addSample(10, 0, 0, 5), false, "negative round trip");
  assert.equal(est.ready, false);
  assert.equal(est.offset, 0);
  est.addPong({ client_time: 100, server_recv: 1_000_050_000, server_send: 1_000_050_100 }, 110);
  // offset = ((1000050 - 100) + (1000050.1 - 110)) / 2
  assert.ok(Math.abs(est.offset - (1_000_050 - 100 + 1_000_050.1 - 110) / 2) < 1e-6);
});

test("a burst of pings, then steady sampling", () => {
  const est = new ClockEstimator();
  const delays = Array.from({ length: CLOCK.BURST + 2 }, () => est.nextPingDelay());
  assert.deepEqual(delays.slice(0, CLOCK.BURST), Array(CLOCK.BURST).fill(CLOCK.BURST_INTERVAL_MS));
  assert.equal(delays[CLOCK.BURST], CLOCK.STEADY_INTERVAL_MS);
});
