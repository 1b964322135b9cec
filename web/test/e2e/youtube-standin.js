// A stand-in for the YouTube IFrame Player API, for tests that cannot reach YouTube: the same
// `YT.Player` interface (the calls the Lockstep client makes), played by a <video> element that
// loads `<media>/<videoId>.mp4`, where <media> comes from this script's `?media=` parameter.
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
      el.replaceWith(this.video);
      const set = (s) => {
        if (this.state === s) return;
        this.state = s;
        this.events.onStateChange?.({ target: this, data: s });
      };
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
    load(videoId, start) {
      this.video.src = `${media}/${videoId}.mp4`;
      if (start) this.video.addEventListener("loadedmetadata", () => (this.video.currentTime = start), { once: true });
    }
    cueVideoById({ videoId, startSeconds = 0 }) {
      this.load(videoId, startSeconds);
      this.state = PlayerState.CUED;
      this.events.onStateChange?.({ target: this, data: PlayerState.CUED });
    }
    loadVideoById(args) {
      this.cueVideoById(args);
      this.playVideo();
    }
    playVideo() { this.video.play().catch(() => {}); }
    pauseVideo() { this.video.pause(); }
    seekTo(seconds) { this.video.currentTime = seconds; }
    getCurrentTime() { return this.video.currentTime; }
    getDuration() { return Number.isFinite(this.video.duration) ? this.video.duration : 0; }
    getPlayerState() { return this.state; }
    getAvailablePlaybackRates() { return RATES; }
    getPlaybackRate() { return this.video.playbackRate; }
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
