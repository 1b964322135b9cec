// The clock estimator: where the server's clock is, from this browser's.
//
// NTP style: each ping records the local send time t0; the pong carries the server's receive and
// send times (t1, t2); its arrival is t3. Then
//   offset = ((t1 - t0) + (t2 - t3)) / 2      (server = local + offset)
//   rtt    = (t3 - t0) - (t2 - t1)
// The offset is exact when the network delay is the same both ways; a sample's error is at most
// rtt / 2, so the samples with the lowest round trip are the most trustworthy. We keep a window of
// recent samples and use the median offset of the few with the lowest rtt. Samples age out so that
// the estimate follows the two clocks drifting apart (a few ms per minute at 50 ppm).
// No DOM: this module is tested with `node --test`.

/** Tuning constants, in one place. */
export const CLOCK = Object.freeze({
  /** Pings sent quickly after connecting, to be accurate from the start. */
  BURST: 8,
  BURST_INTERVAL_MS: 120,
  /** Then one ping every this often. */
  STEADY_INTERVAL_MS: 2500,
  /** Samples older than this are dropped. */
  MAX_AGE_MS: 60_000,
  /** Samples kept at most. */
  WINDOW: 32,
  /** How many lowest-rtt samples the estimate is the median of. */
  BEST: 5,
  /** Samples needed before the estimate is used. */
  MIN_SAMPLES: 3,
});

export class ClockEstimator {
  constructor() {
    /** @type {{offset: number, rtt: number, at: number}[]} */
    this.samples = [];
    this.sent = 0;
  }

  /**
   * Records one exchange. All four times in milliseconds: t0 and t3 on the local clock, t1 and t2
   * on the server's. Returns false for a sample that makes no sense (negative round trip).
   */
  addSample(t0, t1, t2, t3) {
    const rtt = t3 - t0 - (t2 - t1);
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return false;
    const offset = (t1 - t0 + (t2 - t3)) / 2;
    this.samples.push({ offset, rtt, at: t3 });
    this.samples = this.samples.filter((s) => t3 - s.at <= CLOCK.MAX_AGE_MS);
    if (this.samples.length > CLOCK.WINDOW) this.samples.splice(0, this.samples.length - CLOCK.WINDOW);
    return true;
  }

  /** Records a pong frame received at local time `t3` (ms); `t0` was echoed as client_time. */
  addPong(pong, t3) {
    return this.addSample(pong.client_time, pong.server_recv / 1000, pong.server_send / 1000, t3);
  }

  /** Whether there are enough samples to trust the estimate. */
  get ready() {
    return this.samples.length >= CLOCK.MIN_SAMPLES;
  }

  /** The best samples: lowest round trip first. */
  best() {
    return [...this.samples].sort((a, b) => a.rtt - b.rtt).slice(0, CLOCK.BEST);
  }

  /** Server time minus local time, in ms (0 until there is a sample). */
  get offset() {
    const best = this.best();
    if (best.length === 0) return 0;
    const offsets = best.map((s) => s.offset).sort((a, b) => a - b);
    const mid = offsets.length >> 1;
    return offsets.length % 2 ? offsets[mid] : (offsets[mid - 1] + offsets[mid]) / 2;
  }

  /** Bound on the estimate's error, in ms: half the best round trip. */
  get uncertainty() {
    const best = this.best();
    return best.length ? best[0].rtt / 2 : Infinity;
  }

  /** The server's time (ms since the epoch) at local time `localNow` (ms). */
  serverNow(localNow) {
    return localNow + this.offset;
  }

  /** How long to wait before the next ping (ms); counts the ping as sent. */
  nextPingDelay() {
    this.sent += 1;
    return this.sent <= CLOCK.BURST ? CLOCK.BURST_INTERVAL_MS : CLOCK.STEADY_INTERVAL_MS;
  }
}
