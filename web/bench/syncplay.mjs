// Syncplay benchmark: how closely two mpv players follow each other through Debian's
// syncplay-server, and through Lockstep's Syncplay door; and an mpv player against a browser
// viewer in the same Lockstep room. Each mpv is driven by Debian's Syncplay client (no GUI,
// `--vo=null --ao=null`) on the generated test video; the bench reads each mpv's `time-pos` over
// its JSON IPC (a second connection beside Syncplay's own) and the browser's `video.currentTime`,
// each stamped with the machine's clock, and compares them at the same instant. Then it times how
// long a pause or a play made on one side takes to reach the other (mpv to mpv through either
// server, mpv to the browser's video, the browser to mpv).
//
//   node web/bench/syncplay.mjs        (scripts/bench-syncplay builds the release server first)
//   DEBUG=1 keeps each Syncplay client's debug output in /tmp/bench-syncplay-<name>-<port>.log.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  addToQueue, createRoom, eventually, freePort, launchBrowser, newViewer, startFixtures, startServer, testVideo,
} from "../test/e2e/harness.js";
import { MpvIpc, desktop, loaded, readyAtStart, stopGroup } from "../test/e2e/desktop.js";

const DURATION = Number(process.env.DURATION ?? 30);
const SAMPLE_MS = 100;
/** Samples in the first seconds after playback starts are not steady state. */
const WARMUP_S = 5;

const now = () => performance.timeOrigin + performance.now();
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** |a - b| with b moved to a's instant (both play at 1x), in ms. */
const spreadMs = (a, b) => Math.abs(a.pos - (b.pos + (a.at - b.at) / 1000)) * 1000;

/** Samples `sources` (each an async () => {at, pos}) every SAMPLE_MS for DURATION s after a warm-up;
 * returns, for each pair [0, i], the spreads in ms. */
async function sample(sources) {
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
  const spreads = sources.slice(1).map(() => []);
  const until = now() + DURATION * 1000;
  while (now() < until) {
    const got = [];
    for (const s of sources) got.push(await s());
    if (got.every(Boolean)) got.slice(1).forEach((g, i) => spreads[i].push(spreadMs(got[0], g)));
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
  }
  return spreads.map((s) => s.sort((a, b) => a - b));
}

const TRIALS = Number(process.env.TRIALS ?? 10);

/** How long a pause or a play made on one side takes to show on the other, in ms: `act(paused)`
 * makes it, `seen()` reads the other side's pause state (polled every 5 ms). Alternates pause and
 * play from a playing start, with 1.5 s between trials (Syncplay ignores a client's states until
 * it has seen the server's last change). */
async function latency(label, act, seen) {
  const out = [];
  for (let i = 0; i < TRIALS; i++) {
    const paused = i % 2 === 0;
    const t0 = now();
    await act(paused);
    await eventually(async () => (await seen()) === paused, { what: `${label}: ${paused ? "pause" : "play"} seen`, timeoutMs: 10_000, intervalMs: 5 });
    out.push(now() - t0);
    await new Promise((r) => setTimeout(r, 1500));
  }
  out.sort((a, b) => a - b);
  console.log(`${label}: ${out.length} trials, p50 ${quantile(out, 0.5).toFixed(1)} ms, max ${out.at(-1).toFixed(1)} ms`);
  return { p50: quantile(out, 0.5), max: out.at(-1) };
}

const mpvPaused = async (ipc) => (await ipc.command("get_property", "pause")).data;
const mpvPause = (ipc) => (paused) => ipc.command("set_property", "pause", paused);

function summary(label, sorted) {
  const f = (q) => quantile(sorted, q).toFixed(1);
  console.log(`${label}: ${sorted.length} samples, spread p50 ${f(0.5)} ms, p95 ${f(0.95)} ms, max ${sorted.at(-1).toFixed(1)} ms`);
  return { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted.at(-1) };
}

const file = testVideo();
const dir = mkdtempSync(path.join(tmpdir(), "lockstep-bench-syncplay-"));
readyAtStart(dir);
const children = [];
const results = {};
try {
  // 1. Two mpv clients through Debian's syncplay-server.
  {
    const port = await freePort();
    const server = spawn("syncplay-server", ["--port", String(port)], { stdio: "ignore" });
    children.push(server);
    await new Promise((r) => setTimeout(r, 1500));
    const a = desktop({ address: `127.0.0.1:${port}`, name: "a", room: "bench", file, dir });
    const b = desktop({ address: `127.0.0.1:${port}`, name: "b", room: "bench", file, dir });
    children.push(a.child, b.child);
    const [ia, ib] = [await MpvIpc.connect(a.socket), await MpvIpc.connect(b.socket)];
    await loaded(ia, "mpv a");
    await loaded(ib, "mpv b");
    await new Promise((r) => setTimeout(r, 2000));
    await ia.command("set_property", "pause", false);
    const [ab] = await sample([() => ia.position(), () => ib.position()]);
    results.server = summary("mpv and mpv through syncplay-server", ab);
    results.serverLatency = await latency("a pause or play in mpv reaching the other mpv through syncplay-server", mpvPause(ia), () => mpvPaused(ib));
    ia.close();
    ib.close();
    a.stop();
    b.stop();
    server.kill();
  }

  // 2. Two mpv clients and a browser viewer in one Lockstep room.
  {
    const port = await freePort();
    const fixtures = await startFixtures();
    const server = await startServer(fixtures, { LOCKSTEP_SYNCPLAY_LISTEN: `127.0.0.1:${port}` });
    const browser = await launchBrowser();
    try {
      const viewer = await newViewer(browser);
      await createRoom(viewer.page, server.base, "Syncplay bench");
      await addToQueue(viewer.page, fixtures.mediaUrl("bench"));
      const key = await viewer.page.evaluate(() => window.lockstep.view.invite_key ?? window.lockstep.view.link?.split("/").pop());
      const a = desktop({ address: `127.0.0.1:${port}`, name: "a", room: key, file, dir });
      const b = desktop({ address: `127.0.0.1:${port}`, name: "b", room: key, file, dir });
      children.push(a.child, b.child);
      const [ia, ib] = [await MpvIpc.connect(a.socket), await MpvIpc.connect(b.socket)];
      await loaded(ia, "mpv a");
      await loaded(ib, "mpv b");
      await new Promise((r) => setTimeout(r, 2000));
      // Adding to an empty room starts it playing; otherwise play it.
      if (await viewer.page.evaluate(() => window.lockstep.model.playback.paused)) await viewer.page.click("#play");
      const page = () => viewer.page.evaluate(() => {
        const v = document.querySelector("video");
        return v && !v.paused ? { at: performance.timeOrigin + performance.now(), pos: v.currentTime } : null;
      });
      const [ab, aw] = await sample([() => ia.position(), () => ib.position(), page]);
      results.lockstep = summary("mpv and mpv through Lockstep", ab);
      results.browser = summary("mpv and a browser viewer in a Lockstep room", aw);
      results.lockstepLatency = await latency("a pause or play in mpv reaching the other mpv through Lockstep", mpvPause(ia), () => mpvPaused(ib));
      const videoPaused = () => viewer.page.evaluate(() => document.querySelector("video").paused);
      results.toBrowser = await latency("a pause or play in mpv reaching the browser's video", mpvPause(ia), videoPaused);
      results.fromBrowser = await latency(
        "a pause or play in the browser reaching mpv",
        (paused) => viewer.page.evaluate((p) => window.lockstep.conn.send({ t: p ? "pause" : "play" }), paused),
        () => mpvPaused(ia),
      );
      ia.close();
      ib.close();
      a.stop();
      b.stop();
    } finally {
      await browser.close();
      await server.stop();
      await fixtures.close();
    }
  }
} finally {
  for (const c of children) stopGroup(c);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`RESULT syncplay_server_spread_p50 ${results.server.p50.toFixed(1)} ms`);
console.log(`RESULT syncplay_server_spread_p95 ${results.server.p95.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_spread_p50 ${results.lockstep.p50.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_spread_p95 ${results.lockstep.p95.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_browser_spread_p50 ${results.browser.p50.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_browser_spread_p95 ${results.browser.p95.toFixed(1)} ms`);
console.log(`RESULT syncplay_server_pause_latency_p50 ${results.serverLatency.p50.toFixed(1)} ms`);
console.log(`RESULT syncplay_server_pause_latency_max ${results.serverLatency.max.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_pause_latency_p50 ${results.lockstepLatency.p50.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_pause_latency_max ${results.lockstepLatency.max.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_to_browser_latency_p50 ${results.toBrowser.p50.toFixed(1)} ms`);
console.log(`RESULT lockstep_mpv_to_browser_latency_max ${results.toBrowser.max.toFixed(1)} ms`);
console.log(`RESULT lockstep_browser_to_mpv_latency_p50 ${results.fromBrowser.p50.toFixed(1)} ms`);
console.log(`RESULT lockstep_browser_to_mpv_latency_max ${results.fromBrowser.max.toFixed(1)} ms`);
