// Where a browser's sound goes against its own currentTime when its rate changes: one Firefox and
// one Chromium page (no Lockstep), each playing the test clip (white noise) into its own channel
// of a private PulseAudio (heard.mjs), follow the same plan of rate changes and seeks. Each
// page's readings are kept as they change (Firefox's at its steps), and for each of them the
// bench finds what that page was heard playing at that instant: heard less read. A player whose
// sound keeps to its currentTime holds one figure throughout.
//
// Why: Firefox drops the sound its time-stretcher holds each time its rate goes back to exactly
// 1, and its sound then plays 23-31 ms further ahead of its picture, until the next seek
// (bench/RESULTS.md, forty-sixth session); Lockstep's HTML5 player never sets a Gecko <video>
// back to 1 for that (player/video.js, STRETCHED_ONE). This shows whether a Firefox still does.
//
//   cd web && node bench/rate-sound.mjs
//   PLAN='[[6000,"rate",1.02],[7000,"rate",1]]' SECS=12 node bench/rate-sound.mjs
//
// PLAN: [ms after the start, "rate" | "seek", value] steps; SECS: how long the pages play. Needs
// Debian's pulseaudio, pulseaudio-utils and firefox-esr. Prints, for each step, each page's heard
// less read in the 2 s before it and from 1 s after it (to the next step), and RESULT lines:
// rate_sound_shift_back_to_1_max (the largest move of Firefox's sound at a return to exactly 1)
// and rate_sound_shift_stretched_max (at any other step but a seek).

import http from "node:http";
import { createReadStream, statSync } from "node:fs";
import { launchBrowser, newViewer, testVideo } from "../test/e2e/harness.js";
import { launchFirefox, newFirefoxViewer } from "../test/e2e/firefox.js";
import { coarsen, energies, heardAt, heardPositions, readRecording, referenceSound, routeSound, sinkLabel, startPulse } from "./heard.mjs";
import { tmpdir } from "node:os";
import path from "node:path";

const PLAN = JSON.parse(process.env.PLAN ?? '[[6000,"rate",1.02],[7000,"rate",1],[11000,"rate",1.02],[12000,"rate",1.0000208],[16000,"rate",0.8],[16500,"rate",1.0000208],[20000,"rate",1],[24000,"seek",40.3]]');
const SECS = Number(process.env.SECS ?? 28);
const video = testVideo({ noise: 48_000 });
const recording = path.join(tmpdir(), `lockstep-rate-sound-${process.pid}.f32`);

// The clip, with Range (a <video> seeks by it), and a page that plays it and keeps its readings.
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/v.mp4")) {
    const size = statSync(video).size;
    const m = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Number(m[2]) : size - 1;
    res.writeHead(m ? 206 : 200, { "content-type": "video/mp4", "content-length": end - start + 1, "accept-ranges": "bytes", ...(m ? { "content-range": `bytes ${start}-${end}/${size}` } : {}) });
    return createReadStream(video, { start, end }).pipe(res);
  }
  res.writeHead(200, { "content-type": "text/html" });
  res.end(`<!doctype html><video id="v"></video><script>
    window.go = async (plan) => {
      const v = document.getElementById("v");
      v.src = "/v.mp4";
      await v.play();
      window.readings = [];
      window.steps = [];
      let last = v.currentTime;
      setInterval(() => {
        const x = v.currentTime;
        if (x !== last) window.readings.push([performance.timeOrigin + performance.now(), (last = x)]);
      }, 1);
      for (const [at, what, value] of plan) setTimeout(() => {
        window.steps.push([performance.timeOrigin + performance.now(), what, value]);
        if (what === "rate") v.playbackRate = value;
        else v.currentTime = value;
      }, at);
    };
  </script>`);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const pulse = await startPulse(2);
const browsers = [];
try {
  const rec = pulse.record(recording);
  const pages = [];
  for (const [i, name] of ["Firefox", "Chromium"].entries()) {
    const browser = name === "Firefox" ? await launchFirefox({ sound: pulse.env }) : await launchBrowser({ sound: pulse.env });
    browsers.push(browser);
    const v = name === "Firefox" ? await newFirefoxViewer(browser) : await newViewer(browser);
    if (name === "Chromium") await v.context.grantPermissions(["microphone"], { origin: base });
    await v.page.addInitScript(routeSound, sinkLabel(i));
    await v.page.goto(`${base}/`);
    await v.page.evaluate((plan) => window.go(plan), PLAN);
    pages.push({ name, page: v.page });
  }
  await new Promise((r) => setTimeout(r, SECS * 1000));
  const got = [];
  for (const { page } of pages) got.push(await page.evaluate(() => ({ readings: window.readings, steps: window.steps })));
  await rec.stop();

  const ref = referenceSound(video);
  const sums = energies(ref);
  const coarse = coarsen(ref);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : NaN;
  };
  const ms = (x) => (Number.isNaN(x) ? "-" : `${(x * 1000).toFixed(1)}`);
  const shifts = { back: [], stretched: [] };
  readRecording(recording, 2).forEach((channel, c) => {
    const heard = heardPositions(channel, ref, sums, coarse);
    const { readings, steps } = got[c];
    const lessRead = (from, to) =>
      median(readings.filter(([now]) => now >= from && now < to).flatMap(([now, x]) => {
        const h = heardAt(heard, (now - rec.startedAt) / 1000);
        return h === null ? [] : [h - x];
      }));
    const lines = steps.map(([at, what, value], k) => {
      const before = lessRead(at - 2000, at);
      const after = lessRead(at + 1000, Math.min(at + 3000, steps[k + 1]?.[0] ?? Infinity));
      const shift = after - before;
      if (pages[c].name === "Firefox" && what === "rate" && !Number.isNaN(shift)) (value === 1 ? shifts.back : shifts.stretched).push(Math.abs(shift));
      return `${what} ${value}: ${ms(before)} -> ${ms(after)}`;
    });
    console.log(`${pages[c].name}, heard less read (ms), before and after each step: ${lines.join("; ")}`);
  });
  console.log(`RESULT rate_sound_shift_back_to_1_max ${ms(Math.max(...shifts.back))} ms`);
  console.log(`RESULT rate_sound_shift_stretched_max ${ms(Math.max(...shifts.stretched))} ms`);
} finally {
  for (const browser of browsers) await browser.close();
  pulse.close();
  server.close();
}
