import test from "node:test";
import assert from "node:assert/strict";
import { RATE, heardAt, heardPositions } from "../../bench/heard.mjs";

/** White noise, repeatable. */
function noise(seconds, seed = 9) {
  let x = seed;
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < out.length; i++) {
    x = (x * 16807) % 2147483647;
    out[i] = (x / 2147483647 - 0.5) * 0.6;
  }
  return out;
}

test("what a recording plays is found in the video's sound to a fraction of a ms, across jumps, seeks and silence", () => {
  const video = noise(20);
  // The recording: 0.2 s of silence; the video from 3.000 s for 0.5 s; then from 3.520 s (a
  // 20 ms jump ahead, as time stretching makes) for 0.5 s; 0.1 s of silence (a pause); then
  // from 12.25 s (a seek) for 0.6 s.
  const parts = [[null, 0.2], [3.0, 0.5], [3.52, 0.5], [null, 0.1], [12.25, 0.6]];
  const recording = new Float32Array(Math.round(parts.reduce((a, [, d]) => a + d, 0) * RATE));
  const truth = [];
  let at = 0;
  for (const [from, seconds] of parts) {
    const n = Math.round(seconds * RATE);
    if (from !== null) recording.set(video.subarray(Math.round(from * RATE), Math.round(from * RATE) + n), at);
    truth.push({ at: at / RATE, to: (at + n) / RATE, from });
    at += n;
  }
  const heard = heardPositions(recording, video);
  let checked = 0;
  for (let t = 0; t < recording.length / RATE - 0.06; t += 0.005) {
    const part = truth.find((p) => t >= p.at && t < p.to);
    // Windows that straddle a jump or the silence's edge may go either way.
    if (!part || part.from === null || t - part.at < 0.011 || part.to - t < 0.011) continue;
    const found = heardAt(heard, t);
    assert.ok(found !== null, `nothing heard at ${t.toFixed(3)} s`);
    assert.ok(Math.abs(found - (part.from + (t - part.at))) < 0.0001, `at ${t.toFixed(3)} s: ${found} against ${part.from + (t - part.at)}`);
    checked += 1;
  }
  assert.ok(checked > 250, `${checked} instants checked`);
  // Silence is not heard as anything.
  assert.equal(heardAt(heard, 0.1), null);
  assert.equal(heardAt(heard, 1.25), null);
});
