// Firefox for the browser tests and bench-sync, driven through WebDriver BiDi (the W3C protocol
// Firefox speaks natively).
//
// Playwright drives Firefox through BiDi too, but playwright-core 1.65 sends a command Debian's
// Firefox ESR does not know yet (`emulation.setMediaFeaturesOverride`, on every new context), and
// Playwright's own patched Firefox is a download from its CDN. The tests need only a few page
// operations, so this module speaks the protocol itself (over the `ws` package): one window and
// one user context (its own cookies, so its own Lockstep user) per viewer, pages navigated,
// evaluated and captured, init scripts as BiDi preload scripts. The objects it returns have the
// shape of the Playwright ones that the harness's `probe`, the tests and bench-sync use
// (`page.goto`, `page.evaluate(fn, arg)`, `page.waitForSelector`, `page.addInitScript`,
// `page.screenshot`, `page.url`, `page.close`, `context.newPage`, `context.close`,
// `browser.close`); nothing else is offered.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";

export const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";

/** Preferences for a throwaway profile: media plays without a click and in every window, as in a
 * tab the user is watching; nothing is fetched from Mozilla's services. */
const PREFS = {
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  "media.block-autoplay-until-in-foreground": false,
  "dom.min_background_timeout_value": 4,
  "browser.shell.checkDefaultBrowser": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
  "app.update.enabled": false,
  "messaging-system.rsexperimentloader.enabled": false,
  "app.normandy.enabled": false,
};

const STARTUP_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;

/** With `sound` (bench/heard.mjs): a page's `getUserMedia` is answered at once by a fake
 * microphone, so that it may list the audio outputs by name and choose one (`setSinkId`), in a
 * window without the focus too (only the last one opened has it; Firefox would wait for it). */
const SOUND_PREFS = {
  "media.navigator.permission.disabled": true,
  "media.navigator.streams.fake": true,
  "media.devices.unfocused.enabled": true,
};

/** Launches headless Firefox with a fresh profile; resolves to a browser for `newViewer`. Its
 * sound goes nowhere unless `sound` gives the environment of a PulseAudio server to play into
 * (web/bench/heard.mjs). */
export async function launchFirefox({ sound = null, prefs: extra = {} } = {}) {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: install Debian's firefox-esr package (or set FIREFOX)`);
  const profile = mkdtempSync(path.join(os.tmpdir(), "lockstep-firefox-"));
  const prefs = { ...PREFS, ...(sound ? SOUND_PREFS : {}), ...extra };
  writeFileSync(path.join(profile, "user.js"), Object.entries(prefs).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(""));
  const child = spawn(FIREFOX, ["--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0"], {
    stdio: ["ignore", "ignore", "pipe"],
    ...(sound ? { env: { ...process.env, ...sound } } : {}),
  });
  const url = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`Firefox did not open WebDriver BiDi within ${STARTUP_TIMEOUT_MS / 1000} s: ${seen.slice(-500)}`)), STARTUP_TIMEOUT_MS);
    child.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`Firefox exited (${code}) before opening WebDriver BiDi: ${seen.slice(-500)}`)));
  });
  child.stderr.resume();
  const session = await Session.open(`${url}/session`);
  await session.send("session.new", { capabilities: { alwaysMatch: { acceptInsecureCerts: true } } });
  await session.send("session.subscribe", { events: ["log.entryAdded", "browsingContext.load", "browsingContext.fragmentNavigated"] });
  /** Each window's address, as its loads report it. */
  const urls = new Map();
  session.onEvent = (method, params) => {
    if (method === "log.entryAdded" && params.type === "javascript" && params.level === "error") console.error("page error:", params.text);
    if (method === "browsingContext.load" || method === "browsingContext.fragmentNavigated") urls.set(params.context, params.url);
  };
  return {
    session,
    urls,
    async close() {
      await session.send("browser.close", {}).catch(() => {});
      session.socket.close();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
        await exited;
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A viewer: a user context of its own (its own cookies and storage) and a window showing one
 * page; `context.newPage()` opens another window in the same user context. With `behind`, its
 * first page is a tab opened behind a blank one in front (`page.front`: that tab's browsing
 * context), as a link opened with a middle click: never in front until shown. */
export async function newFirefoxViewer(browser, { width = 1280, height = 800, behind = false } = {}) {
  const { session } = browser;
  const { userContext } = await session.send("browser.createUserContext", {});
  const pages = new Set();
  const context = {
    async newPage() {
      const page = await openPage(browser, userContext, { width, height, behind: behind && pages.size === 0 });
      pages.add(page);
      return page;
    },
    async close() {
      for (const page of pages) await page.close();
      await session.send("browser.removeUserContext", { userContext }).catch(() => {});
    },
  };
  return { page: await context.newPage(), context };
}

/** A window in `userContext`, with the page operations of Playwright's that the tests use. */
async function openPage(browser, userContext, { width, height, behind = false }) {
  const { session } = browser;
  const { context: window } = await session.send("browsingContext.create", { type: "window", userContext });
  const context = behind ? (await session.send("browsingContext.create", { type: "tab", referenceContext: window, background: true })).context : window;
  await session.send("browsingContext.setViewport", { context, viewport: { width, height } });
  const page = {
    /** Its WebDriver BiDi browsing context (background.js opens a tab in front of it). */
    browsingContext: context,
    /** With `behind`, the tab in front of it. */
    front: behind ? window : null,
    async close() {
      await session.send("browsingContext.close", { context }).catch(() => {});
      if (behind) await session.send("browsingContext.close", { context: window }).catch(() => {});
    },
    async goto(url) {
      await session.send("browsingContext.navigate", { context, url, wait: "complete" });
    },
    /** The page's address, as of its last load. */
    url() {
      return browser.urls.get(context) ?? "about:blank";
    },
    async setViewportSize({ width: w, height: h }) {
      await session.send("browsingContext.setViewport", { context, viewport: { width: w, height: h } });
    },
    /** A PNG of the viewport, or with `fullPage` of the whole document, written to `path`. */
    async screenshot({ path: file, fullPage = false }) {
      const { data } = await session.send("browsingContext.captureScreenshot", { context, origin: fullPage ? "document" : "viewport" });
      writeFileSync(file, Buffer.from(data, "base64"));
    },
    /** Runs `fn(arg)` in the page (awaited); its result comes back through JSON, as Playwright's. */
    async evaluate(fn, arg) {
      const functionDeclaration = `async (a) => { const r = await (${fn})(a === undefined ? undefined : JSON.parse(a)); return r === undefined ? undefined : JSON.stringify(r); }`;
      const args = arg === undefined ? [{ type: "undefined" }] : [{ type: "string", value: JSON.stringify(arg) }];
      const r = await session.send("script.callFunction", { functionDeclaration, arguments: args, awaitPromise: true, target: { context }, resultOwnership: "none" });
      if (r.type === "exception") throw new Error(`page.evaluate: ${r.exceptionDetails?.text ?? "exception"}`);
      return r.result.type === "string" ? JSON.parse(r.result.value) : undefined;
    },
    async waitForSelector(selector, { timeout = 30_000 } = {}) {
      const until = Date.now() + timeout;
      while (!(await page.evaluate((s) => document.querySelector(s) !== null, selector))) {
        if (Date.now() > until) throw new Error(`waitForSelector: ${selector} did not appear within ${timeout} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Runs `fn` in every document this page loads from now on, before the page's own scripts;
     * with `arg` (JSON), as Playwright's does. */
    async addInitScript(fn, arg) {
      const args = arg === undefined ? "" : JSON.stringify(arg);
      await session.send("script.addPreloadScript", { functionDeclaration: `() => { (${fn})(${args}); }`, contexts: [context] });
    },
  };
  return page;
}

/** One WebDriver BiDi connection: commands matched to their answers by id. */
/**
 * A JSON command session over a WebSocket: commands by id, each answered or failed within
 * COMMAND_TIMEOUT_MS. WebDriver BiDi's by default; `peer` names the other end in errors, and
 * `failure(msg)` tells a failed answer's words (null for a success): background.js speaks the
 * DevTools protocol with it, whose failures carry `error.message` and whose events no `id`.
 */
export class Session {
  static open(url, { peer = "Firefox", failure = (msg) => (msg.type === "error" ? `${msg.error}: ${msg.message}` : null) } = {}) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      socket.once("open", () => resolve(new Session(socket, peer, failure)));
      socket.once("error", (err) => reject(new Error(`cannot connect to ${url}: ${err.message}`)));
    });
  }

  constructor(socket, peer, failure) {
    this.socket = socket;
    this.peer = peer;
    this.nextId = 1;
    this.pending = new Map();
    this.onEvent = () => {};
    socket.on("message", (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === "event" || msg.id === undefined) return this.onEvent(msg.method, msg.params);
      const call = this.pending.get(msg.id);
      if (!call) return;
      this.pending.delete(msg.id);
      clearTimeout(call.timer);
      const failed = failure(msg);
      if (failed !== null) call.reject(new Error(`${call.method}: ${failed}`));
      else call.resolve(msg.result);
    });
    socket.on("close", () => {
      for (const call of this.pending.values()) call.reject(new Error(`${call.method}: the connection to ${peer} closed`));
      this.pending.clear();
    });
  }

  send(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer from ${this.peer} within ${COMMAND_TIMEOUT_MS / 1000} s`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { method, resolve, reject, timer });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }
}
