// The HTML5 player's <video> element, made in one place: early.js makes one to start fetching the
// room's video while the player's own modules load, and html5.js adopts it (or makes its own).
// No imports: early.js stays small, to open the room's socket as soon as it can.

/** A <video> element set up as the player wants it: inline, fetching ahead, pitch kept. */
export function videoElement() {
  const video = document.createElement("video");
  video.playsInline = true;
  video.preload = "auto";
  video.preservesPitch = true;
  video.className = "video";
  return video;
}

/** The end of `video`'s buffered stretch holding `seconds`, or null when none holds it. */
export function bufferedEnd(video, seconds) {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= seconds && seconds < b.end(i)) return b.end(i);
  }
  return null;
}

/** How much a <video> that says HAVE_CURRENT_DATA must hold ahead of where it is (s), or to its
 * end, to be taken as able to play where its readyState understates that
 * (`understatesReadiness`). */
export const HOLDS_AHEAD_S = 0.5;

/** Whether `video` has enough data to play from where it is (HAVE_FUTURE_DATA), not seeking.
 * `lenient` (a browser whose readyState understates it: `understatesReadiness`): or it says
 * HAVE_CURRENT_DATA and holds HOLDS_AHEAD_S, or up to its end, from where it is. */
export function canPlay(video, lenient = false) {
  if (video.seeking) return false;
  if (video.readyState >= 3) return true;
  if (!lenient || video.readyState < 2) return false;
  const end = bufferedEnd(video, video.currentTime);
  return end !== null && (end - video.currentTime >= HOLDS_AHEAD_S || end >= video.duration - 0.05);
}

/** Whether this browser's <video> may say HAVE_CURRENT_DATA (2) where it can play (WebKit's).
 * WebKitGTK's (GStreamer) stays at 2 after a seek while paused, with the whole file buffered, and
 * plays on at 2 once started again, and after a change of rate (its `playing` event and play()'s
 * promise never come); taken for a player waiting for data, a landing waited its longest each
 * time and the page told the room it was not ready, so a room of four such viewers held and landed again every second or so
 * (web/test/e2e/webkit.js; bench/RESULTS.md). Chromium's says 2 when its decoding falls behind
 * with the data there (a busy page): it does not move then, and is not taken as able to play. */
export function understatesReadiness() {
  return webkit();
}

/** Whether every change of this browser's <video> rate costs it some of its position, between
 * any two rates (WebKit on Linux: WebKitGTK and WPE, whose media is GStreamer's). WebKitGTK 2.50's
 * held its position 6-22 ms at each change on an idle page (twenty changes 0.1 s apart cost
 * 240 ms), 20-47 ms with four viewers on two cores, and then played at the exact rate: its
 * GStreamer player makes every change of rate a flushing seek to where it plays
 * (MediaPlayerPrivateGStreamer::updatePlaybackRate), which a seek's time costs. Chromium's
 * costs only on leaving 1, Firefox's none. The controller then changes a correction's rate
 * seldom (sync.js, `rateChangeCost`). Not Safari's (AVFoundation), which is not measured here. */
export function changesRateAtACost() {
  return webkit() && /Linux/.test(navigator.userAgent) && !/Android/.test(navigator.userAgent);
}

/** Whether `item` is an HLS stream (played natively where the browser can, else by hls.js). */
export function isHls(item) {
  return item.format === "hls" || /\.m3u8(\?|$)/i.test(item.url);
}

/** Whether this browser's <video> starts moving at once after play() (Gecko: 3-20 ms, where
 * Chromium's takes ~0.1 s). A first start is timed by it until one is measured (sync.js,
 * INITIAL_QUICK_START_LATENCY). */
export function startsAtOnce() {
  return gecko();
}

/** Whether this browser's <video>, started right after a seek on a busy page, may not move for
 * 100-200 ms (Gecko; given 0.15 s more, it moves after 3-20 ms), so that a landing leads that
 * much more (sync.js, `seekPreroll`). */
export function startsSlowAfterSeek() {
  return gecko();
}

/** Whether this browser's <video> keeps its position when its rate leaves 1 (Gecko; Chromium's
 * falls back about 20 ms as it starts stretching time: sync.js, DEAD_BAND), so a rest a few ms off
 * costs nothing to correct (sync.js, `setbackFree`). */
export function changesRateFreely() {
  return gecko();
}

/** Whether this browser's <video> drops the sound its time-stretcher holds when its rate goes
 * back to exactly 1 (Gecko: its AudioStream leaves the stretcher's unprocessed samples behind, a
 * TODO in its source, while its clock and picture carry on), so that the sound then plays
 * 20-30 ms ahead of its picture and of currentTime, more at every return, until the next seek:
 * bench/RESULTS.md. Such a player is never set back to 1 but to `STRETCHED_ONE`. */
export function dropsStretchedSound() {
  return gecko();
}

/** The rate such a player is given for 1: the least above it that keeps its stretcher on. Gecko
 * stretches whenever its sound's sample rate over the rate, rounded down to whole frames, is not
 * the sample rate itself, and its clock runs at the sample rate over that whole number: for 48 and
 * 96 kHz sound, 48000/47999 and 96000/95998, this very rate, so that its clock and its sound keep
 * together; for 44.1 and 88.2 kHz within 1.9 ppm (7 ms an hour, until the next seek). Its
 * picture runs 21 ppm fast (1.25 ms a minute), which the controller corrects as any drift. */
export const STRETCHED_ONE = 48000 / 47999.0001;

/** The rate the element is given for the rate `rate` a player is set to: `STRETCHED_ONE` for 1
 * when `keepStretching`. */
export const elementRate = (rate, keepStretching) => (keepStretching && rate === 1 ? STRETCHED_ONE : rate);

/** The rate a player was set to, from its element's (`elementRate`'s inverse). */
export const playerRate = (rate) => (rate === STRETCHED_ONE ? 1 : rate);

/** Told by a media API only Gecko has. */
const gecko = () => typeof HTMLMediaElement !== "undefined" && "mozCaptureStream" in HTMLMediaElement.prototype;
/** WebKit: Safari, every browser on iOS, WebKitGTK (Chromium's and Edge's user agents name
 * AppleWebKit too, and Chrome). */
const webkit = () => typeof navigator !== "undefined" && /AppleWebKit\//.test(navigator.userAgent) && !/Chrome\//.test(navigator.userAgent);
