// The HTML5 <video> player: MP4 and WebM natively; HLS natively where the browser can (Chromium,
// Safari), otherwise through hls.js, loaded on first need from the configured URL (with its
// Subresource Integrity hash).

import { PositionReader, pollDelayMs } from "../position.js";
import * as timers from "../timers.js";
import { bufferedEnd, canPlay, dropsStretchedSound, elementRate, isHls, playerRate, understatesReadiness, videoElement } from "./video.js";

let hlsScript = null;

/** A playing video whose reading moved on this recently (ms) plays, whatever its readyState says
 * (`movesWithCurrentData`): the page reads it every 12-18 ms while it plays, and at every tick
 * (100 ms). */
const MOVING_WINDOW_MS = 250;

function loadHlsJs(url, integrity) {
  hlsScript ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = url;
    if (integrity) {
      s.integrity = integrity;
      s.crossOrigin = "anonymous";
    }
    s.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load")));
    s.onerror = () => reject(new Error(`cannot load hls.js from ${url}`));
    document.head.append(s);
  });
  return hlsScript;
}

export class Html5Player {
  /** `adopted`: a <video> already fetching its item (early.js), taken as this player's own; its
   * first `load` of that item keeps what it fetched. */
  constructor(container, config, onEvent = () => {}, adopted = null) {
    this.config = config;
    this.onEvent = onEvent;
    this.fineRate = true;
    /** Set to 1, the element is given `STRETCHED_ONE` instead (video.js, `dropsStretchedSound`). */
    this.keepStretching = dropsStretchedSound();
    /** Its readyState may say HAVE_CURRENT_DATA where it can play (video.js, `canPlay`). */
    this.lenientReadiness = understatesReadiness();
    this.hls = null;
    const video = adopted ?? videoElement();
    this.adopted = Boolean(adopted);
    video.addEventListener("durationchange", () => onEvent("durationchange", video.duration));
    video.addEventListener("ended", () => onEvent("ended"));
    // The sync loop acts at once when a seek completes, and when the video can play (a late
    // joiner's waits for that to land), not at its next tick.
    video.addEventListener("seeked", () => onEvent("seeked"));
    video.addEventListener("canplay", () => onEvent("canplay"));
    // A file that failed to load may load on another try (the page tries again: `retry`).
    video.addEventListener("error", () => onEvent("error", this.loadError, { retry: true }));
    container.append(video);
    this.video = video;
    /** Paused while it played, and not moved since: it resumes (SyncController.resumeLatency). */
    this.resumes = false;
    /** Whether the item loaded has sound, once known (`soundless`); null before. */
    this.sound = null;
    // Where the video really is (position.js): Firefox's currentTime moves in ~40 ms steps, so
    // while it plays it is read every 12-18 ms (a random delay, so that the readings fall at
    // every phase of the steps), and the steps' moments pin it down; Chromium's readings scatter
    // by a few ms at rates other than 1, and are averaged. A timer, not animation
    // frames: a pending frame callback asks the browser for a rendering update every frame.
    this.reader = new PositionReader();
    this.lastRaw = NaN;
    /** The last reading while playing (`noteMoving`), null after a pause or a seek, and when the
     * reading was last seen moving on (performance.now() ms). */
    this.lastPlayingValue = null;
    this.movedAt = -Infinity;
    this.timer = null;
    /** Called with `position` and `rawPosition` after each reading between ticks (room.js: a
     * correction lets go at a good one). Not read again: Chromium may give one currentTime per task,
     * and a second reading, equal, would look to the reader like a player holding still. */
    this.onReading = () => {};
    const poll = () => {
      this.timer = null;
      const position = this.read();
      this.onReading(position, this.lastRaw);
      this.poll();
    };
    this.poll = () => {
      if (this.timer === null && !video.paused && this.reader.worthPolling(this.rate)) this.timer = timers.later(poll, pollDelayMs());
    };
    video.addEventListener("playing", this.poll);
  }

  get element() {
    return this.video;
  }

  /** Loads `item` to start at `from` (s): the browser fetches from there, not from the start
   * (a late joiner to a long video fetched its first seconds, then seeked and fetched again). */
  async load(item, from = 0) {
    this.hls?.destroy();
    this.hls = null;
    const v = this.video;
    // (One that failed before it was adopted fetches again, its error then reported.)
    const fetching = this.adopted && !v.error && v.src === new URL(item.url, location.href).href;
    this.adopted = false;
    this.resumes = false;
    this.sound = null;
    this.reader.reset();
    this.stoppedMoving();
    if (fetching) {
      // Adopted with this item already on its way, from where the room was (early.js).
    } else if (isHls(item) && !v.canPlayType("application/vnd.apple.mpegurl")) {
      const config = await this.config;
      const Hls = await loadHlsJs(config.hls_js_url, config.hls_js_integrity);
      this.hls = new Hls({ startPosition: from > 0 ? from : -1 });
      this.hls.loadSource(item.url);
      this.hls.attachMedia(v);
    } else {
      v.src = item.url;
      // Set before any data is known, this is where playback starts once it is (the default
      // playback start position).
      if (from > 0) v.currentTime = from;
    }
    await new Promise((resolve) => {
      if (v.readyState >= 1) return resolve();
      const done = () => {
        v.removeEventListener("loadedmetadata", done);
        v.removeEventListener("error", done);
        resolve();
      };
      v.addEventListener("loadedmetadata", done);
      v.addEventListener("error", done);
    });
  }

  play() {
    this.resumes = false;
    return this.video.play();
  }
  pause() {
    if (!this.video.paused) this.resumes = true;
    this.video.pause();
    this.stoppedMoving();
  }
  seek(seconds) {
    this.resumes = false;
    this.reader.reset();
    this.stoppedMoving();
    this.video.currentTime = Math.max(0, seconds);
  }
  get currentTime() {
    return this.video.currentTime;
  }
  /** Where the video is now (s): currentTime, or where its steps put it (position.js). */
  get position() {
    return this.read();
  }
  read() {
    const v = this.video;
    const value = v.currentTime;
    this.noteMoving(value);
    const moving = !v.paused && this.canPlay;
    const position = this.reader.read(value, performance.now() / 1000, this.rate, moving);
    // null: a reading that cannot be told from its line yet (position.js, `placed`). A soundless
    // video's readings do not scatter at any rate: each is its line.
    this.lastRaw = this.reader.stepped || this.soundless ? position : this.reader.placed ? value : null;
    return position;
  }
  /** Keeps when the reading `value` was last seen moving on while the video plays (not across a
   * pause or a seek). */
  noteMoving(value) {
    const v = this.video;
    if (v.paused || v.seeking) {
      this.stoppedMoving();
      return;
    }
    if (this.lastPlayingValue !== null && value > this.lastPlayingValue) this.movedAt = performance.now();
    this.lastPlayingValue = value;
  }
  /** Whether its video is known to have no sound: once able to play (Chromium's reports that
   * once every track has its first samples decoded, muted or not), a picture decoded and no
   * sound, by the counts Chromium (and WebKit) keep for the item loaded; it stays so through
   * seeks and stalls, until any sound is decoded. Such a player's clock is the page's own:
   * Chromium then stretches no time at other rates, so a change of rate sets it back nothing and
   * its readings do not scatter (web/bench/rate.mjs SILENT=1; sync.js, `noteSound`). False
   * where the browser keeps no such counts (Firefox). */
  get soundless() {
    const v = this.video;
    if (this.sound !== true && v.readyState >= 3 && v.webkitVideoDecodedByteCount > 0) this.sound = v.webkitAudioDecodedByteCount > 0;
    return this.sound === false;
  }
  /** Forgets that the video was moving: after a pause or a seek it has to be seen moving again. */
  stoppedMoving() {
    this.lastPlayingValue = null;
    this.movedAt = -Infinity;
  }
  /** Whether the video plays on at HAVE_CURRENT_DATA: its reading moved on within
   * MOVING_WINDOW_MS while playing. WebKitGTK's <video> (GStreamer) plays on at readyState 2
   * after a seek or a change of rate, with the whole file held (where the spec's element plays
   * only from HAVE_FUTURE_DATA, and Chromium's and Firefox's do): taken for a player waiting for
   * data, it was never steered and was reported not ready, and a viewer rested 51-124 ms behind
   * the room with its page saying "in sync" (web/test/e2e/webkit.js, bench/RESULTS.md). Only where the
   * browser's readyState understates (`lenientReadiness`): Chromium's says 2 when its decoding
   * falls behind on a busy page, and its last readings before that must not pass for moving. */
  movesWithCurrentData() {
    const v = this.video;
    return this.lenientReadiness && !v.paused && !v.seeking && v.readyState >= 2 && performance.now() - this.movedAt <= MOVING_WINDOW_MS;
  }
  /** How long (s) the last reading's value has held, where the video moves in steps and was seen
   * moving since it last started (position.js, `heldFor`); 0 otherwise. */
  get readingHeld() {
    return this.reader.heldFor(performance.now() / 1000);
  }
  /** How far (s) the last reading's value lies behind where the video's steps put it
   * (position.js, `behind`): a stepped reading handed to the page late; 0 otherwise. */
  get readingBehind() {
    return this.reader.behind();
  }
  /** The furthest the video can be now by its readings' jumps (position.js, `ceiling`), or null. */
  get positionCeiling() {
    return this.reader.ceiling(performance.now() / 1000);
  }
  /** The reading behind the last `position` as it was, not averaged (where a stepped player's
   * steps put it): where a Chromium player rests after going back to rate 1 follows it. null when
   * it cannot be told from its line yet (a stretching player's first readings at a new rate). */
  get rawPosition() {
    return this.lastRaw;
  }
  get duration() {
    return this.video.duration;
  }
  /** Why the video failed to load, or null (the page loads it again: room.js). */
  get loadError() {
    const e = this.video.error;
    return e ? e.message || "cannot play this video" : null;
  }

  get paused() {
    return this.video.paused;
  }
  get seeking() {
    return this.video.seeking;
  }
  /** The end of the buffered stretch that holds `seconds` (s), or null when it is not buffered:
   * a seek there completes without fetching (sync.js times such a landing shorter). */
  bufferedEnd(seconds) {
    return bufferedEnd(this.video, seconds);
  }
  /** Enough data to play from here (HAVE_FUTURE_DATA, or as `lenientReadiness` allows), or
   * playing on with what it has (`movesWithCurrentData`). */
  get canPlay() {
    return canPlay(this.video, this.lenientReadiness) || this.movesWithCurrentData();
  }
  get rate() {
    return playerRate(this.video.playbackRate);
  }
  set rate(r) {
    const element = elementRate(r, this.keepStretching);
    if (this.video.playbackRate === element) return;
    this.video.playbackRate = element;
    // Readings at rates other than 1 are averaged (position.js): read between ticks again.
    this.poll();
  }
  get volume() {
    return this.video.volume;
  }
  set volume(v) {
    this.video.volume = v;
  }
  get muted() {
    return this.video.muted;
  }
  set muted(m) {
    this.video.muted = m;
  }

  destroy() {
    timers.cancel(this.timer);
    this.timer = null;
    this.video.removeEventListener("playing", this.poll);
    this.hls?.destroy();
    this.video.removeAttribute("src");
    this.video.load();
    this.video.remove();
  }
}
