import test from "node:test";
import assert from "node:assert/strict";
import { POSITION, PositionReader, pollDelayMs, staleReading } from "../../public/js/position.js";
import { SYNC } from "../../public/js/sync.js";

/**
 * A player whose currentTime moves in steps, as Firefox's does: every `step` s it jumps to where
 * the video really is then. `truth(t)` is where the video really is at time t.
 */
function steppedPlayer({ step = 0.04, phase = 0.013 } = {}) {
  const segments = [{ from: 0, position: 100, rate: 1 }];
  const truth = (t) => {
    const s = segments.findLast((x) => x.from <= t);
    return s.position + (t - s.from) * s.rate;
  };
  return {
    truth,
    rateAt: (t) => segments.findLast((x) => x.from <= t).rate,
    /** currentTime at `t`: the truth at the last step moment. */
    reading: (t) => truth(Math.floor((t - phase) / step) * step + phase),
    setRate(t, rate) {
      segments.push({ from: t, position: truth(t), rate });
    },
  };
}

/** A repeatable stand-in for Math.random. */
function seeded(seed = 1) {
  let x = seed;
  return () => {
    x = (x * 16807) % 2147483647;
    return x / 2147483647;
  };
}

/** Readings as the player takes them (pollDelayMs apart), from `from` to `to`; the worst error of
 * the estimate and of the raw reading after `settle` s. */
function readAlong(reader, player, from, to, settle = 0.3) {
  let worst = 0;
  let worstRaw = 0;
  const random = seeded(Math.round(from * 1000));
  for (let t = from; t < to; t += pollDelayMs(random) / 1000) {
    const value = player.reading(t);
    const estimate = reader.read(value, t, player.rateAt(t), true);
    if (t - from >= settle) {
      worst = Math.max(worst, Math.abs(estimate - player.truth(t)));
      worstRaw = Math.max(worstRaw, Math.abs(value - player.truth(t)));
    }
  }
  return { worst, worstRaw };
}

test("a stepped currentTime is read within a few ms of where the video is", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  const { worst, worstRaw } = readAlong(reader, player, 10, 12);
  assert.ok(reader.stepped, "the held values show the player is stepped");
  assert.ok(worstRaw > 0.03, `the raw reading is up to a step behind (${worstRaw})`);
  assert.ok(worst < 0.004, `the estimate is within 4 ms (${worst})`);
  assert.ok(reader.worthPolling(), "a stepped player is read at every frame");
});

test("the estimate follows changes of rate", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  player.setRate(11, 1.1);
  const fast = readAlong(reader, player, 11, 12, 0.1);
  assert.ok(fast.worst < 0.006, `at 1.1x within 6 ms from 0.1 s after the change (${fast.worst})`);
  player.setRate(12, 0.98);
  const slow = readAlong(reader, player, 12, 13, 0.1);
  assert.ok(slow.worst < 0.006, `at 0.98x within 6 ms (${slow.worst})`);
});

test("readings between ticks are 12-18 ms apart", () => {
  assert.ok(Math.abs(pollDelayMs(() => 0) - 12) < 1e-9);
  assert.ok(Math.abs(pollDelayMs(() => 1) - 18) < 1e-9);
});

test("a clock that starts late or stalls, then moves on from where it held, is not stepped", () => {
  const reader = new PositionReader();
  const random = seeded(7);
  let t = 1;
  let position = 20;
  for (let k = 0; k < 40; k++) {
    // Held for 85 ms (a start, or a stall), then moving with every reading for 0.5 s.
    const restart = t + 0.085;
    for (; t < restart + 0.5; t += pollDelayMs(random) / 1000) {
      const value = t < restart ? position : position + (t - restart);
      assert.equal(reader.read(value, t, 1, true), value);
    }
    position += 0.5;
  }
  assert.equal(reader.stepped, false);
});

test("a continuous currentTime is taken as it is, and no longer polled", () => {
  const reader = new PositionReader();
  let t = 5;
  for (let i = 0; i < POSITION.CONTINUOUS_AFTER; i++) {
    t += 0.0167;
    const value = 42 + t + 0.002 * Math.sin(i); // a little noise, as Chromium's readout has
    assert.equal(reader.read(value, t, 1, true), value);
  }
  assert.equal(reader.stepped, false);
  assert.equal(reader.worthPolling(), false);
});

test("a seek, a pause or a stall falls back to the reading until new steps are seen", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  // Paused: the reading is the position, and the bounds are forgotten.
  assert.equal(reader.read(123.456, 11.01, 1, false), 123.456);
  assert.equal(reader.bounds, null);
  // A jump backwards (a seek we did not hear of) is not a step.
  reader.read(50, 11.02, 1, true);
  reader.read(50, 11.04, 1, true);
  assert.equal(reader.read(49, 11.06, 1, true), 49);
  assert.equal(reader.bounds, null);
  // Bounds older than MAX_AGE are not used: the player may have stalled since.
  const stale = new PositionReader();
  readAlong(stale, player, 10, 11);
  const t = 11 + POSITION.MAX_AGE + 0.1;
  assert.equal(stale.read(77, t, 1, true), 77);
});

test("a stepped estimate is never behind the reading, nor more than a step ahead", () => {
  const reader = new PositionReader();
  reader.stepped = true;
  reader.read(10, 1, 1, true);
  reader.read(10.04, 1.01, 1, true);
  // The video cannot be behind what it last showed.
  assert.ok(reader.read(10.2, 1.02, 1, true) >= 10.2);
  assert.ok(reader.read(10.2, 1.5, 1, true) - 10.2 <= POSITION.MAX_STEP);
});

test("non-finite readings are passed through", () => {
  const reader = new PositionReader();
  assert.ok(Number.isNaN(reader.read(NaN, 1, 1, true)));
  assert.equal(reader.read(3, NaN, 1, true), 3);
});

test("at rates other than 1, readings that scatter around the position are averaged", () => {
  // Chromium while stretching time: each reading within ±5 ms of where the video really is.
  const random = seeded(7);
  const truth = (t, rate) => 100 + t * rate;
  const reader = new PositionReader();
  const run = (from, to, rate) => {
    const errors = [];
    const raws = [];
    for (let t = from; t < to; t += pollDelayMs(random) / 1000) {
      const raw = truth(t, rate) + (random() - 0.5) * 0.01;
      const read = reader.read(raw, t, rate, true);
      if (t - from > POSITION.STRETCH_WINDOW) {
        errors.push(Math.abs(read - truth(t, rate)));
        raws.push(Math.abs(raw - truth(t, rate)));
      }
    }
    const p95 = (xs) => xs.sort((a, b) => a - b)[Math.floor(0.95 * xs.length)];
    return { read: p95(errors), raw: p95(raws) };
  };
  const stretched = run(0, 5, 1.25);
  assert.ok(stretched.raw > 0.004, `raw ${stretched.raw}`);
  assert.ok(stretched.read < 0.0025, `averaged ${stretched.read}`);
  // At rate 1 a reading is taken as it is.
  const t = 10;
  assert.equal(reader.read(200.0042, t, 1, true), 200.0042);
  // A seek at a stretched rate: the mean starts again from the new place.
  reader.read(300, 20, 1.25, true);
  assert.equal(reader.read(300.5, 20.01, 1.25, true), 300.5);
});

test("at rates other than 1, readings held still (a start, a stall) are not carried into the mean", () => {
  // Chromium just after play() at 1.003: the position holds at 50 for 120 ms, then moves.
  const reader = new PositionReader();
  const rate = 1.003;
  for (let t = 0; t < 0.12; t += 0.015) reader.read(50, t, rate, true);
  let read;
  for (let t = 0.12; t < 0.2; t += 0.015) read = reader.read(50 + (t - 0.12) * rate, t, rate, true);
  const truth = 50 + (0.195 - 0.12) * rate;
  assert.ok(Math.abs(read - truth) < 0.001, `read ${read}, truly ${truth}`);
});

test("a stretching player's reading is placed against its line only once its mean holds enough readings", () => {
  const reader = new PositionReader();
  // At rate 1 every reading is placed.
  reader.read(10, 0, 1, true);
  assert.equal(reader.placed, true);
  // At a new rate the mean starts again: the first readings are their own mean, and not placed.
  const rate = 1.003;
  const placed = [];
  for (let k = 0; k < POSITION.STRETCH_PLACED + 1; k++) {
    reader.read(10.02 + k * 0.015 * rate, 0.02 + k * 0.015, rate, true);
    placed.push(reader.placed);
  }
  assert.deepEqual(placed, [...Array(POSITION.STRETCH_PLACED - 1).fill(false), true, true]);
  // Again at the next change of rate.
  reader.read(10.1, 0.1, 1.01, true);
  assert.equal(reader.placed, false);
  // A paused player is read as it is.
  reader.read(10.1, 0.2, 1.01, false);
  assert.equal(reader.placed, true);
});

test("the ceiling: from a stepped player's first jump, never below where it is and within a reading's interval of it", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  const random = seeded(3);
  assert.equal(reader.ceiling(10), null, "nothing read yet");
  let seen = 0;
  for (let t = 10; t < 11; t += pollDelayMs(random) / 1000) {
    reader.read(player.reading(t), t, 1, true);
    const ceiling = reader.ceiling(t);
    if (ceiling === null) continue;
    seen += 1;
    assert.ok(ceiling >= player.truth(t) - 1e-9, `at ${t}: ${ceiling} below ${player.truth(t)}`);
    assert.ok(ceiling - player.truth(t) <= POSITION.POLL_EVERY + POSITION.POLL_JITTER + 1e-3, `at ${t}: ${ceiling - player.truth(t)} above`);
  }
  assert.ok(seen > 40);
  // Forgotten with the bounds (a pause, a seek), and once older than MAX_AGE.
  reader.read(5, 11.01, 1, false);
  assert.equal(reader.ceiling(11.01), null);
  const stale = new PositionReader();
  readAlong(stale, player, 10, 11);
  assert.equal(stale.ceiling(11 + POSITION.MAX_AGE + 0.05), null);
});

test("steps that reach the page late do not move a stepped estimate", () => {
  // Firefox hands its position to the page's main thread; a busy page takes a step or two late:
  // the value holds ~75 ms, then jumps one step (now 35-70 ms behind), and the next arrives 5 ms
  // later, back on the line (bench-sync, traced, late joiners loading).
  const step = 0.04;
  const truth = (t) => 100 + t;
  const k = 275; // the step at 11.0 s reaches the page late, and so does the one after
  const delivered = (j) => (j === k ? (k + 1.75) * step : j === k + 1 ? (k + 1.875) * step : j * step);
  const reading = (t) => {
    let j = Math.floor(t / step) + 1;
    while (j >= 0 && delivered(j) > t) j--;
    return truth(j * step);
  };
  const reader = new PositionReader();
  const random = seeded(5);
  const at = [];
  for (let t = 10; t < 12; t += pollDelayMs(random) / 1000) at.push(t);
  // And a reading just after each late delivery.
  at.push(delivered(k) + 0.001, delivered(k + 1) + 0.001);
  at.sort((a, b) => a - b);
  let worst = 0;
  for (const t of at) {
    const estimate = reader.read(reading(t), t, 1, true);
    if (t > 10.5) worst = Math.max(worst, Math.abs(estimate - truth(t)));
  }
  assert.ok(reader.stepped);
  // Taken at their word, the late steps put the estimate 64.5 ms behind.
  assert.ok(worst < 0.004, `within 4 ms throughout (${(worst * 1000).toFixed(1)} ms)`);
});

test("a stepped player that stalls less than STALE_BEHIND is read from its new line from its second step on", () => {
  // (A stall longer than that draws no new line while the old one lasts: below.)
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  // Stalled for 0.1 s: its line moves 100 ms.
  player.setRate(11, 0);
  player.setRate(11.1, 1);
  const random = seeded(9);
  let worstAfter = 0;
  for (let t = 11; t < 12; t += pollDelayMs(random) / 1000) {
    const estimate = reader.read(player.reading(t), t, player.rateAt(t) || 1, true);
    // Steps at 11.113, 11.153, ...: from the second one's reading on.
    if (t > 11.153 + POSITION.POLL_EVERY + POSITION.POLL_JITTER) worstAfter = Math.max(worstAfter, Math.abs(estimate - player.truth(t)));
  }
  assert.ok(worstAfter < 0.006, `within 6 ms from the second step after the stall (${(worstAfter * 1000).toFixed(1)} ms)`);
});

test("after a start, a first jump that came late is not held against the next", () => {
  // Stepped and playing from 10 s: the first step (at 10.04) reaches the page 35 ms late, the
  // next ones on time. The second jump is right, and is followed at once.
  const reader = new PositionReader();
  reader.stepped = true;
  const truth = (t) => 100 + Math.max(0, t - 10);
  const reading = (t) => {
    const k = Math.floor((t - 10) / 0.04);
    if (k < 1 || (k === 1 && t < 10.075)) return 100;
    return truth(10 + k * 0.04);
  };
  const random = seeded(11);
  const at = [10.076];
  for (let t = 10; t < 10.6; t += pollDelayMs(random) / 1000) at.push(t);
  let worst = 0;
  for (const t of at.sort((a, b) => a - b)) {
    const estimate = reader.read(reading(t), t, 1, true);
    if (t >= 10.08 + POSITION.POLL_EVERY + POSITION.POLL_JITTER) worst = Math.max(worst, Math.abs(estimate - truth(t)));
  }
  assert.ok(worst < 0.004, `within 4 ms from the second jump's reading on (${(worst * 1000).toFixed(1)} ms)`);
});

test("how long a stepped reading has held: from the first reading of its value, once seen moving", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  // Not stepped yet: nothing is held.
  assert.equal(reader.heldFor(10), 0);
  const random = seeded(13);
  let worst = 0;
  for (let t = 10; t < 11; t += pollDelayMs(random) / 1000) {
    reader.read(player.reading(t), t, 1, true);
    if (reader.stepped) worst = Math.max(worst, reader.heldFor(t));
  }
  assert.ok(reader.stepped);
  // Read every 12-18 ms, a value first read up to 18 ms after its step holds at most a step.
  assert.ok(worst > 0.02 && worst <= 0.04, `a playing player's value holds no longer than a step (${(worst * 1000).toFixed(1)} ms)`);
  // The page is held up 300 ms: the value it reads then is the one it read before.
  const before = player.reading(11);
  reader.read(before, 11, 1, true);
  reader.read(before, 11.3, 1, true);
  assert.ok(Math.abs(reader.heldFor(11.3) - (11.3 - reader.valueSince)) < 1e-9 && reader.heldFor(11.3) >= 0.28, `held ${reader.heldFor(11.3)}`);
  // Once it moves on, nothing is held.
  reader.read(player.reading(11.32), 11.32, 1, true);
  assert.equal(reader.heldFor(11.32), 0);
  // After a seek or a pause, a player that has not moved since holds nothing (its start holds
  // still for a while by itself).
  reader.read(before, 11.33, 1, false);
  reader.read(200, 11.4, 1, true);
  reader.read(200, 11.6, 1, true);
  assert.equal(reader.heldFor(11.6), 0);
});

test("a stale reading is waited out while it holds too long, for STALE_WAIT at most, and only while the video plays", () => {
  const { STALE_HELD, STALE_WAIT } = POSITION;
  // Fresh, or held no longer than a late step: decided on.
  assert.deepEqual(staleReading({ held: 0.04, playing: true, since: null, now: 10 }), { wait: false, since: null });
  assert.deepEqual(staleReading({ held: STALE_HELD, playing: true, since: null, now: 10 }), { wait: false, since: null });
  // Held longer while playing: waited out, from the first such reading on...
  let s = staleReading({ held: STALE_HELD + 0.01, playing: true, since: null, now: 10 });
  assert.deepEqual(s, { wait: true, since: 10 });
  s = staleReading({ held: 0.4, playing: true, since: s.since, now: 10 + STALE_WAIT });
  assert.deepEqual(s, { wait: true, since: 10 });
  // ...for STALE_WAIT at most: then decided on, however long it still holds.
  s = staleReading({ held: 0.7, playing: true, since: s.since, now: 10 + STALE_WAIT + 0.02 });
  assert.deepEqual(s, { wait: false, since: 10 });
  // Once it moves on, a later stale stretch is waited out again.
  s = staleReading({ held: 0, playing: true, since: s.since, now: 11 });
  assert.deepEqual(s, { wait: false, since: null });
  assert.equal(staleReading({ held: 0.3, playing: true, since: s.since, now: 12 }).wait, true);
  // Not while paused, seeking or waiting for data; nor on a reading that is not a number.
  assert.deepEqual(staleReading({ held: 0.3, playing: false, since: 10, now: 10.1 }), { wait: false, since: null });
  assert.equal(staleReading({ held: NaN, playing: true, since: null, now: 10 }).wait, false);
});

test("a stepped reading that held while the page ran, then jumped to where the video is, keeps the estimate on its line", () => {
  // The page read one value for 300 ms while the video played on (its position did not reach the
  // page: bench-sync's mixed room with joiners loading), then the value jumped more than MAX_STEP
  // to where the video was. That is no seek: before, the reader dropped its bounds there and gave
  // currentTime, up to a step behind, until new steps had pinned it again, and the controller
  // chased that (+2% for half a second, then 10-18 ms ahead).
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  const held = player.reading(11);
  const random = seeded(17);
  let worst = 0;
  let t = 11;
  for (; t < 11.32; t += pollDelayMs(random) / 1000) reader.read(held, t, 1, true);
  for (; t < 12; t += pollDelayMs(random) / 1000) {
    const estimate = reader.read(player.reading(t), t, 1, true);
    worst = Math.max(worst, Math.abs(estimate - player.truth(t)));
  }
  assert.ok(worst < 0.006, `within 6 ms from the jump on (${(worst * 1000).toFixed(1)} ms)`);
  // A jump of the same size elsewhere (a seek the page did not make) still starts again from it.
  const seeked = new PositionReader();
  readAlong(seeked, player, 10, 11);
  seeked.read(held, 11.2, 1, true);
  seeked.read(held + 1.5, 11.21, 1, true);
  assert.equal(seeked.bounds, null, "bounds dropped at a jump that lands off their line");
});

test("a reading after the page read nothing for a while counts as held that long until the value moves on", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  // Held up 0.25 s: the first reading after gives a value from before the hold, moved on.
  reader.read(player.reading(11.0) + 0.04, 11.25, 1, true);
  assert.ok(reader.heldFor(11.25) >= 0.25, `counted as held (${reader.heldFor(11.25)})`);
  // The same value at the next reading: still.
  reader.read(player.reading(11.0) + 0.04, 11.27, 1, true);
  assert.ok(reader.heldFor(11.27) >= 0.27);
  // It moves on: fresh.
  reader.read(player.reading(11.29), 11.29, 1, true);
  assert.equal(reader.heldFor(11.29), 0);
});

test("values handed to a page late, moved on as they come, are waited out, not taken for a new line", () => {
  // A page held up in slices (bench-sync's mixed room, joiners loading) gets its Firefox video's
  // values late: from 11.0 s the value it reads moves on slower than the video and falls behind,
  // 0.3 s by 11.34 s; then it moves on a step at a time on a line 0.3 s behind, and comes back at
  // 11.45 s. Before, two of those steps agreed, the bounds went to their line and the viewer
  // seeked ahead, although the video had played on throughout.
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  const lag = (t) => (t < 11 || t >= 11.45 ? 0 : Math.min(0.3, (t - 11) * 0.88));
  const random = seeded(23);
  let since = null;
  let worst = 0;
  let decidedBehind = 0;
  for (let t = 11; t < 12; t += pollDelayMs(random) / 1000) {
    const estimate = reader.read(player.reading(t - lag(t)), t, 1, true);
    const stale = staleReading({ held: reader.heldFor(t), behind: reader.behind(), playing: true, since, now: t });
    since = stale.since;
    // What the sync loop decides on: the estimate whenever it does not wait.
    if (!stale.wait) decidedBehind = Math.max(decidedBehind, player.truth(t) - estimate);
    if (t > 11.45 + 0.05) worst = Math.max(worst, Math.abs(estimate - player.truth(t)));
  }
  assert.ok(decidedBehind < 0.15, `never decided on a reading past the seek threshold (${(decidedBehind * 1000).toFixed(1)} ms behind)`);
  assert.ok(worst < 0.006, `within 6 ms once the values come back (${(worst * 1000).toFixed(1)} ms)`);
});

test("a late value after a gap is judged by its value, not by how far its own bounds reach", () => {
  // A page that reads a step's value 0.1 s after the reading before gets bounds of its own that
  // reach 0.1 s above it. Two late values, each close to 0.2 s behind but with such reach,
  // agreed with each other on a line 0.175 s behind, and the viewer seeked (bench-sync's mixed
  // room; its landing came out 659 ms ahead).
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  const last = reader.last.value;
  for (const t of [11.05, 11.1]) reader.read(last, t, 1, true);
  reader.read(last + 0.04, 11.2, 1, true);
  const estimate = reader.read(last + 0.08, 11.293, 1, true);
  assert.ok(Math.abs(estimate - player.truth(11.293)) < 0.006, `still on the video's line (${((estimate - player.truth(11.293)) * 1000).toFixed(1)} ms)`);
  assert.ok(reader.behind() > POSITION.STALE_BEHIND, `and the value is stale (${(reader.behind() * 1000).toFixed(0)} ms behind)`);
});

test("a stepped video that truly fell back further than MAX_STEP is waited out for STALE_WAIT, then decided on at its reading", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  readAlong(reader, player, 10, 11);
  // Stalled 0.35 s at HAVE_ENOUGH_DATA (no event says so): its line moves 350 ms.
  player.setRate(11, 0);
  player.setRate(11.35, 1);
  const random = seeded(29);
  let since = null;
  let firstWait = null;
  let lastWait = null;
  let worstDecided = 0;
  let worstLater = 0;
  for (let t = 11; t < 12.4; t += pollDelayMs(random) / 1000) {
    const estimate = reader.read(player.reading(t), t, player.rateAt(t) || 1, true);
    const stale = staleReading({ held: reader.heldFor(t), behind: reader.behind(), playing: true, since, now: t });
    since = stale.since;
    if (stale.wait) {
      firstWait ??= t;
      lastWait = t;
    } else if (firstWait !== null && t < 11 + POSITION.MAX_AGE) {
      // Decided on: the reading itself, up to a step behind (the sync loop seeks on it).
      worstDecided = Math.max(worstDecided, Math.abs(estimate - player.truth(t)));
    }
    if (t > 11 + POSITION.MAX_AGE + 0.1) worstLater = Math.max(worstLater, Math.abs(estimate - player.truth(t)));
  }
  assert.ok(firstWait !== null && lastWait - firstWait <= POSITION.STALE_WAIT + 0.02, `waited ${firstWait} to ${lastWait}: STALE_WAIT at most`);
  assert.ok(lastWait > 11.35, "waited past the stall");
  assert.ok(worstDecided > 0 && worstDecided < 0.045, `then decided on where the video is, within a step (${(worstDecided * 1000).toFixed(1)} ms)`);
  assert.ok(worstLater < 0.006, `and once the old line is gone, read within 6 ms of the new one (${(worstLater * 1000).toFixed(1)} ms)`);
});

test("how far a stepped reading lies behind the line its steps agreed on", () => {
  const player = steppedPlayer();
  const reader = new PositionReader();
  assert.equal(reader.behind(), 0);
  readAlong(reader, player, 10, 11);
  assert.ok(reader.behind() < 0.045, `at most a step behind on its line (${reader.behind()})`);
  // The value holds from 11.0 s (a step read at 10.973 s), then moves on one step at 11.35 s.
  const held = player.reading(11);
  for (const t of [11.1, 11.2, 11.3]) reader.read(held, t, 1, true);
  reader.read(held + 0.04, 11.35, 1, true);
  assert.equal(reader.heldFor(11.35), 0, "it moved on");
  const behind = reader.behind();
  assert.ok(behind > 0.3 && behind < 0.34, `${behind}`);
  assert.equal(staleReading({ held: 0, behind, playing: true, since: null, now: 11.35 }).wait, true);
  assert.equal(staleReading({ held: 0, behind: POSITION.STALE_BEHIND, playing: true, since: null, now: 11.35 }).wait, false);
  // The sync loop never seeks on a line the late values drew.
  assert.ok(POSITION.STALE_BEHIND <= SYNC.SEEK_THRESHOLD);
  // A player that is not stepped: nothing.
  const plain = new PositionReader();
  plain.read(5, 1, 1, true);
  plain.read(4.5, 1.01, 1, true);
  assert.equal(plain.behind(), 0);
});
