// The clock estimator: where the server's clock is, from this browser's.
//
// NTP style: each ping records the local send time t0; the pong carries the server's receive and
// send times (t1, t2); its arrival is t3. Then
//   offset = ((t1 - t0) + (t2 - t3)) / 2      (server = local + offset)
//   rtt    = (t3 - t0) - (t2 - t1)
// The offset is exact when the network delay is the same both ways. Each exchange also proves
// that the offset lies within offset ± rtt / 2 (neither leg took less than nothing), so the offset
// lies in the intersection of the recent samples' intervals: with jitter, that intersection is set by
// the fastest request and the fastest reply of the window even when no single exchange was fast both
// ways, and a reply handled late by a busy page only widens its own interval. The estimate is its
// middle (Cristian's and Marzullo's idea, as NTP's clock filter). Each interval is widened by how
// coarse the page's clock may be (Firefox's is rounded to a millisecond), or rounding alone could
// make it miss the offset and end the intersection. The two clocks also run at slightly
// different speeds (a few ms per minute at 50 ppm): a least-squares slope of offset over time through
// the better half of the samples (by rtt) carries each interval to now, once the samples span
// SKEW_MIN_SPAN_MS and only when the fit is clear (SKEW_SIGNIFICANCE standard errors from none: on
// jittery links a fitted slope is mostly noise, and following it is worse than assuming none).
// Samples age out, and an interval with nothing in common with the newer ones (a stepped clock)
// ends the intersection, so the estimate follows the clocks as they move.
// No DOM: this module is tested with `node --test`.

/** Tuning constants, in one place. */
export const CLOCK = Object.freeze({
  /** Pings sent quickly after connecting, to be accurate from the start... */
  BURST: 8,
  BURST_INTERVAL_MS: 120,
  /** ...the first MIN_SAMPLES of them closer still, so that the estimate is ready (and a late
   * joiner can land) sooner: behind a 10 ms link it was ready 0.24 s after connecting, after the
   * video had loaded (bench-sync). 3 pings in 80 ms stay well inside the server's burst of 60. */
  FIRST_INTERVAL_MS: 40,
  /** Then WARMUP more, every WARMUP_INTERVAL_MS: on a jittery link the intersection narrows with
   * the number of samples (on a 150 ms ±20% link, 8 samples left it 15-18 ms off and the steady
   * pings took 15 s to bring it within 3 ms; bench-sync). */
  WARMUP: 24,
  WARMUP_INTERVAL_MS: 250,
  /** Then one ping every this often. */
  STEADY_INTERVAL_MS: 2500,
  /** Samples older than this are dropped. */
  MAX_AGE_MS: 60_000,
  /** Samples kept at most. */
  WINDOW: 32,
  /** Samples taken over HTTP when a room page starts (`sampleOverHttp`), one after another. */
  HTTP_SAMPLES: 3,
  /** How coarse a page's clock may be (ms): `performance.now()` and Resource Timing give 0.1 ms in
   * Chromium, 1 ms in Firefox (privacy.reduceTimerPrecision: each time rounded either way within
   * its millisecond) and Safari. Every sample is widened by it on both sides. A Firefox pong's
   * interval missed the offset by up to a millisecond, so a lopsided one (its request held about
   * 50 ms by a busy browser, told by where the estimate went; its reply at once) had nothing in
   * common with the older ones, ended the intersection alone, and put the estimate 25 ms off for
   * 5 s (bench-sync, late joiners loading). Widening every interval alike leaves the middle of
   * their intersection where it was. (A fast exchange over HTTP read as taking no time at all
   * would otherwise come out shorter than the server's own part, and be refused.) */
  TIMING_RESOLUTION_MS: 1,
  /** Samples needed before the estimate is used... */
  MIN_SAMPLES: 3,
  /** ...unless fewer already bound its error to this (ms). */
  READY_UNCERTAINTY_MS: 3,
  /** The skew is fitted only once the samples used span this long (ms), and from this many. */
  SKEW_MIN_SPAN_MS: 20_000,
  SKEW_MIN_SAMPLES: 6,
  /** A fitted skew is used only when it is this many standard errors from none. */
  SKEW_SIGNIFICANCE: 4,
  /** Largest skew believed: 150 ppm (quartz is within 100; more is a clock being stepped, or
   * noise). On a jittery link, a slope through the warm-up's many samples close together and the
   * steady ones 2.5 s apart now and then passed SKEW_SIGNIFICANCE at 400-500 ppm where there was
   * no skew, and carried minute-old samples, and the estimate with them, 10-20 ms for a ping or
   * two: `web/bench/clock-link.mjs` (two-minute runs of a page's pings, the clocks at one pace)
   * had the estimate off by up to 17.5 ms behind 150 ms ±20% and 6.5 ms behind 40 ms ±20% at
   * 500 ppm, 8.6 and 5.1 ms at 150, and no worse at p99 with a real skew of 100 ppm. (bench-sync's
   * viewer behind 150 ms ±20% had its estimate jump 20 ms for 5 s, and followed it.) A clock 300
   * ppm off is followed in part. */
  MAX_SKEW: 1.5e-4,
});

export class ClockEstimator {
  constructor() {
    /** @type {{offset: number, rtt: number, at: number}[]} */
    this.samples = [];
    /** Pings sent on this connection, for `nextPingDelay`. */
    this.sent = 0;
    /** When this connection opened (local ms), null before the first: samples after it are its
     * own (`continues`). */
    this.connectedAt = null;
    /** The fitted skew (see `fitSkew`), 0 until the samples show one. */
    this.skew = 0;
  }

  /**
   * Records one exchange. All four times in milliseconds: t0 and t3 on the local clock, t1 and t2
   * on the server's; `slack` widens its interval on both sides (how coarse t0 and t3 may be:
   * TIMING_RESOLUTION_MS). Returns false for a sample that makes no sense (negative round trip).
   */
  addSample(t0, t1, t2, t3, slack = 0) {
    const rtt = t3 - t0 - (t2 - t1) + 2 * slack;
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return false;
    const offset = (t1 - t0 + (t2 - t3)) / 2;
    // In order of arrival: a sample over HTTP (`sampleOverHttp`) can be added after a pong that
    // arrived later than it did.
    let i = this.samples.length;
    while (i > 0 && this.samples[i - 1].at > t3) i--;
    this.samples.splice(i, 0, { offset, rtt, at: t3 });
    const newest = this.samples.at(-1).at;
    this.samples = this.samples.filter((s) => newest - s.at <= CLOCK.MAX_AGE_MS);
    if (this.samples.length > CLOCK.WINDOW) this.samples.splice(0, this.samples.length - CLOCK.WINDOW);
    this.skew = this.fitSkew();
    return true;
  }

  /** Records a pong frame received at local time `t3` (ms); `t0` was echoed as client_time. Both
   * are the page's clock, as coarse as TIMING_RESOLUTION_MS. */
  addPong(pong, t3) {
    return this.addSample(pong.client_time, pong.server_recv / 1000, pong.server_send / 1000, t3, CLOCK.TIMING_RESOLUTION_MS);
  }

  /** Whether the estimate can be used: MIN_SAMPLES, or fewer that already pin it within
   * READY_UNCERTAINTY_MS (one exchange on a fast link does). */
  get ready() {
    return this.samples.length >= CLOCK.MIN_SAMPLES || (this.samples.length > 0 && this.uncertainty <= CLOCK.READY_UNCERTAINTY_MS);
  }

  /**
   * How fast the server's clock gains on ours (ms per ms; 1e-4 is 100 ppm), 0 until the samples
   * span SKEW_MIN_SPAN_MS. A least-squares line through the better half of the samples by rtt,
   * fitted once per sample (`this.skew`), not on every reading of the clock.
   */
  fitSkew() {
    const fit = [...this.samples].sort((a, b) => a.rtt - b.rtt).slice(0, Math.ceil(this.samples.length / 2));
    if (fit.length < CLOCK.SKEW_MIN_SAMPLES) return 0;
    const ats = fit.map((s) => s.at);
    if (Math.max(...ats) - Math.min(...ats) < CLOCK.SKEW_MIN_SPAN_MS) return 0;
    const meanAt = ats.reduce((a, b) => a + b, 0) / fit.length;
    const meanOffset = fit.reduce((a, s) => a + s.offset, 0) / fit.length;
    let num = 0;
    let den = 0;
    for (const s of fit) {
      num += (s.at - meanAt) * (s.offset - meanOffset);
      den += (s.at - meanAt) ** 2;
    }
    const skew = num / den;
    // Only a slope the samples clearly show: from a few noisy samples a fitted slope is mostly
    // noise, and carrying offsets along it would make the estimate worse than none.
    const residuals = fit.reduce((a, s) => a + (s.offset - meanOffset - skew * (s.at - meanAt)) ** 2, 0);
    const standardError = Math.sqrt(residuals / (fit.length - 2) / den);
    if (Math.abs(skew) < CLOCK.SKEW_SIGNIFICANCE * standardError) return 0;
    return Math.min(CLOCK.MAX_SKEW, Math.max(-CLOCK.MAX_SKEW, skew));
  }

  /**
   * Where the offset can be at local time `localNow` (ms): each exchange proves it lies within
   * its offset ± rtt / 2 (the request and the reply each took no less than nothing), so it lies in
   * the intersection of those intervals, newest first, each carried along the skew. An interval that
   * leaves nothing in common with the newer ones (a clock was stepped) ends the walk; `depth` is
   * how many of the newest samples it took.
   * @returns {{lo: number, hi: number, depth: number}|null}
   */
  bounds(localNow) {
    if (this.samples.length === 0) return null;
    const skew = this.skew;
    let lo = -Infinity;
    let hi = Infinity;
    let depth = 0;
    for (let i = this.samples.length - 1; i >= 0; i--, depth++) {
      const s = this.samples[i];
      const carried = s.offset + skew * (localNow - s.at);
      const l = Math.max(lo, carried - s.rtt / 2);
      const h = Math.min(hi, carried + s.rtt / 2);
      if (l > h) break;
      lo = l;
      hi = h;
    }
    return { lo, hi, depth };
  }

  /** Server time minus local time at local time `localNow` (ms), in ms (0 until there is a sample):
   * the middle of `bounds`, exact when the fastest request and the fastest reply took as long. */
  offsetAt(localNow) {
    const b = this.bounds(localNow);
    return b ? (b.lo + b.hi) / 2 : 0;
  }

  /** Server time minus local time, in ms, as of the newest sample (0 until there is a sample). */
  get offset() {
    return this.samples.length ? this.offsetAt(this.samples.at(-1).at) : 0;
  }

  /** Bound on the estimate's error, in ms: half the width of `bounds` (Infinity with no sample). */
  get uncertainty() {
    const b = this.samples.length ? this.bounds(this.samples.at(-1).at) : null;
    return b ? (b.hi - b.lo) / 2 : Infinity;
  }

  /** The server's time (ms since the epoch) at local time `localNow` (ms). */
  serverNow(localNow) {
    return localNow + this.offsetAt(localNow);
  }

  /** A connection opened at local time `localNow` (ms): its pings start with a burst again. */
  connected(localNow) {
    this.sent = 0;
    this.connectedAt = localNow;
  }

  /**
   * Whether this connection's first samples (MIN_SAMPLES) agree with at least BURST of the earlier
   * connections': all of them in one intersection, which a stepped or another clock would end.
   * Then the estimate stands as it was, and a reconnection (a dropped network, a restarted
   * server) needs no burst and warm-up again: 4 pings rather than 32 from each of thousands of
   * viewers reconnecting at once (bench/RESULTS.md).
   */
  continues() {
    if (this.connectedAt === null || this.samples.length === 0) return false;
    // This connection's samples are the newest; the intersection takes the newest `depth`.
    const fresh = this.samples.filter((s) => s.at > this.connectedAt).length;
    const { depth } = this.bounds(this.samples.at(-1).at);
    return fresh >= CLOCK.MIN_SAMPLES && depth - fresh >= CLOCK.BURST;
  }

  /** How long to wait before the next ping (ms); counts the ping as sent. */
  nextPingDelay() {
    this.sent += 1;
    if (this.sent < CLOCK.MIN_SAMPLES) return CLOCK.FIRST_INTERVAL_MS;
    if (this.sent <= CLOCK.BURST + CLOCK.WARMUP && this.continues()) this.sent = CLOCK.BURST + CLOCK.WARMUP + 1;
    if (this.sent <= CLOCK.BURST) return CLOCK.BURST_INTERVAL_MS;
    return this.sent <= CLOCK.BURST + CLOCK.WARMUP ? CLOCK.WARMUP_INTERVAL_MS : CLOCK.STEADY_INTERVAL_MS;
  }
}

/**
 * Takes clock samples over HTTP (`GET url`, the server's `/api/clock`), one after another, timed
 * by the browser's network stack: Resource Timing's `requestStart` and `responseStart` are when
 * the request went out and the answer came in, however busy the page's main thread was. A pong
 * is timed when the page reads it, and a page that is loading reads it late: a joining page's
 * first pongs waited up to 440 ms (bench/RESULTS.md), which counts as round trip, so the estimate
 * was unsure (ready late) or off (36 ms, once). Without timings (a browser that gives none) no
 * sample is taken and the pings do it all. Calls `onReady` if a sample makes the estimate usable.
 * Returns how many samples were added. `fetch` and `performance` are parameters for the tests.
 */
export async function sampleOverHttp(clock, url, { count = CLOCK.HTTP_SAMPLES, onReady = () => {}, fetch = globalThis.fetch, performance = globalThis.performance } = {}) {
  let added = 0;
  for (let i = 0; i < count; i++) {
    // Each its own address, so that its timing entry is its own.
    const href = `${url}?n=${i}&r=${Math.random().toString(36).slice(2)}`;
    let answer;
    try {
      const r = await fetch(href, { cache: "no-store", credentials: "omit" });
      if (!r.ok) return added;
      answer = await r.json();
    } catch {
      return added;
    }
    const timing = performance.getEntriesByName?.(href, "resource").at(-1);
    if (!timing || !(timing.requestStart > 0) || !(timing.responseStart >= timing.requestStart)) return added;
    const t0 = performance.timeOrigin + timing.requestStart;
    const t3 = performance.timeOrigin + timing.responseStart;
    const wasReady = clock.ready;
    if (clock.addSample(t0, answer.server_recv / 1000, answer.server_send / 1000, t3, CLOCK.TIMING_RESOLUTION_MS)) added += 1;
    if (!wasReady && clock.ready) onReady();
  }
  return added;
}
