// Sync accuracy benchmark: N headless Chromium viewers in one room, playing the generated video
// for DURATION seconds with a pause and a play, a seek every 15 s and one rate change. Every 50 ms
// each page records its player's position and where the room is by the machine's real clock (the
// browsers and the server run on the same machine, so they share it; the page's own clock estimate
// is what is being tested, not what is used to measure). Prints the spread between viewers in
// steady state, the time each seek and the play take until all viewers are within 50 and 20 ms,
// how long late joiners take to get there from opening the page (a batch while the room plays at
// 1, at 20 s, and one at 1.25, at 50 s: LATE_JOIN_AT), how often each viewer's correction changes
// direction (in all, and 2 s or more after the room's last event: `rate_reversals_steady_max`),
// what each viewer told the room of its own sync (its `sync_report`s, the People tab's figures)
// beside what the bench read of it over the same windows, where each viewer sits against the
// viewers' middle (read, and with SYNC_HEARD=1 heard), and RESULT lines. SYNC_SEEKS=N
// measures N seeks instead (see SEEKS below); SYNC_STEADY=1 none at all, minute by minute (a soak:
// STEADY_ONLY below). BROWSER=firefox runs Firefox viewers instead,
// BROWSER=mixed Chromium and Firefox ones in turn in one room (see BROWSER below). A Firefox
// viewer's samples taken while its page was held up read where its video was before (`held`:
// watchEdges); the spread, the seeks' and the joiners' times leave them out, and the spread with
// them is printed apart (`sync_spread_with_held_p99`).
//
// It runs each of SCENARIOS in turn (default "loopback delay throttle youtube"): plain loopback;
// every viewer behind a delaying proxy of its own (10/40/80/150 ms one way, ±20% jitter, on
// loopback); one viewer with its CPU slowed 4x through Chromium's CDP; a YouTube item through the
// IFrame API stand-in (fixed rates: seeks beyond its 250 ms band, steps at those rates within
// it, counted: `youtube_steps_per_viewer_minute_max`; its seek and joiner figures are within that
// band, `youtube_seek_converge250_max`, `youtube_late_join_converge250`, not 50 and 20 ms). RESULT
// names carry the scenario (`delay_...`, `throttle_...`, `youtube_...`; loopback's have none).
// SYNC_DUMP=<prefix> writes each scenario's samples (error, rate, clock estimate, learnt latencies
// and release jump, the last release's reading while it is being measured, and with SYNC_FRAMES=1
// the frame requestVideoFrameCallback last presented) to <prefix>-<scenario>.json
// (<prefix>-firefox-<scenario>.json, <prefix>-webkit-<scenario>.json, <prefix>-mixed-<scenario>.json,
// with each viewer's browser in `kinds`, and each clock sample with the estimate then in
// `clockSamples`); with SYNC_TRACE=1 also every reading of currentTime, every rate set, every
// play() and pause() and every "playing" event (`traceMedia`), and with SYNC_HEARD=1 when its
// recording started. SYNC_FRAMES is off by default: watching every frame makes each
// viewer's page render on every video frame, which real viewers do not (the player does not use
// requestVideoFrameCallback); four viewers' Chromium took 105% of a core with it, 91% without, on
// a 2-core machine where late joiners compete for what is left.
//
//   node web/bench/sync.mjs            (scripts/bench-sync builds the release server first)

import { readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { JITTER, eventually, holdFirstStart, launchBrowser, newViewer, probe, startDelayProxy, startFixtures, startServer, testVideo, uploadFile } from "../test/e2e/harness.js";
import { launchFirefox, newFirefoxViewer } from "../test/e2e/firefox.js";
import { launchWebKit, newWebKitViewer } from "../test/e2e/webkit.js";
import { heardSpreads, routeSound, sinkLabel, startPulse, startSkewedSinks } from "./heard.mjs";

/** Which rooms to measure, in turn: plain loopback; each viewer behind a link of its own with
 * 10/40/80/150 ms one-way delay and ±20% jitter; one viewer's CPU slowed 4x (Chromium's CDP); a
 * YouTube item on loopback, played through the local stand-in of the IFrame API (YouTube's player
 * has only fixed rates, so Lockstep keeps it in step by seeks beyond a wider band, and by steps
 * at those rates within it). */
const SCENARIOS = (process.env.SCENARIOS ?? "loopback delay throttle youtube").split(/[\s,]+/).filter(Boolean);
/** Which browser the viewers use: "chromium" (Playwright, CDP), "firefox" (Debian's Firefox ESR
 * through WebDriver BiDi, test/e2e/firefox.js), "webkit" (WebKitGTK's MiniBrowser through classic
 * WebDriver, test/e2e/webkit.js: its scripts run in a page once it has loaded, so a WebKit
 * joiner's steps before that are not seen, and its readings start then) or "mixed" (one room of
 * Chromium and Firefox: the viewers, and the late joiners, in turn, the host Chromium).
 * Firefox's RESULT names start with `firefox_`, WebKit's with `webkit_`, a mixed room's with
 * `mixed_`. */
const BROWSER = process.env.BROWSER ?? "chromium";
const firefox = BROWSER === "firefox";
const webkit = BROWSER === "webkit";
const mixed = BROWSER === "mixed";
if (!["chromium", "firefox", "webkit", "mixed"].includes(BROWSER)) throw new Error(`BROWSER=${BROWSER}: chromium, firefox, webkit or mixed`);
/** The browser of viewer `i` (of the late joiners, the `i`th). */
const kindOf = (i) => (webkit ? "webkit" : firefox || (mixed && i % 2 === 1) ? "firefox" : "chromium");
const DELAYS_MS = [10, 40, 80, 150];

const VIEWERS = Number(process.env.VIEWERS ?? 4);
/** SYNC_SEEKS=N: instead of the schedule below, N seeks SYNC_SEEK_EVERY (5) s apart from 6 s on,
 * to places spread over the video between keyframes, the room playing at SYNC_SEEK_RATE (1; any
 * other is set at 3 s) all along, and no late joiners unless LATE_JOIN_AT says: the seeks' own
 * figures (RESULT seek_converge20_p50/_p95/_max, how many seeks a viewer followed with a second
 * seek of its own, and how many landings came out more than 50 ms behind) from many seeks rather
 * than three. */
const SEEKS = Number(process.env.SYNC_SEEKS ?? 0);
const SEEK_EVERY = Number(process.env.SYNC_SEEK_EVERY ?? 5);
const SEEK_RATE = Number(process.env.SYNC_SEEK_RATE ?? 1);
/** SYNC_STEADY=1: no events at all (no pause, seek or rate change; no late joiners unless
 * LATE_JOIN_AT says), the room playing at 1 for DURATION: a film's long stretch with nothing
 * happening, read minute by minute (the spread, where each viewer rests, its clock estimate, the
 * server's memory and the sizes of the pages' own sync state; RESULT `soak_*`). Give it a video
 * long enough (SYNC_VIDEO_SECONDS), e.g. DURATION=900 SYNC_VIDEO_SECONDS=960. */
const STEADY_ONLY = process.env.SYNC_STEADY === "1";
/** SYNC_VIDEO_SECONDS: the test video's length (s), 120 unless said (harness.js testVideo). */
const VIDEO_SECONDS = process.env.SYNC_VIDEO_SECONDS ? Number(process.env.SYNC_VIDEO_SECONDS) : undefined;
const DURATION = Number(process.env.DURATION ?? (SEEKS ? 6 + SEEKS * SEEK_EVERY + 1 : 60));
if (STEADY_ONLY && SEEKS) throw new Error("SYNC_STEADY=1 plays with no events: not with SYNC_SEEKS");
// The room starts at the video's start and plays to DURATION past the start gate (up to 15 s, and
// the viewers' own loading before it).
if (STEADY_ONLY && DURATION + 45 > (VIDEO_SECONDS ?? 120)) throw new Error(`SYNC_STEADY=1 with DURATION=${DURATION} needs a video at least ${DURATION + 45} s long (SYNC_VIDEO_SECONDS)`);
const SAMPLE_MS = 50;
/** Whether the sampler also records the frame on screen (requestVideoFrameCallback): a diagnostic
 * for the dumps, off by default as it costs every viewer a render per video frame. */
const FRAMES = process.env.SYNC_FRAMES === "1";
/** The test video's keyframe spacing (s): 1, as Lockstep's transcoded uploads have; SYNC_GOP=10
 * measures a file with a keyframe every 10 s, as many files that are remuxed or linked have (a
 * seek decodes from the keyframe before its point). */
const GOP = Number(process.env.SYNC_GOP ?? 1);
/** The test video's frame size: 480x270, or SYNC_SIZE (1280x720: a browser's seek decodes about
 * seven times as many pixels per frame). */
const SIZE = process.env.SYNC_SIZE ?? "480x270";
/** SYNC_ITEM=upload plays the test video as the host's own upload (sent with tus, then remuxed by
 * the server, keeping its keyframes, or transcoded when they are more than 3 s apart: set
 * LOCKSTEP_UPLOAD_TRANSCODE_SPARSE_MAX_SECS=0 to keep them), not as a link: what a room of
 * uploads gets. */
const AS_UPLOAD = process.env.SYNC_ITEM === "upload";
/** SYNC_KEYFRAMES=0: the pages are refused the item's keyframe times (404: an upload's
 * `keyframes.json`, a link's `/media/keyframes`), and their landings
 * plan for the seek time learnt on average, as before they had them: the A of an A/B. */
const KEYFRAMES = process.env.SYNC_KEYFRAMES !== "0";
if (!KEYFRAMES && BROWSER !== "chromium") throw new Error(`SYNC_KEYFRAMES=0 refuses keyframe times through Playwright's routes: not with BROWSER=${BROWSER}`);
/** SYNC_HEARD=1: the steady viewers play their sound into a private PulseAudio (the test video's
 * sound white noise), one channel each of one recording, and the spread is also measured from
 * what is heard (heard.mjs): RESULT heard_spread_*. Each viewer's sound is routed with its
 * setSinkId, in Chromium and Firefox alike; not the YouTube scenario. */
const HEARD = process.env.SYNC_HEARD === "1";
/** SYNC_SILENT=1: the test video has no audio track (a screen recording, a silent film): its
 * player's clock is then the page's own, with no time stretcher (web/bench/rate.mjs SILENT=1).
 * Its RESULT names start with `silent_`. */
const SILENT = process.env.SYNC_SILENT === "1";
if (SILENT && (HEARD || process.env.SYNC_SOUND_SKEW)) throw new Error("SYNC_SILENT=1 plays a video with no sound: not with SYNC_HEARD or SYNC_SOUND_SKEW");
if (HEARD && webkit) throw new Error("SYNC_HEARD=1 routes each viewer's sound with setSinkId: not with BROWSER=webkit");
/** SYNC_SOUND_SKEW="100 -100 50 -50": each viewer's sound goes to a sound card of its own whose
 * clock runs that many parts per million off the machine's (in turn; PulseAudio's pipe sink read
 * at that pace: heard.mjs `startSkewedSinks`), as at home, where a sound card's crystal is tens of
 * ppm off the clock the page and the server keep. A player's position runs on its sound's clock,
 * so its rest drifts off the room by that much (Firefox's as well, 21 ppm more: at the room's 1
 * it plays at player/video.js's STRETCHED_ONE). Unmuted, as SYNC_HEARD's; not with it; Chromium
 * and Firefox (routed with setSinkId), not WebKitGTK. */
const SOUND_SKEW = (process.env.SYNC_SOUND_SKEW ?? "").split(/[\s,]+/).filter(Boolean).map(Number);
if (SOUND_SKEW.length && (HEARD || webkit)) throw new Error("SYNC_SOUND_SKEW: Chromium and Firefox viewers (setSinkId), not with SYNC_HEARD=1");
if (SOUND_SKEW.some((ppm) => !(Math.abs(ppm) < 10_000))) throw new Error(`SYNC_SOUND_SKEW=${process.env.SYNC_SOUND_SKEW}: numbers of ppm, each within ±10000`);
/** Each viewer's sound card, ppm off the machine's clock: SOUND_SKEW in turn (empty without it). */
const VIEWER_SKEWS = SOUND_SKEW.length ? Array.from({ length: VIEWERS }, (_, i) => SOUND_SKEW[i % SOUND_SKEW.length]) : [];
/** SYNC_NOISE_RATE: the white noise's sample rate (Hz), 48000 unless said. The private PulseAudio
 * runs at 48 kHz; Chromium reads a video whose sound is at the sink's rate with a ±5 ms scatter
 * at rate 1, and one at 44.1 kHz on its line (bench/RESULTS.md). */
const NOISE_RATE = Number(process.env.SYNC_NOISE_RATE ?? 48_000);
/** SYNC_TRACE=1: the dump also holds every reading of currentTime, every rate set, every play()
 * and pause() and every "playing" event (`traceMedia`). */
const TRACE = process.env.SYNC_TRACE === "1";
/** Where SYNC_HEARD's recording of a scenario goes (kept, beside SYNC_DUMP's samples). */
const recordingFile = (scenario) => `${process.env.SYNC_DUMP ?? path.join(tmpdir(), "lockstep-sync")}-${BROWSER === "chromium" ? "" : `${BROWSER}-`}${scenario}-heard.f32`;
/** Opens a viewer (a fresh context) in `browsers[kind]`, refused keyframe times when KEYFRAMES is
 * off (Chromium only: firefox.js routes nothing). */
async function openBenchViewer(browsers, kind, late = false) {
  const v = kind === "firefox" ? await newFirefoxViewer((late && browsers.lateFirefox) || browsers.firefox) : kind === "webkit" ? await newWebKitViewer(browsers.webkit) : await newViewer(browsers.chromium);
  v.kind = kind;
  const keyframes = (url) => url.pathname.endsWith("/keyframes.json") || url.pathname === "/media/keyframes";
  if (!KEYFRAMES) await v.context.route(keyframes, (route) => route.fulfill({ status: 404, body: "" }));
  return v;
}
/** A viewer's line at a sample: its errors averaged over this many samples either side. */
const LINE_SAMPLES = 5;
/** Samples this soon after a seek, a rate change or the start are not steady state. */
const SETTLE_S = 3;
/** Viewers within this of each other and of the room count as converged after a seek. */
const CONVERGED = 0.05;
/** The tighter band: within this of the room, every viewer, after a seek and for a late joiner. */
const TIGHT = 0.02;
/** A YouTube item's player offers a few fixed rates and seeks only beyond its band (sync.js,
 * COARSE_DEAD_BAND); within it, steps at those rates bring it to within COARSE_STEP_BAND, seconds
 * after a seek or a join. So its scenario's converge figures are taken
 * within that band (RESULT ..._converge250...) rather than CONVERGED, and the TIGHT ones, which
 * it is not built to meet (they printed Infinity), are left out. */
const COARSE_BAND = 0.25;
/** How long the start waits for every viewer to settle on the room (ms). */
const GATE_MS = 15_000;
/** A viewer resting further than this from the room at rate 1 (its median error over a steady
 * stretch) is counted: the dead band lets rests up to 10 ms stand. */
const REST_OFF = 0.005;
/** The first second after a seek or a rate change may use large rate corrections. */
const NUDGE_GRACE_S = 1;
/** A change of direction of the correction this long or more after the room's last event (and
 * after the first SETTLE_S) is counted as steady: an event's own (its landing's start, the grace
 * closing what the landing missed, Chromium's setback) come within 1.2 s of it in the dumps. An
 * oscillating controller would show here. */
const STEADY_REVERSAL_S = 2;
/** A correction started at rest that turns within this long of its start, before it ends, is
 * counted apart (`restCorrections`), as is one whose setback was not assumed (the one before did
 * not show: sync.js SETBACK_SHOWS; the samples' `setbackDue`, 2). */
const EARLY_TURN_S = 1.5;
/** When late viewers open the room (seconds from the start of the measurement, one batch of
 * LATE_JOINERS at each): by default at 20 s, while the room plays at 1, and at 50 s, at 1.25, as
 * starts go wrong more often at rates other than 1. The events after the last batch are left out,
 * so LATE_JOIN_AT=5 DURATION=10 measures little more than a late join. */
const LATE_JOIN_AT = (process.env.LATE_JOIN_AT ?? (SEEKS || STEADY_ONLY ? "" : "20 50")).split(/[\s,]+/).filter(Boolean).map(Number).sort((a, b) => a - b);
/** A batch opens no further joiner when the room's next event is this close (s): a joiner
 * converging across a seek measures the seek. */
const JOIN_CLEARANCE_S = 3;
/** How many late viewers open the room, one after another (each closes before the next opens). */
const LATE_JOINERS = Number(process.env.LATE_JOINERS ?? 3);
/** LATE_RETURNING=1: the late joiners are one returning viewer, each a new page in the same
 * browser context (cookies and localStorage kept), so that from the second on they start with the
 * latencies the first learnt. */
const LATE_RETURNING = process.env.LATE_RETURNING === "1";
/** LATE_HOLD_MS=N: each late joiner's first start comes out N ms late: its video's rate is held at
 * 0 for that long from its first play() (the page's own rate kept and applied after), so that it
 * plays with its currentTime held, as a Firefox start that comes late does now and then. */
const LATE_HOLD_MS = Number(process.env.LATE_HOLD_MS ?? 0);
/** LATE_REPORT=1: each late joiner stays, after it is within 20 ms, until its first sync report
 * (the first figure the People tab and the room's spread show of it), at most 8 s, and the bench
 * prints its p50/p95. Off by default: it keeps each joiner open ~1.5 s longer. */
const LATE_REPORT = process.env.LATE_REPORT === "1";
/** LATE_OWN_FIREFOX=1: Firefox late joiners open in a Firefox of their own (one for all of them),
 * not in the viewers' one: as a joiner on another machine would, they share the machine's cores
 * with the viewers but not the browser's processes. */
const LATE_OWN_FIREFOX = process.env.LATE_OWN_FIREFOX === "1";

/** What happens when, in seconds from the start of the measurement. The seeks go between keyframes,
 * as a user's do (a browser's seek decodes from the keyframe before its point): until the
 * sixteenth session they went to 10, 60 and 30 s, keyframes in the test video. */
const SCHEDULE = STEADY_ONLY ? [] : SEEKS ? [...(SEEK_RATE === 1 ? [] : [{ at: 3, rate: SEEK_RATE }]), ...seekSchedule(SEEKS, SEEK_EVERY)] : [
  { at: 6, pause: true },
  { at: 8, play: true },
  { at: 15, seek: 10.57 },
  { at: 30, seek: 60.83 },
  { at: 37.5, rate: 1.25 },
  { at: 45, seek: 30.71 },
];

/** SYNC_SEEKS' schedule: `n` seeks `every` s apart from 6 s on, each to a place the golden ratio
 * spreads over 5-100 s of the video (near ones and far ones, forward and back, some already
 * buffered), 0.3-0.8 s past a keyframe. */
function seekSchedule(n, every) {
  return Array.from({ length: n }, (_, k) => ({
    at: 6 + k * every,
    seek: Math.floor(5 + 95 * (((k + 1) * 0.6180339887) % 1)) + 0.31 + 0.13 * (k % 4),
  }));
}

/** The median of `xs` (the mean of the two middle ones when they are even). */
const middle = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Where each viewer sits among the others, per room rate, over `rows` (`{ roomRate, at }`, `at`
 * each viewer's place, s, in any common frame): `[{ rate, viewers, firefoxAhead }]`, `viewers`
 * the median of each viewer's place less the middle (median) of all of them at that instant,
 * `firefoxAhead` the median of the mean of the Firefox viewers' places less the Chromium
 * viewers' (null unless `kinds` holds both). */
function placesBy(rows, kinds) {
  const both = kinds.includes("firefox") && kinds.includes("chromium");
  const of = (at, kind) => at.filter((_, i) => kinds[i] === kind);
  return [...new Set(rows.map((r) => r.roomRate))].sort((a, b) => a - b).map((rate) => {
    const xs = rows.filter((r) => r.roomRate === rate);
    return {
      rate,
      viewers: kinds.map((_, i) => middle(xs.map((r) => r.at[i] - middle(r.at)))),
      firefoxAhead: both ? middle(xs.map((r) => mean(of(r.at, "firefox")) - mean(of(r.at, "chromium")))) : null,
    };
  });
}

/** The room's rate at `at` (s from the start of the measurement), by the `steps` sent. */
const roomRateAt = (steps, at) => steps.filter((x) => x.rate !== undefined && x.at <= at).at(-1)?.rate ?? 1;

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const ms = (s) => (s * 1000).toFixed(1);
/** A stall: a playing viewer this much further behind from one sample to the next (s). */
const STALL = 0.015;

/** Firefox's currentTime moves in ~40 ms steps (public/js/position.js): a reading between two
 * steps is up to a step behind. Firefox viewers are measured at the steps: every 4 ms the page
 * looks at currentTime, and when it has moved, its error then (within 4 ms of the step: readings
 * lag by 2 ms on average) is kept as `window.__edge`. A step seen by a look that came more than
 * EDGE_LATE_MS after the one before (a busy page: Firefox joiners loading in the same Firefox)
 * came at some moment in between, so its error then reads up to that gap behind: it is not kept,
 * and the edge before it is carried on at the player's rate, as between any two steps (while
 * that is fresh, under 100 ms old; then the late one, rather than currentTime read between two
 * steps, which on a busy page lagged 40-80 ms). Each sample counts the steps left so
 * (`edgesLate`) and carries the error every step would have given (`errorEveryEdge`: the reading
 * before the forty-ninth session). A look more than HELD_GAP_MS after the one before finds the
 * page held up (a joiner loading in the same Firefox): until a step is seen on time again, its
 * currentTime reads where the video was before (Firefox updates it by tasks on the page's own
 * thread), and the samples then are marked `held` (`defineRoomError`). Runs in the page;
 * installed on every Firefox viewer before the room opens. */
function watchEdges() {
  const EDGE_LATE_MS = 8;
  const HELD_GAP_MS = 30;
  let last = null;
  let looked = null;
  window.__edgesLate = 0;
  window.__heldAt = null;
  setInterval(() => {
    const now = performance.timeOrigin + performance.now();
    const gap = looked === null ? 0 : now - looked;
    looked = now;
    window.__lookedAt = now;
    if (gap > HELD_GAP_MS) window.__heldAt = now;
    const app = window.lockstep;
    const p = app?.player;
    const m = app?.model;
    if (!p || !m?.current) return;
    const value = p.currentTime;
    if (value === last) return;
    last = value;
    const pb = m.playback;
    const target = pb.paused ? pb.position : pb.position + Math.max(0, now / 1000 - pb.at / 1e6) * pb.rate;
    window.__everyEdge = { error: value - target, at: now };
    if (gap > EDGE_LATE_MS) {
      window.__edgesLate += 1;
    } else {
      window.__edge = window.__everyEdge;
      window.__heldAt = null;
    }
  }, 4);
}

/** Defines `window.__roomError(app, now)`: where the room is at `now` (epoch ms) by this machine's
 * clock (`target`, s), and the player's error from there (`error`, s; Firefox's at its last step,
 * `watchEdges`, carried at the rates since), and whether that is a Firefox reading held from before
 * its page was held up (`held`: no step of the last 100 ms seen on time, and `watchEdges` has not
 * looked for HELD_GAP_MS, or found the page held up within the last HELD_FOR_MS and no step on
 * time since). Runs in the page; installed on every viewer before the room opens. */
function defineRoomError() {
  // watchEdges' own (each runs in the page by itself, so neither can read the other's).
  const HELD_GAP_MS = 30;
  const HELD_FOR_MS = 150;
  window.__roomError = (app, now) => {
    const p = app.player;
    const pb = app.model.playback;
    const target = pb.paused ? pb.position : pb.position + Math.max(0, now / 1000 - pb.at / 1e6) * pb.rate;
    const edge = window.__edge;
    // A YouTube item: where the stand-in's <video> is, not what its API reads (YouTube's reading
    // is its player's last delivered time moved on: youtube-standin.js).
    const position = document.querySelector("video.yt-standin")?.currentTime ?? p.currentTime;
    const fresh = (e) => e && !p.paused && now - e.at < 100;
    const carried = (e) => e.error + ((now - e.at) / 1000) * (p.rate - pb.rate);
    // A late step (watchEdges) rather than none: the reading itself lags on a busy page.
    const every = window.__everyEdge;
    const error = fresh(edge) ? carried(edge) : fresh(every) ? carried(every) : position - target;
    const heldUp = (window.__lookedAt !== undefined && now - window.__lookedAt > HELD_GAP_MS) || (window.__heldAt != null && now - window.__heldAt <= HELD_FOR_MS);
    const held = !p.paused && !fresh(edge) && heldUp;
    return { target, error, errorEveryEdge: every ? (fresh(every) ? carried(every) : position - target) : null, held };
  };
}

/** What `probe` says, with Firefox's position taken from its last step (`watchEdges`). */
async function probeViewer(page) {
  const p = await probe(page);
  const edge = p?.edge;
  if (!edge || p.paused || p.now - edge.at >= 100) return p;
  return { ...p, position: p.trueTarget + edge.error + ((p.now - edge.at) / 1000) * (p.rate - p.roomRate) };
}

/**
 * SYNC_TRACE=1 (with SYNC_DUMP): every reading of a <video>'s currentTime and every rate set on
 * it, in the steady viewers' pages, go into the dump's `traces` (one list per viewer: first
 * [timeOrigin, -1], then [performance.now(), 0, currentTime, 1 if the bench's sampler read it, 2
 * if the player's own reading between ticks did (html5.js `poll`), else 0], [performance.now(), 1,
 * playbackRate], [performance.now(), 2, 1 for play() or 0 for pause()], [performance.now(), 3] for
 * a "playing" event or [performance.now(), 4, the place] for a seek), and from the sampler's start
 * every look for a good release ([performance.now(), 5, [drift, reading's drift, aim, release jump,
 * 1 if good], 1 while correcting]) and every decision ([performance.now(), 6, [drift, smoothed
 * drift, rate, action, 1 while correcting, aim, reading's drift], 1 while a setback is due]), up to
 * 400,000 a page. What a release let go at, where the player then rested, and what a seek
 * followed, can be read off them.
 */
function traceMedia() {
  const limit = 400_000;
  window.__trace = [[performance.timeOrigin, -1, 0, 0]];
  const record = (kind, value) => {
    if (window.__trace.length < limit) window.__trace.push([performance.now(), kind, value, 0]);
  };
  const time = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "currentTime");
  const rate = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "playbackRate");
  Object.defineProperty(HTMLMediaElement.prototype, "currentTime", {
    ...time,
    get() {
      const x = time.get.call(this);
      const stack = new Error().stack;
      if (window.__trace.length < limit) window.__trace.push([performance.now(), 0, x, stack.includes("__roomError") ? 1 : stack.includes("poll") ? 2 : 0]);
      return x;
    },
    set(x) {
      record(4, x);
      time.set.call(this, x);
    },
  });
  Object.defineProperty(HTMLMediaElement.prototype, "playbackRate", {
    ...rate,
    set(r) {
      record(1, r);
      rate.set.call(this, r);
    },
  });
  // play() and pause() (2: 1 for play, 0 for pause), and the "playing" event (3).
  const play = HTMLMediaElement.prototype.play;
  const pause = HTMLMediaElement.prototype.pause;
  HTMLMediaElement.prototype.play = function () {
    record(2, 1);
    return play.call(this);
  };
  HTMLMediaElement.prototype.pause = function () {
    record(2, 0);
    return pause.call(this);
  };
  document.addEventListener("playing", () => record(3, 0), true);
}

function installSampler(page) {
  return page.evaluate(([sampleMs, watchEveryFrame]) => {
    window.__samples = [];
    window.__seeks = 0;
    const app = window.lockstep;
    // SYNC_TRACE=1: every decision (6) and every look for a good release (5) too.
    const proto = Object.getPrototypeOf(app.controller);
    if (window.__trace && !proto.__traced) {
      proto.__traced = true;
      const note = (kind, value, flag) => window.__trace.length < 400_000 && window.__trace.push([performance.now(), kind, value, flag]);
      const goodRelease = proto.goodRelease;
      proto.goodRelease = function (drift, rawDrift, now, aim = 0) {
        const good = goodRelease.call(this, drift, rawDrift, now, aim);
        note(5, [drift, rawDrift, aim, this.soundless ? 0 : this.releaseJump(rawDrift !== drift, this.stretchDirection()), good ? 1 : 0], this.correcting ? 1 : 0);
        return good;
      };
      const decide = proto.decide;
      proto.decide = function (input) {
        const d = decide.call(this, input);
        note(6, [d.drift, this.smoothed, d.rate, d.action, this.correcting ? 1 : 0, this.aim(input.baseRate, input.now), d.rawDrift], this.setbackDue ? 1 : 0);
        return d;
      };
    }
    // The page's own sync reports, as it sends them (what the People tab and the room's spread
    // show), with when they were sent.
    window.__reports = [];
    const tell = app.conn.tell.bind(app.conn);
    app.conn.tell = (frame) => {
      if (frame?.t === "sync_report") window.__reports.push({ now: performance.timeOrigin + performance.now(), p50: frame.p50_ms, p95: frame.p95_ms });
      return tell(frame);
    };
    const wrap = () => {
      const p = app.player;
      if (p && !p.__counted) {
        const seek = p.seek.bind(p);
        p.seek = (s) => {
          window.__seeks += 1;
          seek(s);
        };
        p.__counted = true;
      }
    };
    // The frame on screen, from requestVideoFrameCallback: its media time and when it was shown.
    let frame = null;
    const watchFrames = (video) => {
      if (!watchEveryFrame || !video || video.__frames || !video.requestVideoFrameCallback) return;
      video.__frames = true;
      const onFrame = (_now, meta) => {
        frame = { media: meta.mediaTime, shown: performance.timeOrigin + meta.presentationTime, expected: performance.timeOrigin + meta.expectedDisplayTime };
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    };
    // Each clock sample as it comes, with where the estimate then stood and how many of the
    // newest samples its intersection took (clock.js).
    window.__clockSamples = [];
    let lastClockSample = null;
    setInterval(() => {
      // Stopped before the samples are fetched (below, once the run is over).
      if (window.__samplesStopped) return;
      wrap();
      watchFrames(app.player?.element);
      const newest = app.clock.samples.at(-1);
      if (newest && newest !== lastClockSample) {
        lastClockSample = newest;
        const b = app.clock.bounds(newest.at);
        window.__clockSamples.push({ ...newest, lo: b.lo, hi: b.hi, depth: b.depth, kept: app.clock.samples.length, skew: app.clock.skew });
      }
      const p = app.player;
      const m = app.model;
      if (!p || !m.current) return;
      const now = performance.timeOrigin + performance.now();
      const pb = m.playback;
      const { target, error, errorEveryEdge, held } = window.__roomError(app, now);
      window.__samples.push({ now, target, error, errorEveryEdge, held, edgesLate: window.__edgesLate ?? null, raw: p.currentTime - target, stepped: p.reader?.stepped, seeks: window.__seeks, nudge: pb.paused ? 0 : p.rate / pb.rate - 1, roomRate: pb.rate, clock: app.clock.offset, lat: [app.controller.seekLatency, app.controller.startLatency, app.controller.releaseJump?.(!p.reader?.stepped), app.controller.releaseJumps?.length, app.controller.decodeCost, app.controller.bufferedSeekLatency], ready: p.video?.readyState, phase: app.controller.landing?.phase ?? null, timerLate: app.controller.startTimerLate ?? null, buffered: app.controller.landing?.buffered ?? null, reportable: app.controller.reportable?.(now / 1000) ?? null, setbackDue: app.controller.setbackDue ? (app.controller.setbackDue.assumed ? 1 : 2) : 0, skew: app.controller.restSkew ?? null, released: app.controller.released && { at: app.controller.released.at, raw: app.controller.released.raw, upper: app.controller.released.upper, dir: app.controller.released.dir, aim: app.controller.released.aim ?? 0 }, frame: frame && { media: frame.media - target, shownAgo: now - frame.shown, expectedAgo: now - frame.expected } });
    }, sampleMs);
  }, [SAMPLE_MS, FRAMES]);
}

/** Each viewer's corrections started at rest at the room's rate of 1 (its rate leaving the room's,
 * outside a landing), and how many of them turned (their rate crossed to the other side of the
 * room's) before they ended within EARLY_TURN_S of their start: {started, turned} per viewer. */
function restCorrections(samples) {
  return samples.map((list) => {
    let started = 0;
    let turned = 0;
    let unassumed = 0;
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1], list[i]];
      if (a.nudge !== 0 || b.nudge === 0 || b.roomRate !== 1 || a.phase !== null || b.phase !== null) continue;
      started += 1;
      if (b.setbackDue === 2) unassumed += 1;
      const side = Math.sign(b.nudge);
      for (let j = i; j < list.length && list[j].now - b.now <= EARLY_TURN_S * 1000 && list[j].nudge !== 0; j++) {
        if (Math.sign(list[j].nudge) !== side) {
          turned += 1;
          break;
        }
      }
    }
    return { started, turned, unassumed };
  });
}

/** The server's resident memory (MiB) and open files, from /proc. */
function serverUse(pid) {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;
    return { rss, files: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rss: null, files: null };
  }
}

/** In a page: the lengths of the lists (and sizes of the maps and sets) its sync keeps, one level
 * into its clock, controller, player, the player's reader and the room's model, and how many
 * elements its document holds. The bench's own samples are the page's only other growing lists. */
function pageState() {
  const app = window.lockstep;
  const sizes = {};
  const look = (name, obj) => {
    if (!obj) return;
    for (const [k, v] of Object.entries(obj)) {
      if (Array.isArray(v) && !k.startsWith("__")) sizes[`${name}.${k}`] = v.length;
      else if (v instanceof Map || v instanceof Set) sizes[`${name}.${k}`] = v.size;
    }
  };
  look("clock", app.clock);
  look("controller", app.controller);
  look("player", app.player);
  look("reader", app.player?.reader);
  look("model", app.model);
  return { sizes, elements: document.getElementsByTagName("*").length };
}

/** SYNC_STEADY's minute-by-minute account: the steady spread, where each viewer rests (its median
 * error), how far its clock estimate moved within the minute, what share of its samples were
 * being corrected; then the server's memory and files, and the pages' lists, first and last. */
function printSoak({ soak, steady, rows, samples, t0, prefix }) {
  const minutes = Math.ceil((rows.at(-1).now - t0) / 60_000);
  const worst = { p95: 0, max: 0, rest: 0 };
  for (let m = 0; m < minutes; m++) {
    const from = t0 + m * 60_000;
    const to = from + 60_000;
    const xs = steady.filter((r) => r.now >= from && r.now < to).map((r) => r.spread).sort((a, b) => a - b);
    // (A last minute shorter than half of one is left out.)
    if (xs.length < 600) continue;
    const within = samples.map((list) => list.filter((x) => x.now >= from && x.now < to));
    const rests = within.map((list) => quantile(list.map((x) => x.error).sort((a, b) => a - b), 0.5));
    // (`clock`: the page's estimate of the server's time less its own, ms.)
    const clockMoved = within.map((list) => (list.length ? Math.max(...list.map((x) => x.clock)) - Math.min(...list.map((x) => x.clock)) : 0));
    const correcting = within.map((list) => list.filter((x) => Math.abs(x.nudge) > 1e-9).length / Math.max(1, list.length));
    // The drift each page read from its rests by the minute's end (ppm; the controller's `restSkew`).
    const skews = within.map((list) => (Number.isFinite(list.at(-1)?.skew) ? (list.at(-1).skew * 1e6).toFixed(0) : "-"));
    const use = soak.server.filter((x) => x.now <= to).at(-1);
    worst.p95 = Math.max(worst.p95, quantile(xs, 0.95));
    worst.max = Math.max(worst.max, xs.at(-1));
    worst.rest = Math.max(worst.rest, ...rests.map(Math.abs));
    console.log(`minute ${m + 1}: spread p95 ${ms(quantile(xs, 0.95))} ms, max ${ms(xs.at(-1))} ms; rests ${rests.map((x) => ms(x)).join(", ")} ms; clock estimates moved ${clockMoved.map((x) => x.toFixed(1)).join(", ")} ms; correcting ${correcting.map((x) => `${(x * 100).toFixed(0)}%`).join(", ")}; drifts read ${skews.join(", ")} ppm; server ${use?.rss?.toFixed(1)} MiB, ${use?.files} files`);
  }
  const first = soak.server.find((x) => x.now >= t0 + 60_000) ?? soak.server[0];
  const last = soak.server.at(-1);
  console.log(`server from the first minute's end to the last: ${first.rss?.toFixed(1)} -> ${last.rss?.toFixed(1)} MiB resident, ${first.files} -> ${last.files} open files`);
  const [p0, p1] = [soak.pages[0], soak.pages.at(-1)];
  p1.pages.forEach((page, i) => {
    const before = p0.pages[i];
    if (!page || !before) return;
    const grown = Object.entries(page.sizes).filter(([k, n]) => n > (before.sizes[k] ?? 0)).map(([k, n]) => `${k} ${before.sizes[k] ?? 0} -> ${n}`);
    console.log(`viewer ${i}'s page: ${before.elements} -> ${page.elements} elements; its sync lists, longest ${Math.max(0, ...Object.values(page.sizes))}${grown.length ? `, grown: ${grown.join(", ")}` : ", none grown"}`);
  });
  console.log(`RESULT ${prefix}soak_spread_p95_worst_minute ${ms(worst.p95)} ms`);
  console.log(`RESULT ${prefix}soak_spread_max ${ms(worst.max)} ms`);
  console.log(`RESULT ${prefix}soak_rest_off_max ${ms(worst.rest)} ms`);
  if (first.rss !== null && last.rss !== null) console.log(`RESULT ${prefix}soak_server_rss_growth ${(last.rss - first.rss).toFixed(1)} MiB`);
  const pages = p1.pages.map((page, i) => (page && p0.pages[i] ? page.elements - p0.pages[i].elements : 0));
  console.log(`RESULT ${prefix}soak_page_elements_growth_max ${Math.max(...pages)} count`);
}

/** A late joiner: opens `url` in a fresh context and measures until it is within TIGHT of the room
 * for half a second (page load, connection, clock burst and video load included). Returns the
 * seconds from opening the page to within CONVERGED and within TIGHT (each held for half a
 * second), and the first moment each step of the way was seen. */
async function lateJoin(browsers, kind, url, returning = null, converged = CONVERGED) {
  const late = returning ? { context: returning.context, page: await returning.context.newPage(), kind: returning.kind } : await openBenchViewer(browsers, kind, true);
  if (late.kind === "firefox") await late.page.addInitScript(watchEdges);
  await late.page.addInitScript(defineRoomError);
  if (LATE_HOLD_MS > 0) await late.page.addInitScript(holdFirstStart(LATE_HOLD_MS));
  // Where the late joiner's time goes: the first moment each step is seen, recorded in the page
  // every 4 ms (a poll from here costs a CDP round trip per look).
  await late.page.addInitScript(() => {
    const steps = (window.__steps = {});
    const seen = (name, yes) => {
      if (yes && !(name in steps)) steps[name] = performance.timeOrigin + performance.now();
    };
    // When the socket opens, and when the welcome and the first pong arrive, before the page
    // handles them (the page may open its socket before it exists).
    const Socket = window.WebSocket;
    window.WebSocket = class extends Socket {
      constructor(...args) {
        super(...args);
        this.addEventListener("open", () => seen("socket", true));
        // Its own sync reports, as it sends them.
        const send = this.send.bind(this);
        this.send = (data) => {
          if (String(data).startsWith('{"t":"sync_report"')) {
            const f = JSON.parse(data);
            (window.__reports ??= []).push({ p50: f.p50_ms, p95: f.p95_ms });
          }
          return send(data);
        };
        this.addEventListener("message", (e) => {
          seen("welcome", String(e.data).startsWith('{"t":"welcome"'));
          seen("pong", String(e.data).startsWith('{"t":"pong"'));
        });
      }
    };
    // When the page sets its video fetching (early.js, or the player), and when that video
    // first knows its metadata and can play.
    const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "src");
    Object.defineProperty(HTMLMediaElement.prototype, "src", {
      ...src,
      set(value) {
        seen("fetching", true);
        this.addEventListener("loadedmetadata", () => seen("metadata", true), { once: true });
        this.addEventListener("canplay", () => seen("canplay", true), { once: true });
        src.set.call(this, value);
      },
    });
    // Its error from the room, read in the page every 4 ms (`__roomError`): [epoch ms, error s,
    // paused, held]. Probes over CDP can wait hundreds of ms for their turn on a loaded machine,
    // and time a reading by when its answer came back.
    const samples = (window.__joinSamples = []);
    // When the joiner was first within `band` (s) of the room for half a second on end, or null.
    // A Firefox reading held from before its page was held up (`held`) neither breaks nor makes
    // the half second, as it counts nowhere in the spread.
    window.__heldSince = (band) => {
      let from = null;
      for (const [at, err, paused, held] of samples) {
        if (held) continue;
        if (paused || Math.abs(err) > band) from = null;
        else if (from === null) from = at;
        else if (at - from >= 500) return from;
      }
      return null;
    };
    const poll = setInterval(() => {
      const app = window.lockstep;
      if (app?.player && app.model?.current && samples.length < 6000) {
        const now = performance.timeOrigin + performance.now();
        const { error, held } = window.__roomError(app, now);
        samples.push([now, error, app.player.paused, held]);
      }
      seen("page", document.readyState !== "loading");
      seen("app", Boolean(app));
      seen("panels", Boolean(app?.chat));
      seen("connected", app?.conn?.state === "open");
      seen("clock", Boolean(app?.clock?.ready));
      seen("loaded", Boolean(app?.player && app.loadedItemId && !app.loading));
      seen("landing", Number.isFinite(app?.controller?.lastSeekAt));
      seen("seeked", app?.controller?.landing?.phase === "armed");
      // Its first landing took where the <video> early.js set fetching ahead waits (no seek).
      seen("adopted", app?.controller?.landing?.adopted === true);
      // ...starting at once a little behind it, the rate closing the rest (catchUpLimit).
      seen("caughtUp", app?.controller?.landing?.adopted === true && app.controller.landing.untimed === true);
      seen("playing", app?.player ? !app.player.paused : false);
      // How its first landing went (a seek within the buffer, one that fetches, or none), and the
      // seek time it planned by.
      const c = app?.controller;
      if (!window.__landedBy && Number.isFinite(c?.lastSeekAt) && c.landing) {
        const how = c.landing.adopted ? "adopted" : c.landing.buffered ? "buffered" : "fetching";
        window.__landedBy = { how, seekMs: Math.round(c.seekLatency * 1000), startBy: null };
      }
      // ...and how its start was measured (a start held once more is measured again, later).
      if (window.__landedBy && !window.__landedBy.startBy && c?.startMeasuredBy) window.__landedBy.startBy = c.startMeasuredBy;
      if (steps.playing && performance.now() > 20_000) clearInterval(poll);
    }, 4);
  });
  const opened = Date.now();
  await late.page.goto(url);
  // Within 50 ms, and within 20 ms (TIGHT), each held for half a second: by the readings in the
  // page (`reached`), and, as before the fourteenth session, by probes over CDP every ~25 ms timed
  // by when their answers came (`probed`; LATE_TRACE prints those).
  const reached = { [converged]: Infinity, [TIGHT]: Infinity };
  const probed = { [converged]: Infinity, [TIGHT]: Infinity };
  const within = { [converged]: null, [TIGHT]: null };
  const trace = [];
  // A joiner not built to meet TIGHT (a YouTube item) is measured until within `converged`.
  const last = converged === CONVERGED ? TIGHT : converged;
  while (Date.now() - opened < 15_000 && !(Number.isFinite(reached[last]) && Number.isFinite(probed[last]))) {
    const p = await probeViewer(late.page).catch(() => null);
    if (p) trace.push([(Date.now() - opened) / 1000, Math.round((p.position - p.trueTarget) * 1000), Math.round((p.estimatedTarget - p.trueTarget) * 1000), p.paused ? "P" : p.rate.toFixed(3)]);
    for (const band of [converged, TIGHT]) {
      if (Number.isFinite(probed[band])) continue;
      const ok = p && !p.paused && Math.abs(p.position - p.trueTarget) <= band;
      if (ok && within[band] === null) within[band] = Date.now();
      if (!ok) within[band] = null;
      if (within[band] !== null && Date.now() - within[band] >= 500) probed[band] = (within[band] - opened) / 1000;
    }
    if (!Number.isFinite(reached[last])) {
      const held = await late.page.evaluate((bands) => bands.map((b) => window.__heldSince?.(b) ?? null), [converged, TIGHT]).catch(() => [null, null]);
      for (const [i, band] of [converged, TIGHT].entries()) if (held[i] !== null) reached[band] = (held[i] - opened) / 1000;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  if (LATE_REPORT) await eventually(() => late.page.evaluate(() => window.__reports?.length > 0), { what: "the joiner's first sync report", timeoutMs: 8000 }).catch(() => {});
  // Each step in seconds from opening the page, and the fetches the page made before connecting.
  const { seen: seenAt, fetches, landedBy, firstReport, readings } = await late.page.evaluate(() => ({
    seen: window.__steps,
    // Its readings in the page, one every 50 ms at most, for 3 s: [epoch ms, error s, paused, held].
    readings: (() => {
      const kept = [];
      for (const x of window.__joinSamples ?? []) if (kept.length < 60 && !(x[0] - kept.at(-1)?.[0] < 50)) kept.push(x);
      return kept;
    })(),
    landedBy: window.__landedBy ?? null,
    firstReport: window.__reports?.[0] ?? null,
    fetches: performance.getEntriesByType("resource").map((e) => ({ name: new URL(e.name).pathname, start: performance.timeOrigin + e.startTime, end: performance.timeOrigin + e.responseEnd })),
  }));
  const steps = Object.fromEntries(Object.entries(seenAt).sort((a, b) => a[1] - b[1]).map(([k, v]) => [k, (v - opened) / 1000]));
  if (returning) await late.page.close();
  else await late.context.close();
  if (process.env.LATE_TRACE) {
    console.log(`late joiner's steps, s from opening the page: ${Object.entries(steps).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
    console.log(`late joiner's trace [s, error ms, clock error ms, rate]: ${JSON.stringify(trace)}`);
  }
  // A slow joiner's readings are printed with its steps (the run's report): s from opening the
  // page, error ms, P while paused, H a Firefox reading held from before its page was held up.
  const errors = readings.map(([at, err, paused, held]) => `${((at - opened) / 1000).toFixed(2)} ${Math.round(err * 1000)}${paused ? "P" : ""}${held ? "H" : ""}`);
  return { kind: late.kind, converged: reached[converged], tight: reached[TIGHT], probedTight: probed[TIGHT], steps, landedBy, firstReport, errors, fetches: fetches.filter((f) => f.start - opened < 5000).map((f) => ({ ...f, start: (f.start - opened) / 1000, end: (f.end - opened) / 1000 })) };
}

/** Uploads the test video as `viewer`'s user (tus, in one PATCH) and waits until it is playable;
 * returns its id, and how the server made it playable ("remuxed", "transcoded") and how soon. */
async function uploadTestVideo(viewer, base) {
  const request = viewer.page.context().request;
  const id = await uploadFile(request, base, testVideo({ gop: GOP, size: SIZE, noise: HEARD && NOISE_RATE, seconds: VIDEO_SECONDS }), "bench.mp4");
  const sent = Date.now();
  const upload = await eventually(async () => {
    const { uploads } = await (await request.get(`${base}/api/uploads`)).json();
    const found = uploads.find((u) => u.id === id);
    return found?.playable ? found : null;
  }, { what: "the upload playable", timeoutMs: 60_000 });
  const how = upload.jobs.find((j) => j.kind === "playable")?.result?.how ?? "served as uploaded";
  return { id, how: `${how}, playable ${((Date.now() - sent) / 1000).toFixed(1)} s after it was sent` };
}

async function run(scenario) {
  const heard = HEARD && scenario !== "youtube";
  const fixtures = await startFixtures({ gop: GOP, size: SIZE, noise: heard && NOISE_RATE, seconds: VIDEO_SECONDS, sound: !SILENT });
  const server = await startServer(fixtures);
  if (BROWSER !== "chromium" && scenario === "throttle") throw new Error(`the throttle scenario slows a viewer through Chromium's CDP: not with BROWSER=${BROWSER}`);
  const pulse = heard ? await startPulse(VIEWERS) : VIEWER_SKEWS.length ? await startSkewedSinks(VIEWER_SKEWS) : null;
  // (The sound server is a child of this process: stopped if a browser does not start either.)
  const browsers = {};
  try {
    if (webkit) browsers.webkit = await launchWebKit();
    else if (!firefox) browsers.chromium = await launchBrowser({ sound: pulse?.env });
    if (firefox || mixed) browsers.firefox = await launchFirefox({ sound: pulse?.env });
    if ((firefox || mixed) && LATE_OWN_FIREFOX) browsers.lateFirefox = await launchFirefox({ sound: pulse?.env });
  } catch (err) {
    await browsers.chromium?.close();
    await browsers.firefox?.close();
    await browsers.webkit?.close();
    pulse?.close();
    throw err;
  }
  const proxies = [];
  const prefix = `${SILENT ? "silent_" : ""}${BROWSER === "chromium" ? "" : `${BROWSER}_`}${scenario === "loopback" ? "" : `${scenario}_`}`;
  // A player with fixed rates (YouTube) seeks to within its own band; TIGHT is not its aim.
  const coarse = scenario === "youtube";
  const converged = coarse ? COARSE_BAND : CONVERGED;
  // The converge figures' RESULT names: CONVERGED's carry none, as they always have.
  const bandName = coarse ? `${COARSE_BAND * 1000}` : "";
  try {
    // Where each viewer (and the late joiner, the last) reaches the server.
    const bases = [];
    for (let i = 0; i <= VIEWERS; i++) {
      if (scenario === "delay") {
        const proxy = await startDelayProxy(server.port, DELAYS_MS[i % DELAYS_MS.length]);
        proxies.push(proxy);
        bases.push(proxy.base);
      } else {
        bases.push(server.base);
      }
    }
    const viewers = [];
    for (let i = 0; i < VIEWERS; i++) viewers.push(await openBenchViewer(browsers, kindOf(i)));
    for (const [i, v] of viewers.entries()) {
      if (v.kind === "firefox") await v.page.addInitScript(watchEdges);
      await v.page.addInitScript(defineRoomError);
      if (heard || VIEWER_SKEWS.length) {
        // The labels of audio outputs are given to pages allowed a microphone (Firefox's, to
        // pages that had one: routeSound asks for its fake one).
        if (v.kind === "chromium") await v.context.grantPermissions(["microphone"], { origin: new URL(bases[i]).origin });
        await v.page.addInitScript(routeSound, sinkLabel(i));
      }
      if (TRACE) await v.page.addInitScript(traceMedia);
    }
    if (scenario === "throttle") {
      const cdp = await viewers[VIEWERS - 1].context.newCDPSession(viewers[VIEWERS - 1].page);
      await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
    }
    const what = { delay: `one-way delays ${DELAYS_MS.join("/")} ms ±${JITTER * 100}%`, throttle: "one viewer's CPU 4x slower", youtube: "a YouTube item (the IFrame API stand-in), loopback" };
    const named = { chromium: "Chromium", firefox: "Firefox ESR (WebDriver BiDi)", webkit: "WebKitGTK's MiniBrowser (WebDriver)", mixed: `${viewers.map((v) => (v.kind === "firefox" ? "Firefox ESR" : "Chromium")).join(", ")}; late joiners Chromium and Firefox in turn` };
    console.log(`scenario ${scenario}: ${what[scenario] ?? "loopback"}; ${named[BROWSER]}${VIEWER_SKEWS.length ? `; each viewer's sound card ${VIEWER_SKEWS.join(", ")} ppm off the machine's clock` : ""}`);
    const host = viewers[0].page;
    await host.goto(`${bases[0]}/`);
    const room = await host.evaluate(async () => {
      const r = await fetch("/api/rooms", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Sync bench" }) });
      return r.json();
    });
    for (const [i, v] of viewers.entries()) await v.page.goto(`${bases[i]}/r/${room.id}`);
    await host.waitForSelector("#connection[data-state=in-sync]");
    if (AS_UPLOAD && scenario !== "youtube") {
      const { id: uploadId, how } = await uploadTestVideo(viewers[0], server.base);
      await host.evaluate((id) => window.lockstep.conn.send({ t: "queue_add_upload", upload_id: id }), uploadId);
      console.log(`the item is the host's upload of the test video (${how})${KEYFRAMES ? "" : "; its keyframe times refused to the pages"}`);
    } else {
      const item = scenario === "youtube" ? "https://www.youtube.com/watch?v=BenchSync01" : fixtures.mediaUrl("bench");
      await host.evaluate((url) => window.lockstep.conn.send({ t: "queue_add", url }), item);
    }
    for (const v of viewers) {
      await eventually(async () => {
        const p = await probeViewer(v.page);
        return p && !p.paused && Math.abs(p.position - p.trueTarget) < (scenario === "youtube" ? 0.3 : 0.1);
      }, { what: "viewer playing in sync", timeoutMs: 30_000 });
    }
    // Then measure from when every viewer has settled on the room: all within TIGHT (YouTube:
    // 0.3 s) at once, for half a second. Let in at 100 ms at one instant, a run began inside an
    // item start's landing (a viewer 119 ms behind, closing that at 2% for 5 s of "steady"
    // samples). At most GATE_MS; then it measures anyway, and says so.
    const band = scenario === "youtube" ? 0.3 : TIGHT;
    const gateFrom = Date.now();
    let settledSince = null;
    const gateMet = () => settledSince !== null && Date.now() - settledSince >= 500;
    while (!gateMet() && Date.now() - gateFrom < GATE_MS) {
      const ps = await Promise.all(viewers.map((v) => probeViewer(v.page).catch(() => null)));
      const ok = ps.every((p) => p && !p.paused && Math.abs(p.position - p.trueTarget) < band);
      settledSince = ok ? (settledSince ?? Date.now()) : null;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (GOP !== 1) console.log(`the test video has a keyframe every ${GOP} s`);
    if (SIZE !== "480x270") console.log(`the test video is ${SIZE}`);
    console.log(`start gate: ${gateMet() ? `every viewer within ${band * 1000} ms of the room for 0.5 s` : `not met in ${GATE_MS / 1000} s, measuring anyway`} (${((Date.now() - gateFrom) / 1000).toFixed(2)} s)`);
    const recording = heard ? pulse.record(recordingFile(scenario)) : null;
    await Promise.all(viewers.map((v) => installSampler(v.page)));
    const start = Date.now();
    // SYNC_STEADY's soak: every 10 s the server's memory and open files, every minute the pages'
    // own state (the lengths of its sync lists, its document's elements).
    const soak = STEADY_ONLY ? { server: [], pages: [] } : null;
    const soakLook = async () => {
      soak.server.push({ now: Date.now(), ...serverUse(server.pid) });
      if (soak.server.length % 6 === 1) soak.pages.push({ now: Date.now(), pages: await Promise.all(viewers.map((v) => v.page.evaluate(pageState).catch(() => null))) });
    };
    if (soak) await soakLook();
    const soakTimer = soak && setInterval(() => soakLook().catch(() => {}), 10_000);
    const events = [];
    const lastBatch = LATE_JOIN_AT.at(-1) ?? DURATION;
    const scheduled = SCHEDULE.filter((x) => x.at < lastBatch);
    const schedule = (async () => {
      for (const step of scheduled) {
        await new Promise((r) => setTimeout(r, start + step.at * 1000 - Date.now()));
        const frame = step.seek !== undefined ? { t: "seek", position: step.seek } : step.rate !== undefined ? { t: "rate", rate: step.rate } : { t: step.pause ? "pause" : "play" };
        const sentAt = await host.evaluate((f) => {
          const t = performance.timeOrigin + performance.now();
          window.lockstep.conn.send(f);
          return t;
        }, frame);
        // A play starts moving a moment after the command (the server schedules it: `at`
        // ahead): when, by the room's clock (this machine's: the server runs here).
        const startsAt = step.play ? await host.evaluate(async () => {
          const deadline = performance.now() + 5000;
          while (window.lockstep.model.playback.paused && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
          return window.lockstep.model.playback.at / 1000;
        }) : undefined;
        events.push({ ...step, sentAt, startsAt });
      }
    })();
    // Awaited once the joiners are done; a failure meanwhile is kept for then, not left unhandled
    // (which would end the process before `finally` stops the servers and browsers).
    schedule.catch(() => {});
    // Late joiners, in batches (LATE_JOIN_AT), one after another within each (LATE_JOINERS, 3 by
    // default): from opening the room's page until within CONVERGED, and within TIGHT, of the
    // room. Alongside the schedule; a batch stops opening joiners JOIN_CLEARANCE_S before the
    // room's next event.
    const joins = [];
    const returning = LATE_RETURNING ? await openBenchViewer(browsers, kindOf(0)) : null;
    for (const at of LATE_JOIN_AT) {
      await new Promise((r) => setTimeout(r, start + at * 1000 - Date.now()));
      const next = Math.min(...scheduled.filter((x) => x.at > at).map((x) => x.at));
      for (let i = 0; i < LATE_JOINERS; i++) {
        if (i > 0 && Date.now() > start + (next - JOIN_CLEARANCE_S) * 1000) {
          console.log(`late joiners at ${at} s: ${i} of ${LATE_JOINERS}, the room's next event at ${next} s being near`);
          break;
        }
        const opened = Date.now();
        const join = await lateJoin(browsers, kindOf(joins.length), `${bases[VIEWERS]}/r/${room.id}`, returning, converged);
        const crossed = scheduled.find((x) => x.at > at && start + x.at * 1000 < opened + ((coarse ? join.converged : join.tight) + 0.5) * 1000);
        if (crossed) console.log(`a late joiner at ${at} s was still converging at the room's event at ${crossed.at} s`);
        joins.push({ ...join, rate: roomRateAt(scheduled, at) });
      }
    }
    await returning?.context.close();
    await schedule;
    await new Promise((r) => setTimeout(r, start + DURATION * 1000 - Date.now()));
    // Every viewer's sampler stopped first (a cheap call each), then the samples fetched: fetching
    // a minute of them costs a page (Firefox's above all, over BiDi) enough to stall the others on
    // two cores, and the samples those took meanwhile counted. In one mixed room both Chromium
    // viewers fell 50-90 ms behind for the last half second, which alone made its p99 79.9 ms.
    await Promise.all(viewers.map((v) => v.page.evaluate(() => {
      window.__samplesStopped = true;
    })));
    if (soak) {
      clearInterval(soakTimer);
      soak.server.push({ now: Date.now(), ...serverUse(server.pid) });
      soak.pages.push({ now: Date.now(), pages: await Promise.all(viewers.map((v) => v.page.evaluate(pageState).catch(() => null))) });
    }
    const samples = await Promise.all(viewers.map((v) => v.page.evaluate(() => window.__samples)));
    const reports = await Promise.all(viewers.map((v) => v.page.evaluate(() => window.__reports)));
    const clockSamples = await Promise.all(viewers.map((v) => v.page.evaluate(() => window.__clockSamples)));
    if (process.env.SYNC_DUMP) {
      const { writeFileSync } = await import("node:fs");
      const traces = TRACE ? await Promise.all(viewers.map((v) => v.page.evaluate(() => window.__trace))) : null;
      writeFileSync(`${process.env.SYNC_DUMP}-${BROWSER === "chromium" ? "" : `${BROWSER}-`}${scenario}.json`, JSON.stringify({ kinds: viewers.map((v) => v.kind), events, samples, reports, clockSamples, traces, recordingStartedAt: recording?.startedAt ?? null }));
    }

    // Align the viewers' samples in SAMPLE_MS buckets of the shared clock: each viewer's sample
    // nearest the bucket's middle, within one sample period. (Each viewer's own sample in the
    // bucket, as before the twenty-first session, left most buckets out where the samplers'
    // timers ran a little late: in one run behind the delays, at 1.25, 122 of 448 buckets had all
    // four viewers, and a seek whose viewers were all within 20 ms 0.45 s after it was counted
    // at 1.05 s, the next bucket with all four.)
    const t0 = Math.min(...samples.map((s) => s[0].now));
    const tEnd = Math.max(...samples.map((s) => s.at(-1).now));
    const buckets = new Map();
    const next = samples.map(() => 0);
    for (let b = 0; t0 + b * SAMPLE_MS <= tEnd; b++) {
      const middle = t0 + (b + 0.5) * SAMPLE_MS;
      const m = new Map();
      samples.forEach((list, viewer) => {
        let i = next[viewer];
        while (i + 1 < list.length && Math.abs(list[i + 1].now - middle) <= Math.abs(list[i].now - middle)) i++;
        next[viewer] = i;
        if (list[i] && Math.abs(list[i].now - middle) <= SAMPLE_MS) m.set(viewer, list[i]);
      });
      buckets.set(b, m);
    }
    const eventTimes = events.map((e) => e.sentAt);
    // Each viewer's error averaged over its samples within LINE_SAMPLES sample periods either
    // side (its line; at least 2/3 of them there): at room rates other than 1 Chromium's readings
    // jitter by about ±5 ms around where the player is (web/bench/rate.mjs), so the spread of
    // single readings there is partly that jitter. (Its samples by time, not by bucket: a
    // sampler's timer jitters, and a line that needed every bucket was seldom had. Not a Firefox
    // reading held from before its page was held up: `held`.)
    const line = (viewer, now) => {
      const xs = samples[viewer].filter((s) => !s.held && Math.abs(s.now - now) <= LINE_SAMPLES * SAMPLE_MS).map((s) => s.error);
      return xs.length >= (2 * (2 * LINE_SAMPLES + 1)) / 3 ? xs.reduce((x, y) => x + y) / xs.length : null;
    };
    const rows = [...buckets.entries()]
      .filter(([, m]) => m.size === VIEWERS)
      .map(([b, m]) => {
        const errors = [...m.values()].map((s) => s.error);
        const lines = [...m.entries()].map(([v, s]) => line(v, s.now));
        const known = lines.every((x) => x !== null);
        const lineSpread = known ? Math.max(...lines) - Math.min(...lines) : null;
        // The spread of the readings' own scatter: each reading less its viewer's line, so as if
        // every line were the same (what single readings would show with the viewers exactly
        // together).
        const residuals = known ? errors.map((e, k) => e - lines[k]) : null;
        const noiseSpread = known ? Math.max(...residuals) - Math.min(...residuals) : null;
        // Firefox's viewers read at every step, a late one too (watchEdges), as before the
        // forty-ninth session.
        const everyEdge = [...m.values()].map((s) => s.errorEveryEdge ?? s.error);
        // A Firefox reading held from before its page was held up (`held`, watchEdges).
        const held = [...m.values()].some((s) => s.held);
        return { t: (b * SAMPLE_MS) / 1000, now: t0 + b * SAMPLE_MS, held, errors, spread: Math.max(...errors) - Math.min(...errors), spreadEveryEdge: Math.max(...everyEdge) - Math.min(...everyEdge), lineSpread, noiseSpread, worst: Math.max(...errors.map(Math.abs)), roomRate: [...m.values()][0].roomRate };
      })
      .sort((a, b) => a.t - b.t);
    // A bucket is steady when its whole window [now, now + SAMPLE_MS) lies outside every settling
    // period [event, event + SETTLE_S).
    const settled = (from, to) => from >= t0 + SETTLE_S * 1000 && !eventTimes.some((t) => to > t && from < t + SETTLE_S * 1000);
    // Not where a Firefox viewer's reading was held from before its page was held up: Firefox's
    // currentTime then reads where its video was before (it is updated by tasks on the page's
    // thread), while the video plays on (its last frame shown on time; back within a few ms of
    // the room 50-100 ms later, with nothing correcting it: bench/RESULTS.md). Counted apart.
    const settledRows = rows.filter((r) => settled(r.now, r.now + SAMPLE_MS));
    const steady = settledRows.filter((r) => !r.held);
    const spreads = steady.map((r) => r.spread).sort((a, b) => a - b);
    const spreadsWithHeld = settledRows.map((r) => r.spread).sort((a, b) => a - b);
    const heldCounts = samples.map((list, viewer) => (viewers[viewer].kind === "firefox" ? list.filter((x) => x.held).length : null)).filter((x) => x !== null);
    const stepped = samples.some((list) => list.some((x) => x.errorEveryEdge !== undefined && x.errorEveryEdge !== null));
    const spreadsEveryEdge = steady.map((r) => r.spreadEveryEdge).sort((a, b) => a - b);
    // The lines' spread: only where the whole averaging window is steady.
    const lineSpreads = rows
      .filter((r) => r.lineSpread !== null && settled(r.now - LINE_SAMPLES * SAMPLE_MS, r.now + (LINE_SAMPLES + 1) * SAMPLE_MS))
      .map((r) => r.lineSpread)
      .sort((a, b) => a - b);
    const rates = [...new Set(steady.map((r) => r.roomRate))].sort((a, b) => a - b);
    const byRate = rates.map((rate) => {
      const xs = steady.filter((r) => r.roomRate === rate).map((r) => r.spread).sort((a, b) => a - b);
      const lined = rows.filter((r) => r.roomRate === rate && r.lineSpread !== null && settled(r.now - LINE_SAMPLES * SAMPLE_MS, r.now + (LINE_SAMPLES + 1) * SAMPLE_MS));
      const sorted = (key) => lined.map((r) => r[key]).sort((a, b) => a - b);
      return { rate, n: xs.length, p95: quantile(xs, 0.95), lined: lined.length, lineP95: quantile(sorted("lineSpread"), 0.95), noiseP95: quantile(sorted("noiseSpread"), 0.95) };
    });
    const errors = steady.map((r) => r.worst).sort((a, b) => a - b);
    const kinds = viewers.map((v) => v.kind);

    // What is heard (SYNC_HEARD=1): every SAMPLE_MS of the recording, the spread between what the
    // viewers' channels play, where every one of them plays the video (not while paused), steady
    // as the readings' buckets are: by when that instant of the recording was (its start by this
    // machine's clock, give or take the recording's ~20 ms latency, well within SETTLE_S).
    const heardRows = [];
    /** The room's rate at `now` (ms, this machine's clock), by the events sent. */
    const rateAt = (now) => events.filter((e) => e.rate !== undefined && e.sentAt <= now).at(-1)?.rate ?? 1;
    if (recording) {
      await recording.stop();
      const analysed = Date.now();
      // Where the room was at an instant, by the host's samples: where to look first for a
      // channel's sound after a seek.
      const host = samples[0];
      const hint = (now) => {
        const s = host.reduce((a, b) => (Math.abs(b.now - now) < Math.abs(a.now - now) ? b : a));
        return Math.abs(s.now - now) < 1000 ? s.target + ((now - s.now) / 1000) * s.roomRate : null;
      };
      const { rows: spreads, matched } = heardSpreads({
        recording: recordingFile(scenario),
        channels: VIEWERS,
        video: testVideo({ gop: GOP, size: SIZE, noise: NOISE_RATE, seconds: VIDEO_SECONDS }),
        startedAt: recording.startedAt,
        stepMs: SAMPLE_MS,
        keep: (now) => now >= t0 && now + SAMPLE_MS <= tEnd && settled(now, now + SAMPLE_MS),
        hint,
      });
      for (const r of spreads) heardRows.push({ ...r, roomRate: rateAt(r.now) });
      // (`at`: each channel's place in the video, s; a viewer's channel is its index.)
      console.log(`heard: ${matched.join(", ")} windows of 10 ms matched per viewer, ${heardRows.length} steady instants with every viewer heard (analysed in ${((Date.now() - analysed) / 1000).toFixed(1)} s)`);
    }
    const heardSorted = heardRows.map((r) => r.spread).sort((a, b) => a - b);
    // Where each viewer sits among the others, steady, per room rate: by the readings (its error
    // less the middle of the viewers' errors at that instant) and by what is heard (its place in
    // the video less the middle of theirs), the median of each. A browser that plays apart from
    // the others shows here; in a mixed room (BROWSER=mixed) so does what a Chromium and a
    // Firefox viewer side by side are heard apart (the mean of one browser's viewers less the
    // other's).
    const placesRead = placesBy(steady.map((r) => ({ roomRate: r.roomRate, at: r.errors })), kinds);
    const placesHeard = placesBy(heardRows, kinds);
    // Each viewer's sound against its own reading: its heard place less its read place (its
    // sample nearest the instant, carried to it at the room's rate), the median over each 2 s of
    // the recording. A player whose sound keeps to its currentTime holds one figure all along;
    // the recording's start (when its first sample was played, give or take its ~20 ms) adds the
    // same few ms to every viewer's.
    const heardLessRead = kinds.map((_, v) => {
      const list = samples[v];
      const windows = new Map();
      let i = 0;
      for (const r of heardRows) {
        while (i + 1 < list.length && Math.abs(list[i + 1].now - r.now) <= Math.abs(list[i].now - r.now)) i++;
        const x = list[i];
        if (!x || Math.abs(x.now - r.now) > SAMPLE_MS) continue;
        const read = x.target + x.error + ((r.now - x.now) / 1000) * x.roomRate;
        const w = Math.floor((r.now - t0) / 2000);
        if (!windows.has(w)) windows.set(w, []);
        windows.get(w).push(r.at[v] - read);
      }
      const medians = [...windows.values()].filter((xs) => xs.length >= 10).map(middle).sort((a, b) => a - b);
      return medians.length ? { lo: medians[0], mid: middle(medians), hi: medians.at(-1) } : null;
    });
    const heardByRate = [...new Set(heardRows.map((r) => r.roomRate))].sort((a, b) => a - b).map((rate) => {
      const xs = heardRows.filter((r) => r.roomRate === rate).map((r) => r.spread).sort((a, b) => a - b);
      return { rate, n: xs.length, p95: quantile(xs, 0.95) };
    });

    // Each seek: from sending it until every viewer is within CONVERGED of the room (and so of
    // each other) and stays there for half a second.
    // (A play: from sending it, but only from when the room starts moving, the server having
    // scheduled that a moment later; until then every viewer waits paused where the room does.)
    // Not by a Firefox reading held from before its page was held up (`held`), as the spread.
    const convergeWithin = (band, kind = "seek") => events
      .filter((e) => e[kind] !== undefined)
      .map((e) => {
        const after = rows.filter((r) => !r.held && r.now >= Math.max(e.sentAt, e.startsAt ?? -Infinity));
        const i = after.findIndex((r, k) => after.slice(k, k + 10).every((x) => x.worst <= band));
        return i < 0 ? Infinity : (after[i].now - e.sentAt) / 1000;
      });
    const convergence = convergeWithin(converged);
    const convergenceTight = convergeWithin(TIGHT);
    // Each play after a pause: from sending it until every viewer is within TIGHT of the room
    // (counted once the room starts moving; `play_start_delay`: when that was, from the command).
    const playTight = convergeWithin(TIGHT, "play");
    // The correction seen as a rate: how far from the room's rate, outside the first second after
    // each seek or rate change, and how often each viewer's correction changes direction.
    // The viewers' own first landings count as seeks too: the first SETTLE_S of the measurement
    // are left out, as they are from the spread.
    const afterEvent = (now, seconds) => now < t0 + SETTLE_S * 1000 || eventTimes.some((t) => now >= t && now < t + seconds * 1000);
    const graced = (now) => afterEvent(now, NUDGE_GRACE_S);
    const nudgeMax = Math.max(...samples.flat().filter((x) => !graced(x.now)).map((x) => Math.abs(x.nudge)));
    const reversalTimes = samples.map((list) => {
      const at = [];
      let last = 0;
      for (const x of list) {
        const sign = Math.abs(x.nudge) < 1e-6 ? 0 : Math.sign(x.nudge);
        if (sign !== 0 && last !== 0 && sign !== last) at.push(x.now);
        if (sign !== 0) last = sign;
      }
      return at;
    });
    const reversals = reversalTimes.map((at) => at.length);
    const steadyReversals = reversalTimes.map((at) => at.filter((now) => !afterEvent(now, STEADY_REVERSAL_S)).length);
    // Where each viewer rests at the room's rate of 1: its median error over each steady stretch
    // (from SETTLE_S after the start or a change of the room's playback, to the next; not while
    // the room is paused). The spread at rate 1 is mostly such rests.
    const rests = [];
    const bounds = [{ at: t0 }, ...events.map((e) => ({ at: e.sentAt, paused: Boolean(e.pause) })), { at: Infinity }];
    for (let i = 0; i + 1 < bounds.length; i++) {
      if (bounds[i].paused) continue;
      const from = bounds[i].at + SETTLE_S * 1000;
      samples.forEach((list, viewer) => {
        const xs = list.filter((x) => x.now >= from && x.now < bounds[i + 1].at && x.roomRate === 1).map((x) => x.error).sort((a, b) => a - b);
        if (xs.length >= 20) rests.push({ viewer, at: (from - t0) / 1000, error: quantile(xs, 0.5) });
      });
    }
    const offRests = rests.filter((r) => Math.abs(r.error) > REST_OFF);
    // Each release of a stretched rate for the room's 1 (the controller's `released`, kept in the
    // samples until its rest is measured): where the player rests (its median error 0.3-1 s
    // after, when nothing moved it meanwhile) against where it was let go of to rest (`aim`: off
    // the room on the side a drifting player drifts from), and whether it let go at a reading
    // above its line.
    const releases = [];
    for (const list of samples) {
      const seen = new Set();
      list.forEach((x, i) => {
        const r = x.released;
        if (!r || seen.has(r.at)) return;
        seen.add(r.at);
        const after = list.slice(i).filter((y) => y.now >= x.now + 300 && y.now <= x.now + 1000);
        if (!after.length || after.some((y) => Math.abs(y.nudge) > 1e-9 || y.roomRate !== 1)) return;
        releases.push({ upper: r.upper, rest: quantile(after.map((y) => y.error).sort((a, b) => a - b), 0.5) - (r.aim ?? 0) });
      });
    }
    const releaseRests = releases.map((r) => Math.abs(r.rest)).sort((a, b) => a - b);
    // Stalls: a playing viewer's position falling STALL or more behind the room from one sample to
    // the next while nothing moved it (no correction, landing or change of the room's rate, not in
    // the first second after an event). The
    // machine does this, not the controller (on a host short of CPU, all four at once): a run
    // with many is not comparable with one with few. Not counted for a stepped player (Firefox):
    // its error between steps is carried from the last one, and a late step reads as a stall.
    const stalls = samples.map((list) => list.slice(1).filter((x, i) => {
      const a = list[i];
      return !graced(x.now) && !a.stepped && !x.stepped && a.nudge === 0 && a.phase === null && x.phase === null && x.roomRate === a.roomRate && Math.abs(a.error) < 0.05 && x.error - a.error <= -STALL;
    }).length);
    // Seeks the players made, and how many beyond what the events call for.
    const playerSeeks = samples.map((list) => list.at(-1).seeks);
    // A play lands too (the players are paused where the room is, and seek ahead to start on time),
    // and a viewer that heard of the pause late (behind a slow link: it played on past where the
    // room paused) seeks back to it: one seek per seek, play and pause at most.
    const extraSeeks = playerSeeks.map((n) => Math.max(0, n - events.filter((e) => e.rate === undefined).length));
    // Each seek of the room, per viewer: how many seeks its player made from it until the room's
    // next event (or the end). More than one is a second seek (a landing that lands again).
    const seeksAt = (list, now) => list.findLast((x) => x.now <= now)?.seeks ?? 0;
    const seekEvents = events.filter((e) => e.seek !== undefined);
    /** When the room's next event after `e` was sent (ms), or Infinity. */
    const nextEventAt = (e) => events.find((x) => x.sentAt > e.sentAt)?.sentAt ?? Infinity;
    const secondSeeks = seekEvents.flatMap((e) => {
      const until = nextEventAt(e);
      return samples.map((list, viewer) => ({ viewer, at: (e.sentAt - t0) / 1000, n: seeksAt(list, until) - seeksAt(list, e.sentAt) })).filter((x) => x.n > 1);
    });
    const tightSorted = [...convergenceTight].sort((a, b) => a - b);
    // Where each viewer's landing after each seek came out: its error at the first sample once
    // the controller had measured the start (its phase over). A start later than the one learnt
    // comes out behind, and the grace's nudge has what is left of the first second to close it.
    const landed = seekEvents.flatMap((e) => {
      const until = nextEventAt(e);
      return samples.flatMap((list) => {
        const after = list.filter((x) => x.now >= e.sentAt && x.now < until);
        const i = after.findIndex((x, k) => k > 0 && x.phase === null && after[k - 1].phase !== null);
        return i < 0 ? [] : [after[i].error];
      });
    }).sort((a, b) => a - b);
    const LANDED_BEHIND = 0.05;

    console.log(`${VIEWERS} viewers, ${DURATION} s, ${steady.length} steady samples of ${rows.length}`);
    console.log(`spread between viewers (steady): p50 ${ms(quantile(spreads, 0.5))} ms, p95 ${ms(quantile(spreads, 0.95))} ms, p99 ${ms(quantile(spreads, 0.99))} ms, max ${ms(spreads.at(-1))} ms`);
    if (heldCounts.length) console.log(`the same with the Firefox readings held from before a page was held up: p95 ${ms(quantile(spreadsWithHeld, 0.95))} ms, p99 ${ms(quantile(spreadsWithHeld, 0.99))} ms; such samples left out, per Firefox viewer: ${heldCounts.join(", ")} (${settledRows.length - steady.length} steady samples of the room)`);
    if (stepped) {
      const late = samples.map((list) => list.at(-1)?.edgesLate).filter((x) => x !== null && x !== undefined);
      console.log(`the same with every Firefox step taken, a late one too (as before the forty-ninth session): p95 ${ms(quantile(spreadsEveryEdge, 0.95))} ms, p99 ${ms(quantile(spreadsEveryEdge, 0.99))} ms; steps seen late and left out, per Firefox viewer: ${late.join(", ")}`);
    }
    console.log(`spread by the room's rate (steady): ${byRate.map((x) => `at ${x.rate}: p95 ${ms(x.p95)} ms (${x.n} samples)`).join("; ")}`);
    if (heardLessRead.some(Boolean)) {
      console.log(`each viewer's sound against its own reading (heard less read, the median over each 2 s steady; lowest..highest (middle); the recording's start adds the same to all): ${heardLessRead.map((x, i) => `${kinds[i]} ${x ? `${ms(x.lo)}..${ms(x.hi)} (${ms(x.mid)})` : "-"}`).join(", ")} ms`);
    }
    for (const [what, places] of [["read", placesRead], ["heard", placesHeard]]) {
      if (!places.length) continue;
      console.log(`each viewer against the viewers' middle, ${what} (steady, median, + ahead): ${places.map((x) => `at ${x.rate}: ${x.viewers.map((v, i) => `${kinds[i]} ${v >= 0 ? "+" : ""}${ms(v)}`).join(", ")} ms`).join("; ")}`);
      if (mixed) console.log(`Firefox's viewers against Chromium's, ${what} (the mean of each, steady, median, + ahead): ${places.map((x) => `at ${x.rate}: ${ms(x.firefoxAhead)} ms`).join("; ")}`);
    }
    if (heardSorted.length) {
      console.log(`spread between what the viewers are heard playing (steady): p50 ${ms(quantile(heardSorted, 0.5))} ms, p95 ${ms(quantile(heardSorted, 0.95))} ms, p99 ${ms(quantile(heardSorted, 0.99))} ms, max ${ms(heardSorted.at(-1))} ms; by the room's rate: ${heardByRate.map((x) => `at ${x.rate}: p95 ${ms(x.p95)} ms (${x.n} instants)`).join("; ")}`);
    }
    console.log(`spread between the viewers' lines (each viewer's error averaged over ±${LINE_SAMPLES * SAMPLE_MS} ms, steady): p50 ${ms(quantile(lineSpreads, 0.5))} ms, p95 ${ms(quantile(lineSpreads, 0.95))} ms, p99 ${ms(quantile(lineSpreads, 0.99))} ms (${lineSpreads.length} samples)`);
    console.log(`by the room's rate, p95 of the lines' spread and of the readings' own scatter (each less its line): ${byRate.map((x) => `at ${x.rate}: ${ms(x.lineP95)} and ${ms(x.noiseP95)} ms (${x.lined} samples)`).join("; ")}`);
    console.log(`furthest viewer from the room (steady): p50 ${ms(quantile(errors, 0.5))} ms, p95 ${ms(quantile(errors, 0.95))} ms`);
    // What the viewers told the room (the People tab's figures and the room's spread) against
    // what the bench read of them over the same windows: each report's p95 beside the p95 of
    // |error| of that viewer's samples since its report before (5 s at most) that the page would
    // count (`reportable`: outside a landing and its grace; outside a landing for a build
    // without it), by the room's rate when it was sent.
    const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);
    const told = reports.flatMap((list, viewer) => list.map((r, i) => {
      const from = Math.max(r.now - 5000, i > 0 ? list[i - 1].now : -Infinity);
      const read = samples[viewer].filter((x) => x.now > from && x.now <= r.now && (x.reportable ?? x.phase === null)).map((x) => Math.abs(x.error)).sort((a, b) => a - b);
      return read.length < 10 ? null : { rate: rateAt(r.now), told: r.p95, read: quantile(read, 0.95) * 1000 };
    })).filter(Boolean);
    const toldByRate = [...new Set(told.map((x) => x.rate))].sort((a, b) => a - b).map((rate) => {
      const xs = told.filter((x) => x.rate === rate);
      return { rate, n: xs.length, told: median(xs.map((x) => x.told)), read: median(xs.map((x) => x.read)) };
    });
    if (told.length) console.log(`the viewers' own reports against the bench's reading of the same windows, median of their p95s, told / read: ${toldByRate.map((x) => `at ${x.rate}: ${x.told.toFixed(1)} / ${x.read.toFixed(1)} ms (${x.n} reports)`).join("; ")}`);
    console.log(`seek until all within ${converged * 1000} ms: ${convergence.map((c) => `${c.toFixed(2)} s`).join(", ")}`);
    console.log(`player seeks per viewer: ${playerSeeks.join(", ")} (beyond one per seek, play and pause: ${extraSeeks.join(", ")})`);
    if (!coarse) console.log(`seek until all within ${TIGHT * 1000} ms: ${convergenceTight.map((c) => `${c.toFixed(2)} s`).join(", ")}`);
    if (!coarse && tightSorted.length) console.log(`seeks until all within ${TIGHT * 1000} ms (${tightSorted.length}): p50 ${quantile(tightSorted, 0.5).toFixed(2)} s, p95 ${quantile(tightSorted, 0.95).toFixed(2)} s, max ${tightSorted.at(-1).toFixed(2)} s; over 1 s: ${tightSorted.filter((c) => c > 1).length}; a viewer's second seek after the room's: ${secondSeeks.length} of ${seekEvents.length * VIEWERS}${secondSeeks.length ? ` (${secondSeeks.map((x) => `viewer ${x.viewer} at ${x.at.toFixed(0)} s: ${x.n} seeks`).join(", ")})` : ""}`);
    if (landed.length) console.log(`landings after a seek, error once the start was measured (${landed.length}): p5 ${ms(quantile(landed, 0.05))} ms, p50 ${ms(quantile(landed, 0.5))} ms, p95 ${ms(quantile(landed, 0.95))} ms; more than ${LANDED_BEHIND * 1000} ms behind: ${landed.filter((x) => x < -LANDED_BEHIND).length}`);
    if (!coarse && playTight.length) console.log(`play after a pause until all within ${TIGHT * 1000} ms: ${playTight.map((c) => `${c.toFixed(2)} s`).join(", ")} (the room started moving ${events.filter((e) => e.play).map((e) => `${((e.startsAt - e.sentAt) / 1000).toFixed(2)} s`).join(", ")} after the command)`);
    const fromLoad = joins.map((j) => j.tight - (j.steps.loaded ?? NaN));
    // From the moment the room let the joiner in (its welcome reached the page).
    const fromWelcome = joins.map((j) => j.tight - (j.steps.welcome ?? NaN));
    // From the moment the page's own module ran (room.js: "app"): the welcome now comes before
    // it, on the socket room.html opens as it is parsed, so what is left once the page has loaded
    // is counted from here.
    const fromApp = joins.map((j) => j.tight - (j.steps.app ?? NaN));
    const fmt = (xs) => xs.map((x) => x.toFixed(2)).join(", ");
    if (coarse) console.log(`within ${TIGHT * 1000} ms: not measured for a player with fixed rates; its figures are within its seeks' band, ${COARSE_BAND * 1000} ms`);
    if (coarse && joins.length) console.log(`late joiners (${joins.length}): within ${converged * 1000} ms of the room ${fmt(joins.map((j) => j.converged))} s after opening the page`);
    if (!coarse && joins.length) console.log(`late joiners (${joins.length}): within ${converged * 1000} ms of the room ${fmt(joins.map((j) => j.converged))} s after opening the page, within ${TIGHT * 1000} ms ${fmt(joins.map((j) => j.tight))} s; within ${TIGHT * 1000} ms that long after their video was loaded ${fmt(fromLoad)} s, after their welcome ${fmt(fromWelcome)} s, after their page came up (its app step: the steps' line tells when) ${fmt(fromApp)} s`);
    const joinRates = [...new Set(joins.map((j) => j.rate))].sort((a, b) => a - b);
    if (!coarse && joinRates.length > 1) console.log(`late joiners within ${TIGHT * 1000} ms by the room's rate: ${joinRates.map((rate) => `at ${rate}: ${fmt(joins.filter((j) => j.rate === rate).map((j) => j.tight))} s`).join("; ")}`);
    if (!coarse && joins.length) console.log(`late joiners within ${TIGHT * 1000} ms by probes over CDP (timed by their answers, as before the fourteenth session): ${fmt(joins.map((j) => j.probedTight))} s`);
    const stepNames = [...new Set(joins.flatMap((j) => Object.keys(j.steps)))];
    const stepMedians = stepNames.map((k) => [k, median(joins.map((j) => j.steps[k] ?? Infinity))]).sort((a, b) => a[1] - b[1]);
    if (joins.length) console.log(`late joiners' steps, median s from opening the page: ${stepMedians.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
    const adopted = joins.filter((j) => Number.isFinite(j.steps.adopted)).length;
    const caughtUp = joins.filter((j) => Number.isFinite(j.steps.caughtUp)).length;
    // The joiners slower than the aim, each with its steps and its first readings in the page.
    for (const [i, j] of joins.entries()) {
      if (coarse || !(j.tight > 1)) continue;
      console.log(`late joiner ${i + 1} (${j.kind}, at ${j.rate}), within ${TIGHT * 1000} ms at ${j.tight.toFixed(2)} s: steps ${Object.entries(j.steps).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}; first landing ${j.landedBy ? `${j.landedBy.how} ${j.landedBy.seekMs} ms ${j.landedBy.startBy}` : "none"}; readings (s, error ms, P paused): ${j.errors.join(", ")}`);
    }
    if (joins.length) console.log(`late joiners whose first landing took where their early <video> was, without a seek: ${adopted} of ${joins.length} (${caughtUp} of them starting at once a little behind it)`);
    if (joins.length) console.log(`late joiners' first landings, how (a seek within the buffer, one that fetches, or adopted), the seek time planned by, and how its start was measured (moving, its ceiling, or at START_SETTLE): ${joins.map((j) => (j.landedBy ? `${j.landedBy.how} ${j.landedBy.seekMs} ms ${j.landedBy.startBy}` : "none")).join(", ")}`);
    if (LATE_REPORT && joins.length) {
      console.log(`late joiners' first sync reports, p50/p95 ms: ${joins.map((j) => (j.firstReport ? `${j.firstReport.p50}/${j.firstReport.p95}` : "none")).join(", ")}`);
    }
    if (joins.length) console.log(`first late joiner's fetches, s from opening the page: ${joins[0].fetches.map((f) => `${f.name} ${f.start.toFixed(2)}-${f.end.toFixed(2)}`).join(", ")}`);
    console.log(`stalls (a playing viewer ${STALL * 1000} ms or more further behind from one sample to the next, nothing moving it; not counted for a stepped player): ${stalls.join(", ")}`);
    // Each viewer's clock estimate from the room's start on (clock.js): how far it moved, and how
    // often a sample's interval ended its intersection (the walk took fewer than the samples kept).
    const clockMoves = clockSamples.map((list) => {
      const own = list.filter((c) => c.at >= t0);
      const middles = own.map((c) => (c.lo + c.hi) / 2);
      const ended = own.filter((c) => c.depth < c.kept).length;
      return { moved: middles.length ? Math.max(...middles) - Math.min(...middles) : 0, ended };
    });
    if (soak) printSoak({ soak, steady, rows, samples, t0, prefix });
    console.log(`clock estimates from the start: moved ${clockMoves.map((c) => c.moved.toFixed(1)).join(", ")} ms (max - min); intersections ended by a sample ${clockMoves.map((c) => c.ended).join(", ")} times`);
    if (releases.length) console.log(`releases of a correction at rate 1 (${releases.length}): where they rest against where they were let go of to rest (the room, or for a drifting player half the dead band off it), |error| p50 ${ms(quantile(releaseRests, 0.5))} ms, p90 ${ms(quantile(releaseRests, 0.9))} ms, max ${ms(releaseRests.at(-1))} ms; let go at a reading not above its line: ${releases.filter((r) => !r.upper).length}`);
    console.log(`rests at rate 1 (a viewer's median error over a steady stretch) more than ${REST_OFF * 1000} ms off: ${offRests.length} of ${rests.length}${offRests.length ? ` (${offRests.map((r) => `viewer ${r.viewer} from ${r.at.toFixed(0)} s: ${ms(r.error)} ms`).join(", ")})` : ""}`);
    console.log(`rate correction outside the first ${NUDGE_GRACE_S} s after an event: at most ${(nudgeMax * 100).toFixed(2)}% off the room's rate; changes of direction per viewer: ${reversals.join(", ")} in ${DURATION} s, of them ${STEADY_REVERSAL_S} s or more after an event: ${steadyReversals.join(", ")}`);
    const fromRest = restCorrections(samples);
    console.log(`corrections started at rest at the room's rate of 1, per viewer: ${fromRest.map((v) => v.started).join(", ")}; of them turned within their first ${EARLY_TURN_S} s (where Chromium's setback, 0.25-0.3 s late, turned them before sync.js waited for it): ${fromRest.map((v) => v.turned).join(", ")}; their setback not assumed (the one before had not shown): ${fromRest.map((v) => v.unassumed).join(", ")}`);
    // A YouTube player's steps: runs of samples at another rate it offers (sync.js,
    // COARSE_STEP_BAND), each viewer's count and time stepped.
    if (coarse) {
      const stepping = (x) => Math.abs(x.nudge) >= 0.1;
      const steps = samples.map((list) => ({
        n: list.filter((x, i) => stepping(x) && !(i > 0 && stepping(list[i - 1]))).length,
        time: list.reduce((t, x, i) => (i > 0 && stepping(list[i - 1]) ? t + x.now - list[i - 1].now : t), 0) / 1000,
      }));
      const spanMin = Math.max(...samples.map((list) => (list.at(-1).now - list[0].now) / 60000));
      console.log(`steps at another of the player's rates: ${steps.map((x) => x.n).join(", ")} per viewer in ${(spanMin * 60).toFixed(0)} s, stepped ${steps.map((x) => x.time.toFixed(1)).join(", ")} s`);
      console.log(`RESULT ${prefix}steps_per_viewer_minute_max ${(Math.max(...steps.map((x) => x.n)) / spanMin).toFixed(1)} count`);
    }
    console.log(`RESULT ${prefix}sync_spread_p50 ${ms(quantile(spreads, 0.5))} ms`);
    console.log(`RESULT ${prefix}sync_spread_p95 ${ms(quantile(spreads, 0.95))} ms`);
    console.log(`RESULT ${prefix}sync_spread_p99 ${ms(quantile(spreads, 0.99))} ms`);
    if (stepped) console.log(`RESULT ${prefix}sync_spread_every_edge_p95 ${ms(quantile(spreadsEveryEdge, 0.95))} ms`);
    if (heldCounts.length) console.log(`RESULT ${prefix}sync_spread_with_held_p99 ${ms(quantile(spreadsWithHeld, 0.99))} ms`);
    console.log(`RESULT ${prefix}sync_spread_max ${ms(spreads.at(-1))} ms`);
    for (const x of byRate) console.log(`RESULT ${prefix}sync_spread_p95_at_rate_${x.rate} ${ms(x.p95)} ms`);
    if (mixed) {
      for (const x of placesRead) console.log(`RESULT ${prefix}firefox_ahead_of_chromium_at_rate_${x.rate} ${ms(x.firefoxAhead)} ms`);
      for (const x of placesHeard) console.log(`RESULT ${prefix}heard_firefox_ahead_of_chromium_at_rate_${x.rate} ${ms(x.firefoxAhead)} ms`);
    }
    if (heardLessRead.some(Boolean)) {
      const moved = Math.max(...heardLessRead.filter(Boolean).map((x) => x.hi - x.lo));
      console.log(`RESULT ${prefix}heard_less_read_moved_max ${ms(moved)} ms`);
    }
    if (heardSorted.length) {
      console.log(`RESULT ${prefix}heard_spread_p50 ${ms(quantile(heardSorted, 0.5))} ms`);
      console.log(`RESULT ${prefix}heard_spread_p95 ${ms(quantile(heardSorted, 0.95))} ms`);
      console.log(`RESULT ${prefix}heard_spread_p99 ${ms(quantile(heardSorted, 0.99))} ms`);
      for (const x of heardByRate) console.log(`RESULT ${prefix}heard_spread_p95_at_rate_${x.rate} ${ms(x.p95)} ms`);
    }
    // A viewer whose page was too busy to sample for a whole window has no line there.
    if (lineSpreads.length) console.log(`RESULT ${prefix}sync_line_spread_p95 ${ms(quantile(lineSpreads, 0.95))} ms`);
    for (const x of byRate.filter((x) => x.lined)) {
      console.log(`RESULT ${prefix}sync_line_spread_p95_at_rate_${x.rate} ${ms(x.lineP95)} ms`);
      console.log(`RESULT ${prefix}sync_reading_scatter_spread_p95_at_rate_${x.rate} ${ms(x.noiseP95)} ms`);
    }
    console.log(`RESULT ${prefix}sync_error_p95 ${ms(quantile(errors, 0.95))} ms`);
    for (const x of toldByRate) {
      console.log(`RESULT ${prefix}sync_report_p95_median_at_rate_${x.rate} ${x.told.toFixed(1)} ms`);
      console.log(`RESULT ${prefix}sync_report_read_p95_median_at_rate_${x.rate} ${x.read.toFixed(1)} ms`);
    }
    if (convergence.length) console.log(`RESULT ${prefix}seek_converge${bandName}_max ${Math.max(...convergence).toFixed(2)} s`);
    console.log(`RESULT ${prefix}extra_player_seeks_max ${Math.max(...extraSeeks)} count`);
    if (joins.length) console.log(`RESULT ${prefix}late_join_converge${bandName} ${Math.max(...joins.map((j) => j.converged)).toFixed(2)} s`);
    if (!coarse && convergenceTight.length) console.log(`RESULT ${prefix}seek_converge20_max ${Math.max(...convergenceTight).toFixed(2)} s`);
    if (SEEKS && tightSorted.length) {
      if (!coarse) {
        console.log(`RESULT ${prefix}seek_converge20_p50 ${quantile(tightSorted, 0.5).toFixed(2)} s`);
        console.log(`RESULT ${prefix}seek_converge20_p95 ${quantile(tightSorted, 0.95).toFixed(2)} s`);
      }
      console.log(`RESULT ${prefix}seek_second_seeks ${secondSeeks.length} count`);
      console.log(`RESULT ${prefix}seek_landed_behind50 ${landed.filter((x) => x < -LANDED_BEHIND).length} count`);
    }
    if (!coarse && playTight.length) console.log(`RESULT ${prefix}play_converge20_max ${Math.max(...playTight).toFixed(2)} s`);
    const playDelays = events.filter((e) => e.play && Number.isFinite(e.startsAt)).map((e) => (e.startsAt - e.sentAt) / 1000);
    if (playDelays.length) console.log(`RESULT ${prefix}play_start_delay_max ${Math.max(...playDelays).toFixed(2)} s`);
    if (!coarse && joins.length) {
      console.log(`RESULT ${prefix}late_join_converge20 ${Math.max(...joins.map((j) => j.tight)).toFixed(2)} s`);
      console.log(`RESULT ${prefix}late_join_converge20_p50 ${median(joins.map((j) => j.tight)).toFixed(2)} s`);
    }
    if (joins.length) console.log(`RESULT ${prefix}late_join_adopted ${adopted} count`);
    const firstP95s = joins.filter((j) => j.firstReport).map((j) => j.firstReport.p95);
    if (firstP95s.length) {
      console.log(`RESULT ${prefix}late_join_first_report_p95_median ${median(firstP95s).toFixed(1)} ms`);
      console.log(`RESULT ${prefix}late_join_first_report_p95_max ${Math.max(...firstP95s).toFixed(1)} ms`);
    }
    if (joins.length) console.log(`RESULT ${prefix}late_join_caught_up ${caughtUp} count`);
    if (!coarse && joins.length) {
      console.log(`RESULT ${prefix}late_join_converge20_from_load ${Math.max(...fromLoad).toFixed(2)} s`);
      console.log(`RESULT ${prefix}late_join_converge20_from_welcome_p50 ${median(fromWelcome).toFixed(2)} s`);
      console.log(`RESULT ${prefix}late_join_converge20_from_app_p50 ${median(fromApp).toFixed(2)} s`);
      for (const rate of joinRates) {
        const tight = joins.filter((j) => j.rate === rate).map((j) => j.tight);
        console.log(`RESULT ${prefix}late_join_converge20_at_rate_${rate} ${Math.max(...tight).toFixed(2)} s`);
        console.log(`RESULT ${prefix}late_join_converge20_p50_at_rate_${rate} ${median(tight).toFixed(2)} s`);
      }
    }
    if (rests.length) console.log(`RESULT ${prefix}sync_rests_off_5ms ${offRests.length} count`);
    console.log(`RESULT ${prefix}sync_stalls ${stalls.reduce((a, b) => a + b, 0)} count`);
    console.log(`RESULT ${prefix}clock_estimate_moved_max ${Math.max(...clockMoves.map((c) => c.moved)).toFixed(1)} ms`);
    if (releases.length) console.log(`RESULT ${prefix}sync_release_rest_p90 ${ms(quantile(releaseRests, 0.9))} ms`);
    console.log(`RESULT ${prefix}rate_deviation_max ${(nudgeMax * 100).toFixed(2)} %`);
    console.log(`RESULT ${prefix}rate_reversals_max ${Math.max(...reversals)} count`);
    console.log(`RESULT ${prefix}rate_reversals_steady_max ${Math.max(...steadyReversals)} count`);
    console.log(`RESULT ${prefix}rest_corrections_turned_early ${fromRest.reduce((a, v) => a + v.turned, 0)} count`);
  } finally {
    for (const browser of Object.values(browsers)) await browser.close();
    pulse?.close();
    for (const proxy of proxies) await proxy.close();
    await server.stop();
    await fixtures.close();
  }
}

async function main() {
  for (const scenario of SCENARIOS) await run(scenario);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
