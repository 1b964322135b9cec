import { test } from "node:test";
import assert from "node:assert/strict";

// youtube.js needs only a container to append its wrapper to.
globalThis.document ??= { createElement: () => ({ remove() {} }) };
const { YouTubePlayer, youtubeError } = await import("../../public/js/player/youtube.js");

const PLAYING = 1;
const PAUSED = 2;
const BUFFERING = 3;

/** A YouTubePlayer over a stand-in for YT.Player that records the calls made to it. */
function player() {
  const p = new YouTubePlayer({ append() {} }, Promise.resolve({}));
  p.calls = [];
  p.player = { playVideo: () => p.calls.push("play"), pauseVideo: () => p.calls.push("pause"), destroy() {} };
  p.stateChanged(PAUSED);
  return p;
}

const outcome = (promise) => promise.then(() => "started", (e) => e.name);

test("a YouTube play() resolves when the player says it plays or buffers", async () => {
  const p = player();
  const playing = p.play();
  assert.deepEqual(p.calls, ["play"]);
  p.stateChanged(PLAYING);
  assert.equal(await outcome(playing), "started");
  const buffering = player();
  const started = buffering.play();
  buffering.stateChanged(BUFFERING);
  assert.equal(await outcome(started), "started");
  // A player that says so at once, within playVideo().
  const at = player();
  at.player.playVideo = () => at.stateChanged(PLAYING);
  assert.equal(await outcome(at.play()), "started");
});

test("a YouTube play() while the player buffers (a seek while paused) still tells it to play", async () => {
  const p = player();
  p.stateChanged(BUFFERING);
  assert.equal(await outcome(p.play()), "started");
  assert.deepEqual(p.calls, ["play"]);
});

test("a pause soon after a YouTube play() aborts it, and is not taken for a blocked autoplay", async () => {
  // The page pauses a player that started ahead of the room's start when it is to wait longer
  // (or a viewer pauses at once): the player played and paused between the old 100 ms polls,
  // and after 1.5 s the play was reported blocked, so the page never started it again.
  const p = player();
  const playing = p.play();
  p.stateChanged(PLAYING);
  p.pause();
  p.stateChanged(PAUSED);
  assert.equal(await outcome(playing), "started", "it did start");
  const q = player();
  const interrupted = q.play();
  q.pause();
  assert.equal(await outcome(interrupted), "AbortError");
});

test("a YouTube play() that never starts is reported blocked after 1.5 s", { timeout: 5000 }, async () => {
  const p = player();
  const t0 = Date.now();
  assert.equal(await outcome(p.play()), "NotAllowedError");
  assert.ok(Date.now() - t0 >= 1400);
});

test("a YouTube seek is done at the player's next state change, or taken for done after 2 s without one", () => {
  const p = player();
  p.player.seekTo = () => p.calls.push("seek");
  p.stateChanged(PLAYING);
  p.seek(30);
  assert.equal(p.seeking, true);
  assert.equal(p.canPlay, false);
  p.stateChanged(BUFFERING);
  assert.equal(p.seeking, true, "still seeking while it buffers");
  p.stateChanged(PLAYING);
  assert.deepEqual([p.seeking, p.canPlay], [false, true]);
  // A seek the player says nothing about: not seeking, and able to play, 2 s on.
  const realNow = Date.now;
  try {
    p.seek(60);
    assert.equal(p.seeking, true);
    const t = realNow();
    Date.now = () => t + 2001;
    assert.deepEqual([p.seeking, p.canPlay], [false, true]);
  } finally {
    Date.now = realNow;
  }
});

test("a YouTube player that cannot play its video says why at once, not as a blocked autoplay", async () => {
  // YouTube says the player is ready, then that it cannot play the video (here: not for this
  // viewer). A play() waiting for the start was rejected after 1.5 s as blocked, and the page
  // showed its "click to play" prompt, which no click could answer.
  const p = player();
  const events = [];
  p.onEvent = (name, detail, how) => events.push([name, detail, how]);
  const playing = p.play();
  p.failed(youtubeError(150));
  assert.equal(await outcome(playing), "YouTubeError");
  assert.deepEqual(events, [["error", youtubeError(150).message, { retry: false }]]);
  assert.match(p.failure.message, /does not allow it on other sites/);
  // Later plays fail at once too, without calling the player.
  const calls = p.calls.length;
  assert.equal(await outcome(p.play()), "YouTubeError");
  assert.equal(p.calls.length, calls);
});

test("a YouTube player whose API never came fails play() at once, not as a blocked autoplay", { timeout: 5000 }, async () => {
  // Its load rejected (the page loads it again after a wait); meanwhile the page may still tell
  // it to play. Before, that play() was rejected after 1.5 s as blocked: the "click to play" prompt.
  const p = new YouTubePlayer({ append() {} }, Promise.resolve({}));
  assert.equal(await outcome(p.play()), "YouTubeError");
  assert.equal(p.canPlay, false, "and it is not taken for ready");
});

test("YouTube's error codes: what each tells the viewer, and only its HTML5 player's failure is tried again", () => {
  assert.deepEqual([2, 5, 100, 101, 150, 153].map((c) => youtubeError(c).retry), [false, true, false, false, false, false]);
  assert.match(youtubeError(100).message, /removed or made private/);
  assert.equal(youtubeError(150).message, youtubeError(101).message);
  assert.equal(youtubeError(42).message, "YouTube player error 42");
  // Whatever the frame sends, a message of words, never a property of the table.
  for (const odd of ["__proto__", "constructor", "101", null, { x: 1 }]) assert.equal(youtubeError(odd).message, "YouTube player error (unknown)");
  for (const c of [2, 5, 100, 101, 150, 153]) assert.doesNotMatch(youtubeError(c).message, /error \d/, `code ${c} is told in words`);
});

test("a YouTube step's end is asked for even before the player delivered its start", () => {
  // The player delivers a change of rate later (a message from its frame): until then its
  // getPlaybackRate() says the old one.
  const p = player();
  let delivered = 1;
  const asked = [];
  Object.assign(p.player, {
    getAvailablePlaybackRates: () => [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2],
    getPlaybackRate: () => delivered,
    setPlaybackRate: (r) => asked.push(r),
  });
  p.rate = 1;
  assert.deepEqual(asked, [1], "the first rate is asked for");
  p.rate = 1.25;
  p.rate = 1;
  assert.deepEqual(asked, [1, 1.25, 1], "the step and its end, though 1.25 was never delivered");
  // Once asked for and delivered, not asked again; the nearest rate offered is asked for.
  p.rate = 1;
  assert.deepEqual(asked, [1, 1.25, 1]);
  delivered = 1.25;
  p.rate = 1.3;
  p.rate = 1.25;
  assert.deepEqual(asked, [1, 1.25, 1, 1.25]);
});
