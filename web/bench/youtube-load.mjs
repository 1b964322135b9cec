// Where a YouTube player loaded into a playing room comes to rest: ROUNDS rooms, each with two
// headless Chromium viewers in fresh contexts (nothing learnt before), the room playing when a
// YouTube link (the IFrame API stand-in, web/test/e2e/youtube-standin.js) is queued. Each page's
// stand-in <video> is read every 50 ms against the room's position by the machine's clock; a
// viewer's error is its median from 3 to 5 s after the link was queued, and its seeks are the
// sync controller's. Needs a built server (LOCKSTEP_BIN, else target/debug/lockstep).
//
//   LOCKSTEP_BIN=target/release/lockstep node web/bench/youtube-load.mjs     (ROUNDS=8)

import { addToQueue, createRoom, launchBrowser, newViewer, startFixtures, startServer } from "../test/e2e/harness.js";
const fx = await startFixtures();
const server = await startServer(fx);
const browser = await launchBrowser();
const runs = Number(process.env.ROUNDS ?? 8);
const hook = (page) => page.evaluate(() => {
  const app = window.lockstep;
  window.__log = [];
  window.__seeks = 0;
  setInterval(() => {
    const now = performance.timeOrigin + performance.now();
    const pb = app.model.playback;
    const v = document.querySelector("video.yt-standin");
    if (!v || !pb) return;
    const trueTarget = pb.paused ? pb.position : pb.position + Math.max(0, now / 1000 - pb.at / 1e6) * pb.rate;
    window.__log.push({ t: now, real: (v.currentTime - trueTarget) * 1000 });
  }, 50);
  let c = null;
  setInterval(() => {
    if (app.controller === c) return;
    c = app.controller;
    const decide = c.decide.bind(c);
    c.decide = (x) => { const d = decide(x); if (d.seekTo !== null) window.__seeks++; return d; };
  }, 1);
});
const all = [];
const seekCounts = [];
for (let run = 0; run < runs; run++) {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, server.base, "YT" + run);
  await b.page.goto(url);
  await b.page.waitForSelector("#connection[data-state=in-sync]");
  await hook(a.page); await hook(b.page);
  const t0 = Date.now();
  await addToQueue(a.page, "https://youtu.be/AAAAAAAAAAA");
  await new Promise((r) => setTimeout(r, 5000));
  const row = [];
  for (const v of [a, b]) {
    const { log, seeks } = await v.page.evaluate(() => ({ log: window.__log, seeks: window.__seeks }));
    const w = log.filter((x) => x.t - t0 >= 3000 && x.t - t0 <= 5000).map((x) => x.real).sort((p, q) => p - q);
    const med = w[Math.floor(w.length / 2)];
    all.push(Math.abs(med));
    seekCounts.push(seeks);
    row.push(`${med.toFixed(0)} ms (${seeks} seeks)`);
  }
  console.log(`run ${run}: ${row.join(", ")}`);
  for (const v of [a, b]) await v.context.close();
}
all.sort((p, q) => p - q);
const seeks = seekCounts.reduce((p, q) => p + q, 0);
console.log(`|error| 3-5 s after the item, ${all.length} viewers: median ${all[Math.floor(all.length / 2)].toFixed(0)} ms, max ${all[all.length - 1].toFixed(0)} ms; ${seeks} seeks`);
console.log(`RESULT youtube_load_error_p50 ${all[Math.floor(all.length / 2)].toFixed(1)} ms`);
console.log(`RESULT youtube_load_error_max ${all[all.length - 1].toFixed(1)} ms`);
console.log(`RESULT youtube_load_seeks_per_viewer ${(seeks / all.length).toFixed(2)} count`);
await browser.close(); await server.stop(); await fx.close();
