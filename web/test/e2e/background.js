// A viewer whose tab goes to the background: its page hidden behind another tab of its window,
// with the browser's own throttling of hidden pages on (the harness's browsers turn it off:
// `--disable-background-timer-throttling`, Firefox's `dom.min_background_timeout_value`).
//
// Chromium: a Chromium of its own, driven over the DevTools protocol directly. A page Playwright
// drives stays visible behind another tab (headless or not, launched or connected to), so it
// cannot show this (its commands go through firefox.js's `Session`). Firefox: through
// firefox.js, with a tab opened in front of the page's.
// Both offer `evaluate(fn, arg)` (so the harness's `probe` reads them), `hide()`, `show()` and
// `close()`.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Session, launchFirefox, newFirefoxViewer } from "./firefox.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const STARTUP_TIMEOUT_MS = 30_000;

/** Opens `url` in a viewer of `kind` ("chromium" or "firefox"): a Chromium muted as a tab the
 * user muted (a page that plays no sound is throttled) unless `sound` (its fake output then, with
 * no sound server), with `features` for `--enable-features` if given; a headless Firefox as
 * firefox.js's. With `opened: "background"` the page opens in a tab behind the one in front, as
 * a link opened with a middle click: hidden from its start until `show()`. */
export async function openBackgroundViewer(kind, url, { sound = false, features = null, opened = "front" } = {}) {
  return kind === "firefox" ? firefoxViewer(url, { opened }) : chromiumViewer(url, { sound, features, opened });
}

async function chromiumViewer(url, { sound, features, opened }) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  const profile = mkdtempSync(path.join(tmpdir(), "lockstep-chromium-"));
  const child = spawn(CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
    ...(sound ? [] : ["--mute-audio"]), ...(features ? [`--enable-features=${features}`] : []),
    "--remote-debugging-port=0", `--user-data-dir=${profile}`, opened === "background" ? "about:blank" : url,
  ], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  // Its whole process group: a helper left behind kept writing into the profile as it was
  // removed (ENOTEMPTY).
  const cleanup = async () => {
    const exited = child.exitCode === null ? new Promise((r) => child.once("exit", r)) : null;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const port = await new Promise((resolve, reject) => {
      let seen = "";
      const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools port within ${STARTUP_TIMEOUT_MS / 1000} s: ${seen.slice(-500)}`)), STARTUP_TIMEOUT_MS);
      child.stderr.on("data", (chunk) => {
        seen += chunk;
        const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(seen);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`Chromium exited (${code}) before opening its DevTools port: ${seen.slice(-500)}`)));
    });
    child.stderr.resume();
    const devtools = `http://127.0.0.1:${port}`;
    const pages = async () => (await (await fetch(`${devtools}/json/list`)).json()).filter((t) => t.type === "page");
    const open = (target) => Session.open(target.webSocketDebuggerUrl, { peer: "Chromium", failure: (msg) => msg.error?.message ?? null });
    let session = await open((await pages())[0]);
    let front = null;
    if (opened === "background") {
      // Opened as a link is into a new tab behind the one in front (a middle click): the blank
      // first tab stays in front.
      const { targetId } = await session.send("Target.createTarget", { url, background: true });
      front = { id: (await pages()).find((t) => t.id !== targetId).id };
      session.socket.close();
      session = await open((await pages()).find((t) => t.id === targetId));
    }
    return {
      async evaluate(fn, arg) {
        const expression = `(${fn})(${arg === undefined ? "" : JSON.stringify(arg)})`;
        const r = await session.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
        if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text);
        return r.result.value;
      },
      async hide() {
        front = await (await fetch(`${devtools}/json/new?about:blank`, { method: "PUT" })).json();
      },
      async show() {
        await session.send("Page.bringToFront", {});
        if (front) await fetch(`${devtools}/json/close/${front.id}`);
        front = null;
      },
      /** A DevTools protocol command to the viewer's page (Chromium only). */
      cdp: (method, params = {}) => session.send(method, params),
      async close() {
        session.socket.close();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function firefoxViewer(url, { opened }) {
  // Firefox's own clamp of a background page's timers (1 s), not the harness's 4 ms.
  // And its own hold on a background tab's media until the tab is first in front (the harness
  // turns it off).
  const browser = await launchFirefox({ prefs: { "dom.min_background_timeout_value": 1000, "media.block-autoplay-until-in-foreground": true } });
  try {
    const { page } = await newFirefoxViewer(browser, { behind: opened === "background" });
    const mine = page.browsingContext;
    let front = page.front;
    const viewer = {
      evaluate: (fn, arg) => page.evaluate(fn, arg),
      async hide() {
        ({ context: front } = await browser.session.send("browsingContext.create", { type: "tab", referenceContext: mine, background: false }));
      },
      async show() {
        await browser.session.send("browsingContext.activate", { context: mine });
        if (front) await browser.session.send("browsingContext.close", { context: front });
        front = null;
      },
      close: () => browser.close(),
    };
    await page.goto(url);
    return viewer;
  } catch (err) {
    await browser.close();
    throw err;
  }
}
