// The YouTube player, through the IFrame Player API (its script URL is configuration, so tests
// load a local stand-in with the same API). YouTube plays only a few fixed rates, so this player
// has no fine rate control: the sync controller corrects it by steps at those rates, and by
// seeking beyond its band.

let api = null;

function loadApi(url) {
  api ??= new Promise((resolve, reject) => {
    if (window.YT?.Player) return resolve(window.YT);
    const previous = window.onYouTubeIframeAPIReady;
    window.onYouTubeIframeAPIReady = () => {
      previous?.();
      resolve(window.YT);
    };
    const s = document.createElement("script");
    s.src = url;
    s.onerror = () => {
      api = null;
      reject(new Error("cannot load the YouTube player"));
    };
    document.head.append(s);
  });
  return api;
}

/** YT.PlayerState values. */
const STATE = { UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5 };

/** A seek is done when the player's state next changes (it buffers, then plays or stays paused);
 * one whose state never changes (a seek within what it holds may not buffer) is taken for done
 * after this long, rather than held as seeking, and the room held for it as not ready, for good. */
const SEEK_STATE_WAIT_MS = 2000;

/** What YouTube's player errors (its IFrame API's `onError` codes) tell the viewer (150 is 101). */
const YOUTUBE_ERRORS = Object.freeze({
  2: "YouTube refused this video's address",
  5: "YouTube's player failed to play this video",
  100: "YouTube cannot find this video: it was removed or made private",
  101: "YouTube will not play this video here: its owner does not allow it on other sites, or not for this viewer",
  153: "YouTube refused to play this video without the page's address",
});

/**
 * What one of YouTube's player errors (the IFrame API's `onError` codes) means for the viewer:
 * {message, retry}. Only its HTML5 player's own failure (5) may go away when loaded again; the
 * others are the video's (removed, private, not to be embedded: 100, 101, 150, which YouTube
 * also gives for one viewer's country or age) or the address's (2, 153), and stay.
 */
export function youtubeError(code) {
  // The code comes from YouTube's frame: only its own numbers are looked up.
  const key = code === 150 ? 101 : code;
  const message = Number.isInteger(key) && Object.hasOwn(YOUTUBE_ERRORS, key) ? YOUTUBE_ERRORS[key] : `YouTube player error ${Number.isInteger(code) ? code : "(unknown)"}`;
  return { code, message, retry: code === 5 };
}

/** What play() rejects with once the player said it cannot play its video. */
function failedError(failure) {
  const e = new Error(failure.message);
  e.name = "YouTubeError";
  return e;
}

/** What a <video>'s play() rejects with when pause() comes first. */
function abort() {
  const e = new Error("play() was interrupted by pause()");
  e.name = "AbortError";
  return e;
}

export class YouTubePlayer {
  constructor(container, config, onEvent = () => {}) {
    this.config = config;
    this.onEvent = onEvent;
    this.fineRate = false;
    this.player = null;
    this.state = STATE.UNSTARTED;
    this.seekingUntilState = false;
    /** When a seek is taken for done even if the player said nothing (Date.now() ms). */
    this.seekGivenUpAt = 0;
    this.wrap = document.createElement("div");
    this.wrap.className = "yt-wrap";
    container.append(this.wrap);
    this.lastDuration = NaN;
    /** Paused while it played, and not moved since: it resumes (SyncController.resumeLatency). */
    this.resumes = false;
    /** The play() awaiting the player's start: {resolve, reject, timer}, or null. */
    this.starting = null;
    /** Why the player cannot play its video (`youtubeError`), once it said so; null otherwise. */
    this.failure = null;
    /** The rate last asked of the player (`set rate`), or null. */
    this.askedRate = null;
  }

  get element() {
    return this.wrap;
  }

  async load(item) {
    const YT = await loadApi((await this.config).youtube_iframe_api_url);
    const start = Math.floor(item.start || 0);
    this.resumes = false;
    this.failure = null;
    if (this.player) {
      this.player.cueVideoById({ videoId: item.video_id, startSeconds: start });
      return;
    }
    const target = document.createElement("div");
    this.wrap.append(target);
    await new Promise((resolve, reject) => {
      this.player = new YT.Player(target, {
        videoId: item.video_id,
        width: "100%",
        height: "100%",
        playerVars: { autoplay: 0, controls: 0, disablekb: 1, playsinline: 1, rel: 0, start, enablejsapi: 1 },
        events: {
          onReady: () => resolve(),
          // Before it is ready the load fails; after (YouTube says it is ready, then that it
          // cannot play the video), the player has failed (`failed`).
          onError: (e) => {
            const failure = youtubeError(e.data);
            reject(new Error(failure.message));
            this.failed(failure);
          },
          onStateChange: (e) => this.stateChanged(e.data),
        },
      });
    });
  }

  /** The player's state changed (YT.PlayerState). */
  stateChanged(state) {
    this.state = state;
    if (state !== STATE.BUFFERING) this.seekingUntilState = false;
    if (state === STATE.PLAYING || state === STATE.BUFFERING) this.settleStart(null);
    if (state === STATE.ENDED) this.onEvent("ended");
    const d = this.duration;
    if (d && d !== this.lastDuration) {
      this.lastDuration = d;
      this.onEvent("durationchange", d);
    }
  }

  /** The player cannot play its video: a play() waiting for its start is told so at once (not
   * after 1.5 s, as an autoplay the browser blocked, whose prompt a click cannot answer), and the
   * page is told why, and whether loading it again may help. */
  failed(failure) {
    this.failure = failure;
    this.settleStart(failedError(failure));
    this.onEvent("error", failure.message, { retry: failure.retry });
  }

  /** Ends the play() awaiting the player's start: resolved (`error` null) or rejected. */
  settleStart(error) {
    const s = this.starting;
    this.starting = null;
    if (!s) return;
    clearTimeout(s.timer);
    if (error) s.reject(error);
    else s.resolve();
  }

  /** Resolves once playback starts (the player said it plays or buffers); rejects like a
   * <video>: as blocked (NotAllowedError) when it has not started within 1.5 s, as aborted
   * (AbortError) when pause() came first. The start is told by the player's state changes, not
   * polled: a pause soon after (the room's start held for, a user's pause) came between two
   * polls, and the start was taken for a blocked autoplay, which stops the page starting it
   * again until the viewer clicks. */
  play() {
    this.resumes = false;
    this.settleStart(abort());
    if (this.failure) return Promise.reject(failedError(this.failure));
    // Its API never came (the page loads it again, `load`): nothing that could start.
    if (!this.player) return Promise.reject(failedError({ message: "the YouTube player is not loaded" }));
    const started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const e = new Error("playback did not start");
        e.name = "NotAllowedError";
        this.settleStart(e);
      }, 1500);
      this.starting = { resolve, reject, timer };
    });
    this.player?.playVideo();
    // Playing already, or buffering (it plays once it has the data).
    if (this.state === STATE.PLAYING || this.state === STATE.BUFFERING) this.settleStart(null);
    return started;
  }
  pause() {
    if (!this.paused) this.resumes = true;
    this.settleStart(abort());
    this.player?.pauseVideo();
  }
  seek(seconds) {
    this.resumes = false;
    this.seekingUntilState = true;
    this.seekGivenUpAt = Date.now() + SEEK_STATE_WAIT_MS;
    this.player?.seekTo(Math.max(0, seconds), true);
  }
  get currentTime() {
    return this.player?.getCurrentTime?.() ?? 0;
  }
  get position() {
    return this.currentTime;
  }
  get duration() {
    const d = this.player?.getDuration?.();
    return d > 0 ? d : NaN;
  }
  get paused() {
    return this.state !== STATE.PLAYING && this.state !== STATE.BUFFERING;
  }
  get seeking() {
    return this.seekingUntilState && Date.now() < this.seekGivenUpAt;
  }
  get canPlay() {
    return this.state !== STATE.BUFFERING && this.state !== STATE.UNSTARTED && !this.seeking;
  }
  get rate() {
    return this.player?.getPlaybackRate?.() ?? 1;
  }
  /** The rates YouTube offers for this video (a step plays at one: sync.js, COARSE_STEP_BAND). */
  get rates() {
    return this.player?.getAvailablePlaybackRates?.() ?? [1];
  }
  /** The nearest rate YouTube offers. Asked again unless both the rate last asked for and the
   * one the player last delivered are it: a change of rate reaches the page's reading only with
   * the player's next delivery, and a step's end (sync.js, `coarseStep`) that came before the
   * step's start was delivered, judged by the delivered rate alone, was not asked for, and the
   * step ran on until the next decision. */
  set rate(r) {
    const rates = this.rates;
    const best = rates.reduce((a, b) => (Math.abs(b - r) < Math.abs(a - r) ? b : a), rates[0]);
    if (best === this.rate && best === this.askedRate) return;
    this.askedRate = best;
    this.player?.setPlaybackRate(best);
  }
  get volume() {
    return (this.player?.getVolume?.() ?? 100) / 100;
  }
  set volume(v) {
    this.player?.setVolume(Math.round(v * 100));
  }
  get muted() {
    return this.player?.isMuted?.() ?? false;
  }
  set muted(m) {
    if (m) this.player?.mute();
    else this.player?.unMute();
  }

  destroy() {
    this.settleStart(abort());
    this.player?.destroy();
    this.wrap.remove();
  }
}
