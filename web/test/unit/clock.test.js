import test from "node:test";
import assert from "node:assert/strict";
import { ClockEstimator, CLOCK, sampleOverHttp } from "../../public/js/clock.js";
import { pingThroughLink } from "../../bench/clock-link.mjs";

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

/** The estimate before the intervals: the median offset of the five lowest-rtt samples. */
const lowestRttMedian = (est) => [...est.samples].sort((a, b) => a.rtt - b.rtt).slice(0, 5).map((s) => s.offset).sort((a, b) => a - b)[2];

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

test("a burst of pings, a warm-up, then steady sampling", () => {
  const est = new ClockEstimator();
  const delays = Array.from({ length: CLOCK.BURST + CLOCK.WARMUP + 2 }, () => est.nextPingDelay());
  // The first MIN_SAMPLES pings close together, so that the estimate is ready soon.
  const first = CLOCK.MIN_SAMPLES - 1;
  assert.deepEqual(delays.slice(0, first), Array(first).fill(CLOCK.FIRST_INTERVAL_MS));
  assert.deepEqual(delays.slice(first, CLOCK.BURST), Array(CLOCK.BURST - first).fill(CLOCK.BURST_INTERVAL_MS));
  assert.deepEqual(delays.slice(CLOCK.BURST, CLOCK.BURST + CLOCK.WARMUP), Array(CLOCK.WARMUP).fill(CLOCK.WARMUP_INTERVAL_MS));
  assert.equal(delays[CLOCK.BURST + CLOCK.WARMUP], CLOCK.STEADY_INTERVAL_MS);
  // Well inside the server's 20 frames a second (60 in a burst): at most 10 in any second.
  const sentAt = [0];
  for (const d of delays) sentAt.push(sentAt.at(-1) + d);
  assert.ok(sentAt.every((t, i) => sentAt.filter((u) => u >= t && u < t + 1000).length <= 10), JSON.stringify(sentAt.slice(0, 10)));
});

/** One ping against a server whose clock reads `offset + local * (1 + skew)` (ms). */
function skewedExchange(est, localSend, offset, skew, up, down, work = 0.05) {
  const server = (local) => offset + local * (1 + skew);
  const t0 = localSend;
  const t1 = server(t0 + up);
  const t2 = t1 + work;
  const t3 = (t2 - offset) / (1 + skew) + down;
  est.addSample(t0, t1, t2, t3);
  return { t3, server };
}

/** Pings as a connection does (each ping's next delay taken as it goes), the server `offset` ms
 * ahead, 2 ms each way; returns the delays until the first steady one, and the time after. */
function pingUntilSteady(est, now, offset) {
  const delays = [];
  for (;;) {
    const delay = est.nextPingDelay();
    exchange(est, now, offset, 2, 2);
    delays.push(delay);
    now += delay;
    if (delay === CLOCK.STEADY_INTERVAL_MS) return { delays, now };
  }
}

const fullSchedule = () => {
  const est = new ClockEstimator();
  return pingUntilSteady(est, 0, 0).delays;
};

test("a reconnection that agrees with the clock is not warmed up again; another clock, or one after a minute away, is", () => {
  const est = new ClockEstimator();
  est.connected(0);
  let { delays, now } = pingUntilSteady(est, 0, 7);
  assert.equal(delays.length, CLOCK.BURST + CLOCK.WARMUP + 1);
  // Dropped and back within seconds, the same server: four pings, then steady.
  est.connected(now + 3000);
  ({ delays, now } = pingUntilSteady(est, now + 3000, 7));
  assert.deepEqual(delays, [CLOCK.FIRST_INTERVAL_MS, CLOCK.FIRST_INTERVAL_MS, CLOCK.BURST_INTERVAL_MS, CLOCK.STEADY_INTERVAL_MS]);
  assert.ok(Math.abs(est.offset - 7) < 1e-6);
  // Another node whose clock is 40 ms off (or this one stepped): the whole burst and warm-up.
  est.connected(now + 3000);
  ({ delays, now } = pingUntilSteady(est, now + 3000, 47));
  assert.deepEqual(delays, fullSchedule());
  assert.ok(Math.abs(est.offset - 47) < 1e-6);
  // Back after more than a minute: the earlier samples have aged out.
  est.connected(now + CLOCK.MAX_AGE_MS);
  ({ delays } = pingUntilSteady(est, now + CLOCK.MAX_AGE_MS, 47));
  assert.deepEqual(delays, fullSchedule());
});

test("skew: a server clock 100 ppm fast is followed, not lagged behind", () => {
  const random = rng(11);
  const est = new ClockEstimator();
  const naive = [];
  let now = 0;
  let server = null;
  // Three minutes of steady pings, 2-5 ms each way (with more jitter a slope this gentle is
  // not told from noise, and none is followed).
  for (let i = 0; i < 72; i++) {
    const r = skewedExchange(est, now + 2500, 7000, 1e-4, 2 + random() * 3, 2 + random() * 3);
    now = r.t3;
    server = r.server;
    naive.push(r);
  }
  assert.ok(Math.abs(est.skew - 1e-4) < 3e-5, `skew ${est.skew}`);
  // Right now, and 2.5 s on (the next ping), the estimate is within a millisecond and a half.
  for (const later of [0, 2500]) {
    const error = est.serverNow(now + later) - server(now + later);
    assert.ok(Math.abs(error) < 1.5, `off by ${error} ms at +${later} ms`);
  }
  // Without the slope (the median of the best samples over the last minute) it would be off by
  // up to 100 ppm of the samples' age: several ms.
  const flat = lowestRttMedian(est);
  assert.ok(Math.abs(now + flat - server(now)) > 2, "the test's skew is large enough to matter");
});

test("skew: none is assumed from too short a span, and it is bounded", () => {
  const est = new ClockEstimator();
  let now = 0;
  for (let i = 0; i < 10; i++) now = skewedExchange(est, now + 100, 0, 3e-4, 2, 2).t3;
  assert.equal(est.skew, 0, "one second of samples says nothing of the skew");
  const stepped = new ClockEstimator();
  now = 0;
  // A clock being stepped by 50 ms every ten seconds is not a 5000 ppm skew.
  for (let i = 0; i < 24; i++) now = exchange(stepped, now + 2500, 50 * Math.floor(i / 4), 2, 2);
  assert.ok(Math.abs(stepped.skew) <= CLOCK.MAX_SKEW);
});

test("skew: with none, jitter seldom invents one", () => {
  const random = rng(3);
  let invented = 0;
  let worse = 0;
  for (let run = 0; run < 100; run++) {
    const est = new ClockEstimator();
    let now = 0;
    for (let i = 0; i < 40; i++) now = exchange(est, now + 2500, 100, 2 + random() * 20, 2 + random() * 20);
    if (est.skew !== 0) invented += 1;
    // Against the same samples' flat median (no skew at all).
    const flat = lowestRttMedian(est);
    const later = now + 2500;
    if (Math.abs(est.serverNow(later) - (later + 100)) > Math.abs(flat - 100) + 0.5) worse += 1;
  }
  assert.ok(invented <= 3, `a skew was seen in ${invented} of 100 runs without one`);
  assert.ok(worse <= 3, `worse than no skew at all in ${worse} of 100 runs`);
});

test("skew: a jittery link does not move the estimate by a skew it invents", () => {
  // 150 ms ±20% each way, each direction in order (bench/clock-link.mjs's link). Now and then a
  // slope through the warm-up's samples and the steady ones passed as a skew of 400-500 ppm,
  // carrying the older samples 10-20 ms. Two minutes a run, as a connection pings; the clocks keep
  // the same pace. A slope may still be fitted, but no steeper than a quartz clock's (MAX_SKEW).
  const random = rng(5);
  let fitted = 0;
  let worst = 0;
  for (let run = 0; run < 40; run++) {
    const est = new ClockEstimator();
    est.connected(0);
    for (const sample of pingThroughLink(est, { oneWay: 150, random, server: (t) => 500 + t })) {
      est.addSample(...sample);
      if (est.skew !== 0) fitted += 1;
      if (sample[3] > 8000) worst = Math.max(worst, Math.abs(est.offsetAt(sample[3]) - 500));
    }
  }
  assert.ok(fitted < 20, `a skew fitted at ${fitted} samples`);
  assert.ok(worst < 10, `after the warm-up, off by ${worst.toFixed(1)} ms`);
});

test("intervals: a fast request and a fast reply from different exchanges pin the offset", () => {
  const est = new ClockEstimator();
  let now = 0;
  // No exchange is fast both ways: 10 ms up and 60 down, then 60 up and 10 down.
  now = exchange(est, now + 100, 250, 10, 60);
  now = exchange(est, now + 100, 250, 60, 10);
  now = exchange(est, now + 100, 250, 40, 40);
  // Each alone is off by up to 25 ms; together they say exactly where the offset is.
  assert.ok(Math.abs(est.offset - 250) < 0.1, `off by ${est.offset - 250}`);
  assert.ok(est.uncertainty <= 10.1);
});

test("intervals: a reply the page handles late does not move the estimate", () => {
  const est = new ClockEstimator();
  let now = 0;
  for (let i = 0; i < 6; i++) now = exchange(est, now + 100, -40, 3, 3);
  const before = est.offset;
  // A busy main thread reads the pong 80 ms after it arrived: its interval only widens.
  now = exchange(est, now + 100, -40, 3, 83);
  assert.ok(Math.abs(est.offset - before) < 1e-9);
});

test("intervals: pongs timed by a clock rounded to the millisecond (Firefox) do not end the intersection", () => {
  // Firefox rounds performance.now() to a millisecond, either way (privacy.reduceTimerPrecision).
  // On loopback (each leg 0.1-0.4 ms) the rounded times make intervals that can miss the offset
  // by up to a millisecond; one whose request a busy browser held 52 ms, its reply at once, then
  // had nothing in common with the older ones and ended the intersection alone.
  const random = rng(4);
  const offset = 0.7;
  const round = (t) => (random() < 0.5 ? Math.floor(t) : Math.ceil(t));
  const pong = (est, send, up, down) => {
    const t1 = send + up + offset;
    const t2 = t1 + 0.02;
    const t3 = t2 - offset + down;
    est.addPong({ client_time: round(send), server_recv: t1 * 1000, server_send: t2 * 1000 }, round(t3));
    return t3;
  };
  let worst = 0;
  let late = 0;
  for (let run = 0; run < 200; run++) {
    const est = new ClockEstimator();
    let now = 1_000_000 + run * 1000.37;
    for (let i = 0; i < 20; i++) now = pong(est, now + 250.3, 0.1 + 0.3 * random(), 0.1 + 0.3 * random());
    now = pong(est, now + 2500.1, 52, 0.1);
    late = Math.max(late, Math.abs(est.offset - offset));
    for (let i = 0; i < 5; i++) {
      now = pong(est, now + 2500.1, 0.1 + 0.3 * random(), 0.1 + 0.3 * random());
      worst = Math.max(worst, Math.abs(est.offset - offset));
    }
  }
  // Without the widening the lopsided pong put the estimate up to 26 ms off.
  assert.ok(late < 1.5, `after the lopsided pong, within 1.5 ms (${late.toFixed(2)} ms)`);
  assert.ok(worst < 1.5, `and after it (${worst.toFixed(2)} ms)`);
});

test("intervals: a stepped clock is followed at the next exchange", () => {
  const est = new ClockEstimator();
  let now = 0;
  for (let i = 0; i < 10; i++) now = exchange(est, now + 100, 0, 2, 2);
  // The server's clock is set 500 ms forward: older intervals no longer agree and are left out.
  now = exchange(est, now + 100, 500, 2, 2);
  assert.ok(Math.abs(est.offset - 500) < 1e-6, `off by ${est.offset - 500}`);
});

test("intervals beat the median of the lowest round trips on jittery links", () => {
  const random = rng(21);
  const errors = { intervals: [], lowest: [] };
  for (let run = 0; run < 200; run++) {
    const est = new ClockEstimator();
    let now = 0;
    // 120-180 ms each way, as bench-sync's slowest proxy; a minute of steady pings.
    for (let i = 0; i < 24; i++) now = exchange(est, now + 2500, 0, 120 + random() * 60, 120 + random() * 60);
    errors.intervals.push(Math.abs(est.offset));
    errors.lowest.push(Math.abs(lowestRttMedian(est)));
  }
  const p95 = (xs) => xs.sort((a, b) => a - b)[Math.floor(0.95 * xs.length)];
  assert.ok(p95(errors.intervals) < p95(errors.lowest) / 2, `p95 ${p95(errors.intervals)} ms against ${p95(errors.lowest)} ms`);
  assert.ok(p95(errors.intervals) < 5, `p95 ${p95(errors.intervals)} ms`);
});

test("ready after one exchange on a fast link, after three on a slow one", () => {
  const fast = new ClockEstimator();
  exchange(fast, 0, 500, 1, 1);
  assert.ok(fast.ready, "one 2 ms round trip pins the offset within 1 ms");
  const slow = new ClockEstimator();
  let now = exchange(slow, 0, 500, 40, 40);
  assert.ok(!slow.ready);
  now = exchange(slow, now + 100, 500, 40, 40);
  assert.ok(!slow.ready);
  exchange(slow, now + 100, 500, 40, 40);
  assert.ok(slow.ready);
});

/**
 * A server `offset` ms ahead of this page, reached over HTTP in `up` / `down` ms, and the page's
 * Resource Timing of each request; `local` is the page's clock (performance.now(), ms).
 */
function httpServer(offset, { up = 0.4, down = 0.4, timings = true, status = 200 } = {}) {
  const state = { local: 5000, entries: new Map(), asked: [] };
  const performance = {
    timeOrigin: 1_700_000_000_000,
    getEntriesByName: (name) => (timings && state.entries.has(name) ? [state.entries.get(name)] : []),
  };
  const fetch = async (href, options) => {
    state.asked.push({ href, options });
    const requestStart = state.local;
    const recv = performance.timeOrigin + requestStart + up + offset;
    const send = recv + 0.05;
    const responseStart = send - offset + down - performance.timeOrigin;
    // The page is busy: it reads the answer 300 ms after it came.
    state.local = responseStart + 300;
    state.entries.set(href, { requestStart, responseStart });
    return { ok: status === 200, json: async () => ({ server_recv: recv * 1000, server_send: send * 1000 }) };
  };
  return { state, fetch, performance };
}

test("over HTTP: samples timed by the network stack pin the clock however late the page reads them", async () => {
  const server = httpServer(1234.5, { up: 0.3, down: 0.5 });
  const est = new ClockEstimator();
  let readyCalls = 0;
  const added = await sampleOverHttp(est, "http://x/api/clock", { ...server, onReady: () => (readyCalls += 1) });
  assert.equal(added, CLOCK.HTTP_SAMPLES);
  // Ready at the first sample (its interval is within ±3 ms), told once.
  assert.equal(readyCalls, 1);
  assert.ok(est.ready);
  // Within half the 0.85 ms round trip and the timings' resolution, not the 300 ms the page
  // took to read each answer.
  const bound = 0.45 + CLOCK.TIMING_RESOLUTION_MS;
  assert.ok(Math.abs(est.offset - 1234.5) <= bound, `offset ${est.offset}`);
  assert.ok(est.uncertainty <= bound, `uncertainty ${est.uncertainty}`);
  // Each request its own address (its own timing entry), never cached, no cookie.
  assert.equal(new Set(server.state.asked.map((a) => a.href)).size, CLOCK.HTTP_SAMPLES);
  assert.ok(server.state.asked.every((a) => a.options.cache === "no-store" && a.options.credentials === "omit"));
});

test("over HTTP: an exchange timed as taking no time (coarse timings) is still a sample", async () => {
  // Firefox's timings are whole milliseconds: a fast exchange can read 0 ms (the answer timed at
  // the request's moment), less than the server's own 0.05 ms part of it.
  const server = httpServer(42, { up: 0, down: -0.05 });
  const est = new ClockEstimator();
  assert.equal(await sampleOverHttp(est, "http://x/api/clock", server), CLOCK.HTTP_SAMPLES);
  assert.ok(Math.abs(est.offset - 42) <= CLOCK.TIMING_RESOLUTION_MS, `offset ${est.offset}`);
});

test("over HTTP: without timings, or with an error, no sample is taken and the pings do it all", async () => {
  for (const options of [{ timings: false }, { status: 429 }]) {
    const est = new ClockEstimator();
    assert.equal(await sampleOverHttp(est, "http://x/api/clock", httpServer(10, options)), 0);
    assert.equal(est.samples.length, 0);
  }
  const est = new ClockEstimator();
  const failing = { fetch: async () => { throw new TypeError("network"); }, performance: httpServer(0).performance };
  assert.equal(await sampleOverHttp(est, "http://x/api/clock", failing), 0);
});

test("over HTTP: a sample added after a pong that arrived later keeps the samples in order of arrival", () => {
  const est = new ClockEstimator();
  // A pong read late (a 300 ms round trip), then an HTTP sample that came in before it did.
  exchange(est, 1000, 50, 1, 299);
  exchange(est, 1100, 50, 0.4, 0.4);
  const at = est.samples.map((s) => s.at);
  assert.deepEqual(at, [...at].sort((a, b) => a - b));
  // Both intervals agree; the narrow one sets the estimate.
  assert.ok(Math.abs(est.offset - 50) <= 0.4, `offset ${est.offset}`);
});
