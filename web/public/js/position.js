// Where a player really is, from readings of its currentTime.
//
// Chromium's currentTime moves with every reading. Firefox's moves in steps: it holds one value
// and then jumps by about 40 ms every 40 ms (Firefox ESR 153, polled without pause: at each jump
// it lies on a straight line within ±0.5 ms). A reading there is up to a step behind; the sync
// controller, which reads ten times a second, steered on that sawtooth and kept Firefox viewers
// about 20 ms ahead of the room, changing direction 9-18 times a minute (bench-sync).
//
// The reader is fed readings every 12-18 ms while the video plays (a random delay, so that they
// fall at every phase of the steps), and at each sync tick. A value that held across readings and
// then jumped by more than the time since the reading before is a step; after three, the player is
// taken as stepped. (A clock that has not started yet, or stalls, holds too, as Chromium's does
// for ~85 ms after play(), but then moves on from where it held.) Then each jump bounds the
// position at the reading that saw it: at least the new value, at most the new value plus the time
// since the reading before (the jump happened in between). The bounds of successive jumps are
// carried forward at the playing rate and intersected, as the clock intersects its exchanges; the
// readings fall at random phases of the jumps, so a few jumps pin the position within a few ms.
// The estimate is the middle of the intersection, carried to the moment asked. A jump whose bounds
// have nothing in common with carried ones that two or more jumps agreed on is believed only once
// the next jump agrees with it: a busy page takes Firefox's steps late, and a late step reads as
// the player behind. (A single jump's bounds, as after a start, give way at once.)
//
// Chromium's currentTime moves with every reading, and at rate 1 it lies on a straight line within
// 0.1 ms. At any other rate (time stretching) its readings scatter around their line by up to
// ±5-6 ms (web/bench/rate.mjs: p95 4.7-6.0 ms at 0.98, 1.02 and 1.25), which the sync controller
// would chase. There the reader averages the readings of the last STRETCH_WINDOW at the rate now,
// each carried to the present at that rate. A player that is neither is read as it is. No DOM:
// tested with `node --test`.

/** Tuning constants. Seconds. */
export const POSITION = Object.freeze({
  /** A held value that then jumps by more than this many times the time since the reading before
   * is a step. */
  STEP_OVER_GAP: 1.5,
  /** How many steps make a player count as stepped. */
  STEPS_TO_STEPPED: 3,
  /** Bounds that this many jumps agree on stand against one jump that has nothing in common with
   * them (it may have reached the page late); a single jump's bounds do not. */
  JUMPS_TO_HOLD: 2,
  /** A jump larger than this, or backwards, is not a step: the player seeked or stalled. */
  MAX_STEP: 0.25,
  /** A jump of more than MAX_STEP after a hold whose value lies this far behind the carried
   * bounds, or less, is steps taken late, not a seek: Firefox's value after a hold is where its
   * position was last handed to the page, a step or two back. */
  LATE_SPAN: 0.1,
  /** Bounds older than this are dropped: the reading falls back to currentTime. They also tell
   * that long where a playing player cannot be behind (STALE_BEHIND), and one that lands back on
   * them after a hold is steps taken late. A stale stretch that begins at the last agreeing jump
   * is waited out for STALE_WAIT once it shows (a value held STALE_HELD, or STALE_BEHIND behind),
   * so they have to outlast that: at 0.5 s they aged out while a Firefox page still read values
   * 0.13-0.29 s behind, and it seeked (bench-sync's mixed room). Carried 1 s, they widen by
   * CARRY_SLACK, 5 ms. */
  MAX_AGE: 1.0,
  /** Readings between sync ticks, while playing: this long apart (s), plus up to POLL_JITTER. */
  POLL_EVERY: 0.012,
  POLL_JITTER: 0.006,
  /** A player not found stepped after this many readings moves with every reading: it is no
   * longer read between ticks. */
  CONTINUOUS_AFTER: 300,
  /** Carried bounds widen by this fraction of the time carried (rates are applied late). */
  CARRY_SLACK: 0.005,
  /** A change of rate widens carried bounds as if applied up to this late. */
  RATE_LAG: 0.05,
  /** At rates other than 1, a player that is not stepped is read as the mean of its readings of
   * this long, each carried to the present (about ten readings at POLL_EVERY). */
  STRETCH_WINDOW: 0.15,
  /** A reading further than this from that mean is a seek or a stall: the mean starts again. */
  STRETCH_JUMP: 0.05,
  /** A mean of fewer readings than this does not place a reading against its line (`placed`):
   * the mean starts again at each change of rate, and a lone reading is its own mean. */
  STRETCH_PLACED: 4,
  /** A stepped reading that has held one value longer than this while its video can play is
   * stale (`staleReading`)... */
  STALE_HELD: 0.15,
  /** ...and is waited out for this long at most in a row: a video that really stopped without
   * saying so is then decided on. */
  STALE_WAIT: 0.5,
  /** So is a stepped reading further than this behind the line that agreed jumps carry
   * (`behind`), and jumps that far behind it draw no new line while it lasts (MAX_AGE): no more
   * than the sync loop's seek threshold (sync.js, SYNC.SEEK_THRESHOLD), so that it never seeks
   * on a line drawn by values that reached the page late. */
  STALE_BEHIND: 0.15,
});

/**
 * Whether the sync loop should wait rather than decide on a reading (room.js: it runs again a
 * moment later). Firefox steps every ~40 ms and a busy page takes a step up to ~75 ms late; but
 * while another page of the site loaded in the same browser on two busy cores, its viewers' pages
 * ran their timers in slices and took no step for 200-290 ms, their videos playing on: their
 * readings fell 250-360 ms behind the room and they seeked ahead (bench-sync BROWSER=mixed with
 * late joiners: 5 seeks in 80 s; bench/RESULTS.md). `held`: how long the player's reading has
 * held its value (s, `PositionReader.heldFor`); `playing`: the video plays and can (not paused,
 * seeking or waiting for data); `since`: when this stretch of stale readings began (s), or null;
 * `now` (s). Returns {wait, since}, `since` to be passed in next time. The same for a reading
 * that moved on but lies more than STALE_BEHIND behind the line its last steps agreed on
 * (`behind`, s: `PositionReader.behind`): a page held up in slices gets its values late, as they
 * come. */
export function staleReading({ held, behind = 0, playing, since, now }) {
  const stale = held > POSITION.STALE_HELD || behind > POSITION.STALE_BEHIND;
  if (!stale || !playing) return { wait: false, since: null };
  const from = since ?? now;
  return { wait: now - from <= POSITION.STALE_WAIT, since: from };
}

/** The delay before the next reading between ticks (ms): random, so that readings fall at every
 * phase of a stepped player's jumps. */
export function pollDelayMs(random = Math.random) {
  return (POSITION.POLL_EVERY + random() * POSITION.POLL_JITTER) * 1000;
}

const overlap = (a, b) => a.lo <= b.hi && a.hi >= b.lo;
const intersect = (a, b) => ({ lo: Math.max(a.lo, b.lo), hi: Math.min(a.hi, b.hi) });

/** Bounds `b` carried to `at` (the player now at `rate`), widened for what carrying may miss;
 * null when there are none or they are older than MAX_AGE. */
function carry(b, at, rate) {
  if (!b || at - b.ref > POSITION.MAX_AGE) return null;
  const carried = (at - b.ref) * b.rate;
  const slack = (at - b.ref) * POSITION.CARRY_SLACK + Math.abs(rate - b.rate) * POSITION.RATE_LAG;
  return { lo: b.lo + carried - slack, hi: b.hi + carried + slack };
}

export class PositionReader {
  constructor() {
    this.stepped = false;
    /** Whether the last reading can be told from the line it scatters around: false while a
     * stretching player's mean holds fewer than STRETCH_PLACED readings (where a Chromium player
     * rests once let go back to 1 follows its reading, and 10 ms further below its line). */
    this.placed = true;
    /** Steps seen: a value held, then a jump larger than the time since the reading before. */
    this.steps = 0;
    /** Readings while moving. */
    this.readings = 0;
    this.reset();
  }

  /** Forgets the bounds (a seek, a pause, a stall); whether the player is stepped is kept. */
  reset() {
    /** The last reading: {value, at, held} (`held`: the value was read before too). */
    this.last = null;
    /** Readings at the rate `stretchRate` (not 1), for their mean: [{value, at}]. */
    this.recent = [];
    this.stretchRate = null;
    /** Where the player was at `ref`: within [lo, hi], moving at `rate`, as `jumps` jumps in a
     * row agree. */
    this.bounds = null;
    /** The last jump's own bounds, {ref, lo, hi, rate}, when they were disjoint from the carried
     * ones: the next jump tells whether the player moved or this one came late. */
    this.suspect = null;
    /** When the value read last was first read (local s), once the reading has been seen moving
     * on since the reset; null before (a player just started holds still for a while). */
    this.valueSince = null;
    /** The reading that came after the page read nothing for a while ({at, gap}), until the
     * value moves on at a later reading; null otherwise (`heldFor`). */
    this.quiet = null;
  }

  /**
   * One reading: currentTime `value` at local time `at` (s), the player playing at `rate` if
   * `moving` (not paused, seeking or waiting for data). Returns where the player is at `at`: the
   * middle of the bounds when they are known, otherwise `value`.
   */
  read(value, at, rate, moving) {
    this.placed = true;
    if (!moving || !Number.isFinite(value) || !Number.isFinite(at)) {
      this.reset();
      return value;
    }
    const last = this.last;
    this.last = { value, at, held: last !== null && value === last.value };
    this.readings += 1;
    if (last && value !== last.value) this.valueSince = at;
    // A reading after the page read nothing for over STALE_HELD (it was held up) may give a value
    // handed to the page before the hold, changed or not: it counts as held that long until the
    // value moves on at a later reading.
    if (this.quiet !== null && value !== last?.value && at > this.quiet.at) this.quiet = null;
    if (last && this.valueSince !== null && at - last.at > POSITION.STALE_HELD) this.quiet = { at, gap: at - last.at };
    if (last && at > last.at && value !== last.value) {
      const jump = value - last.value;
      const gap = at - last.at;
      // A jump forward beyond a step that lands where the carried bounds put the player (not
      // ahead of them, at most LATE_SPAN behind) is the page taking its steps late after a hold
      // (`staleReading`), not a seek: the bounds carry on, the player at least at the new value.
      // Dropped there, they gave way to currentTime, up to a step behind, and the controller
      // chased that (bench-sync, mixed room: +2% for 0.5 s, then 10-18 ms ahead).
      // One that lands further behind bounds that jumps agreed on is the page catching up, its
      // values still late: they stand, and `behind` tells how late (a Firefox page held 350 ms
      // read a jump of 0.27 s that still lay 0.2 s behind, dropped them there, and seeked; its
      // landing came out 388 ms ahead).
      const carried = jump > POSITION.MAX_STEP ? carry(this.bounds, at, rate) : null;
      if (carried !== null && value <= carried.hi && value >= carried.lo - POSITION.LATE_SPAN) {
        this.bounds = { ...this.bounds, ref: at, lo: Math.max(carried.lo, value), hi: carried.hi, rate };
      } else if (carried !== null && value < carried.lo && this.bounds.jumps >= POSITION.JUMPS_TO_HOLD) {
        // Still late: the bounds stand.
      } else if (jump < 0 || jump > POSITION.MAX_STEP) {
        this.bounds = null;
      } else {
        if (last.held && jump > POSITION.STEP_OVER_GAP * gap * rate && !this.stepped) {
          this.steps += 1;
          this.stepped = this.steps >= POSITION.STEPS_TO_STEPPED;
        }
        this.jumped(value, at, gap, rate);
      }
    }
    if (!this.stepped && rate !== 1) return this.stretched(value, at, rate);
    this.recent = [];
    return this.estimate(value, at);
  }

  /** A reading of a player that is stretching time: the mean of the recent readings at this
   * rate, each carried to `at`. */
  stretched(value, at, rate) {
    if (rate !== this.stretchRate) {
      this.recent = [];
      this.stretchRate = rate;
    }
    // A value read before too: the player holds still (just after play(), or stalled), so older
    // readings carried at the rate would put it ahead.
    if (this.last?.held) this.recent = [];
    const carried = (r) => r.value + (at - r.at) * rate;
    this.recent = this.recent.filter((r) => at - r.at <= POSITION.STRETCH_WINDOW && r.at <= at);
    if (this.recent.length) {
      const mean = this.recent.reduce((sum, r) => sum + carried(r), 0) / this.recent.length;
      if (Math.abs(value - mean) > POSITION.STRETCH_JUMP) this.recent = [];
    }
    this.recent.push({ value, at });
    this.placed = this.recent.length >= POSITION.STRETCH_PLACED;
    return this.recent.reduce((sum, r) => sum + carried(r), 0) / this.recent.length;
  }

  /** How long (s) a stepped player's reading has held one value at `at`, once it has been seen
   * moving (or, after the page read nothing for a while, that while, until the value moves on at
   * a later reading): 0 for a player that is not stepped, or not yet seen moving since the reset.
   * Firefox steps every ~40 ms, a busy page takes a step up to ~75 ms late; a value held much
   * longer while the video can play is where the page last heard the video was
   * (`staleReading`). */
  heldFor(at) {
    if (!this.stepped || this.valueSince === null || !(at >= this.valueSince)) return 0;
    const quiet = this.quiet === null ? 0 : this.quiet.gap + (at - this.quiet.at);
    return Math.max(at - this.valueSince, quiet);
  }

  /** How far (s) the last reading's value lies behind where the bounds that jumps agreed on put
   * a stepped player when it was read: 0 when it does not, or there are none. A playing video at
   * HAVE_ENOUGH_DATA does not fall STALE_BEHIND behind its steps' line: a value that far behind is
   * stale (`staleReading`). */
  behind() {
    const b = this.bounds;
    const last = this.last;
    if (!this.stepped || !b || b.jumps < POSITION.JUMPS_TO_HOLD || !last || !(last.at >= b.ref)) return 0;
    const carried = carry(b, last.at, b.rate);
    return carried === null ? 0 : Math.max(0, carried.lo - last.value);
  }

  /** Whether readings between sync ticks still help: until the player is known to move
   * with every reading, for good once it is known to be stepped, and while it plays at a rate
   * other than 1 (`rate`: its readings scatter then, and are averaged). */
  worthPolling(rate = 1) {
    return this.stepped || this.readings < POSITION.CONTINUOUS_AFTER || rate !== 1;
  }

  /** A jump to `value`, seen at `at`, `gap` after the reading before. */
  jumped(value, at, gap, rate) {
    const own = { lo: value, hi: value + gap * rate };
    const suspect = this.suspect;
    this.suspect = null;
    const b = this.bounds;
    const carried = carry(b, at, rate);
    // Further behind bounds that jumps agreed on than STALE_BEHIND, it is no new line at all while
    // they last: Firefox's video at HAVE_ENOUGH_DATA does not fall that far behind its steps'
    // line and play on, but a page held up in slices gets its values late, moved on as they come,
    // for up to half a second and more (bench-sync's mixed room: two such jumps agreed, the bounds
    // went to their line, 0.3 s behind, and the viewer seeked ahead). The bounds stand, and the
    // sync loop waits (`behind`, `staleReading`); a video that truly fell back is read from its
    // new line once they are older than MAX_AGE.
    // (Its value, not the top of its own bounds: after a gap those reach far, and one 233 ms
    // behind with a gap of 93 ms agreed with an earlier late one on a line 175 ms behind.)
    if (carried && b.jumps >= POSITION.JUMPS_TO_HOLD && value < carried.lo - POSITION.STALE_BEHIND) return;
    let next = { ...own, jumps: 1 };
    if (carried && overlap(carried, own)) {
      next = { ...intersect(own, carried), jumps: b.jumps + 1 };
    } else if (carried && b.jumps >= POSITION.JUMPS_TO_HOLD) {
      // Disjoint from bounds that jumps agreed on: the player moved other than at its rate, or
      // this value reached the page late (Firefox sends its position to the page's main thread,
      // and a busy page takes its steps late: one held 75 ms, then a jump of one step, 37 ms
      // behind the line, and the next 5 ms later back on it; bench-sync with late joiners
      // loading). Start again from this jump only once the next one agrees with it; until then
      // the carried bounds stand. (Disjoint from a single jump's bounds, as the first after a
      // start often is, this one is as likely right: it starts again at once.)
      const fromSuspect = carry(suspect, at, rate);
      if (!fromSuspect || !overlap(fromSuspect, own)) {
        this.suspect = { ref: at, ...own, rate };
        return;
      }
      next = { ...intersect(own, fromSuspect), jumps: 2 };
    }
    this.bounds = { ref: at, ...next, rate };
  }

  /** The furthest the player can be at `at` by the bounds of its last jumps (a reading that moved
   * on: at most its value plus the time since the reading before, carried on at its rate), or
   * null when none bounds it (none since the reader was reset, or older than MAX_AGE). */
  ceiling(at) {
    const b = this.bounds;
    if (!b || !(at >= b.ref)) return null;
    return carry(b, at, b.rate)?.hi ?? null;
  }

  /** Where the player is at `at`, given the reading `value` then. */
  estimate(value, at) {
    const b = this.bounds;
    if (!this.stepped || !b || at - b.ref > POSITION.MAX_AGE) return value;
    const position = (b.lo + b.hi) / 2 + (at - b.ref) * b.rate;
    // A stepped reading is never ahead of the player, and never a whole step behind.
    return position < value || position - value > POSITION.MAX_STEP ? value : position;
  }
}
