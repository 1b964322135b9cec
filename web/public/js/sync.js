// The sync controller: keeps a player at the room's position.
//
// The room's playback is {paused, position, at, rate}: exact at server time `at` (µs), advancing by
// `rate` while playing. With the estimated server time we know where the video should be; the
// controller compares that with where the player is (the drift) and decides:
//   - below DEAD_BAND (4 ms) of smoothed drift: nothing (the rate goes back to the room's rate);
//   - moderate drift: nudge playbackRate proportionally to the smoothed drift, at most
//     STEADY_MAX_NUDGE (2%; MAX_NUDGE in the first second after a seek), released as the drift
//     shrinks (peers that seek for every small drift stutter: jellyfin-web #1640, Syncplay #24,
//     CyTube #482); the smoothing keeps a few ms of position jitter from being chased;
//   - beyond SEEK_THRESHOLD: seek, ahead by the seek latency measured on earlier seeks, at most once
//     per SEEK_COOLDOWN, so one drift never causes two seeks.
// Players without fine rate control (YouTube offers a few fixed rates) only seek, with a wider band.
// No DOM: this module is tested with `node --test`.

/** Tuning constants, in one place. Seconds unless named otherwise. */
export const SYNC = Object.freeze({
  /** Drift below this is left alone. */
  DEAD_BAND: 0.004,
  /** Once correcting, keep correcting until the drift is below this (hysteresis). */
  RELEASE_BAND: 0.0015,
  /** Rate change per second of drift: 10 ms of drift plays 1% faster or slower. */
  GAIN: 1.0,
  /** Weight of a new sample in the smoothed drift the nudge follows (a player's reported
   * position jitters by a few ms from one tick to the next; a band of a few ms would chase it). */
  DRIFT_SMOOTHING: 0.25,
  /** Largest rate change in the first SEEK_GRACE after a seek: ±10%. */
  MAX_NUDGE: 0.1,
  /** Largest rate change otherwise: ±2%, too little to hear (pitch is preserved). */
  STEADY_MAX_NUDGE: 0.02,
  /** After a seek, the larger nudge may close what the landing missed. */
  SEEK_GRACE: 1.0,
  /** Drift beyond this is fixed by seeking. */
  SEEK_THRESHOLD: 0.15,
  /** Least time between two seeks. */
  SEEK_COOLDOWN: 2.0,
  /** When the room is paused, a player further off than this seeks to the position. */
  PAUSED_TOLERANCE: 0.04,
  /** Seek latency assumed until one has been measured. */
  INITIAL_SEEK_LATENCY: 0.15,
  /** Weight of a new measurement in the seek latency estimate. */
  LATENCY_SMOOTHING: 0.5,
  /** Largest seek latency believed. */
  MAX_SEEK_LATENCY: 2.0,
  /** Players without fine rate control: their dead band and seek threshold. */
  COARSE_DEAD_BAND: 0.25,
  COARSE_SEEK_THRESHOLD: 0.25,
  /** Rate changes smaller than this are not applied (each change can glitch audio). */
  RATE_STEP: 0.001,
  /** Drift at which the viewer counts as "in sync" for display. */
  IN_SYNC: 0.05,
});

/**
 * Where the video should be at server time `serverNowMs` (ms), in seconds, within [0, duration].
 * @param {{paused: boolean, position: number, at: number, rate: number}} playback
 */
export function targetPosition(playback, serverNowMs, duration = Infinity) {
  let position = playback.position;
  if (!playback.paused) {
    const elapsed = Math.max(0, serverNowMs / 1000 - playback.at / 1e6);
    position += elapsed * playback.rate;
  }
  const end = Number.isFinite(duration) && duration > 0 ? duration : Infinity;
  return Math.min(Math.max(position, 0), end);
}

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

export class SyncController {
  /**
   * @param {{fineRate?: boolean, tolerance?: number}} options `tolerance` widens every band by that
   *   factor: a viewer on a slow device trades tightness for fewer corrections.
   */
  constructor({ fineRate = true, tolerance = 1 } = {}) {
    this.fineRate = fineRate;
    this.tolerance = Math.max(1, tolerance);
    this.correcting = false;
    this.lastSeekAt = -Infinity;
    this.seekLatency = SYNC.INITIAL_SEEK_LATENCY;
    /** The seek in flight: when it was issued and the latency it assumed. */
    this.pendingSeek = null;
    this.currentRate = 1;
    /** The smoothed drift (s), or null right after a seek or a wait. */
    this.smoothed = null;
  }

  /**
   * Decides what the player should do now.
   * @param {object} s
   * @param {number} s.target      where the video should be (s)
   * @param {number} s.actual      where the player is (s)
   * @param {boolean} s.roomPaused whether the room is paused
   * @param {number} s.baseRate    the room's rate
   * @param {number} s.now         local time (s)
   * @param {boolean} [s.seeking]  the player is still seeking
   * @param {boolean} [s.buffering] the player is waiting for data
   * @returns {{play: boolean, rate: number, seekTo: number|null, drift: number, action: string}}
   */
  decide({ target, actual, roomPaused, baseRate, now, seeking = false, buffering = false }) {
    const drift = actual - target;
    const result = (action, rate, seekTo = null) => {
      this.currentRate = rate;
      return { play: !roomPaused, rate, seekTo, drift, action };
    };
    if (seeking || buffering) {
      // Measuring now would be wrong: the position is moving under us.
      this.smoothed = null;
      return result("wait", baseRate);
    }
    // The first clean measurement after a seek tells how long seeks really take.
    if (this.pendingSeek && !roomPaused) this.seekLanded(drift, baseRate);
    if (roomPaused) {
      this.correcting = false;
      this.smoothed = null;
      if (Math.abs(drift) > SYNC.PAUSED_TOLERANCE * this.tolerance) return this.seek(target, now, result, 0, baseRate);
      return result("none", baseRate);
    }
    const k = this.tolerance;
    const deadBand = k * (this.fineRate ? SYNC.DEAD_BAND : SYNC.COARSE_DEAD_BAND);
    const seekAt = k * (this.fineRate ? SYNC.SEEK_THRESHOLD : SYNC.COARSE_SEEK_THRESHOLD);
    const size = Math.abs(drift);
    if (size > seekAt && now - this.lastSeekAt >= SYNC.SEEK_COOLDOWN) {
      this.correcting = false;
      this.smoothed = null;
      return this.seek(target, now, result, this.seekLatency * baseRate, baseRate);
    }
    if (!this.fineRate) return result(size > deadBand ? "wait" : "none", baseRate);
    // Small drifts are steered by their smoothed value; a large one (as after a seek) at once.
    this.smoothed = this.smoothed === null || size > 4 * deadBand ? drift : this.smoothed + SYNC.DRIFT_SMOOTHING * (drift - this.smoothed);
    const steer = Math.abs(this.smoothed);
    this.correcting = steer > deadBand || (this.correcting && steer > k * SYNC.RELEASE_BAND);
    if (!this.correcting) return result("none", baseRate);
    const cap = now - this.lastSeekAt < SYNC.SEEK_GRACE ? SYNC.MAX_NUDGE : SYNC.STEADY_MAX_NUDGE;
    const nudge = clamp(-SYNC.GAIN * this.smoothed, -cap, cap);
    let rate = baseRate * (1 + nudge);
    if (Math.abs(rate - this.currentRate) < SYNC.RATE_STEP) rate = this.currentRate;
    return result("nudge", rate);
  }

  /** Issues a seek to `target + lead`, resetting any nudge to the room's rate. */
  seek(target, now, result, lead, baseRate) {
    this.lastSeekAt = now;
    this.pendingSeek = { at: now, lead };
    return result("seek", baseRate, target + lead);
  }

  /**
   * Tells the controller how far off the player was right after its seek completed (drift =
   * actual - target, s), so that the next seek leads by the latency actually seen.
   */
  seekLanded(drift, baseRate = 1) {
    if (!this.pendingSeek) return;
    const { lead } = this.pendingSeek;
    this.pendingSeek = null;
    if (lead === 0) return; // paused seeks have no latency to learn
    // Behind by d means the seek took d/rate longer than assumed.
    const measured = clamp(lead / baseRate - drift / baseRate, 0, SYNC.MAX_SEEK_LATENCY);
    this.seekLatency += SYNC.LATENCY_SMOOTHING * (measured - this.seekLatency);
  }
}

/** How often a viewer tells the room how well it keeps in sync (ms), and the least number of
 * samples a report needs. */
export const SYNC_REPORT = Object.freeze({ INTERVAL_MS: 5000, MIN_SAMPLES: 10, MAX_SAMPLES: 2000 });

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * This viewer's sync error over a window: |position - target| of each steady sample (playing, not
 * seeking or buffering), summarised every SYNC_REPORT.INTERVAL_MS as p50 and p95 in ms for the
 * room (`sync_report`). No DOM.
 */
export class SyncStats {
  constructor(startMs = 0) {
    this.samples = [];
    this.since = startMs;
  }

  /** One steady sample: the drift in seconds. */
  add(drift) {
    if (!Number.isFinite(drift)) return;
    if (this.samples.length < SYNC_REPORT.MAX_SAMPLES) this.samples.push(Math.abs(drift) * 1000);
  }

  /** The report due at `nowMs` (and a fresh window), or null when none is due or there are too
   * few samples (a paused room reports nothing). */
  take(nowMs) {
    if (nowMs - this.since < SYNC_REPORT.INTERVAL_MS) return null;
    const sorted = this.samples.sort((a, b) => a - b);
    this.samples = [];
    this.since = nowMs;
    if (sorted.length < SYNC_REPORT.MIN_SAMPLES) return null;
    const round = (x) => Math.round(x * 10) / 10;
    return { p50_ms: round(quantile(sorted, 0.5)), p95_ms: round(quantile(sorted, 0.95)), samples: sorted.length };
  }
}
