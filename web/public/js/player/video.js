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

/** Whether `video` has enough data to play from where it is (HAVE_FUTURE_DATA), not seeking. */
export function canPlay(video) {
  return video.readyState >= 3 && !video.seeking;
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

/** Whether this browser's <video> keeps its position when its rate leaves 1 (Gecko; Chromium's
 * falls back about 20 ms as it starts stretching time: sync.js, DEAD_BAND), so a rest a few ms off
 * costs nothing to correct (sync.js, `setbackFree`). */
export function changesRateFreely() {
  return gecko();
}

/** Told by a media API only Gecko has. */
const gecko = () => typeof HTMLMediaElement !== "undefined" && "mozCaptureStream" in HTMLMediaElement.prototype;
