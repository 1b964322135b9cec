// How Chromium's <video> answers changes of playbackRate, with no sync controller and no server:
// one headless page plays the test clip (H.264/AAC, web/test/e2e/harness.js; with SILENT=1,
// H.264 alone) and steps through PLAN, reading currentTime every 5 ms and comparing it with where
// the rates set so far should have taken it by the page's clock. For each step it prints how far
// the position moved off that (a setback is a jump back when time stretching starts) and how much
// the readings jitter around their own line (the least-squares fit over the step's last 1.5 s).
// sync.js's bands rest on these figures.
//
//   node web/bench/rate.mjs            (PLAN='[[seconds, rate], ...]' to try other steps;
//                                       SILENT=1 for a clip with no audio track)

import { launchBrowser, newViewer, startFixtures } from "../test/e2e/harness.js";

/** [seconds from the start, rate]: each rate is held until the next step; the last for STEP_S. */
const PLAN = JSON.parse(process.env.PLAN ?? "[[0,1],[2.5,1.001],[5,1],[7.5,1.02],[10,0.98],[12.5,1],[15,1.25],[17.5,1.26],[20,1.25],[22.5,1]]");
const STEP_S = 2.5;

/** SILENT=1: the clip has no audio track (the player's clock is then not its sound's). */
const SILENT = process.env.SILENT === "1";
/** The RESULT names' prefix. */
const NAME = SILENT ? "chromium_silent" : "chromium";

const fixtures = await startFixtures({ sound: !SILENT });
const browser = await launchBrowser();
try {
  const { page } = await newViewer(browser);
  await page.goto(`${fixtures.base}/oembed`);
  const readings = await page.evaluate(async ({ url, plan, stepS }) => {
    const v = document.createElement("video");
    v.src = url;
    v.preload = "auto";
    v.preservesPitch = true;
    document.body.append(v);
    await new Promise((r) => v.addEventListener("canplaythrough", r, { once: true }));
    await v.play();
    await new Promise((r) => setTimeout(r, 1000));
    let refAt = performance.now() / 1000;
    let refPos = v.currentTime;
    let rate = v.playbackRate;
    const t0 = refAt;
    const out = [];
    let step = -1;
    const end = t0 + plan.at(-1)[0] + stepS;
    while (performance.now() / 1000 < end) {
      const now = performance.now() / 1000;
      if (step + 1 < plan.length && now - t0 >= plan[step + 1][0]) {
        step += 1;
        refPos += (now - refAt) * rate;
        refAt = now;
        rate = plan[step][1];
        v.playbackRate = rate;
      }
      out.push({ step, t: now - t0, off: v.currentTime - (refPos + (now - refAt) * rate) });
      await new Promise((r) => setTimeout(r, 5));
    }
    return out;
  }, { url: fixtures.mediaUrl("clip"), plan: PLAN, stepS: STEP_S });

  const fit = (xs) => {
    const n = xs.length;
    const mt = xs.reduce((a, x) => a + x.t, 0) / n;
    const mo = xs.reduce((a, x) => a + x.off, 0) / n;
    const slope = xs.reduce((a, x) => a + (x.t - mt) * (x.off - mo), 0) / xs.reduce((a, x) => a + (x.t - mt) ** 2, 0);
    return { at: (t) => mo + slope * (t - mt), slope };
  };
  const ms = (s) => (s * 1000).toFixed(1);
  let before = null;
  const results = [];
  PLAN.forEach(([at, rate], i) => {
    const end = i + 1 < PLAN.length ? PLAN[i + 1][0] : at + STEP_S;
    const tail = readings.filter((r) => r.step === i && r.t >= end - 1.5);
    const line = fit(tail);
    const residuals = tail.map((r) => Math.abs(r.off - line.at(r.t))).sort((a, b) => a - b);
    const jitter = residuals[Math.floor(0.95 * residuals.length)];
    // The jump at the step: this step's line at its start against the step before's line there.
    const jump = before ? line.at(at) - before.at(at) : 0;
    console.log(`${before ? `${PLAN[i - 1][1]} -> ${rate}` : `start at ${rate}`}: the position moved ${ms(jump)} ms; then it ran ${(line.slope * 100).toFixed(3)}% off the rate set; readings within ${ms(jitter)} ms of their line (p95)`);
    results.push({ from: before ? PLAN[i - 1][1] : null, rate, jump, jitter });
    before = line;
  });
  for (const r of results) {
    if (r.from !== null) console.log(`RESULT ${NAME}_rate_${r.from}_to_${r.rate}_jump ${ms(r.jump)} ms`);
  }
  for (const rate of [...new Set(results.map((r) => r.rate))]) {
    console.log(`RESULT ${NAME}_reading_jitter_p95_at_${rate} ${ms(Math.max(...results.filter((r) => r.rate === rate).map((r) => r.jitter)))} ms`);
  }
} finally {
  await browser.close();
  await fixtures.close();
}
