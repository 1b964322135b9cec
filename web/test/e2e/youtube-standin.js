// A stand-in for the YouTube IFrame Player API, for tests that cannot reach YouTube: the same
// `YT.Player` interface (the calls the Lockstep client makes), played by a <video> element that
// loads `<media>/<videoId>.mp4`, where <media> comes from this script's `?media=` parameter.
// Its position is read as YouTube's own API reads it: the player in YouTube's iframe delivers its
// `currentTime` to the page (`infoDelivery`, stamped `currentTimeLastUpdated_` with its
// `Date.now()`) at each state change and at each progress event while playing, and the page's
// `getCurrentTime()` is the last delivered time moved on by the time since at the delivered rate
// (at most 1 s), while the delivered state is playing. Progress is delivered here at each
// `timeupdate` (every 250 ms in Chromium). So a reading runs on from a start or a seek at once,
// before the video moves, until the next delivery says where it is.
// A page whose `window.ytStandinRefuses` is an error code (set by a test before the script runs)
// is refused every video, as YouTube refuses a viewer a video not for their country or age: the
// player says it is ready, then calls onError with that code, and does nothing more (its state
// stays unstarted, whatever it is told).
// A page whose `window.ytStandinSeekPast` is a number of seconds lands each seekTo that much past
// the point asked, as YouTube's player lands a seek on a keyframe rather than on the point.
(() => {
  const me = document.currentScript?.src ?? "";
  const media = new URL(me, location.href).searchParams.get("media") ?? "/media";
  const PlayerState = { UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5 };
  const RATES = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

  class Player {
    constructor(target, options) {
      const el = typeof target === "string" ? document.getElementById(target) : target;
      this.video = document.createElement("video");
      this.video.className = "video yt-standin";
      this.video.playsInline = true;
      this.video.preload = "auto";
      this.events = options.events ?? {};
      this.state = PlayerState.UNSTARTED;
      /** What the player last delivered: {playerState, currentTime, currentTimeLastUpdated_, playbackRate}. */
      this.playerInfo = { playerState: this.state, currentTime: 0, currentTimeLastUpdated_: Date.now() / 1000, playbackRate: 1 };
      el.replaceWith(this.video);
      const set = (s) => {
        if (this.state === s) return;
        this.state = s;
        this.deliver();
        this.events.onStateChange?.({ target: this, data: s });
      };
      this.video.addEventListener("timeupdate", () => this.deliver());
      // A change of rate delivers the rate alone.
      this.video.addEventListener("ratechange", () => (this.playerInfo = { ...this.playerInfo, playbackRate: this.video.playbackRate }));
      this.video.addEventListener("playing", () => set(PlayerState.PLAYING));
      this.video.addEventListener("pause", () => set(this.video.ended ? PlayerState.ENDED : PlayerState.PAUSED));
      this.video.addEventListener("waiting", () => set(PlayerState.BUFFERING));
      this.video.addEventListener("seeking", () => set(PlayerState.BUFFERING));
      this.video.addEventListener("seeked", () => set(this.video.paused ? PlayerState.PAUSED : PlayerState.PLAYING));
      this.video.addEventListener("ended", () => set(PlayerState.ENDED));
      this.video.addEventListener("error", () => this.events.onError?.({ target: this, data: 100 }));
      this.load(options.videoId, options.playerVars?.start ?? 0);
      this.video.addEventListener("loadedmetadata", () => this.events.onReady?.({ target: this }), { once: true });
    }
    /** The iframe's `infoDelivery`: its state, its time and when that was read. */
    deliver() {
      this.playerInfo = { playerState: this.state, currentTime: this.video.currentTime, currentTimeLastUpdated_: Date.now() / 1000, playbackRate: this.video.playbackRate };
    }
    load(videoId, start) {
      if (this.refused) {
        setTimeout(() => this.events.onReady?.({ target: this }), 0);
        setTimeout(() => this.events.onError?.({ target: this, data: window.ytStandinRefuses }), 50);
        return;
      }
      this.video.src = `${media}/${videoId}.mp4`;
      if (start) this.video.addEventListener("loadedmetadata", () => (this.video.currentTime = start), { once: true });
    }
    cueVideoById({ videoId, startSeconds = 0 }) {
      this.load(videoId, startSeconds);
      this.state = PlayerState.CUED;
      this.deliver();
      this.events.onStateChange?.({ target: this, data: PlayerState.CUED });
    }
    loadVideoById(args) {
      this.cueVideoById(args);
      this.playVideo();
    }
    get refused() { return typeof window.ytStandinRefuses === "number"; }
    playVideo() { if (!this.refused) this.video.play().catch(() => {}); }
    pauseVideo() { if (!this.refused) this.video.pause(); }
    seekTo(seconds) { if (!this.refused) this.video.currentTime = seconds + (window.ytStandinSeekPast ?? 0); }
    getCurrentTime() {
      const info = this.playerInfo;
      if (info.playerState !== PlayerState.PLAYING) return info.currentTime;
      const since = (Date.now() / 1000 - info.currentTimeLastUpdated_) * info.playbackRate;
      return info.currentTime + (since > 0 ? Math.min(since, 1) : 0);
    }
    getDuration() { return Number.isFinite(this.video.duration) ? this.video.duration : 0; }
    getPlayerState() { return this.state; }
    getAvailablePlaybackRates() { return RATES; }
    getPlaybackRate() { return this.playerInfo.playbackRate; }
    setPlaybackRate(r) { if (RATES.includes(r)) this.video.playbackRate = r; }
    getVolume() { return Math.round(this.video.volume * 100); }
    setVolume(v) { this.video.volume = v / 100; }
    mute() { this.video.muted = true; }
    unMute() { this.video.muted = false; }
    isMuted() { return this.video.muted; }
    destroy() { this.video.remove(); }
  }

  window.YT = { Player, PlayerState };
  setTimeout(() => window.onYouTubeIframeAPIReady?.(), 0);
})();
