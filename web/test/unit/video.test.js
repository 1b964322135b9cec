// player/video.js: when a <video> can play (`canPlay`, taken leniently where readyState understates
// it), and the rate a Gecko player is given for 1 (STRETCHED_ONE): it must keep Gecko's
// time-stretcher on (its sound's sample rate over the rate, rounded down to whole frames, is not
// the sample rate), and Gecko's clock, which runs at the sample rate over that whole number, must
// keep with the stretcher's tempo (the rate itself), or the sound would drift off the picture.

import test from "node:test";
import assert from "node:assert/strict";
import { HOLDS_AHEAD_S, STRETCHED_ONE, canPlay, elementRate, playerRate } from "../../public/js/player/video.js";

/** Gecko's AudioClock: the output rate is the input rate over the playback rate, truncated. */
const geckoOutRate = (inRate, rate) => Math.trunc(inRate / rate);

test("the rate given for 1 keeps Gecko's stretcher on at every usual sample rate", () => {
  for (const inRate of [44_100, 48_000, 88_200, 96_000, 192_000]) {
    assert.notEqual(geckoOutRate(inRate, STRETCHED_ONE), inRate, `${inRate} Hz`);
  }
  // ...which exactly 1 does not (it drops what the stretcher holds on its way back there).
  assert.equal(geckoOutRate(48_000, 1), 48_000);
});

test("Gecko's clock keeps with the stretcher's tempo within 2 ppm, exactly at 48 and 96 kHz", () => {
  for (const [inRate, ppm] of [[44_100, 2], [48_000, 0.01], [88_200, 2], [96_000, 0.01]]) {
    const clock = inRate / geckoOutRate(inRate, STRETCHED_ONE);
    assert.ok(Math.abs(clock / STRETCHED_ONE - 1) * 1e6 < ppm, `${inRate} Hz: clock ${clock}, tempo ${STRETCHED_ONE}`);
  }
  // The picture runs about 21 ppm fast: the controller corrects that as any drift.
  assert.ok(Math.abs((STRETCHED_ONE - 1) * 1e6 - 20.8) < 0.1);
});

test("only 1 is given another rate, and only to a player that keeps stretching", () => {
  assert.equal(elementRate(1, true), STRETCHED_ONE);
  assert.equal(elementRate(1, false), 1);
  for (const r of [0.98, 1.02, 1.25, 0.5]) assert.equal(elementRate(r, true), r);
  for (const r of [1, 0.98, 1.02, 1.25]) assert.equal(playerRate(elementRate(r, true)), r);
  assert.equal(playerRate(1), 1);
});

/** A stand-in <video>: its readyState, whether it seeks, where it is, its duration and its
 * buffered stretches ([start, end] pairs). */
const fakeVideo = ({ readyState, seeking = false, currentTime = 10, duration = 120, buffered = [] }) => ({
  readyState,
  seeking,
  currentTime,
  duration,
  buffered: { length: buffered.length, start: (i) => buffered[i][0], end: (i) => buffered[i][1] },
});

test("a video can play from HAVE_FUTURE_DATA, not while it seeks", () => {
  assert.equal(canPlay(fakeVideo({ readyState: 3 })), true);
  assert.equal(canPlay(fakeVideo({ readyState: 4 })), true);
  assert.equal(canPlay(fakeVideo({ readyState: 4, seeking: true })), false);
  // HAVE_CURRENT_DATA with the whole file held: not where readyState is taken at its word.
  assert.equal(canPlay(fakeVideo({ readyState: 2, buffered: [[0, 120]] })), false);
});

test("where readyState understates (WebKit), HAVE_CURRENT_DATA can play when it holds enough ahead", () => {
  const lenient = true;
  // WebKitGTK after a seek while paused: 2, with the whole file buffered.
  assert.equal(canPlay(fakeVideo({ readyState: 2, buffered: [[0, 120]] }), lenient), true);
  assert.equal(canPlay(fakeVideo({ readyState: 2, buffered: [[0, 10 + HOLDS_AHEAD_S]] }), lenient), true);
  // Not enough ahead, or nothing where it is (what is held lies elsewhere), or still seeking.
  assert.equal(canPlay(fakeVideo({ readyState: 2, buffered: [[0, 10.2]] }), lenient), false);
  assert.equal(canPlay(fakeVideo({ readyState: 2, buffered: [[20, 120]] }), lenient), false);
  assert.equal(canPlay(fakeVideo({ readyState: 2, seeking: true, buffered: [[0, 120]] }), lenient), false);
  // Near its end, what is left is enough.
  assert.equal(canPlay(fakeVideo({ readyState: 2, currentTime: 119.8, buffered: [[100, 120]] }), lenient), true);
  // HAVE_METADATA is never enough.
  assert.equal(canPlay(fakeVideo({ readyState: 1, buffered: [[0, 120]] }), lenient), false);
});
