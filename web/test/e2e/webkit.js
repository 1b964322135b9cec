// WebKit for bench-sync and for looking at the pages: WebKitGTK's MiniBrowser (Debian's
// webkit2gtk-driver), driven through classic W3C WebDriver over HTTP.
//
// Safari's engine is WebKit; Playwright's own WebKit build is a download from its CDN, which this
// machine does not reach, and Debian's WebKitWebDriver speaks only classic WebDriver (no BiDi),
// one session per driver. So each viewer gets a WebKitWebDriver of its own, which starts a
// MiniBrowser of its own (an ephemeral session: its own cookies, so its own Lockstep user), all
// on one Xvfb display (WebKitGTK needs one). The objects returned have the shape of the Playwright
// ones that bench-sync uses (`page.goto`, `page.evaluate(fn, arg)`, `page.waitForSelector`,
// `page.addInitScript`, `page.screenshot`, `page.setViewportSize`, `page.url`, `page.close`,
// `context.close`, `browser.close`); nothing else is offered. Two differences:
// - `addInitScript` runs its script once each `goto` has loaded the page, not before the page's
//   own scripts (classic WebDriver has no preload scripts);
// - WebKitGTK plays media through GStreamer, Safari through AVFoundation: what is measured here
//   is WebKit's page and media element, not Safari's media pipeline.

import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { eventually, freePort } from "./harness.js";

export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? "/usr/bin/WebKitWebDriver";
export const MINIBROWSER = process.env.MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const XVFB = "/usr/bin/Xvfb";

const STARTUP_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;
/** WebKitGTK's DMA-BUF renderer, on Xvfb's software GL, took 1.7 cores for one page playing the
 * bench's 480x270 video, against 0.3 without it: four viewers starved the two cores. */
const RENDERING_ENV = { WEBKIT_DISABLE_DMABUF_RENDERER: "1" };
/** MiniBrowser's window is no narrower than this (its toolbar): a narrower viewport is refused. */
export const WEBKIT_MIN_WIDTH = 447;

/** A command WebKit did not answer in time: now and then (3 runs of the browser test in about 90
 * on this machine) a page's script went unanswered for a minute right after a seek; in the one
 * traced, the web process's video queue thread was parked inside WebKit, called from a GStreamer
 * signal. */
export class WebKitHang extends Error {}

/** Stops `child` (TERM, then KILL after 5 s) and waits for it. */
async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Starts an Xvfb display for the viewers' windows; resolves to a browser for
 * `newWebKitViewer`. Fails with a clear message when WebKitWebDriver, MiniBrowser or Xvfb is
 * missing. Media plays without a click (`--autoplay-policy=allow`), as in a tab the user has
 * clicked in. */
export async function launchWebKit() {
  for (const [file, pkg] of [[WEBKIT_DRIVER, "webkit2gtk-driver"], [MINIBROWSER, "webkit2gtk-driver (libwebkit2gtk-4.1-0)"], [XVFB, "xvfb"]]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: install Debian's ${pkg} package`);
  }
  // A display number nobody holds: Xvfb picks one itself and says which (-displayfd).
  const xvfb = spawn(XVFB, ["-displayfd", "3", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"], { stdio: ["ignore", "ignore", "pipe", "pipe"] });
  const display = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`Xvfb did not start within ${STARTUP_TIMEOUT_MS / 1000} s`)), STARTUP_TIMEOUT_MS);
    xvfb.stdio[3].on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("\n")) {
        clearTimeout(timer);
        resolve(`:${seen.trim()}`);
      }
    });
    xvfb.on("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it started`)));
  });
  xvfb.stderr.resume();
  const viewers = new Set();
  return {
    display,
    viewers,
    async close() {
      for (const v of [...viewers]) await v.close();
      await stop(xvfb);
    },
  };
}

/** A viewer: a WebKitWebDriver and a MiniBrowser of its own (its own cookies and storage)
 * showing one page, its viewport `width` x `height` (no narrower than WEBKIT_MIN_WIDTH). A command
 * not answered within `commandTimeoutMs` fails (`WebKitHang`). */
export async function newWebKitViewer(browser, { width = 1280, height = 800, commandTimeoutMs = COMMAND_TIMEOUT_MS } = {}) {
  const port = await freePort();
  const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, DISPLAY: browser.display, ...RENDERING_ENV } });
  let log = "";
  driver.stderr.on("data", (chunk) => (log = (log + chunk).slice(-2000)));
  const base = `http://127.0.0.1:${port}`;
  let session = null;
  const close = async () => {
    browser.viewers.delete(viewer);
    if (session) await call("DELETE", "").catch(() => {});
    await stop(driver);
  };
  /** One command of the session (`path` after `/session/{id}`), its `value` or an error. */
  async function call(method, path, body) {
    const res = await fetch(`${base}/session${session ? `/${session}` : ""}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(commandTimeoutMs),
    }).catch((err) => {
      throw err?.name === "TimeoutError" ? new WebKitHang(`WebKit ${method} ${path || "/session"}: no answer within ${commandTimeoutMs / 1000} s`) : err;
    });
    const { value } = await res.json();
    if (!res.ok) throw new Error(`WebKit ${method} ${path || "/session"}: ${value?.error}: ${value?.message}`);
    return value;
  }
  const viewer = { close };
  browser.viewers.add(viewer);
  try {
    await eventually(() => fetch(`${base}/status`).then((r) => r.ok), { timeoutMs: STARTUP_TIMEOUT_MS, intervalMs: 50, what: "WebKitWebDriver's status" }).catch((err) => {
      throw new Error(`${err.message}; its log: ${log}`);
    });
    const created = await call("POST", "", {
      capabilities: { alwaysMatch: { browserName: "MiniBrowser", timeouts: { script: commandTimeoutMs - 5_000, pageLoad: commandTimeoutMs - 5_000 }, "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation", "--autoplay-policy=allow"] } } },
    });
    session = created.sessionId;
  } catch (err) {
    await close();
    throw err;
  }
  const initScripts = [];
  let address = "about:blank";
  /** Runs `fn(arg)` in the page (awaited); its result comes back through JSON. */
  const evaluate = async (fn, arg) => {
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => (${fn})(arguments[0] === null ? undefined : JSON.parse(arguments[0])))
        .then((r) => done({ value: r === undefined ? null : JSON.stringify(r) }), (e) => done({ error: String(e && e.stack || e) }));`;
    const r = await call("POST", "/execute/async", { script, args: [arg === undefined ? null : JSON.stringify(arg)] });
    if (r?.error) throw new Error(`page.evaluate: ${r.error}`);
    return r?.value == null ? undefined : JSON.parse(r.value);
  };
  const page = {
    async close() {
      await close();
    },
    /** Navigates to `url` and waits for its load; then runs the init scripts (`addInitScript`). */
    async goto(url) {
      await call("POST", "/url", { url });
      address = url;
      for (const { fn, arg } of initScripts) await evaluate(fn, arg);
    },
    /** The address last navigated to. */
    url() {
      return address;
    },
    /** Sizes the window so that the viewport is `width` x `height` (the window's own toolbar
     * measured and added). */
    async setViewportSize({ width: w, height: h }) {
      if (w < WEBKIT_MIN_WIDTH) throw new Error(`MiniBrowser's window is no narrower than ${WEBKIT_MIN_WIDTH} px: a ${w} px viewport cannot be had`);
      await call("POST", "/window/rect", { width: w, height: h });
      const [iw, ih] = await call("POST", "/execute/sync", { script: "return [innerWidth, innerHeight]", args: [] });
      if (iw !== w || ih !== h) await call("POST", "/window/rect", { width: 2 * w - iw, height: 2 * h - ih });
    },
    /** A PNG of the viewport (`fullPage`: of the whole document), written to `path`. WebKitGTK
     * takes it from the next frame it paints, and a still page (no video playing) paints none:
     * the driver waited for good. So a pixel of the page, all but transparent, changes at every
     * frame meanwhile. */
    async screenshot({ path: file, fullPage = false }) {
      await evaluate(() => {
        const dot = document.createElement("div");
        dot.id = "__webkit_repaint";
        dot.style.cssText = "position:fixed;left:0;top:0;width:1px;height:1px;opacity:0.01;pointer-events:none;z-index:2147483647";
        document.body.append(dot);
        let n = 0;
        const paint = () => {
          if (!dot.isConnected) return;
          dot.style.background = n++ % 2 ? "#000" : "#fff";
          requestAnimationFrame(paint);
        };
        requestAnimationFrame(paint);
      });
      let data;
      try {
        if (fullPage) {
          const el = await call("POST", "/element", { using: "css selector", value: "html" });
          data = await call("GET", `/element/${Object.values(el)[0]}/screenshot`);
        } else {
          data = await call("GET", "/screenshot");
        }
      } finally {
        await evaluate(() => document.getElementById("__webkit_repaint")?.remove()).catch(() => {});
      }
      writeFileSync(file, Buffer.from(data, "base64"));
    },
    evaluate,
    async waitForSelector(selector, { timeout = 30_000 } = {}) {
      await eventually(() => evaluate((s) => document.querySelector(s) !== null, selector), { timeoutMs: timeout, intervalMs: 50, what: `waitForSelector: ${selector}` });
    },
    /** Runs `fn(arg)` in every page `goto` loads from now on, once it has loaded (not before the
     * page's own scripts, as Playwright's does: classic WebDriver has no preload scripts). */
    async addInitScript(fn, arg) {
      initScripts.push({ fn, arg });
    },
  };
  await page.setViewportSize({ width, height });
  const context = {
    async newPage() {
      throw new Error("webkit.js: one page per viewer (a second window in one session is not offered)");
    },
    close,
  };
  return { page, context };
}
