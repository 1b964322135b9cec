// How Chromium's <video> starts when it resumes where it was paused, against a start after a
// seek, with no sync controller and no server: one headless page plays the test clip (H.264/AAC,
// web/test/e2e/harness.js) and, ROUNDS times each, pauses it after 2 s of play and calls play()
// 0.3 s later: straight away (a resume), after a seek 3 s further on, or straight away at rate
// 1.003 set just before, as the room's page starts its players (sync.js START_STRETCH). It reads currentTime every 10 ms for 0.4 s after
// play(): how far it jumped within 40 ms, and where its line lies 350-390 ms after play()
// against a start at play() (negative: behind, the start's latency). sync.js's
// INITIAL_RESUME_LATENCY rests on these figures.
//
//   node web/bench/resume.mjs            (ROUNDS=5 by default)

import { launchBrowser, newViewer, startFixtures } from "../test/e2e/harness.js";

const ROUNDS = Number(process.env.ROUNDS ?? 5);

const fixtures = await startFixtures();
const browser = await launchBrowser();
try {
  const { page } = await newViewer(browser);
  await page.goto(`${fixtures.base}/oembed`);
  const rounds = await page.evaluate(async ({ url, rounds }) => {
    const v = document.createElement("video");
    v.src = url;
    v.preload = "auto";
    v.preservesPitch = true;
    document.body.append(v);
    await new Promise((r) => v.addEventListener("canplaythrough", r, { once: true }));
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const out = [];
    for (let i = 0; i < 3 * rounds; i++) {
      const kind = ["resume", "seek", "stretched"][i % 3];
      if (v.currentTime > v.duration - 6) {
        v.currentTime = 0;
        await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
      }
      await v.play();
      await sleep(2000);
      v.pause();
      await sleep(300);
      if (kind === "seek") {
        v.currentTime += 3;
        await new Promise((r) => v.addEventListener("seeked", r, { once: true }));
        await sleep(300);
      }
      // As the room's page starts a player: at 0.3% off 1 (sync.js START_STRETCH).
      v.playbackRate = kind === "stretched" ? 1.003 : 1;
      const from = v.currentTime;
      const t0 = performance.now();
      v.play();
      const readings = [];
      while (performance.now() - t0 < 400) {
        readings.push({ t: performance.now() - t0, moved: (v.currentTime - from) * 1000 });
        await sleep(10);
      }
      const at = (ms) => readings.find((r) => r.t >= ms);
      const line = readings.filter((r) => r.t >= 350).map((r) => r.moved - r.t * v.playbackRate);
      out.push({ kind, jump: at(40).moved, line: line.reduce((a, b) => a + b, 0) / line.length });
    }
    return out;
  }, { url: fixtures.mediaUrl("clip"), rounds: ROUNDS });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const what = { resume: "resumed where paused", seek: "started after a seek", stretched: "resumed where paused, at 1.003" };
  for (const kind of ["resume", "seek", "stretched"]) {
    const xs = rounds.filter((r) => r.kind === kind);
    console.log(`${what[kind]}: jumped ${xs.map((r) => r.jump.toFixed(0)).join(", ")} ms within 40 ms of play(); its line ${xs.map((r) => r.line.toFixed(0)).join(", ")} ms off a start at play()`);
  }
  for (const kind of ["resume", "seek", "stretched"]) {
    const xs = rounds.filter((r) => r.kind === kind);
    console.log(`RESULT chromium_${kind}_jump_p50 ${median(xs.map((r) => r.jump)).toFixed(1)} ms`);
    console.log(`RESULT chromium_${kind}_line_offset_p50 ${median(xs.map((r) => r.line)).toFixed(1)} ms`);
  }
} finally {
  await browser.close();
  await fixtures.close?.();
}
