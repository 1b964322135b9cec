// A viewer in a background tab: how soon it follows the room's events and how often it lands on
// its own, with the browser's throttling of hidden pages on (web/test/e2e/background.js).
//
//   cd web && node bench/background.mjs              # Chromium (muted) and Firefox, in turn
//   BROWSERS=firefox PLAN="3:pause 8:play 20:end" DUMP=/tmp/bg node bench/background.mjs
//   OPENED=background PLAN="10:show 16:pause 20:play 26:seek=60 32:end" node bench/background.mjs
//
// A host (the harness's Chromium) creates a room and plays the test video; the viewer opens it,
// is in sync, and is hidden behind another tab. The host then follows PLAN (s from then: pause,
// play, seek=<s>; the viewer's own: hide, show, and a Chromium viewer's freeze and resume (or
// resume=show, shown as well: a tab the user comes back to), as its browser freezes a page in the
// background, by DevTools' Page.setWebLifecycleState; end), while the viewer is probed every
// ~20 ms by the true clock (not while frozen). Per event: the time until the viewer was within
// its band for 0.5 s (from the event), and over the run how many times it paused while the room
// played (a landing of its own; not a freeze's pause). Firefox's currentTime moves in
// ~40 ms steps, so its readings here lie up to a step behind (bench-sync reads it at its steps):
// its band is 60 ms. HIDE=0 leaves the viewer's tab in front (the same browser, throttling on):
// what a viewer that is watching gets. SOUND=1 lets the Chromium viewer play sound (muted by
// default, as a tab the user muted); FEATURES is passed to its --enable-features (say
// "IntensiveWakeUpThrottling:grace_period_seconds/10": its once-a-minute throttling of pages
// hidden and silent, asked for after 10 s rather than 5 min). DELAY=<ms> puts the viewer behind a
// link of that one-way delay ±20% (the harness's delaying proxy). A paused viewer counts as within
// when it is paused within the sync loop's own band for a paused room (SYNC.PAUSED_TOLERANCE): it
// pauses where it hears the pause, a one-way delay after the room's position.
// Once a second the viewer's clock samples are read: the longest time without one (its pings,
// answered) while hidden, and how often the clock was not ready (the sync loop then stands still).
// And its seeks (its media elements' `seeking` events), those while its page was hidden apart.
// RESULT background_<browser>_converge_max (s, within its band; -1 when an event never was),
// background_<browser>_own_landings (count), background_<browser>_ping_gap_max (s) and
// background_<browser>_hidden_seeks (count).
import { writeFileSync } from "node:fs";
import { startFixtures, startServer, startDelayProxy, launchBrowser, newViewer, createRoom, addToQueue, probe, eventually } from "../test/e2e/harness.js";
import { openBackgroundViewer } from "../test/e2e/background.js";
import { SYNC } from "../public/js/sync.js";

const BROWSERS = (process.env.BROWSERS ?? "chromium firefox").split(/\s+/).filter(Boolean);
const PLAN = (process.env.PLAN ?? "3:pause 8:play 14:seek=30 20:pause 45:play 52:seek=80 58:end").split(/\s+/).map((s) => {
  const [at, what] = s.split(":");
  return { at: Number(at), what };
});
const HIDE = process.env.HIDE !== "0";
/** OPENED=background: the viewer opens the room in a tab behind the one in front (a middle
 * click) and is not waited for: PLAN's times count from its opening, and a `show` step brings it
 * to the front (its first landing, timed as the step's). */
const OPENED = process.env.OPENED ?? "front";
/** The band (ms) a viewer counts as within: 20 ms, and a step more for Firefox's; for a paused
 * room at least the sync loop's own (SYNC.PAUSED_TOLERANCE). */
const bandOf = (kind, paused = false) => Math.max(kind === "firefox" ? 60 : 20, paused ? SYNC.PAUSED_TOLERANCE * 1000 : 0);
const DELAY = Number(process.env.DELAY ?? 0);
/** Whether sample `s` is with the room: playing or paused as it is, and within the band. */
const withRoom = (s, kind) => s.paused === s.roomPaused && Math.abs(s.err) < bandOf(kind, s.roomPaused);

const fixtures = await startFixtures();
const server = await startServer(fixtures);
const proxy = DELAY ? await startDelayProxy(server.port, DELAY) : null;
const hostBrowser = await launchBrowser();
const results = [];
try {
  for (const kind of BROWSERS) {
    const host = await newViewer(hostBrowser);
    const url = await createRoom(host.page, server.base, `Background ${kind}`);
    await addToQueue(host.page, fixtures.mediaUrl());
    await eventually(async () => (await probe(host.page))?.paused === false, { what: "the host playing" });
    const viewer = await openBackgroundViewer(kind, proxy ? url.replace(server.base, proxy.base) : url, { sound: process.env.SOUND === "1", features: process.env.FEATURES ?? null, opened: OPENED });
    try {
      if (OPENED !== "background") {
        await eventually(async () => {
          const p = await probe(viewer);
          return p && !p.paused && Math.abs(p.position - p.trueTarget) < bandOf(kind) / 1000;
        }, { what: "the viewer in sync", timeoutMs: 30_000 });
        if (HIDE) await viewer.hide();
      }
      const visibility = await viewer.evaluate(() => document.visibilityState);
      const t0 = Date.now();
      const out = [];
      const events = [];
      let stop = false;
      const pings = new Set();
      let readings = 0;
      let notReady = 0;
      // The viewer's seeks (its media elements' `seeking`, from the first reading on), and those
      // between two readings of a hidden page.
      let seeks = 0;
      let hiddenSeeks = 0;
      let last = null;
      const clockReader = (async () => {
        while (!stop) {
          const c = await viewer
            .evaluate(() => {
              if (window.__seeks === undefined) {
                window.__seeks = 0;
                document.addEventListener("seeking", () => (window.__seeks += 1), true);
              }
              return { ats: window.lockstep.clock.samples.map((x) => x.at), ready: window.lockstep.clock.ready, seeks: window.__seeks, hidden: document.hidden };
            })
            .catch(() => null);
          if (c) {
            for (const at of c.ats) pings.add(at);
            readings += 1;
            if (!c.ready) notReady += 1;
            seeks = c.seeks;
            if (last?.hidden && c.hidden) hiddenSeeks += c.seeks - last.seeks;
            last = c;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      const sampler = (async () => {
        while (!stop) {
          const p = await probe(viewer).catch(() => null);
          if (p) out.push({ t: (Date.now() - t0) / 1000, err: (p.position - p.trueTarget) * 1000, paused: p.paused, roomPaused: p.roomPaused });
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      for (const step of PLAN) {
        await new Promise((r) => setTimeout(r, t0 + step.at * 1000 - Date.now()));
        if (step.what === "end") break;
        const [t, arg] = step.what.split("=");
        if (t === "freeze" || t === "resume") {
          if (!viewer.cdp) throw new Error(`${step.what}: a Chromium viewer's only`);
          await viewer.cdp("Page.setWebLifecycleState", { state: t === "freeze" ? "frozen" : "active" });
          if (arg === "show") await viewer.show(); // resume=show: as a tab the user comes back to
        } else if (t === "hide" || t === "show") await viewer[t]();
        else await host.page.evaluate((f) => window.lockstep.conn.send(f), t === "seek" ? { t, position: Number(arg) } : { t });
        events.push({ at: (Date.now() - t0) / 1000, what: step.what });
      }
      stop = true;
      await Promise.all([sampler, clockReader]);
      console.log(`${kind}: the viewer's page ${visibility} (${out.length} samples)`);
      let worst = 0;
      for (let i = 0; i < events.length; i++) {
        const e = events[i];
        const until = events[i + 1]?.at ?? Infinity;
        if (e.what === "freeze") {
          console.log(`  ${e.what.padEnd(8)} at ${e.at.toFixed(2)} s`);
          continue;
        }
        const win = out.filter((s) => s.t >= e.at && s.t < until);
        let within = null;
        for (let j = 0; j < win.length && win[j].t + 0.5 < until; j++) {
          const held = win.filter((s) => s.t >= win[j].t && s.t < win[j].t + 0.5);
          if (held.every((s) => withRoom(s, kind))) {
            within = win[j].t - e.at;
            break;
          }
        }
        worst = within === null || worst < 0 ? -1 : Math.max(worst, within);
        const steady = win.filter((s) => s.t > e.at + 2 && !s.paused).map((s) => Math.abs(s.err)).sort((a, b) => a - b);
        console.log(`  ${e.what.padEnd(8)} at ${e.at.toFixed(2)} s: within ${bandOf(kind, e.what === "pause")} ms ${within === null ? "never" : `after ${within.toFixed(2)} s`}; |error| from 2 s after, p95 ${steady.length ? steady[Math.floor(steady.length * 0.95)].toFixed(1) : "-"} ms`);
      }
      let landings = 0;
      // Not the pause a freeze makes (the player is paused while the page is frozen).
      const frozeBetween = (a, b) => events.some((e) => e.what === "freeze" && e.at >= a && e.at <= b);
      for (let i = 1; i < out.length; i++) if (!out[i - 1].paused && out[i].paused && !out[i].roomPaused && !frozeBetween(out[i - 1].t, out[i].t)) landings += 1;
      const roomSeeks = events.filter((e) => e.what.startsWith("seek")).length;
      console.log(`  own landings while the room played: ${landings} (the room seeked ${roomSeeks} times); the viewer's seeks: ${seeks}, ${hiddenSeeks} of them while hidden`);
      // The samples' times are the page's clock (ms since the epoch, as Date.now() here).
      const ats = [...pings].filter((at) => at >= t0).sort((a, b) => a - b);
      const gap = Math.max(0, ...[...ats, Date.now()].map((at, i, xs) => (i ? at - xs[i - 1] : at - t0))) / 1000;
      console.log(`  clock samples while hidden: ${ats.length}, the longest time without one ${gap.toFixed(1)} s; not ready in ${notReady} of ${readings} readings`);
      results.push(`RESULT background_${kind}_converge_max ${worst < 0 ? -1 : worst.toFixed(2)} s`, `RESULT background_${kind}_own_landings ${landings} count`, `RESULT background_${kind}_ping_gap_max ${gap.toFixed(1)} s`, `RESULT background_${kind}_hidden_seeks ${hiddenSeeks} count`);
      if (process.env.DUMP) writeFileSync(`${process.env.DUMP}-${kind}.json`, JSON.stringify({ events, out }));
    } finally {
      await viewer.close();
      await host.context.close();
    }
  }
} finally {
  await proxy?.close();
  await hostBrowser.close();
  await server.stop();
  await fixtures.close();
}
for (const line of results) console.log(line);
