// The sync controller: keeps a player at the room's position.
//
// The room's playback is {paused, position, at, rate}: exact at server time `at` (µs), advancing by
// `rate` while playing. With the estimated server time we know where the video should be; the
// controller compares that with where the player is (the drift) and decides:
//   - below DEAD_BAND (10 ms) of smoothed drift: nothing (the rate stays the room's rate).
//     Chromium sets a player's position back by about 20 ms each time its rate leaves exactly 1
//     (time stretching starts; rates within 0.1% of 1 are played as 1), so every correction
//     started at rate 1 costs that much; going back to 1 costs nothing, and moving between two
//     rates other than 1 costs nothing either. After a landing and its grace the player rests
//     within RELEASE_BAND, and at the room's rate it stays there. When the room's rate is not 1,
//     the player stretches time anyway: drift beyond GRACE_BAND is corrected at any time. A
//     player that pays no setback (Gecko's, and a video without sound, whose clock is the page's:
//     `setbackFree`) is corrected from REST_BAND at rest.
//     A player's position runs on its sound card's clock, tens of ppm off the page's, so a
//     Chromium (or WebKitGTK) player left within the dead band at rest drifts one way across
//     it: once its rests show that (`restSkew`), it is let go of half the band off the room on
//     the side it drifts from, and corrected from as far past the room on the other (SKEW_AIM).
//     A correction from rate 1 starts from where the setback will put the player (SETBACK), so
//     one ahead is not slowed first and turned, and takes its readings there too until the
//     setback shows in them (Chromium's shows 0.25-0.3 s late: SETBACK_SHOWS), nor ends before;
//   - moderate drift: nudge playbackRate proportionally to the smoothed drift, at most
//     STEADY_MAX_NUDGE (2%; MAX_NUDGE with GRACE_GAIN in the first second after a seek or a change
//     of the room's rate), released as the drift shrinks (peers that seek for every small drift
//     stutter: jellyfin-web #1640, Syncplay #24, CyTube #482); the smoothing keeps a few ms of
//     position jitter from being chased. Where a Chromium player rests once let go back to 1
//     follows its reading at that moment (±5 ms around its line while stretching), not its line:
//     the correction lets go at a reading whose rest, by what this player's own releases taught,
//     falls on the room (RELEASE_AIM), looked for at every reading between ticks (`releaseNow`),
//     and only at one its reader can place against its line (null otherwise: position.js);
//   - beyond SEEK_THRESHOLD: land, at most once per SEEK_COOLDOWN, so one drift never causes two
//     seeks. Landing: pause, seek to where the room will be a little later (LANDING_LEAD plus the
//     seek time measured on earlier landings; less when that point is buffered, and the seek
//     fetches nothing), and once the seek is done, start playing at the
//     moment the room reaches that frame (less the start latency measured on earlier starts), at a
//     rate just off 1 (START_STRETCH), so that Chromium's setback falls within the start. A seek
//     while playing lands wherever the decoder is ready, tens of ms off; a start at a chosen moment
//     is off by a timer's precision, and the rate closes the rest within the first second. A
//     start that came out well ahead (the browser starts sooner than assumed) is held once more.
//     A player already paused ahead of the room (a joiner's early <video>, a start the server
//     scheduled) waits there instead of seeking; one paused too near to be timed, or a little
//     behind, starts at once and the rate closes the rest (`catchUpLimit`; from its first moment,
//     and up to 50% for a join with the room at 1: `CATCH_UP_MAX_NUDGE`). Players that cannot
//     be started precisely (`landing: false`) seek while playing, ahead by the seek latency
//     measured on earlier seeks.
// Players without fine rate control (YouTube offers a few fixed rates) seek beyond a wider band,
// and within it are stepped: played at the nearest rate they offer for as long as closes the
// drift (`coarseStep`).
// No DOM: this module is tested with `node --test`.

/** Tuning constants, in one place. Seconds unless named otherwise. */
export const SYNC = Object.freeze({
  /** Drift below this is left alone: in Chromium every correction started from the room's rate
   * first sets the position back about 20 ms (time stretching starts), so a smaller drift costs
   * more to correct than to keep (bench-sync: a 4 ms band turned 4 ms ahead into 37 ms behind). */
  DEAD_BAND: 0.01,
  /** How far Chromium sets a player back as its rate leaves 1 (s, at the room's rate of 1; 20-28
   * ms: web/bench/rate.mjs, bench-sync's drifting sound cards). */
  SETBACK: 0.02,
  /** How long after a correction from 1 starts its setback may take to show in the player's
   * readings (s; Chromium's showed 0.25-0.3 s late in bench-sync's drifting sound cards). Until it
   * shows (two decisions in a row half SETBACK below the smoothed drift it started from, beyond
   * what the rate moved), the readings are taken less SETBACK, and the correction is not let go
   * of: smoothed as they came, readings from before the setback pulled the smoothed drift back
   * past the aim within three decisions, and the correction turned as the setback landed. A
   * setback that did not show by then is not assumed for the next correction, until one shows: a
   * video without sound has none (Chromium stretches no time for it: web/bench/rate.mjs
   * SILENT=1), where the browser does not tell it apart (`noteSound`). Assumed at every
   * correction, a setback that never shows held such a player at the dead band's edge, corrected
   * every second (the unit model, readings ±12 ms: 108 turns a minute); with players with sound it
   * never acted in bench-sync's drifting sound cards (44 corrections, 5 stalls). */
  SETBACK_SHOWS: 0.6,
  /** In the first SEEK_GRACE after a seek, and at any time when the room's rate is not 1 (the
   * player stretches time, so a correction costs no setback), drift beyond this is corrected (not
   * DEAD_BAND): a player left where its landing put it stays there, up to DEAD_BAND off, for good. */
  GRACE_BAND: 0.003,
  /** A player whose rate changes cost no setback (Gecko: `setbackFree`) is not left resting up
   * to DEAD_BAND off at the room's rate of 1: once its drift over REST_WINDOW (the mean of the
   * middle half of its decisions: its readings' scatter is not chased) lies beyond this, it is
   * corrected as any drift is, down to RELEASE_BAND. A Firefox viewer let go of its landing's
   * start at a reading 0.2 ms off; its next readings put it 5-7 ms off, where it rested for the
   * 15 s to the next seek, the others within 2 ms (bench-sync, delay: the spread's p95 at rate 1
   * 10.8 ms). */
  REST_BAND: 0.004,
  REST_WINDOW: 1.0,
  /** A player's position runs on its sound card's clock, tens of ppm off the page's (a few ms a
   * minute), so at rest at the room's rate of 1 a Chromium viewer ramps across its dead band, one
   * way, and is corrected at its edge, each correction opening with the setback. From the edge
   * to the room, its rest spans the dead band on one side: two viewers drifting opposite ways
   * rested up to twice the band apart (bench-sync, SYNC_SOUND_SKEW, four cards at +50, -50, +100
   * and -100 ppm: spread p95 11-19 ms a minute against 7-9 ms at 0 ppm). Once its rests show a
   * steady drift (`restSkew`), a correction lets go SKEW_AIM times the dead band on the side it
   * drifts from, and the next starts as far past the room on the side it drifts to: the same
   * travel, so corrections come as seldom, but centred on the room. The drift is the slope of
   * the line fitted to a rest's drifts (a rest: decisions at rest at the room's rate of 1, from
   * SKEW_SETTLE after it began, not in a grace), averaged SKEW_BUCKET at a time, the last
   * SKEW_BUCKETS of them (two minutes), once they span SKEW_SPAN... */
  SKEW_AIM: 0.5,
  SKEW_SETTLE: 1.0,
  SKEW_BUCKET: 5,
  SKEW_BUCKETS: 24,
  SKEW_SPAN: 30,
  /** ...read as none below SKEW_MIN (20 ppm: 10 ms in more than 8 min) by SKEW_SIGNIFICANCE
   * standard errors, not believed when it is within that many of none, beyond SKEW_MAX (1000
   * ppm: no card is that far off; a player stalling now and then), or when the drifts scatter
   * around the line by more than SKEW_SCATTER (s: an average that far off the line says the rest
   * is no line: the clock estimate stepped within it, or the player stalled). */
  SKEW_MIN: 2e-5,
  SKEW_SIGNIFICANCE: 4,
  SKEW_MAX: 1e-3,
  SKEW_SCATTER: 0.001,
  /** Once correcting, keep correcting until the drift is below this (hysteresis). */
  RELEASE_BAND: 0.0015,
  /** Rate change per second of drift: 10 ms of drift plays 1% faster or slower. */
  GAIN: 1.0,
  /** Weight of a new sample in the smoothed drift the nudge follows (a player's reported
   * position jitters by a few ms from one tick to the next; a band of a few ms would chase it). */
  DRIFT_SMOOTHING: 0.25,
  /** The gain in the first SEEK_GRACE after a seek: 10 ms of drift plays 4% faster or slower,
   * closing 40% of the drift each 100 ms tick (below 1 per tick, so it never overshoots). */
  GRACE_GAIN: 4.0,
  /** Largest rate change in the first SEEK_GRACE after a seek of a Chromium player with the room
   * at a rate other than 1: ±25% (`graceCap`; CATCH_UP_MAX_NUDGE otherwise). A start that stalls
   * (four viewers in one browser on two cores: 75-90 ms later than the others' after a seek to an
   * unbuffered place) was 46 ms behind when ±10% ended with the grace, and the steady 2% then
   * took 1.2 s more (bench-sync); at ±25% what a start missed is closed within the grace.
   * Between two stretched rates Chromium's position does not move (web/bench/rate.mjs). */
  MAX_NUDGE: 0.25,
  /** The same after a start of the viewer's own (a join, a reconnection, a video loaded late),
   * for STALL_GRACE from when it was measured, and for the start itself when it starts at once
   * a little behind (`catchUpLimit`): ±50%. A joiner whose video could play only as the room
   * reached its early place started at once, came out 100-140 ms behind (the ~0.1 s a start takes
   * to move), and closed that at 25% from when its start was measured: 0.5-0.6 s from play() to
   * within 20 ms, the slowest joiners of bench-sync's runs. With the room at 1 only: at 1.25,
   * caught up from 1.875 down, joiners overshot to 19-31 ms ahead (each large drop of the rate
   * moved the position on, as leaving 1.25 for 1 does), so other rates keep MAX_NUDGE.
   * The same in any grace with the room at 1, and at any rate for a player whose rate changes
   * move nothing else (Gecko: `setbackFree`): Firefox's starts under load come out 100-250 ms
   * behind now and then, and at ±25% those 150-250 ms behind were within 20 ms a second after
   * the user's seek 3 times of 9 (median 0.72 s from the start's measurement), at ±50% 6 of 10
   * (0.50 s), with nothing overshot (bench-sync, four Firefox viewers behind the delays at 1.25
   * with a busy core, 20 seeks a run, two runs each: bench/RESULTS.md, forty-eighth session). */
  CATCH_UP_MAX_NUDGE: 0.5,
  /** Largest rate change otherwise: ±2%, too little to hear (pitch is preserved). */
  STEADY_MAX_NUDGE: 0.02,
  /** After a seek, the larger nudge may close what the landing missed: for this long from the
   * player's seek, or, when the seek follows the room's change (a user's seek), from that change
   * by the server's clock. A viewer behind a slow link hears of the change up to its delay late,
   * and its grace, counted from its own seek, ran past the first second after the user's seek
   * (bench-sync, 150 ms link: 6.8-10% at 1.00-1.10 s). So the whole grace, and the 100 ms tick
   * that ends it, lie within that second. */
  SEEK_GRACE: 0.85,
  /** After a start of the viewer's own (a join, not following the room's change), a drift beyond
   * this (a start later than assumed, or a stall once started: a page short of CPU, a video short
   * of data) keeps the grace's nudge until within the dead band, for at most STALL_GRACE from
   * when its start was measured. */
  START_STALL: 0.05,
  STALL_GRACE: 1.5,
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
  /** Their start is measured once they move; one that has not moved this long after play() (a
   * blocked or buffering player) is not measured. So is a seek while playing (`seekLanded`). */
  COARSE_START_WAIT: 1.0,
  /** ...and no sooner than this after the start or the seek: YouTube's reading is the time its
   * player last delivered, moved on since (its IFrame API's getCurrentTime), and it delivers at
   * each change of state and each progress event (about every 250 ms). So the reading runs on
   * from the moment the player says it plays, before its video moves, until the next progress
   * delivery says where it is. */
  COARSE_SETTLE: 0.5,
  /** A start the room called for (its item loaded while it plays, a play), once it has moved for
   * COARSE_SETTLE: beyond this it seeks once, ahead by the seek latency. Loaded into a playing
   * room, a YouTube player starts wherever it could play, 160-430 ms behind (the stand-in), and
   * one 231 ms behind stayed there, inside the band, for the whole item. */
  COARSE_START_BAND: 0.1,
  /** A player without fine rate control (YouTube's: a few fixed rates), playing, found this far
   * off the room for COARSE_STEP_CONFIRM is stepped: played at the nearest rate it offers on
   * the side that closes the drift (1.25 or 0.75 with the room at 1), for as long as closes it,
   * then set back to the room's rate (`coarseStep`). Before, such a player was left alone within
   * COARSE_DEAD_BAND and seeked beyond it: four YouTube viewers rested anywhere within a quarter
   * second of the room (bench-sync: spread p95 63-132 ms). */
  COARSE_STEP_BAND: 0.015,
  /** The longest step (s): a drift up to COARSE_SEEK_THRESHOLD at a step of 0.25. */
  COARSE_STEP_MAX: 1.0,
  /** The farthest a step's rate may be from the room's, as a fraction of it (0.75 and 1.25
   * around 1, 1 and 1.5 around 1.25; not 0.5 around 0.25). */
  COARSE_STEP_LIMIT: 0.3,
  /** The largest net setback a step's two changes of rate are believed to cost (s): what a step
   * moved the player beyond what its rate closed, learnt from each step once settled (Chromium
   * falls back as it starts stretching time and moves on as it stops: in bench-sync's stand-in a
   * step from 1 and back fell 15-24 ms short at 1.25 and overshot 24 ms at 0.75; between two
   * stretched rates, around 1.25, none). */
  COARSE_STEP_COST_MAX: 0.06,
  /** What a step from the room's rate of 1 and back is taken to cost until one was measured
   * (s), but for a player whose position does not fall back as its rate leaves 1 (Gecko: 0):
   * about what Chromium's cost in bench-sync's stand-in (-15 to -24 ms). */
  COARSE_STEP_SETBACK: -0.02,
  /** A step is sized by the median of the costs of this many steps before it (one reading after
   * a stall, run on from the delivery before it, is tens of ms off). */
  COARSE_STEP_COSTS: 5,
  /** A coarse player is stepped once found beyond COARSE_STEP_BAND, on one side, at every
   * decision for this long (s): longer than YouTube's deliveries are apart (about 0.25 s), so
   * that a fresh one has confirmed it (a reading run on from before a stall is that far off). */
  COARSE_STEP_CONFIRM: 0.3,
  /** A landing seeks this far ahead of the room, plus LANDING_LATENCY_FACTOR times the seek time
   * measured so far, at most MAX_LANDING_LEAD ahead. */
  LANDING_LEAD: 0.08,
  LANDING_LATENCY_FACTOR: 1.5,
  MAX_LANDING_LEAD: 1.5,
  /** A landing whose point is buffered (with BUFFERED_AHEAD beyond it) seeks without fetching:
   * ahead by the start latency, plus BUFFERED_LANDING_LEAD, plus LANDING_LATENCY_FACTOR times the
   * seek time measured for such seeks (INITIAL_BUFFERED_SEEK_LATENCY until one was). A late
   * joiner's video, loaded from the room's view, seeked within its buffer in ~10 ms and then
   * waited ~0.19 s for its moment with the lead of a seek that fetches (bench-sync). */
  BUFFERED_LANDING_LEAD: 0.03,
  INITIAL_BUFFERED_SEEK_LATENCY: 0.03,
  BUFFERED_AHEAD: 0.5,
  /** A landing within the buffer leads this much more for a player whose start right after its seek
   * is slow on a busy page (Gecko: `seekPreroll`). Firefox moves 3-20 ms after play() given time,
   * but on a busy page a start 50-100 ms after its seek did not move for 100-200 ms, in a third of
   * the landings: four Firefox viewers behind the delays at 1.25 with a busy core, two runs, 28 and
   * 33 landings of 80 came out more than 50 ms behind, against 0 and 5 with this lead (the seeks
   * until every viewer was within 20 ms, p50 0.62 and 0.72 s against 0.44 and 0.51 s:
   * bench/RESULTS.md, forty-eighth session). Not added to a lead that is longer anyway (a seek that
   * fetches). */
  SEEK_PREROLL: 0.15,
  /** A browser seeks by decoding from the keyframe before its point. When the item's keyframes
   * are known (an upload's `keyframes.json`), a landing's lead adds this much seek time per second
   * between that keyframe and its point (s/s), learnt from landings at least DECODE_MIN_DISTANCE
   * from theirs (at most MAX_DECODE_COST); the seek latencies above then are what a seek takes
   * on a keyframe. An idle Chromium page took 17 ms/s at 480x270 and 50 ms/s at 720p; four
   * viewers sharing two cores, about 40 ms/s at 480x270 (bench-sync, a keyframe every 10 s). */
  INITIAL_DECODE_COST: 0.04,
  MAX_DECODE_COST: 0.5,
  DECODE_MIN_DISTANCE: 1.0,
  /** A landing on a keyframe seeks this far past it: keyframe times are kept to the millisecond,
   * and a point a hair before one decodes the whole stretch before it. */
  KEYFRAME_MARGIN: 0.005,
  /** Time from play() to the position moving, assumed until one has been measured: what
   * bench-sync's Chromium late joiners measured for their page's first start, at START_STRETCH
   * (94-128 ms, median 108 ms, 26 joiners; 0.1 s left them 10-28 ms behind, close to the 20 ms
   * line; 80-92 ms at rate 1, before starts were stretched: the setback is paid within the
   * start). The first measurement replaces this assumption. */
  INITIAL_START_LATENCY: 0.11,
  /** ...and for a first start on a video set fetching while the page loaded (early.js), in a
   * browser whose media starts at once (Gecko: `quickStart`). Firefox ESR's late joiners in
   * bench-sync, with 0.11 assumed, came out 88-109 ms ahead at 37 of the 40 first starts timed
   * (landed, or waiting where early.js had set their video), and each was held once more (0.2-0.3
   * s). Not its first start on a video loaded for an item's start (pages open on an empty room,
   * the item queued): that came out 9-216 ms behind with 10 ms assumed, -183 to +97 ms with 0.11. */
  INITIAL_QUICK_START_LATENCY: 0.01,
  /** The same for a player that resumes where it was paused, with no seek since it played (a
   * start the server scheduled; a start held once more): Chromium's currentTime then jumps about
   * 100 ms ahead within 30 ms of play(), holds there until that time has passed, and then runs on
   * a line as if it had started at play(), less the ~20 ms setback of a start at START_STRETCH
   * (web/bench/resume.mjs, five each: at 1.003, 20-23 ms behind that; at 1, -4 to +6 ms; after a
   * seek, 76-91 ms behind, with a jump of 15-23 ms). bench-sync's four viewers, assuming 0,
   * started 22-24 ms behind. */
  INITIAL_RESUME_LATENCY: 0.021,
  /** Largest start latency believed. */
  MAX_START_LATENCY: 0.3,
  /** A start is measured on the first clean reading at least this long after it: Chromium 156
   * holds its position for 100-150 ms after play() and then moves (an earlier Chromium ran on for
   * a couple of hundred ms and then set it back). */
  START_SETTLE: 0.2,
  /** ...or sooner, once the position has moved this far past where the player waited, at about
   * its rate since the reading before (within START_RATE_SLACK): it moves, and where it moves is
   * the start's outcome. room.js decides every START_TICK_MS meanwhile, not every 100 ms. */
  START_MOVED: 0.03,
  START_RATE_SLACK: 0.2,
  /** ...or sooner for a quick starter whose position, at the most its readings allow, is this
   * far behind the room once it moved (`land`: a start that came out late). */
  START_LATE: 0.025,
  /** A landing starts the player at this much off the room's rate of 1 (above the 0.1% Chromium
   * plays as 1), held until the start is measured: Chromium's time-stretching setback (~20 ms)
   * then falls within the start, where the start latency learnt includes it, instead of 0.1 s into
   * the correction of what the landing missed. From there, moving between rates other than 1 and
   * back to 1 costs nothing (web/bench/rate.mjs). 0.3% for 0.2 s is under 1 ms, and is allowed for. */
  START_STRETCH: 0.003,
  /** Rates within this of 1 Chromium plays as 1, with no time stretching (1.001 was, 1.002 was
   * not: web/bench/rate.mjs). While a correction from rate 1 runs, its rate stays START_STRETCH
   * off 1 at least, so that it never drops back to 1 and pays the setback again. */
  SNAP: 0.002,
  /** Where a Chromium player rests after going back to rate 1 is fixed by its reading at that
   * moment, not by its line: its readings scatter ±5 ms around the line while it stretches, and it
   * rests at the last one plus a constant (about -3 ms from 1.003 and 0.997), or about 10 ms
   * further when that reading lay below the line (web/bench/release.mjs: 29 of 30 releases from a
   * reading at or above the line within 1 ms of that; against the line, sd 2.4-2.6 ms). So a
   * correction lets go at a reading RELEASE_ABOVE above its line whose rest, by the constant
   * learnt from this player's own releases, falls within this of the room... */
  RELEASE_AIM: 0.001,
  /** ...while its line is within GRACE_BAND (further below for a jump learnt above -RELEASE_ABOVE:
   * `goodRelease`), holding its rate meanwhile for at most this long (then as RELEASE_GIVE_UP
   * says). */
  RELEASE_WAIT: 1.0,
  /** A release that waited RELEASE_WAIT lets go at a placed reading not below its line (or, between
   * decisions, one whose rest falls within RELEASE_BAND), at any reading only once it has waited
   * this long. (bench-sync, four runs: one release in five had let go at any reading, 10 ms
   * further when it lay below its line; with this, 1 of 177, and nine rests in ten within 1.8-2.3
   * ms of the room, not 2.5-4.2.) */
  RELEASE_GIVE_UP: 2.0,
  /** A release's jump (rest minus the reading it let go at) is measured this long after it, up
   * to RELEASE_MEASURED_BY; the median of the last RELEASE_SAMPLES is the constant, once there are
   * RELEASE_MIN_SAMPLES (one alone, or two, let an odd release steer the next ones: bench-sync
   * learnt +5.3 ms once, and that viewer then rested 5 ms off). Jumps beyond RELEASE_MAX_JUMP (a
   * reading below its line after all, a stall, a hiccup) are not learnt. Each direction (a
   * correction that sped the player up, or slowed it) has its own constant once it has
   * RELEASE_MIN_SAMPLES, the two together until then: Chromium's differ (bench-sync, 16 each:
   * -2.3 ms after speeding up, sd 0.4; -3.5 ms after slowing down, sd 1.2). */
  RELEASE_MEASURE_AFTER: 0.08,
  RELEASE_MEASURED_BY: 0.6,
  RELEASE_SAMPLES: 9,
  RELEASE_MIN_SAMPLES: 3,
  RELEASE_MAX_JUMP: 0.006,
  /** The constant assumed for a player whose readings scatter around its line while it stretches
   * (Chromium: -2.9 and -3.0 ms in bench/release.mjs), until its own releases or an earlier page's
   * say otherwise; a player read as its line (Firefox's steps) assumes 0. With 0 for all, a
   * Chromium player let go at readings within 1 ms of the room rested ~3 ms behind it, and found
   * such readings seldom (bench-sync). */
  RELEASE_JUMP_SCATTERED: -0.003,
  /** A reading counts as above its line from this much above it: the line is the mean of the
   * last 150 ms of readings, a millisecond or two off, and a reading below the true line rests
   * 10 ms further (bench-sync: at 1 ms above, a quarter of the rests were 4-7 ms off the room; at
   * 2.5 ms, most within 2 ms). */
  RELEASE_ABOVE: 0.0025,
  /** A landing's start that came out further ahead than this (the browser starts sooner than
   * assumed: Firefox moves ~10 ms after play(), Chromium ~90 ms) is held once more. */
  HOLD_AHEAD: 0.02,
  /** A landing that would wait less than this starts at once. */
  MIN_WAIT: 0.004,
  /** An armed start is due this much before its moment. room.js starts the player from a timer
   * and then decides at once; a timer's delay is whole milliseconds (setTimeout truncates it) and
   * Firefox's clock is coarse, so the timer could come a hair before the moment: the start, not
   * due yet, paused the player just started, and it started at a later tick, 14-95 ms late (one
   * Firefox run of bench-sync with a busy core: 16 of 111 starts; one held once more came out
   * 69 ms behind). */
  START_TIMER_SLACK: 0.002,
  /** Rate changes smaller than this are not applied (each change can glitch audio). */
  RATE_STEP: 0.001,
  /** A player whose every change of rate costs it some of its position (`rateChangeCost`:
   * WebKitGTK's, 6-47 ms a change, between any two rates) keeps a correction's rate at least this
   * long (s), and then changes it only to turn, to let go, or to at least double or halve its
   * nudge (RATE_CHANGE_RATIO). Changed at every decision, as a setback-free player's is, the
   * rate cost more than it closed: four WebKit viewers rested 40-250 ms behind (bench-sync). */
  RATE_HOLD: 0.3,
  RATE_CHANGE_RATIO: 2,
  /** Drift at which the viewer counts as "in sync" for display (or its band, when wider:
   * `inSync`). */
  IN_SYNC: 0.05,
});

const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
/** The mean of the middle half of `xs` (not empty): a few odd values, or values alternating either
 * side, do not move it. */
const midMean = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = sorted.slice(Math.floor(sorted.length / 4), sorted.length - Math.floor(sorted.length / 4));
  return middle.reduce((a, b) => a + b, 0) / middle.length;
};

/** Whether a player at `rate` stretches time (in Chromium: pays the setback to get there). */
const stretches = (rate) => Math.abs(rate - 1) > SYNC.SNAP;

/** The index of the last of the ascending `xs` at or before `x`, or -1. */
function lastAtOrBefore(xs, x) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Whether a reading `rawDrift` lies above the line `drift` (by RELEASE_ABOVE); a reading that is
 * the line (a player read as it is: Firefox's steps) counts. (A Chromium reading with too few
 * others at its rate to tell its line, which once let go rested 4-8 ms ahead, comes as null and
 * is never let go at: `decide`, `releaseNow`.) */
const above = (drift, rawDrift) => rawDrift === drift || rawDrift >= drift + SYNC.RELEASE_ABOVE;

/** The drift of the reading `raw` behind a position (the position's own drift when there is none). */
const rawDriftOf = (raw, target, drift) => (Number.isFinite(raw) ? raw - target : drift);

/** The rate a landing starts the player at: a room's rate other than 1 stretches time already;
 * at 1, START_STRETCH off it. */
const startRate = (baseRate) => (stretches(baseRate) ? baseRate : baseRate + SYNC.START_STRETCH);
/** The largest nudge a paused player that starts at once behind the room starts at, and what its
 * grace closes by then (`catchUpLimit`): CATCH_UP_MAX_NUDGE for a start of the viewer's own with
 * the room at 1, MAX_NUDGE otherwise. (Once started, its grace's cap is `graceCap`.) */
const catchUpCap = (own, baseRate) => (own && !stretches(baseRate) ? SYNC.CATCH_UP_MAX_NUDGE : SYNC.MAX_NUDGE);

/**
 * How long after the room's playback last changed this page heard of it (s, by the server's
 * clock): `decide`'s `sinceChange`. From the change (`at`, server µs) to when the page heard of it
 * (`heardAt`, server ms; `now` when not known). A playback the page learnt whole, in a welcome (a
 * join, a reconnection), was not heard as a change: what the player then lands is its own start
 * (Infinity), whose grace runs in full from its own seek and start, however soon after the room's
 * change it came. A Firefox joiner that opened within 0.85 s of the room's play got the grace of
 * one that follows a user's seek: it ended with the joiner, whose start came out 60 ms late,
 * still 92 ms behind, and without the stall's grace the steady 2% took seconds to close that
 * (web/test/e2e/firefox.test.js). A start still to come (the server schedules a play ahead)
 * stays below 0 either way.
 */
export function sinceChange({ at, heardAt, now, whole }) {
  const since = (heardAt ?? now) / 1000 - at / 1e6;
  return whole && since >= 0 ? Infinity : since;
}

/** The rate a player without fine rate control steps at to close `drift` (s; above 0: ahead of
 * the room), among the `rates` it offers: the nearest to the room's `baseRate` on the side that
 * closes it, within COARSE_STEP_LIMIT of it; null when it offers none there (YouTube offers only
 * 1 for some videos). */
export function stepRate(rates, baseRate, drift) {
  if (!Array.isArray(rates) || drift === 0) return null;
  const fine = rates.filter((r) => Number.isFinite(r) && r > 0 && Math.abs(r / baseRate - 1) > 1e-6 && Math.abs(r / baseRate - 1) <= SYNC.COARSE_STEP_LIMIT);
  const side = drift < 0 ? fine.filter((r) => r > baseRate) : fine.filter((r) => r < baseRate);
  if (!side.length) return null;
  return drift < 0 ? Math.min(...side) : Math.max(...side);
}

export class SyncController {
  /**
   * @param {{fineRate?: boolean, tolerance?: number, landing?: boolean, quickStart?: boolean, setbackFree?: boolean, seekPreroll?: boolean, rateChangeCost?: boolean, dropsStretchedSound?: boolean}} options
   *   `tolerance` widens every band by that factor: a viewer on a slow device trades tightness for
   *   fewer corrections. `landing` (players with fine rate control) pauses, seeks ahead and starts
   *   on time. `quickStart`: the browser's media starts at once (INITIAL_QUICK_START_LATENCY).
   *   `setbackFree`: its position does not fall back when its rate leaves 1 (Gecko), so a rest
   *   off the room is corrected from REST_BAND, not DEAD_BAND. `seekPreroll`: its start right
   *   after a seek is slow on a busy page (Gecko), so a landing leads SEEK_PREROLL more.
   *   `rateChangeCost`: every change of its rate costs it some of its position (WebKitGTK), so a
   *   correction's rate is changed seldom (RATE_HOLD). `dropsStretchedSound`: its sound jumps
   *   20-30 ms ahead of its picture at every return to exactly 1 (Gecko: video.js), so a player
   *   without fine rate control, which can only be set back to exactly 1, is not stepped
   *   (COARSE_STEP_BAND).
   */
  constructor({ fineRate = true, tolerance = 1, landing = fineRate, quickStart = false, setbackFree = false, seekPreroll = false, rateChangeCost = false, dropsStretchedSound = false } = {}) {
    this.fineRate = fineRate;
    this.landingOn = landing && fineRate;
    /** The landing in progress: {phase: "seeking", issuedAt, buffered} until the seek is done, then
     * {phase: "armed", startAt, assumed, from} until the player is started, then {phase:
     * "started", at, assumed, from} until the start latency is measured (`assumed`: the start
     * latency the start was timed with; `from`: where the player waited paused; `again`: the start
     * is a hold's, HOLD_AHEAD; `untimed`: started at once, the seek having outlasted the lead or
     * the player waiting too near the room to be timed (`catchUpLimit`); `adopted`: armed or
     * started where the player already waited, without a seek, for bench-sync to count;
     * `relanded`: a seeking landing that is already the one more a landing far behind may make,
     * `land`); null otherwise. */
    this.landing = null;
    /** How the last start was measured: "moving" (a reading at its rate once it moved),
     * "ceiling" (a quick starter that came out late: `land`), "settle" (at START_SETTLE), or
     * null before any. */
    this.startMeasuredBy = null;
    /** How late the last armed start was started (s): its timer's delay past its moment, for
     * bench-sync to tell; null before any. */
    this.startTimerLate = null;
    /** The user asked to resync: seek (land) at the next decision whatever the drift. */
    this.forced = false;
    /** A start the room called for, of a player that cannot land, to be placed once it moves:
     * {since} (local s when it was first seen playing, or null), or null (COARSE_START_BAND). */
    this.placing = null;
    this.quickStart = quickStart && fineRate;
    /** Whether this browser's players keep their position when their rate leaves 1 (Gecko's). */
    this.browserSetbackFree = setbackFree && fineRate;
    this.seekPreroll = seekPreroll && fineRate;
    this.rateChangeCost = rateChangeCost && fineRate;
    /** Whether the player's video is known to have no sound (`noteSound`). */
    this.soundless = false;
    /** Whether this player, without fine rate control, is stepped at the rates it offers. */
    this.steps = !fineRate && !dropsStretchedSound;
    /** When the rate decided last changed (local s). */
    this.rateSetAt = -Infinity;
    /** A setback-free player's rest at the room's rate of 1: {since (local s), drifts (s)}, the
     * decisions since it began, or null (REST_BAND). */
    this.rest = null;
    this.clockTraits();
    /** The rest under way: {since (local s), from (when the average being summed began), sum, n,
     * offset (the clock estimate at its first decision counted), buckets: the last SKEW_BUCKETS
     * averages, {t (local s), drift}}, or null (`trackRest`). */
    this.restLine = null;
    /** The drift of this player's rests (s/s; above 0: it runs ahead of the room), 0 while none
     * is shown (SKEW_AIM). */
    this.restSkew = 0;
    this.startLatency = this.quickStart ? SYNC.INITIAL_QUICK_START_LATENCY : SYNC.INITIAL_START_LATENCY;
    /** Whether startLatency was measured (here or on an earlier page), not assumed. */
    this.startMeasured = false;
    /** The start latency of a player resuming where it was paused, no seek since it played. */
    this.resumeLatency = SYNC.INITIAL_RESUME_LATENCY;
    this.resumeMeasured = false;
    this.tolerance = Math.max(1, tolerance);
    this.lastSeekAt = -Infinity;
    /** Until when (local time, s) the larger nudge may close what a seek missed (SEEK_GRACE). */
    this.graceEnds = -Infinity;
    /** Until when at most a start of this viewer's own that stalled keeps that nudge (START_STALL). */
    this.stallGraceEnds = -Infinity;
    /** Until when a drift beyond START_STALL, after a start of this viewer's own, arms that. */
    this.ownStartEnds = -Infinity;
    this.seekLatency = SYNC.INITIAL_SEEK_LATENCY;
    /** How long a landing's seek within the player's buffer takes (s). */
    this.bufferedSeekLatency = SYNC.INITIAL_BUFFERED_SEEK_LATENCY;
    /** The item's keyframe times (s, ascending), or null when not known (`setKeyframes`). */
    this.keyframes = null;
    /** Seek time per second of video decoded from the keyframe before a seek's point (s/s). */
    this.decodeCost = SYNC.INITIAL_DECODE_COST;
    /** The seek in flight: the latency it assumed (`lead`), and once done, where the player read
     * first and when (`from`, `doneAt`: `seekLanded`). */
    this.pendingSeek = null;
    this.currentRate = 1;
    /** The room's rate at the last decision while playing (null before the first). */
    this.lastBaseRate = null;
    this.correcting = false;
    /** The last release from a stretched rate to the room's 1, until its rest is measured:
     * {at, raw, upper, dir, aim} (raw: the drift of the reading it let go at; dir: the direction of the
     * stretch let go of). */
    this.released = null;
    /** Jumps of recent releases, newest last: {jump, dir} (the rest minus that reading, s; the
     * direction of the stretch let go of, +1 or -1). */
    this.releaseJumps = [];
    /** The release constant an earlier page learnt (s), or null. */
    this.releasePrior = null;
    /** Since when a release waits for a good reading (local s), or null. */
    this.holdSince = null;
    /** The smoothed drift (s), or null right after a seek or a wait. */
    this.smoothed = null;
    /** The setback a correction from 1 opened with, until it shows in the readings: {at, last
     * (local s: the start, the last decision), from (the smoothed drift the correction started
     * at, s), moved (how far its rates have moved the player since, s), below (decisions in a row
     * found it shown), assumed (its readings are taken less SETBACK meanwhile)}, or null
     * (SETBACK_SHOWS). */
    this.setbackDue = null;
    /** Whether the last correction's setback showed (or none was watched yet): the next one's is
     * assumed. */
    this.setbackShows = true;
    /** A coarse player's step under way: {rate, endsAt (local s)}, or null (COARSE_STEP_BAND). */
    this.step = null;
    /** Until when (local s) a coarse player's readings are not stepped on, nor reported: its last
     * step's end plus COARSE_SETTLE (YouTube's reading runs on at the new rate from its last
     * delivery, which was at the old one, until the next). */
    this.stepSettles = -Infinity;
    /** Since when (local s) a coarse player has been found beyond COARSE_STEP_BAND, on which
     * side (+1 ahead, -1 behind), at every decision: {side, since}, or null. */
    this.stepSeen = null;
    /** What the last steps' changes of rate cost beyond what their rate closed (s, signed as
     * drift), newest last: from the room's rate of 1 (`one`: Chromium's setback) and from
     * another (`other`) (COARSE_STEP_COST_MAX, COARSE_STEP_COSTS). */
    this.stepCosts = { one: [], other: [] };
    /** What a step costs until one was measured, by the same keys: Chromium's setback from 1. */
    this.stepPrior = { one: setbackFree ? 0 : SYNC.COARSE_STEP_SETBACK, other: 0 };
    /** The last step, until what it cost is learnt: {key, from (drift, s), gain (s/s), startedAt,
     * seconds (once ended)}, or null. */
    this.stepLearn = null;
  }

  /**
   * Decides what the player should do now.
   * @param {object} s
   * @param {number} s.target      where the video should be (s)
   * @param {number} s.actual      where the player is (s)
   * @param {number|null} [s.ceiling] the furthest the player can be by its readings' last jumps
   *   (position.js), or null
   * @param {boolean} s.roomPaused whether the room is paused
   * @param {number} s.baseRate    the room's rate
   * @param {number} s.now         local time (s)
   * @param {boolean} [s.seeking]  the player is still seeking
   * @param {boolean} [s.buffering] the player is waiting for data
   * @param {number} [s.sinceChange] how long after the room's playback last changed this page
   *   heard of it (s, by the server's clock), if known; below 0 when heard before it happens (a
   *   start the server scheduled)
   * @param {boolean} [s.playerResumes] the player was paused while playing and not moved since
   *   (it starts with `resumeLatency`, not `startLatency`)
   * @param {boolean} [s.playerPaused] the player is paused (a due landing may then take the
   *   place where it waits, when that is ahead of the room)
   * @param {number[]|null} [s.rates] the rates a player without fine rate control offers (a
   *   step plays it at one of them: COARSE_STEP_BAND), or null
   * @param {number} [s.clockOffset] the clock estimate `target` was worked out with: the server's
   *   time less the page's (s); its moves are taken out of the drift a rest is read for
   *   (`trackRest`)
   * @param {number} [s.clockSkew] how fast the clock estimate takes the server's clock to gain on
   *   the page's (s/s: ClockEstimator's `skew`)
   * @returns {{play: boolean, rate: number, seekTo: number|null, drift: number, rawDrift: number,
   *   action: string, startIn: number|null}} `startIn`: start the player that many seconds from
   *   now (a landing). `rawDrift`: the drift of the reading itself (`raw`), which a stretching
   *   player's scatters around `drift`, its line; `drift` when the reading is not placed.
   */
  decide({ target, actual, raw = actual, ceiling = null, roomPaused, baseRate, now, seeking = false, buffering = false, sinceChange = Infinity, bufferedTo = null, playerPaused = false, playerResumes = false, rates = null, clockOffset = 0, clockSkew = 0, soundless = false }) {
    this.noteSound(soundless);
    const drift = actual - target;
    const rawDrift = rawDriftOf(raw, target, drift);
    // A reading that cannot be told from its line yet (null) is no moment to let go at.
    const placed = raw !== null;
    const result = (action, rate, seekTo = null, startIn = null) => {
      // A rest is decisions at rest (`trackRest`), one after another: any other ends it.
      if (action !== "none" || rate !== baseRate || roomPaused) this.restLine = null;
      if (rate !== this.currentRate) this.rateSetAt = now;
      this.currentRate = rate;
      return { play: !roomPaused && !this.holding(), rate, seekTo, drift, rawDrift, action, startIn };
    };
    if (roomPaused) this.landing = null;
    if (this.landing) {
      const landed = this.land({ target, actual, raw, ceiling, baseRate, now, seeking, buffering, bufferedTo, playerPaused, result });
      if (landed) return landed;
    }
    if (seeking || buffering) {
      // Measuring now would be wrong: the position is moving under us.
      this.smoothed = null;
      this.setbackDue = null;
      this.rest = null;
      this.endStep(now, true);
      this.stepLearn = null;
      return result("wait", baseRate);
    }
    // A coarse player's step runs for the time it was given (room.js decides again when it ends:
    // `stepLeft`), whatever its readings say meanwhile: they run on at the step's rate from a
    // delivery made at the room's.
    if (this.step) {
      if (now < this.step.endsAt && !roomPaused && !playerPaused) return result("step", this.step.rate);
      this.endStep(now, roomPaused || playerPaused);
      if (!roomPaused && !playerPaused) return result("none", baseRate);
    }
    this.learnRelease(drift, baseRate, now);
    // The first clean measurement once the player moves on after a seek tells how long seeks
    // really take.
    if (this.pendingSeek && !roomPaused) this.seekLanded(drift, baseRate, Number.isFinite(raw) ? raw : null, now);
    if (roomPaused) {
      this.correcting = false;
      this.smoothed = null;
      this.setbackDue = null;
      this.rest = null;
      if (this.forced || Math.abs(drift) > SYNC.PAUSED_TOLERANCE * this.tolerance) {
        this.forced = false;
        return this.seek(target, now, result, 0, baseRate);
      }
      return result("none", baseRate);
    }
    const k = this.tolerance;
    const deadBand = this.deadBand;
    const seekAt = k * (this.fineRate ? SYNC.SEEK_THRESHOLD : SYNC.COARSE_SEEK_THRESHOLD);
    const size = Math.abs(drift);
    // Not on a coarse player's reading while its step settles: it runs on from a delivery made at
    // the step's rate, up to 60 ms off (a joiner's step from 460 ms behind ended 228 ms behind,
    // was read beyond the seek threshold, and its seek landed 384 ms ahead).
    const stepSettling = !this.fineRate && now < this.stepSettles;
    if (((size > seekAt && !stepSettling) || this.forced) && now - this.lastSeekAt >= SYNC.SEEK_COOLDOWN) {
      const due = this.forced;
      this.forced = false;
      this.correcting = false;
      this.smoothed = null;
      this.setbackDue = null;
      this.rest = null;
      if (this.landingOn) {
        this.lastSeekAt = now;
        this.startGrace(now, sinceChange);
        const lead = this.landingLead(target, baseRate, bufferedTo);
        // A landing of this viewer's own (a join, a reconnection, a video loaded late), not one
        // that follows the room's change: its grace may run from its start (`land`).
        const own = !(Number.isFinite(sinceChange) && sinceChange < SYNC.SEEK_GRACE);
        // A due landing whose player waits paused ahead of the room, no further than this landing
        // would seek (a joiner's <video>, which early.js set fetching that far ahead of where the
        // room was), waits there for its moment: its seek is done, and another would decode
        // from the keyframe again. So does one paused where the room will start moving, when it
        // heard of that start before it happens (`sinceChange` < 0: a play is scheduled
        // START_LEAD ahead by the server, and `target` is then behind where the room waits by
        // the time left), however far the next keyframe.
        const latency = playerResumes ? this.resumeLatency : this.startLatency;
        const wait = drift / baseRate - latency;
        const scheduled = Number.isFinite(sinceChange) && sinceChange < 0 ? -sinceChange + SYNC.PAUSED_TOLERANCE : 0;
        if (due && playerPaused && wait >= SYNC.MIN_WAIT && drift <= Math.max(lead.seconds, scheduled) * baseRate) {
          this.landing = { phase: "armed", startAt: now + wait, assumed: latency, from: actual, own, adopted: true, resume: playerResumes };
          return result("arm", startRate(baseRate), null, wait);
        }
        // Paused too near the room to wait, or a little behind it (a joiner whose video could
        // play only once the room had reached its early place; a play heard late): starting at
        // once, the grace's nudge closes that sooner than the landing's seek and wait would
        // (`catchUpLimit`). The start is untimed: measured by how far the player moves.
        if (due && playerPaused && wait < SYNC.MIN_WAIT && -wait <= this.catchUpLimit(lead.seconds, own, baseRate)) {
          // Started already at the rate that closes what it will be behind once moving.
          const rate = baseRate * (1 + clamp(SYNC.GRACE_GAIN * -wait * baseRate, SYNC.START_STRETCH, catchUpCap(own, baseRate)));
          this.landing = { phase: "started", at: now, assumed: latency, untimed: true, from: actual, own, adopted: true, resume: playerResumes, rate };
          return result("start", rate);
        }
        this.landing = { phase: "seeking", issuedAt: now, buffered: lead.buffered, distance: lead.distance, own };
        return result("land", baseRate, target + lead.seconds * baseRate);
      }
      this.startGrace(now, sinceChange);
      return this.seek(target, now, result, this.seekLatency * baseRate, baseRate);
    }
    if (!this.fineRate) {
      // A player started now (room.js starts a paused one when told to play): how long it takes
      // to move is measured, as a landing's untimed start is, so that the room's scheduled
      // starts are called for that much ahead (`coarseStartLead`).
      if (playerPaused && this.landing === null) this.landing = { phase: "started", at: now, assumed: this.coarseStartLead(playerResumes), untimed: true, from: actual, resume: playerResumes, coarse: true };
      // A start the room called for, once moving for COARSE_SETTLE (its reading is then the
      // video's, not the API's run on from the state change) and measured: one seek, ahead by
      // the seek latency, when it came out beyond COARSE_START_BAND. Once: a seek lands some tens
      // of ms off, and another would only stutter again.
      // A player that offers a rate to step at on that side is stepped there instead (below): a
      // seek stutters, and lands some tens of ms off.
      if (this.placing && !playerPaused) {
        this.placing.since ??= now;
        if (this.landing === null && now - this.placing.since >= SYNC.COARSE_SETTLE) {
          this.placing = null;
          if (size > k * SYNC.COARSE_START_BAND && this.stepRateFor(rates, baseRate, drift) === null && now - this.lastSeekAt >= SYNC.SEEK_COOLDOWN) return this.seek(target, now, result, this.seekLatency * baseRate, baseRate);
        }
      }
      // Within the seek threshold only: beyond it (a joiner that started far behind, its seek
      // still in its cooldown) the seek closes it once allowed, as before; a step of a second at
      // most closed 250 ms of 460 and held the seek off.
      const stepped = size <= seekAt ? this.coarseStep({ drift, baseRate, now, rates, playerPaused, result }) : null;
      return stepped ?? result(size > deadBand ? "wait" : "none", baseRate);
    }
    // The room's rate changed: Chromium's player falls back as it starts stretching time (38.5 ms
    // entering 1.25) and moves on leaving it (web/bench/rate.mjs), and a viewer behind a slow link
    // played at the old rate for as long as it took to hear of the change. A grace closes that
    // within the first second, as after a seek; the steady ±2% took 1.6 s for the setback alone.
    if (this.lastBaseRate !== null && baseRate !== this.lastBaseRate) this.startGrace(now, sinceChange);
    this.lastBaseRate = baseRate;
    // Small drifts are steered by their smoothed value; a large one, or any in the first second
    // after a seek (what the landing missed is a clean offset, and smoothing it would overshoot),
    // at once.
    // Soon after a start of this viewer's own, a drift beyond START_STALL (a start that stalled,
    // or one that stalls once started: a joiner 90 ms behind at its start stalled to 188 ms, the
    // seek's grace ended with 79 ms left, and the 2% took 3 s) keeps the larger nudge; it ends for
    // good once within the dead band.
    if (now < this.ownStartEnds && size > SYNC.START_STALL) this.stallGraceEnds = Math.max(this.stallGraceEnds, this.ownStartEnds);
    if (now >= this.stallGraceEnds || size <= deadBand) this.stallGraceEnds = -Infinity;
    const grace = this.inGrace(now);
    // A correction's setback still to show: the readings are taken where it will put them.
    const seen = this.setbackPending(drift, baseRate, now) && this.setbackDue.assumed ? drift - SYNC.SETBACK * baseRate : drift;
    this.smoothed = this.smoothed === null || grace || size > 4 * deadBand ? seen : this.smoothed + SYNC.DRIFT_SMOOTHING * (seen - this.smoothed);
    const steer = Math.abs(this.smoothed);
    // After a seek, what the landing missed is closed down to GRACE_BAND: its correction starts
    // within the grace anyway, and once the rate is off the room's, going on costs nothing. At a
    // room's rate other than 1 the player is stretching time already (Chromium: no setback when
    // its rate moves between two rates other than 1), so the small band holds throughout.
    // At a room's rate of 1, the grace's small band holds only while the player still stretches
    // (a landing's start, a correction under way): once back at 1, starting again would cost the
    // setback, so the dead band then (a 3 ms miss left after a release became 23 ms: bench-sync).
    const band = stretches(baseRate) || (grace && stretches(this.currentRate)) ? k * SYNC.GRACE_BAND : deadBand;
    // A player whose rests drift one way is corrected towards `aim`, on the side it drifts from,
    // and from as far past the room on the side it drifts to (SKEW_AIM); from the dead band on
    // the other side, as any.
    const aim = this.aim(baseRate, now);
    const wasCorrecting = this.correcting;
    const fromAim = Math.abs(this.smoothed - aim);
    this.correcting = fromAim > band || steer > deadBand || (this.correcting && fromAim > k * SYNC.RELEASE_BAND);
    // A correction from the room's rate of 1 opens with Chromium's setback: the drift it is to
    // close is where that sets the player, and the smoothed drift is taken there at once.
    // Smoothed from before it, the drift lagged the step: a player 10 ms ahead was first slowed,
    // set back to 15 ms behind, sped up (a turn), and let go of there when the smoothed drift
    // passed the room, to be corrected again, with the setback once more.
    if (this.correcting && !wasCorrecting && this.paysSetback && !stretches(baseRate) && !stretches(this.currentRate)) {
      this.setbackDue = { at: now, last: now, from: this.smoothed, moved: 0, below: 0, assumed: this.setbackShows };
      if (this.setbackShows) this.smoothed -= SYNC.SETBACK * baseRate;
    }
    // Nor does it end before its setback shows.
    if (this.setbackDue?.assumed) this.correcting = true;
    const off = Math.abs(this.smoothed - aim);
    // A setback-free player resting off the room, looked at once a second (REST_BAND).
    if (this.restOff(drift, baseRate, grace, now)) this.correcting = true;
    // Letting go of a stretched rate for the room's 1 (a correction, a landing's start).
    if (this.releasing(baseRate)) {
      if (placed && this.goodRelease(drift, rawDrift, now, aim)) {
        this.release(drift, rawDrift, now, true, aim);
        return result("none", baseRate);
      }
      if (!this.correcting) {
        this.holdSince ??= now;
        // No good reading yet: hold the rate a while (the line moves on slowly, and the readings
        // scatter around it), then let go within RELEASE_BAND as before, at a reading not below
        // its line (or one whose rest falls within RELEASE_BAND, between decisions:
        // `goodRelease`), or correct back (and then let go as before: the wait runs once per
        // release). At any reading only at RELEASE_GIVE_UP.
        const held = now - this.holdSince;
        if (held < SYNC.RELEASE_WAIT && Math.abs(drift - aim) <= k * SYNC.GRACE_BAND) return result("nudge", this.currentRate);
        if (off > k * SYNC.RELEASE_BAND) {
          this.correcting = true;
        } else if ((placed && above(drift, rawDrift)) || held >= SYNC.RELEASE_GIVE_UP) {
          this.release(drift, rawDrift, now, placed, aim);
          return result("none", baseRate);
        } else {
          return result("nudge", this.currentRate);
        }
      }
    }
    if (!this.correcting) {
      // Straight from a rate far off 1 (the room's was 1.25) to 1, Chromium's position jumps
      // (+26.7 ms from 1.25); from just off 1 it moves a few ms (web/bench/rate.mjs). So one
      // decision just off 1 on the same side first.
      if (!stretches(baseRate) && this.farFrom(baseRate)) return result("nudge", baseRate * (1 + Math.sign(this.currentRate - baseRate) * SYNC.START_STRETCH));
      this.trackRest({ drift, baseRate, grace, now, clockOffset, clockSkew });
      return result("none", baseRate);
    }
    const cap = grace ? this.graceCap(baseRate) : SYNC.STEADY_MAX_NUDGE;
    let nudge = clamp(-(grace ? SYNC.GRACE_GAIN : SYNC.GAIN) * (this.smoothed - aim), -cap, cap);
    // From rate 1, never so little that Chromium plays it as 1 (and pays the setback once more
    // when the nudge grows again).
    if (!stretches(baseRate) && Math.abs(nudge) < SYNC.START_STRETCH) nudge = Math.sign(nudge || 1) * SYNC.START_STRETCH;
    let rate = baseRate * (1 + nudge);
    if (Math.abs(rate - this.currentRate) < SYNC.RATE_STEP) rate = this.currentRate;
    if (this.rateChangeCost) rate = this.heldRate(rate, baseRate, now);
    return result("nudge", rate);
  }

  /** Sets what follows from the player's clock: `setbackFree` (its position does not fall back
   * when its rate leaves 1: Gecko's, and a video without sound where a change of rate costs
   * nothing else, as in Chromium, whose clock is then the page's own, with no time stretcher:
   * web/bench/rate.mjs SILENT=1), `skewAware` (its rests are read for a steady drift, SKEW_AIM:
   * any left within the dead band at rest, so not a setback-free one, whose rests are corrected
   * from REST_BAND) and `paysSetback` (leaving the room's rate of 1 sets it back SETBACK:
   * Chromium's, not a setback-free player's, nor one whose every change of rate costs it:
   * WebKitGTK's). */
  clockTraits() {
    this.setbackFree = this.browserSetbackFree || (this.fineRate && this.soundless && !this.rateChangeCost);
    this.skewAware = this.fineRate && !this.setbackFree;
    this.paysSetback = this.fineRate && !this.setbackFree && !this.rateChangeCost;
  }

  /** Tells the controller whether its player's video is known to have no sound (`soundless`:
   * room.js, at every decision). What was under way for the other clock is dropped: a setback
   * due, a rest being read. (What its rests' drift was read as is kept for the next item.) */
  noteSound(soundless) {
    if (soundless === this.soundless) return;
    this.soundless = soundless;
    this.clockTraits();
    this.setbackDue = null;
    this.setbackShows = true;
    this.rest = null;
    this.restLine = null;
  }

  /** The rate a correction sets, `rate`, or the one it set before (`currentRate`) while that is
   * to be held: on a player whose changes of rate cost it (`rateChangeCost`), a correction under
   * way in the same direction keeps its rate for RATE_HOLD, and then until its nudge would at
   * least double or halve (RATE_CHANGE_RATIO). Leaving the room's rate and turning are not held. */
  heldRate(rate, baseRate, now) {
    const held = this.currentRate - baseRate;
    const wanted = rate - baseRate;
    if (held === 0 || Math.sign(held) !== Math.sign(wanted)) return rate;
    if (now - this.rateSetAt < SYNC.RATE_HOLD) return this.currentRate;
    const ratio = Math.abs(wanted / held);
    return ratio >= SYNC.RATE_CHANGE_RATIO || ratio <= 1 / SYNC.RATE_CHANGE_RATIO ? rate : this.currentRate;
  }

  /** Whether a setback-free player at rest at the room's rate of 1 rests off it: at the end of
   * each REST_WINDOW of its decisions there (not in a grace, nor stretching), the mean of the
   * middle half of their drifts beyond REST_BAND. The window starts over after each, and
   * whenever the player leaves its rest. */
  restOff(drift, baseRate, grace, now) {
    if (!this.setbackFree || grace || this.correcting || stretches(baseRate) || stretches(this.currentRate)) {
      this.rest = null;
      return false;
    }
    this.rest ??= { since: now, drifts: [] };
    // room.js decides every 100 ms at rest; the window keeps at most 100 decisions all the same.
    if (this.rest.drifts.length < 100) this.rest.drifts.push(drift);
    if (now - this.rest.since < SYNC.REST_WINDOW) return false;
    const off = Math.abs(midMean(this.rest.drifts)) > this.tolerance * SYNC.REST_BAND;
    this.rest = null;
    return off;
  }

  /** The grace's largest nudge at the room's rate `baseRate`: CATCH_UP_MAX_NUDGE with the room at
   * 1, or for a setback-free player at any rate; MAX_NUDGE for another player at another rate
   * (Chromium caught up from 1.875 overshot). */
  graceCap(baseRate) {
    return this.setbackFree || !stretches(baseRate) ? SYNC.CATCH_UP_MAX_NUDGE : SYNC.MAX_NUDGE;
  }

  /** Whether the player's rate is further from the room's than a correction sets it (the room's
   * rate just changed). */
  farFrom(baseRate) {
    return Math.abs(this.currentRate - baseRate) > SYNC.STEADY_MAX_NUDGE * baseRate;
  }

  /** Whether the player is stretching time near the room's rate of 1, to be let go of at a good
   * reading (a correction, or a landing's start once measured). */
  releasing(baseRate) {
    return !this.landing && !this.setbackDue?.assumed && !stretches(baseRate) && stretches(this.currentRate) && !this.farFrom(baseRate);
  }

  /** Whether the setback the correction under way opened with (`setbackDue`) is still to show at
   * a decision `drift` (s) off the room, at local time `now`: not once the drift has been half of
   * it below where the correction started, beyond what its rates moved it, at two decisions in a
   * row (it showed; one may be a reading's scatter), nor SETBACK_SHOWS after the start (it did
   * not: `setbackShows`), nor once the player is back at 1 or the room's rate is not 1 (nothing
   * is learnt then). */
  setbackPending(drift, baseRate, now) {
    const due = this.setbackDue;
    if (!due) return false;
    due.moved += (this.currentRate - baseRate) * (now - due.last);
    due.last = now;
    if (!stretches(this.currentRate) || stretches(baseRate)) {
      this.setbackDue = null;
      return false;
    }
    due.below = drift <= due.from + due.moved - (SYNC.SETBACK * baseRate) / 2 ? due.below + 1 : 0;
    if (due.below >= 2) {
      this.setbackShows = true;
      this.setbackDue = null;
    } else if (due.below === 0 && now - due.at >= SYNC.SETBACK_SHOWS) {
      this.setbackShows = false;
      this.setbackDue = null;
    }
    // A reading that shows it is taken as it is.
    return this.setbackDue !== null && due.below === 0;
  }

  /** Whether letting go now (local time `now`, s) rests the player on the room, or `aim` off it:
   * a reading above its line (by RELEASE_ABOVE: below it, Chromium rests 10 ms further), whose
   * rest is within RELEASE_AIM of that (RELEASE_BAND once the release has waited RELEASE_WAIT),
   * the line within GRACE_BAND of it, or below it by as much more as the learnt jump lies above
   * -RELEASE_ABOVE. */
  goodRelease(drift, rawDrift, now, aim = 0) {
    const k = this.tolerance;
    const waited = this.holdSince !== null && now - this.holdSince >= SYNC.RELEASE_WAIT;
    const jump = this.restJump(drift, rawDrift);
    const rest = rawDrift + jump;
    // A reading RELEASE_ABOVE over its line rests on the aim with the line jump + RELEASE_ABOVE
    // below it: with Chromium's usual jump (-3 ms), within GRACE_BAND. Jumps learnt over 10
    // minutes ended between -2.5 and +1.1 ms (bench-sync's drifting sound cards), and a line
    // bound to GRACE_BAND then left a window of 0-1 ms, or none: the line passed the aim with no
    // good reading, and the correction turned.
    const reach = k * SYNC.GRACE_BAND + Math.max(0, jump + SYNC.RELEASE_ABOVE);
    return above(drift, rawDrift) && Math.abs(rest - aim) <= k * (waited ? SYNC.RELEASE_BAND : SYNC.RELEASE_AIM) && Math.abs(drift - aim) <= reach;
  }

  /** Where a correction at the room's rate `baseRate` aims to rest the player (s off the room, at
   * local time `now`): SKEW_AIM times the dead band on the side its rests drift from, once they
   * show a steady drift (`restSkew`); the room itself in a grace (a landing aims at the room), at
   * another rate (the player stretches time, and is kept within GRACE_BAND), or with no drift. */
  aim(baseRate, now) {
    if (!this.skewAware || this.restSkew === 0 || stretches(baseRate) || this.inGrace(now)) return 0;
    return -Math.sign(this.restSkew) * SYNC.SKEW_AIM * this.deadBand;
  }

  /** One decision at rest at the room's rate (`baseRate`) `drift` (s) off it, at local time `now`:
   * it adds to the rest under way, whose drifts are averaged SKEW_BUCKET at a time; once the last
   * SKEW_BUCKETS of those averages span SKEW_SPAN, the line fitted through them says how fast this
   * player drifts (`restSkew`), unless one of them lies off it by more than SKEW_SCATTER (the
   * player stalled: no line) or it is beyond belief (SKEW_MAX). In a grace, or at another rate
   * than 1, there is no rest to read.
   * What is read is how the player drifts from the page's clock, and from that, how the server's
   * clock gains on the page's by the clock estimate's fitted skew (`clockSkew`): the player's
   * drift less the estimate's own moves (`clockOffset`), which behind a jittery link wander a few
   * ms a minute, one way for minutes at a time, and come back (bench-sync's soak behind the
   * delays, 80 and 150 ms links: read as 21-28 ppm where the sound ran on the machine's clock). */
  trackRest({ drift, baseRate, grace, now, clockOffset = 0, clockSkew = 0 }) {
    if (!this.skewAware || grace || stretches(baseRate) || this.landing !== null || this.pendingSeek !== null) {
      this.restLine = null;
      return;
    }
    const r = (this.restLine ??= { since: now, from: null, offset: null, sum: 0, n: 0, buckets: [] });
    // Its first second holds the release's jump.
    if (now - r.since < SYNC.SKEW_SETTLE) return;
    r.from ??= now;
    // (The target moves on by the rate times the estimate's move. From the rest's first estimate:
    // the offset is the epoch's, a billion seconds and more.)
    const offset = Number.isFinite(clockOffset) ? clockOffset : 0;
    r.offset ??= offset;
    r.sum += drift + baseRate * (offset - r.offset);
    r.n += 1;
    if (now - r.from < SYNC.SKEW_BUCKET) return;
    r.buckets.push({ t: (r.from + now) / 2, drift: r.sum / r.n });
    if (r.buckets.length > SYNC.SKEW_BUCKETS) r.buckets.shift();
    r.from = now;
    r.sum = 0;
    r.n = 0;
    const bs = r.buckets;
    if (bs.length < 3 || bs[bs.length - 1].t - bs[0].t < SYNC.SKEW_SPAN - SYNC.SKEW_BUCKET) return;
    const n = bs.length;
    const mt = bs.reduce((a, b) => a + b.t, 0) / n;
    const md = bs.reduce((a, b) => a + b.drift, 0) / n;
    const sxx = bs.reduce((a, b) => a + (b.t - mt) ** 2, 0);
    const slope = bs.reduce((a, b) => a + (b.t - mt) * (b.drift - md), 0) / sxx;
    const residuals = bs.map((b) => b.drift - md - slope * (b.t - mt));
    if (!(sxx > 0) || residuals.some((x) => Math.abs(x) > SYNC.SKEW_SCATTER) || Math.abs(slope) > SYNC.SKEW_MAX) return;
    const error = Math.sqrt(residuals.reduce((a, x) => a + x * x, 0) / (n - 2) / sxx);
    const skew = slope - baseRate * (Number.isFinite(clockSkew) ? clockSkew : 0);
    // A drift the line clearly shows is taken; one it clearly rules out (below SKEW_MIN however
    // far off the line's slope may be) is none; one it can neither show nor rule out leaves
    // what was read before: a +50 ppm viewer's rest, 30 s of averages once let go of, read as
    // none at times, and its next correction aimed at the room (bench-sync, SYNC_SOUND_SKEW).
    const margin = SYNC.SKEW_SIGNIFICANCE * error;
    if (Math.abs(skew) >= SYNC.SKEW_MIN && Math.abs(slope) >= margin) this.restSkew = skew;
    else if (Math.abs(skew) + margin < SYNC.SKEW_MIN) this.restSkew = 0;
  }

  /** Which way the player stretches time from the room's rate of 1: +1 faster, -1 slower. */
  stretchDirection() {
    return Math.sign(this.currentRate - 1);
  }

  /**
   * Between decisions, on each reading of a stretching player (html5.js reads it every 12-18 ms,
   * the decisions come every 100 ms): the room's rate to set now if this is a good moment to let
   * go (`goodRelease`), otherwise null. Same arguments as `decide`.
   */
  releaseNow({ target, actual, raw = actual, baseRate, now }) {
    if (!this.releasing(baseRate) || raw === null) return null;
    const drift = actual - target;
    const rawDrift = rawDriftOf(raw, target, drift);
    const aim = this.aim(baseRate, now);
    if (!this.goodRelease(drift, rawDrift, now, aim)) return null;
    this.release(drift, rawDrift, now, true, aim);
    this.currentRate = baseRate;
    return baseRate;
  }

  /** Lets go of a stretched rate (the caller sets the room's, 1), at a reading `rawDrift` off the
   * room (its line `drift` off; `placed`: false when the reading could not be told from it), to
   * rest `aim` off it (`aim`). */
  release(drift, rawDrift, now, placed = true, aim = 0) {
    this.correcting = false;
    this.holdSince = null;
    // Only a release above the line teaches the jump (below it, Chromium adds 10 ms).
    const upper = placed && above(drift, rawDrift);
    // ...and there the player comes to rest at the reading plus that jump: the smoothed drift is
    // taken there, not left trailing the line by what the rate moved it over the last decisions
    // (at 1.3% that was 10 ms, read at the next decision as a drift to correct again).
    if (upper && this.smoothed !== null) this.smoothed = rawDrift + this.restJump(drift, rawDrift);
    this.released = { at: now, raw: rawDrift, upper, dir: this.stretchDirection(), aim };
  }

  /** What letting go now at a reading `rawDrift` (its line `drift`) adds to it, as the player
   * rests (s): the learnt jump in the direction it stretches, none without sound (nothing moves
   * the player as its rate goes back to 1). */
  restJump(drift, rawDrift) {
    return this.soundless ? 0 : this.releaseJump(rawDrift !== drift, this.stretchDirection());
  }

  /** What a release from a stretch in direction `dir` (+1, -1; 0: either) adds to the reading it
   * let go at (s): the median of the recent ones in that direction (of an even number, the mean of
   * the middle two) once RELEASE_MIN_SAMPLES were measured, else of the recent ones in either
   * direction; until there are that many, what an earlier page learnt (`releasePrior`), or
   * RELEASE_JUMP_SCATTERED for a player whose readings scatter around its line (`scattered`),
   * or 0. */
  releaseJump(scattered = false, dir = 0) {
    const min = Math.max(1, SYNC.RELEASE_MIN_SAMPLES);
    const same = this.releaseJumps.filter((r) => r.dir === dir);
    const xs = (same.length >= min ? same : this.releaseJumps).map((r) => r.jump).sort((a, b) => a - b);
    if (xs.length < min) return this.releasePrior ?? (scattered ? SYNC.RELEASE_JUMP_SCATTERED : 0);
    const mid = xs.length / 2;
    return xs.length % 2 ? xs[Math.floor(mid)] : (xs[mid - 1] + xs[mid]) / 2;
  }

  /** Whether the release constant is known (measured here, or kept from an earlier page). */
  releaseKnown() {
    return this.releaseJumps.length >= SYNC.RELEASE_MIN_SAMPLES || this.releasePrior != null;
  }

  /** The rest of the last release, read on a clean decision at the room's rate of 1 (`drift`).
   * Not a soundless player's: nothing moves it as it lets go (`goodRelease`), and what a player
   * with sound learnt is kept for the next item. */
  learnRelease(drift, baseRate, now) {
    const r = this.released;
    if (!r || now - r.at < SYNC.RELEASE_MEASURE_AFTER) return;
    this.released = null;
    if (this.soundless || !r.upper || now - r.at > SYNC.RELEASE_MEASURED_BY || stretches(baseRate) || this.currentRate !== baseRate) return;
    const jump = drift - r.raw;
    if (Math.abs(jump) > SYNC.RELEASE_MAX_JUMP) return;
    this.releaseJumps.push({ jump, dir: r.dir });
    // The last RELEASE_SAMPLES of each direction.
    if (this.releaseJumps.filter((x) => x.dir === r.dir).length > SYNC.RELEASE_SAMPLES) {
      this.releaseJumps.splice(this.releaseJumps.findIndex((x) => x.dir === r.dir), 1);
    }
  }

  /**
   * The room's playback changed (a seek, play, pause or rate change): a new target, so the seek
   * cooldown (one seek per drift) starts over, and a landing or seek in flight measures nothing
   * (the target moved under it). Without this a user's seek within SEEK_COOLDOWN of a viewer's
   * own landing (say, right after joining) was followed only by nudges until the cooldown ended.
   */
  roomChanged() {
    this.forced = false;
    this.step = null;
    this.stepSeen = null;
    this.stepLearn = null;
    this.released = null;
    this.holdSince = null;
    this.lastSeekAt = -Infinity;
    this.graceEnds = -Infinity;
    this.stallGraceEnds = -Infinity;
    this.ownStartEnds = -Infinity;
    this.landing = null;
    this.pendingSeek = null;
    this.placing = null;
    this.correcting = false;
    this.smoothed = null;
    this.setbackDue = null;
    this.rest = null;
    this.restLine = null;
  }

  /** The room started playing while this player was paused where the room is (a play after a
   * pause, an item's start): land, that is, seek ahead and start on time. Started at once, the
   * player would be behind by how late it heard of the play plus its start latency (100-250 ms on
   * bench-sync's links), and the steady ±2% takes seconds to close that. Players that cannot land
   * start at once, and are placed once moving, by one seek if need be (COARSE_START_BAND).
   * Call after `roomChanged`. */
  roomStarted() {
    if (this.landingOn) this.forced = true;
    else if (!this.fineRate) this.placing = { since: null };
  }

  /** Forgets any correction under way and allows a seek at once (the user's "Resync"). */
  resync() {
    this.roomChanged();
    this.forced = true;
  }

  /** Keeps what `other` learnt of this browser's seek and start latencies (same kind of player);
   * returns this. */
  learntFrom(other) {
    if (other && other.fineRate === this.fineRate) {
      this.seekLatency = other.seekLatency;
      this.bufferedSeekLatency = other.bufferedSeekLatency ?? SYNC.INITIAL_BUFFERED_SEEK_LATENCY;
      this.decodeCost = other.decodeCost ?? SYNC.INITIAL_DECODE_COST;
      // An assumption is not learnt: this one's own stands (INITIAL_QUICK_START_LATENCY).
      if (other.startMeasured ?? true) this.startLatency = other.startLatency;
      this.resumeLatency = other.resumeLatency ?? SYNC.INITIAL_RESUME_LATENCY;
      this.resumeMeasured = other.resumeMeasured ?? false;
      this.releaseJumps = [...(other.releaseJumps ?? [])];
      this.releasePrior = other.releasePrior ?? null;
      this.stepCosts = { one: [...(other.stepCosts?.one ?? [])], other: [...(other.stepCosts?.other ?? [])] };
      // The drift of this page's rests (its sound card's), not kept across pages: the next page
      // may play on another card, and reads it again within SKEW_SPAN.
      this.restSkew = Number.isFinite(other.restSkew) && this.skewAware ? other.restSkew : 0;
      // A record kept from an earlier page is a measurement.
      this.startMeasured = other.startMeasured ?? true;
    }
    return this;
  }

  /** How long the larger nudge may still be set (s from `now`; 0 when not): room.js decides again
   * then, so that a rate set by the last tick of the grace is not held until the next tick, which
   * on a page whose CPU is slowed 4x came late enough to keep -3.65% past the first second after
   * the user's seek (bench-sync). */
  graceLeft(now) {
    return Math.max(0, this.graceEnds - now);
  }

  /** Whether a landing's start waits to be measured (room.js decides more often meanwhile). Not a
   * YouTube player's start: that is measured COARSE_SETTLE after, whatever the decisions between. */
  starting() {
    return this.landing?.phase === "started" && !this.landing.coarse;
  }

  /** Whether a player `drift` (s) from the room is in sync, as the page tells its viewer: within
   * IN_SYNC, or within the band this player is kept to when that is wider. A YouTube player is
   * not seeked within a quarter second (fixed rates: steps at them close that, seconds apart),
   * and "Catching up" there went on for as long as the item played (a viewer 58 ms off for good,
   * before its steps). */
  inSync(drift) {
    return Math.abs(drift) <= Math.max(SYNC.IN_SYNC, this.deadBand);
  }

  /** Drift this player is left alone within at rest (s): DEAD_BAND, or COARSE_DEAD_BAND for a
   * player without fine rate control, widened by the viewer's tolerance. */
  get deadBand() {
    return this.tolerance * (this.fineRate ? SYNC.DEAD_BAND : SYNC.COARSE_DEAD_BAND);
  }

  /** Whether a start or a seek while playing waits to be measured: the room moving, not this
   * player keeping up with it (room.js leaves such samples out of its sync reports). A YouTube
   * player's are measured COARSE_SETTLE after, and its reading meanwhile is the API's, run on
   * from before its video moved. */
  settling() {
    return this.landing?.phase === "started" || (this.pendingSeek !== null && this.pendingSeek.lead !== 0) || this.placing !== null;
  }

  /** Whether a sample at local time `now` (s) counts in this viewer's sync reports (room.js):
   * not while a start or a seek waits to be measured (`settling`), nor while the grace's larger
   * nudge may close what a seek, a start or the room's change of rate missed (at most SEEK_GRACE
   * from a seek, STALL_GRACE from a start of the viewer's own). Those are the room moving, as the
   * issue's aims and bench-sync count them (the rate may leave ±2% in the first second after a
   * seek), not this viewer keeping up with it: a joiner whose first start came out 60 ms late
   * closed that within 0.3 s, and its first report, 1.5 s of samples, said ±73 ms for 5 s. */
  reportable(now) {
    return !this.settling() && !this.inGrace(now) && this.step === null && now >= this.stepSettles;
  }

  /** Whether the grace's larger nudge may close what a seek, the room's change of rate or a start
   * of this viewer's own that stalled missed, at local time `now` (s): `decide` steers by it,
   * and `reportable` leaves its samples out. */
  inGrace(now) {
    return now < this.graceEnds || now < this.stallGraceEnds;
  }

  /** Whether a landing holds the player paused (seeking ahead, or waiting for its moment), or one
   * is due (`forced`: a player waiting for data is not started before it lands). */
  holding() {
    return (this.landing !== null && this.landing.phase !== "started") || (this.forced && this.landingOn);
  }

  /**
   * The landing's next step, or null to decide as usual. While seeking: hold. Once the seek is
   * done: learn how long it took, and arm the start for the moment the room reaches the frame
   * (`startIn`, s: the caller starts the player then), or start now when that moment has passed.
   * Armed: hold until then. Started: learn the start latency from the first clean reading.
   */
  land({ target, actual, raw = actual, ceiling = null, baseRate, now, seeking, buffering, bufferedTo = null, playerPaused = false, result }) {
    const l = this.landing;
    if (l.phase === "seeking") {
      // A paused player may not buffer ahead: after MAX_SEEK_LATENCY, start it anyway.
      if (seeking || (buffering && now - l.issuedAt < SYNC.MAX_SEEK_LATENCY)) return result("wait", baseRate);
      this.learnSeek(clamp(now - l.issuedAt, 0, SYNC.MAX_SEEK_LATENCY), l.buffered, l.distance);
      const wait = (actual - target) / baseRate - this.startLatency;
      if (wait >= SYNC.MIN_WAIT) {
        this.landing = { phase: "armed", startAt: now + wait, assumed: this.startLatency, from: actual, own: l.own };
        return result("arm", startRate(baseRate), null, wait);
      }
      // A landing after the room's change whose seek outlasted its lead by more than what is
      // left of the grace could close (an unbuffered seek in Firefox, four viewers on two cores:
      // 357 ms behind at its start) lands once more at once, with the latency just learnt and,
      // usually, within what that seek buffered, rather than after SEEK_COOLDOWN with 2% until
      // then (within 20 ms 2.6 s after the user's seek). Once per landing; a landing of the
      // viewer's own has the larger catch-up for longer (STALL_GRACE). What the grace could close
      // is at its own cap (`graceCap`): at MAX_NUDGE where it may nudge twice that, a landing
      // that started 46-116 ms behind landed once more where the rate alone was within 20 ms as
      // soon or sooner (web/test/unit/sync.test.js).
      const behind = -wait * baseRate;
      const closable = Math.max(0, this.graceEnds - now - this.startLatency) * this.graceCap(baseRate) * baseRate;
      if (!l.own && !l.relanded && behind > closable + SYNC.DEAD_BAND * this.tolerance) {
        this.lastSeekAt = now;
        const lead = this.landingLead(target, baseRate, bufferedTo);
        this.landing = { phase: "seeking", issuedAt: now, buffered: lead.buffered, distance: lead.distance, own: false, relanded: true };
        return result("land", baseRate, target + lead.seconds * baseRate);
      }
      // The seek took longer than the lead: start now (stretched, as a timed start is); the rate
      // (or, further behind than a join's catch-up closes, one more landing after the cooldown)
      // closes the rest, and a start well ahead (a browser that starts sooner than assumed) is
      // held once more.
      this.landing = { phase: "started", at: now, assumed: this.startLatency, untimed: true, from: actual, own: l.own };
      return result("start", startRate(baseRate));
    }
    if (l.phase === "armed") {
      if (now >= l.startAt - SYNC.START_TIMER_SLACK) {
        this.startTimerLate = now - l.startAt;
        this.landing = { phase: "started", at: Math.min(now, l.startAt), assumed: l.assumed, again: l.again, from: l.from, own: l.own, resume: l.resume };
        return result("start", startRate(baseRate));
      }
      // The room moved meanwhile (a seek, a rate change): this landing is for the wrong place.
      const expected = (l.startAt - now + l.assumed) * baseRate;
      if (Math.abs(actual - target - expected) > SYNC.SEEK_THRESHOLD / 3) {
        this.landing = null;
        this.lastSeekAt = -Infinity;
        this.graceEnds = -Infinity;
        return null;
      }
      return result("armed", startRate(baseRate));
    }
    // Started: the first clean reading once it moves (or after START_SETTLE) says how late the
    // position began to move; until then the start's rate, so that the reading is of the start
    // alone.
    if (seeking || buffering) return null;
    const rate = l.coarse ? baseRate : (l.rate ?? startRate(baseRate));
    // Moving at about its rate since the reading before; a resume, over the last two readings'
    // intervals: a resuming Chromium player jumps ~100 ms ahead and holds there first
    // (INITIAL_RESUME_LATENCY), and the jump's tail (84 then 100 ms ahead 20 ms later) passed for
    // one interval at its rate. (Not for every start: a stretching Chromium player's readings
    // scatter by a few ms, two intervals in a row at its rate came seldom, and its starts were
    // measured 40 ms later, by START_SETTLE, closing what they missed that much later.)
    // A stretching Chromium player's line is the mean of its last readings each carried on at the
    // rate (position.js), so it moves on at about the rate while the readings still hold: taken
    // for the start, 40-70 ms ahead, a start was held once more and came out 45-70 ms behind
    // (bench-sync, behind the delays: a resume after its jump, a landing after its seek). So the
    // position has moved only once the reading itself has (one not yet placed against its line
    // has not), and a resume, whose reading jumps, is measured by its readings altogether.
    const placedReading = Number.isFinite(raw) ? raw : null;
    const reading = l.resume ? placedReading : actual;
    const readings = reading === null ? [] : [...(l.readings ?? []), { now, actual: reading }].slice(l.resume ? -3 : -2);
    l.readings = readings;
    const atRate = (a, b) => b.now - a.now > 0 && Math.abs((b.actual - a.actual) / (b.now - a.now) - rate) <= SYNC.START_RATE_SLACK * rate;
    const intervals = readings.slice(1).map((r, i) => atRate(readings[i], r));
    const moved = placedReading !== null && placedReading - l.from >= SYNC.START_MOVED;
    const moving = intervals.length === (l.resume ? 2 : 1) && intervals.every(Boolean) && moved;
    if (l.coarse && (!moving || now - l.at < SYNC.COARSE_SETTLE)) {
      // Not learnt from a player that did not move (blocked, buffering): given up after a while.
      if (!moving && now - l.at >= SYNC.COARSE_START_WAIT) this.landing = null;
      return null;
    }
    // A quick starter's (Firefox's) timed start that came out late: its currentTime held ~70 ms
    // after play() where it moves after 3-20 ms, in 4 of 156 joiners of bench-sync, and such a
    // start was measured only at START_SETTLE (its readings are placed, and pass the test above,
    // only once its reader has seen three of its 40 ms steps: 0.12 s or more after it moved), 0.2
    // s into the 0.23-0.38 s it then took to be within 20 ms. Once its reading has moved on past
    // where it waited, the position is at most its last step carried on (`ceiling`, within a
    // reading's interval of it); when even that is START_LATE behind the room, the start is
    // measured there and then, by that ceiling: it came out at least that late.
    const early = now - l.at < SYNC.START_SETTLE && !moving;
    const cameLate = early && this.quickStart && !l.untimed && !l.resume && ceiling !== null && ceiling - l.from >= SYNC.START_MOVED && ceiling - target < -SYNC.START_LATE * baseRate;
    if (early && !cameLate) return result("start", rate);
    this.landing = null;
    // A player still paused then never started: its browser holds the start (Firefox holds a
    // tab's media until the tab has first been in front; play() refused). Nothing is learnt from
    // it: a Firefox tab opened behind learnt a start 0.22 s late, and its first start once shown
    // came out 0.2 s ahead and was held once more (web/bench/background.mjs, OPENED=background).
    if (playerPaused && !moving) return null;
    // How this start was measured, for bench-sync and the browser tests to tell.
    this.startMeasuredBy = cameLate ? "ceiling" : moving ? "moving" : "settle";
    const position = cameLate ? ceiling : (reading ?? actual);
    const drift = position - target;
    // A timed start: how far off it came out, given the latency it was timed with (less what the
    // stretched rate added since the position began to move). An untimed one: how far the
    // position moved since the start, from where the player waited paused.
    const stretched = (rate - baseRate) * Math.max(0, now - l.at - l.assumed);
    const late = l.untimed ? now - l.at - (position - l.from) / rate : l.assumed - (drift - stretched) / baseRate;
    const measured = clamp(late, 0, SYNC.MAX_START_LATENCY);
    // Well ahead (below): the latency it was timed with was too long by more than HOLD_AHEAD.
    const ahead = !l.coarse && !l.again && drift > SYNC.HOLD_AHEAD * this.tolerance;
    // The first measurement replaces the assumption; later ones are smoothed, except one that
    // came out well ahead, which replaces it too: Firefox's first start (its pipeline cold) took
    // 0.18 s and its later ones 5-10 ms, and smoothed, each of its next three starts came out
    // well ahead again and was held once more (bench-sync), some of them coming out of the hold
    // 38-122 ms behind.
    if (l.resume) {
      this.resumeLatency = this.resumeMeasured && !ahead ? this.resumeLatency + SYNC.LATENCY_SMOOTHING * (measured - this.resumeLatency) : measured;
      this.resumeMeasured = true;
    } else {
      this.startLatency = this.startMeasured && !ahead ? this.startLatency + SYNC.LATENCY_SMOOTHING * (measured - this.startLatency) : measured;
      this.startMeasured = true;
    }
    // A start of this viewer's own that stalled well past its latency (a page short of CPU), or
    // that stalls soon after: the grace, counted from the seek, ended with much of the stall still
    // to close, and the steady 2% then took seconds (bench-sync: 75 ms in 2.4 s). For STALL_GRACE
    // from here, a drift beyond START_STALL keeps the larger nudge until within the dead band
    // (`decide`). After the room's change it still ends within that change's first second (the
    // graceEnds above).
    if (l.own) this.ownStartEnds = now + SYNC.STALL_GRACE;
    if (l.coarse) return null;
    // Well ahead: this browser starts sooner than assumed (a first landing, before any start was
    // measured). Paused, the player is held once more until the room reaches it, and started
    // with the latency just measured; a player behind cannot be held, and the rate closes that.
    // It then resumes where it is paused: with a resume's latency, or, until one was measured,
    // the one just measured when that is less (Firefox's starts move 3-7 ms after play()).
    if (ahead) {
      const latency = this.resumeMeasured ? this.resumeLatency : Math.min(measured, this.resumeLatency);
      const wait = drift / baseRate - latency;
      if (wait >= SYNC.MIN_WAIT) {
        this.landing = { phase: "armed", startAt: now + wait, assumed: latency, again: true, from: actual, own: l.own, resume: true };
        return result("arm", startRate(baseRate), null, wait);
      }
    }
    return null;
  }

  /** The item's keyframe times (s; any order; an array, or another controller's `keyframes`), or
   * null when they are not known: landings then plan for the seek time learnt on average. */
  setKeyframes(times) {
    const list = Array.isArray(times) || ArrayBuffer.isView(times) ? Array.from(times) : [];
    const kept = list.filter((t) => Number.isFinite(t) && t >= 0);
    this.keyframes = kept.length ? Float64Array.from(kept).sort() : null;
  }

  /** A landing's seek took `took` s (`buffered`: within the player's buffer; `distance`: its
   * point's distance from the keyframe before it, s, or null when not known). */
  learnSeek(took, buffered, distance) {
    const base = buffered ? this.bufferedSeekLatency : this.seekLatency;
    let onKeyframe = took;
    if (distance !== null && distance !== undefined) {
      if (distance >= SYNC.DECODE_MIN_DISTANCE) {
        // Far from its keyframe: what it took beyond a seek on one is decoding.
        const cost = clamp((took - base) / distance, 0, SYNC.MAX_DECODE_COST);
        this.decodeCost += SYNC.LATENCY_SMOOTHING * (cost - this.decodeCost);
        return;
      }
      onKeyframe = Math.max(0, took - this.decodeCost * distance);
    }
    const learnt = base + SYNC.LATENCY_SMOOTHING * (onKeyframe - base);
    if (buffered) this.bufferedSeekLatency = learnt;
    else this.seekLatency = learnt;
  }

  /** A seek that fetched took `took` s before any landing's (the first seek of the <video>
   * early.js set fetching, to `point`): this player's seek time from then on, while that is still
   * the one assumed (INITIAL_SEEK_LATENCY). Fresh Firefox joiners' landings whose point was not
   * buffered led by 0.305 s, seeked in 0.01-0.14 s, then waited 0.22-0.30 s for the room; timed
   * so, 0.09-0.23 s (bench-sync). Less the decoding from the keyframe before `point` when the
   * keyframes are known, and no less than a seek within the buffer takes. */
  firstSeekTimed(took, point) {
    if (this.seekLatency !== SYNC.INITIAL_SEEK_LATENCY || !Number.isFinite(took) || took < 0) return;
    const decoding = this.keyframes && Number.isFinite(point) ? this.decodeCost * this.distanceAt(point) : 0;
    this.seekLatency = clamp(took - decoding, this.bufferedSeekLatency, SYNC.MAX_SEEK_LATENCY);
  }

  /** How far ahead of the room (s of the room's time) a landing seeks, whether that point is
   * buffered (`bufferedTo`: the end of the player's buffered stretch holding `target`, or null),
   * and its distance from the keyframe before it (null when the keyframes are not known). */
  landingLead(target, baseRate, bufferedTo) {
    const preroll = this.seekPreroll ? SYNC.SEEK_PREROLL : 0;
    const withinBuffer = this.startLatency + SYNC.BUFFERED_LANDING_LEAD + SYNC.LANDING_LATENCY_FACTOR * this.bufferedSeekLatency + preroll;
    const bufferedLead = this.plan(target, baseRate, withinBuffer);
    if (bufferedTo !== null && bufferedTo >= target + (bufferedLead.seconds + SYNC.BUFFERED_AHEAD) * baseRate) {
      return { ...bufferedLead, buffered: true };
    }
    // A seek that fetches is planned no shorter than one within the buffer: a seek time learnt
    // short (`firstSeekTimed`) would otherwise leave a slow starter (Chromium) too little lead.
    return { ...this.plan(target, baseRate, Math.max(withinBuffer, SYNC.LANDING_LEAD + SYNC.LANDING_LATENCY_FACTOR * this.seekLatency)), buffered: false };
  }

  /** How far behind (s, after its start latency) a player paused near the room may start at once
   * rather than land `leadSeconds` ahead: what the grace's largest nudge closes in the time the
   * landing would take beyond a start's settling. Sparse keyframes (a landing leading by 0.64 s)
   * allow 0.11 s; a landing on a keyframe or within the buffer, little or nothing. */
  catchUpLimit(leadSeconds, own = false, baseRate = 1) {
    return Math.max(0, leadSeconds - SYNC.START_SETTLE) * catchUpCap(own, baseRate);
  }

  /**
   * The soonest landing at least `lead` s ahead of the room's `target` whose seek, decoding from
   * the keyframe before its point, still fits within its lead: {seconds, distance} (seconds of
   * the room's time ahead, at most MAX_LANDING_LEAD; the point's distance from its keyframe, or
   * null when the keyframes are not known). Past `target + lead` the lead grows at 1/rate per
   * second of the point, the decoding at LANDING_LATENCY_FACTOR times the decode cost: so either
   * a point between two keyframes fits, or the next keyframe does (a seek there decodes nothing).
   */
  plan(target, baseRate, lead) {
    const kfs = this.keyframes;
    const capped = (seconds) => ({ seconds: Math.min(SYNC.MAX_LANDING_LEAD, seconds), distance: kfs ? this.distanceAt(target + Math.min(SYNC.MAX_LANDING_LEAD, seconds) * baseRate) : null });
    if (!kfs) return capped(lead);
    const from = target + lead * baseRate;
    const i = lastAtOrBefore(kfs, from);
    const keyframe = i >= 0 ? kfs[i] : 0;
    const next = i + 1 < kfs.length ? kfs[i + 1] + SYNC.KEYFRAME_MARGIN : Infinity;
    const perSecond = SYNC.LANDING_LATENCY_FACTOR * this.decodeCost;
    // (point - target) / rate >= lead + perSecond * (point - keyframe), solved for point.
    const slope = 1 / baseRate - perSecond;
    const fits = slope > 0 ? Math.max(from, (lead + target / baseRate - perSecond * keyframe) / slope) : Infinity;
    return capped((Math.min(fits, next) - target) / baseRate);
  }

  /** The distance (s) from the keyframe at or before `point` (from 0 before the first). */
  distanceAt(point) {
    const i = lastAtOrBefore(this.keyframes, point);
    return point - (i >= 0 ? this.keyframes[i] : 0);
  }

  /** The grace of a seek issued at `now`: SEEK_GRACE from it, less how late this viewer heard of
   * the room's change (`sinceChange`, when under SEEK_GRACE), so that a seek that follows the
   * user's at once ends its grace within the first second after it however late this viewer
   * heard of it. */
  startGrace(now, sinceChange) {
    const late = Number.isFinite(sinceChange) && sinceChange < SYNC.SEEK_GRACE ? Math.max(0, sinceChange) : 0;
    this.graceEnds = now + SYNC.SEEK_GRACE - late;
  }

  /** How long before the room's scheduled start a player that cannot land (YouTube's) is
   * started (s): the time it was measured to take to move, a resume's when it resumes where it was
   * paused. */
  coarseStartLead(resumes) {
    return resumes ? this.resumeLatency : this.startLatency;
  }

  /** A step of a player without fine rate control (COARSE_STEP_BAND), or null: when it plays,
   * measured and settled, and was found beyond the band on the same side at every decision for
   * COARSE_STEP_CONFIRM (one reading, run on from a delivery, may be off), at the rate it offers
   * nearest the room's on the side that closes the drift, for as long as that closes it (at most
   * COARSE_STEP_MAX). */
  coarseStep({ drift, baseRate, now, rates, playerPaused, result }) {
    const eligible = !playerPaused && this.landing === null && this.placing === null && this.pendingSeek === null && now >= this.stepSettles;
    // The last step, settled: what it moved beyond what its rate closed is what the next costs.
    const last = this.stepLearn;
    if (eligible && last?.seconds != null) {
      this.stepLearn = null;
      const costs = this.stepCosts[last.key];
      costs.push(clamp(drift - last.from - last.gain * last.seconds, -SYNC.COARSE_STEP_COST_MAX, SYNC.COARSE_STEP_COST_MAX));
      if (costs.length > SYNC.COARSE_STEP_COSTS) costs.shift();
    }
    const side = eligible && Math.abs(drift) > this.tolerance * SYNC.COARSE_STEP_BAND ? Math.sign(drift) : 0;
    if (side === 0) this.stepSeen = null;
    else if (this.stepSeen?.side !== side) this.stepSeen = { side, since: now };
    if (side === 0 || now - this.stepSeen.since < SYNC.COARSE_STEP_CONFIRM - 1e-6) return null;
    const rate = this.stepRateFor(rates, baseRate, drift);
    if (rate === null) return null;
    // Long enough that the drift, with what the step's changes cost, comes to nothing: drift +
    // gain x seconds + cost = 0. A cost that closes the drift alone leaves it as it is.
    const key = baseRate === 1 ? "one" : "other";
    const gain = rate - baseRate;
    const wanted = -(drift + this.stepCost(key)) / gain;
    if (!(wanted > 0)) return null;
    const seconds = Math.min(wanted, SYNC.COARSE_STEP_MAX);
    this.step = { rate, endsAt: now + seconds };
    this.stepSettles = this.step.endsAt + SYNC.COARSE_SETTLE;
    this.stepSeen = null;
    this.stepLearn = { key, from: drift, gain, startedAt: now, seconds: null };
    return result("step", rate);
  }

  /** The rate this player steps at to close `drift` (`stepRate`), or null when it is not stepped
   * (`steps`). */
  stepRateFor(rates, baseRate, drift) {
    return this.steps ? stepRate(rates, baseRate, drift) : null;
  }

  /** What a step from the room's rate of 1 (`key` "one") or from another ("other") is taken to
   * cost beyond what its rate closes (s): the median of the last ones measured, `stepPrior`
   * before any. */
  stepCost(key) {
    const costs = [...this.stepCosts[key]].sort((a, b) => a - b);
    if (!costs.length) return this.stepPrior[key];
    const mid = costs.length >> 1;
    return costs.length % 2 ? costs[mid] : (costs[mid - 1] + costs[mid]) / 2;
  }

  /** Ends a coarse player's step, if one runs (its readings settle from now: COARSE_SETTLE). One
   * cut short (a seek, a pause, the player buffering) teaches nothing. */
  endStep(now, cut = false) {
    if (!this.step) return;
    this.step = null;
    this.stepSettles = now + SYNC.COARSE_SETTLE;
    if (this.stepLearn && !cut) this.stepLearn.seconds = now - this.stepLearn.startedAt;
    else this.stepLearn = null;
  }

  /** How long a coarse player's step still runs (s from `now`; 0 when none): room.js decides
   * again then, to end it on time. */
  stepLeft(now) {
    return this.step ? Math.max(0, this.step.endsAt - now) : 0;
  }

  /** Issues a seek to `target + lead`, resetting any nudge to the room's rate. */
  seek(target, now, result, lead, baseRate) {
    this.stepLearn = null;
    this.landing = null;
    this.placing = null;
    this.lastSeekAt = now;
    this.pendingSeek = { lead, from: null, doneAt: null };
    return result("seek", baseRate, target + lead);
  }

  /**
   * Tells the controller how far off the player is once its seek is done (drift = actual -
   * target, s; `reading`: the player's own reading, or null when it cannot be placed yet), so
   * that the next seek leads by the latency actually seen. A seek is done once the player moves
   * on from where it landed: a <video> seeked while playing shows its new place at once, and
   * moves on only once its pipeline has restarted (Chromium: 76-91 ms after `seeked`). Measured
   * at the first reading after the seek, the latency learnt lacked that restart, and each seek
   * led by less: bench-sync's YouTube stand-in learnt 118, then 86, 75 and 64 ms, and its seeks
   * landed 40-81 ms behind. A player that does not move on within COARSE_START_WAIT teaches
   * nothing; one without fine rate control is measured COARSE_SETTLE after its seek was done.
   */
  seekLanded(drift, baseRate = 1, reading = null, now = 0) {
    const p = this.pendingSeek;
    if (!p) return;
    if (p.lead === 0) {
      // Paused seeks have no latency to learn.
      this.pendingSeek = null;
      return;
    }
    if (reading === null) return;
    if (p.from === null) {
      p.from = reading;
      p.doneAt = now;
    }
    if (reading - p.from < SYNC.START_MOVED) {
      if (now - p.doneAt >= SYNC.COARSE_START_WAIT) this.pendingSeek = null;
      return;
    }
    if (!this.fineRate && now - p.doneAt < SYNC.COARSE_SETTLE) return;
    this.pendingSeek = null;
    // Behind by d means the seek took d/rate longer than assumed.
    const measured = clamp(p.lead / baseRate - drift / baseRate, 0, SYNC.MAX_SEEK_LATENCY);
    this.seekLatency += SYNC.LATENCY_SMOOTHING * (measured - this.seekLatency);
  }
}

/**
 * What a controller learnt of this browser's seek and start latencies, to keep across pages
 * (room.js stores it in localStorage): a returning viewer's first landing is timed with them, not
 * with what is assumed for a browser never measured (a YouTube player's first seek and start
 * likewise). JSON, or null for a YouTube player that has measured nothing yet.
 */
export function storedLatencies(controller) {
  const ms = (s) => Math.round(s * 10_000) / 10;
  const record = { seek_ms: ms(controller.seekLatency), start_ms: ms(controller.startLatency) };
  // A YouTube player's (room.js keeps it apart): its seek, start and resume latencies, once measured.
  if (!controller.fineRate) {
    record.kind = "youtube";
    if (!controller.startMeasured) record.start_measured = false;
    if (controller.resumeMeasured) record.resume_ms = ms(controller.resumeLatency);
    // What its steps from the room's rate of 1 cost, once one was measured (COARSE_STEP_SETBACK).
    const stepped = controller.stepCosts.one.length > 0;
    if (stepped) record.step_ms = ms(controller.stepCost("one"));
    return controller.startMeasured || controller.resumeMeasured || stepped || controller.seekLatency !== SYNC.INITIAL_SEEK_LATENCY ? JSON.stringify(record) : null;
  }
  // The release jump, once one was measured (its first release then aims with it).
  if (controller.releaseKnown()) record.release_ms = ms(controller.releaseJump());
  record.buffered_seek_ms = ms(controller.bufferedSeekLatency);
  // Seek time per second decoded from a keyframe (ms/s).
  record.decode_ms = ms(controller.decodeCost);
  return JSON.stringify(record);
}

/** The latencies `storedLatencies` kept, for `SyncController.learntFrom` (`fineRate`: the kind
 * of player they were kept for); null when `text` is not such a record (absent, from another
 * version, tampered with, out of the believable range). */
export function latenciesFrom(text, fineRate = true) {
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const seek = v?.seek_ms / 1000;
  const start = v?.start_ms / 1000;
  const fine = (x, max) => Number.isFinite(x) && x >= 0 && x <= max;
  if (!fine(seek, SYNC.MAX_SEEK_LATENCY) || !fine(start, SYNC.MAX_START_LATENCY)) return null;
  // Each kind of player reads its own kind of record only.
  if ((v.kind === "youtube") === fineRate) return null;
  if (!fineRate) {
    const resume = typeof v.resume_ms === "number" ? v.resume_ms / 1000 : NaN;
    const resumes = fine(resume, SYNC.MAX_START_LATENCY) ? { resumeLatency: resume, resumeMeasured: true } : {};
    const step = typeof v.step_ms === "number" ? v.step_ms / 1000 : NaN;
    const steps = Number.isFinite(step) && Math.abs(step) <= SYNC.COARSE_STEP_COST_MAX ? { stepCosts: { one: [step], other: [] } } : {};
    return { fineRate: false, seekLatency: seek, startLatency: start, startMeasured: v.start_measured !== false, ...resumes, ...steps };
  }
  const learnt = { fineRate: true, seekLatency: seek, startLatency: start };
  // Optional (records from before it have none); one out of range is left out, not the record.
  const release = typeof v.release_ms === "number" ? v.release_ms / 1000 : NaN;
  if (Number.isFinite(release) && Math.abs(release) <= SYNC.RELEASE_MAX_JUMP) learnt.releasePrior = release;
  const buffered = typeof v.buffered_seek_ms === "number" ? v.buffered_seek_ms / 1000 : NaN;
  if (fine(buffered, SYNC.MAX_SEEK_LATENCY)) learnt.bufferedSeekLatency = buffered;
  const decode = typeof v.decode_ms === "number" ? v.decode_ms / 1000 : NaN;
  if (fine(decode, SYNC.MAX_DECODE_COST)) learnt.decodeCost = decode;
  return learnt;
}

/** How often a viewer tells the room how well it keeps in sync (ms), and the least number of
 * samples a report needs. A viewer's first report, its first after its player stopped keeping
 * up (a stall, a video it cannot play: the room withdrew its last one) and its first after a
 * window too short to report (a paused room) goes as soon as it holds FIRST_SAMPLES (1.5 s of
 * ticks), not at the end of a 5 s window that began before the player landed or played: a
 * joiner's own figure showed 5.3-9.6 s after its page opened. It goes at least MIN_GAP_MS after
 * the last report (the room takes one every 2 s from each member). */
export const SYNC_REPORT = Object.freeze({ INTERVAL_MS: 5000, MIN_SAMPLES: 10, FIRST_SAMPLES: 15, MIN_GAP_MS: 2500, MAX_SAMPLES: 2000 });

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/**
 * This viewer's sync error over a window: |position - target| of each steady sample (playing, not
 * seeking or buffering), summarised every SYNC_REPORT.INTERVAL_MS as p50 and p95 in ms for the
 * room (`sync_report`), the first one sooner (SYNC_REPORT). No DOM.
 */
export class SyncStats {
  constructor(startMs = 0) {
    this.samples = [];
    this.since = startMs;
    /** When the last report was taken. */
    this.sentAt = -Infinity;
    /** No report since the start, the last `restart` or a window too short to report: one
     * goes once FIRST_SAMPLES are in. */
    this.first = true;
  }

  /** A fresh window whose report goes as soon as it can (the room withdrew the last one). */
  restart(nowMs) {
    this.samples = [];
    this.since = nowMs;
    this.first = true;
  }

  /** One steady sample: the drift in seconds. */
  add(drift) {
    if (!Number.isFinite(drift)) return;
    if (this.samples.length < SYNC_REPORT.MAX_SAMPLES) this.samples.push(Math.abs(drift) * 1000);
  }

  /** The report due at `nowMs` (and a fresh window), or null when none is due or there are too
   * few samples (a paused room reports nothing). */
  take(nowMs) {
    const early = this.first && this.samples.length >= SYNC_REPORT.FIRST_SAMPLES && nowMs - this.sentAt >= SYNC_REPORT.MIN_GAP_MS;
    if (!early && nowMs - this.since < SYNC_REPORT.INTERVAL_MS) return null;
    const sorted = this.samples.sort((a, b) => a - b);
    this.samples = [];
    this.since = nowMs;
    if (sorted.length < SYNC_REPORT.MIN_SAMPLES) {
      // A paused room, a seek: the room drops this viewer's figure 15 s after its last report,
      // and the next one goes as soon as it can.
      this.first = true;
      return null;
    }
    this.first = false;
    this.sentAt = nowMs;
    const round = (x) => Math.round(x * 10) / 10;
    return { p50_ms: round(quantile(sorted, 0.5)), p95_ms: round(quantile(sorted, 0.95)), samples: sorted.length };
  }
}
