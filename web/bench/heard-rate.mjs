// What the sound of one Chromium <video> does at changes of playbackRate, against what its
// currentTime says: rate.mjs with a sound server. The page plays the test clip with white noise
// for sound into a private PulseAudio (heard.mjs), steps through PLAN, and reads currentTime every
// 5 ms; the recording is matched against the clip's sound every 10 ms. For each step it prints how
// far the readings and the sound moved off where the rates set so far should have taken them (by
// this machine's clock): the change of their median offset over each step's last 1.5 s from the
// step before's, how far each scatters around that median, and the jumps the sound made within
// the step (time stretching keeps whole stretches of sound and skips or repeats between them).
// sync.js's bands rest on rate.mjs's figures, which are the readings of a muted Chromium.
//
//   node web/bench/heard-rate.mjs      (PLAN='[[seconds, rate], ...]' to try other steps;
//                                       TIMELINE=1 also prints both offsets every 100 ms;
//                                       NOISE_RATE=44100 plays the noise at 44.1 kHz, not 48)

import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launchBrowser, newViewer, startFixtures, testVideo } from "../test/e2e/harness.js";
import { coarsen, energies, heardPositions, readRecording, referenceSound, routeSound, sinkLabel, startPulse } from "./heard.mjs";

/** [seconds from the start, rate]: each rate is held until the next step; the last for STEP_S. */
const PLAN = JSON.parse(process.env.PLAN ?? "[[0,1],[3,1.003],[6,1],[9,0.997],[12,1],[15,1.02],[18,1],[21,0.98],[24,1],[27,1.25],[30,1]]");
const STEP_S = 3;
/** Each step is summed up over its last this long. */
const FIT_S = 1.5;
/** The sound moving more than this between two windows 10 ms apart is a jump. */
const JUMP = 0.002;

/** The clip's sound: white noise at this many Hz (NOISE_RATE; the sink runs at 48 kHz). */
const NOISE_RATE = Number(process.env.NOISE_RATE ?? 48_000);

const fixtures = await startFixtures({ noise: NOISE_RATE });
const pulse = await startPulse(1);
const file = path.join(tmpdir(), `lockstep-heard-rate-${process.pid}.f32`);
let browser = null;
try {
  browser = await launchBrowser({ sound: pulse.env });
  const { context, page } = await newViewer(browser);
  await context.grantPermissions(["microphone"]);
  await page.addInitScript(routeSound, sinkLabel(0));
  await page.goto(`${fixtures.base}/oembed`);
  // The sink is recorded once the page plays into it: before, its monitor delivers nothing (the
  // first recording lacked the 1.4 s Chromium took to open its stream, and so ran 1.4 s early).
  await page.evaluate(async (url) => {
    const v = document.createElement("video");
    v.preload = "auto";
    v.preservesPitch = true;
    v.src = url;
    document.body.append(v);
    await new Promise((r) => v.addEventListener("canplaythrough", r, { once: true }));
    await v.play();
    while (v.currentTime < 1.5) await new Promise((r) => setTimeout(r, 10));
  }, fixtures.mediaUrl("clip"));
  const recording = pulse.record(file);
  await new Promise((r) => setTimeout(r, 500));
  const readings = await page.evaluate(async ({ plan, stepS }) => {
    const v = document.querySelector("video");
    // Epoch ms, to the fraction: the recording's instants are placed by Date.now() in node.
    const clock = () => performance.timeOrigin + performance.now();
    const t0 = clock();
    let refAt = t0;
    let refPos = v.currentTime;
    let rate = v.playbackRate;
    const out = { t0, pos0: refPos, changes: [], reads: [] };
    let step = -1;
    const end = t0 + (plan.at(-1)[0] + stepS) * 1000;
    while (clock() < end) {
      const now = clock();
      if (step + 1 < plan.length && now - t0 >= plan[step + 1][0] * 1000) {
        step += 1;
        refPos += ((now - refAt) / 1000) * rate;
        refAt = now;
        rate = plan[step][1];
        v.playbackRate = rate;
        out.changes.push({ at: now, pos: refPos, rate });
      }
      out.reads.push([now, v.currentTime]);
      await new Promise((r) => setTimeout(r, 5));
    }
    return out;
  }, { plan: PLAN, stepS: STEP_S });
  await recording.stop();

  // Where the rates set so far should have taken the video at epoch ms `at`.
  const expected = (at) => {
    const c = readings.changes.filter((x) => x.at <= at).at(-1);
    return c ? c.pos + ((at - c.at) / 1000) * c.rate : readings.pos0 + (at - readings.t0) / 1000;
  };
  const reads = readings.reads.map(([at, value]) => ({ t: (at - readings.t0) / 1000, off: value - expected(at) }));
  const ref = referenceSound(testVideo({ noise: NOISE_RATE }));
  const [channel] = readRecording(file, 1);
  const heard = heardPositions(channel, ref, energies(ref), coarsen(ref), () => readings.pos0)
    .map(([recT, video]) => {
      const at = recording.startedAt + recT * 1000;
      return { t: (at - readings.t0) / 1000, off: video - expected(at) };
    })
    .filter((x) => x.t >= 0);

  // Time stretching plays stretches of sound at rate 1 and jumps between them, so a line fitted
  // to the sound is as much the jumps as the rate: each step is summed up by the median offset
  // over its last FIT_S (and a few windows matched at the wrong place do not count).
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : null;
  };
  const ms = (s) => (s === null ? "?" : (s * 1000).toFixed(1));
  const held = (xs, from, to) => median(xs.filter((x) => x.t >= from && x.t < to).map((x) => x.off));
  const spread = (xs, from, to, mid) => {
    const r = xs.filter((x) => x.t >= from && x.t < to).map((x) => Math.abs(x.off - mid)).sort((a, b) => a - b);
    return r.length ? r[Math.floor(0.95 * r.length)] : null;
  };
  const results = [];
  PLAN.forEach(([at, rate], i) => {
    const end = i + 1 < PLAN.length ? PLAN[i + 1][0] : at + STEP_S;
    const row = { from: i ? PLAN[i - 1][1] : null, rate };
    for (const [name, xs] of [["reads", reads], ["heard", heard]]) {
      const mid = held(xs, end - FIT_S, end);
      row[name] = mid === null ? null : { mid, scatter: spread(xs, end - FIT_S, end, mid) };
    }
    // The sound's jumps within the step: from one matched window to the next (10 ms apart), the
    // offset moved more than JUMP.
    const within = heard.filter((x) => x.t >= at && x.t < end);
    const jumps = within.slice(1).map((x, j) => x.off - within[j].off).filter((d) => Math.abs(d) > JUMP);
    row.jumps = { n: jumps.length, largest: jumps.reduce((a, d) => (Math.abs(d) > Math.abs(a) ? d : a), 0) };
    const prev = results.at(-1);
    for (const name of ["reads", "heard"]) {
      if (row[name]) row[name].move = prev?.[name] ? row[name].mid - prev[name].mid : null;
    }
    results.push(row);
    const say = (x) => (x ? `${x.move === null ? "" : `moved ${ms(x.move)} ms, `}held within ${ms(x.scatter)} ms (p95)` : "not placed");
    console.log(`${row.from === null ? `start at ${rate}` : `${row.from} -> ${rate}`}: currentTime ${say(row.reads)}; the sound ${say(row.heard)}, jumped ${row.jumps.n} times (largest ${ms(row.jumps.largest)} ms)`);
  });
  // TIMELINE=1: every 100 ms, the median offset of each (ms) from where the rates set should be.
  if (process.env.TIMELINE === "1") {
    for (let t = 0; t < PLAN.at(-1)[0] + STEP_S; t += 0.1) console.log(`${t.toFixed(1)} ${ms(held(reads, t, t + 0.1))}/${ms(held(heard, t, t + 0.1))}`);
  }
  for (const r of results) {
    if (r.from === null) continue;
    if (r.reads?.move != null) console.log(`RESULT read_${r.from}_to_${r.rate}_move ${ms(r.reads.move)} ms`);
    if (r.heard?.move != null) console.log(`RESULT heard_${r.from}_to_${r.rate}_move ${ms(r.heard.move)} ms`);
  }
  for (const r of results) if (r.rate !== 1) console.log(`RESULT heard_largest_jump_at_${r.rate} ${ms(r.jumps.largest)} ms`);
} finally {
  await browser?.close();
  pulse.close();
  await fixtures.close();
  rmSync(file, { force: true });
}
