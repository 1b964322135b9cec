// Browser test harness: the real Lockstep server, a local media server with generated video,
// stand-ins for YouTube (IFrame API and oEmbed, same interfaces), a TCP proxy that can cut a
// viewer's network, one that delays it, and Debian's Chromium driven by playwright-core.
// Everything on 127.0.0.1.

import { spawn, execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../../..");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Seconds of the generated test video. */
export const VIDEO_SECONDS = 120;

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
function ephemeralLow() {
  try {
    const low = Number.parseInt(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8"), 10);
    return Number.isFinite(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

const PORTS_LOW = 10000;
const PORTS_SPAN = Math.min(Math.max(ephemeralLow(), 12000), 32768) - PORTS_LOW;
let nextPort = (process.pid * 7919) % PORTS_SPAN;

/** Whether `port` on 127.0.0.1 can be listened on now. */
function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** The ports browsers refuse to fetch from (the Fetch standard's "bad ports") within
 * PORTS_LOW..PORTS_LOW + PORTS_SPAN: a server there is never reached (net::ERR_UNSAFE_PORT; a
 * whole file of browser tests failed so once). */
const BAD_PORTS = new Set([10080]);

/** A free TCP port on 127.0.0.1 for a server started next. Not one from the kernel's ephemeral
 * range: between its release and the server's bind, such a port can go to a browser's outgoing
 * connection (the same choice as `lockstep_testkit::free_port`); nor one browsers refuse. */
export async function freePort() {
  for (let tries = 0; tries < PORTS_SPAN; tries++) {
    const port = PORTS_LOW + (nextPort++ % PORTS_SPAN);
    if (!BAD_PORTS.has(port) && (await canListen(port))) return port;
  }
  throw new Error("no free loopback port below the ephemeral range");
}

/** Generates the test video once per run (H.264/AAC, a keyframe every second for quick seeks, as
 * Lockstep's transcoded uploads have; `gop`: one every that many seconds instead, as many other
 * files have: a browser's seek then decodes up to that much video; `size`: its frame size, 480x270
 * unless said; `noise`: its sound white noise at 48 kHz (or at `noise` Hz, a number) instead of a
 * 330 Hz tone at 44.1 kHz, which a recording can be matched against to the sample:
 * web/bench/heard.mjs); `seconds`: its length, VIDEO_SECONDS unless said; `sound`: false for
 * none at all (no audio track). */
export function testVideo({ gop = 1, size = "480x270", noise = false, seconds = VIDEO_SECONDS, sound = true } = {}) {
  const dir = path.join(tmpdir(), "lockstep-e2e-media");
  const noiseRate = noise === true ? 48_000 : noise || null;
  const name = `clip${gop === 1 ? "" : `-gop${gop}`}${size === "480x270" ? "" : `-${size}`}${noiseRate ? `-noise${noiseRate === 48_000 ? "" : noiseRate}` : ""}${seconds === VIDEO_SECONDS ? "" : `-${seconds}s`}${sound ? "" : "-silent"}.mp4`;
  const file = path.join(dir, name);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `clip-${process.pid}.mp4`);
    execFileSync("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y",
      "-f", "lavfi", "-i", `testsrc2=duration=${seconds}:size=${size}:rate=30`,
      ...(sound ? ["-f", "lavfi", "-i", noiseRate ? `anoisesrc=color=white:sample_rate=${noiseRate}:amplitude=0.3:seed=7:duration=${seconds}` : `sine=frequency=330:duration=${seconds}`] : []),
      "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", String(30 * gop), "-keyint_min", String(30 * gop),
      ...(gop === 1 ? [] : ["-sc_threshold", "0"]),
      ...(sound ? ["-c:a", "aac", "-b:a", "64k", "-shortest"] : []), "-movflags", "+faststart", tmp,
    ]);
    // Rename into place so a concurrent run never sees a half-written file.
    execFileSync("mv", [tmp, file]);
  }
  return file;
}

/** An HLS rendition of the test video (2 s segments), made once per run. */
export function testHls() {
  const video = testVideo();
  const dir = path.join(path.dirname(video), "hls");
  const playlist = path.join(dir, "index.m3u8");
  if (!existsSync(playlist)) {
    const tmp = `${dir}-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    execFileSync("ffmpeg", [
      "-hide_banner", "-loglevel", "error", "-y", "-i", video, "-c", "copy", "-f", "hls",
      "-hls_time", "2", "-hls_playlist_type", "vod", path.join(tmp, "index.m3u8"),
    ]);
    execFileSync("mv", [tmp, dir]);
  }
  return dir;
}

/** Serves a file with Range support, as a CDN would. */
function serveFile(req, res, file, type) {
  const size = statSync(file).size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
  res.setHeader("accept-ranges", "bytes");
  res.setHeader("content-type", type);
  res.setHeader("access-control-allow-origin", "*");
  if (range) {
    const start = range[1] ? Number(range[1]) : size - Number(range[2]);
    const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size || start > end) {
      res.writeHead(416, { "content-range": `bytes */${size}` });
      return res.end();
    }
    res.writeHead(206, { "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
    createReadStream(file, { start, end }).pipe(res);
  } else {
    res.writeHead(200, { "content-length": size });
    createReadStream(file).pipe(res);
  }
}

/**
 * The fixture server: `/media/<name>.mp4` (the test video under any name), `/whole/<name>.mp4`
 * (the same from a host that ignores Range: `wholeUrl`), `/silent/<name>.mp4` (the same with no
 * audio track, made on its first request: `silentUrl`), `/hls/index.m3u8`
 * (an HLS rendition of it), `/hls.min.js`
 * (from the npm package), `/yt/iframe_api.js` (the YouTube stand-in), `/oembed` (YouTube's
 * oEmbed format for any video id). `gop`, `size`, `noise`, `seconds`, `sound`: the test video's
 * keyframe spacing (s), frame size, sound, length and whether it has an audio track at all
 * (`testVideo`).
 */
export async function startFixtures({ gop = 1, size, noise = false, seconds, sound } = {}) {
  const video = testVideo({ gop, size, noise, seconds, sound });
  const hls = testHls();
  /** The same without an audio track, made on its first request. */
  let silent = null;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, base);
    if (url.pathname.startsWith("/media/") && url.pathname.endsWith(".mp4")) return serveFile(req, res, video, "video/mp4");
    if (url.pathname.startsWith("/silent/") && url.pathname.endsWith(".mp4")) return serveFile(req, res, (silent ??= testVideo({ gop, size, seconds, sound: false })), "video/mp4");
    // A host that ignores Range, as `python3 -m http.server` does: the whole file every time.
    if (url.pathname.startsWith("/whole/") && url.pathname.endsWith(".mp4")) {
      res.writeHead(200, { "content-type": "video/mp4", "content-length": statSync(video).size, "access-control-allow-origin": "*" });
      return createReadStream(video).pipe(res);
    }
    if (url.pathname.startsWith("/hls/")) {
      const name = path.basename(url.pathname);
      const file = path.join(hls, name);
      if (!/^[\w.-]+$/.test(name) || !existsSync(file)) return res.writeHead(404).end();
      return serveFile(req, res, file, name.endsWith(".m3u8") ? "application/vnd.apple.mpegurl" : "video/mp2t");
    }
    if (url.pathname === "/hls.min.js") return serveFile(req, res, path.join(repo, "web/node_modules/hls.js/dist/hls.min.js"), "text/javascript");
    if (url.pathname === "/yt/iframe_api.js") return serveFile(req, res, path.join(here, "youtube-standin.js"), "text/javascript");
    if (url.pathname === "/oembed") {
      const id = new URL(url.searchParams.get("url") ?? "https://x/?v=").searchParams.get("v") ?? "";
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({
        title: `Test video ${id}`, author_name: "Test Channel", author_url: "https://www.youtube.com/@test",
        type: "video", height: 113, width: 200, version: "1.0", provider_name: "YouTube",
        provider_url: "https://www.youtube.com/", thumbnail_height: 360, thumbnail_width: 480,
        thumbnail_url: `${base}/media/thumb.jpg`, html: "<iframe></iframe>",
      }));
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { base, mediaUrl: (name = "clip") => `${base}/media/${name}.mp4`, wholeUrl: (name = "clip") => `${base}/whole/${name}.mp4`, silentUrl: (name = "clip") => `${base}/silent/${name}.mp4`, hlsUrl: `${base}/hls/index.m3u8`, close: () => new Promise((r) => server.close(r)) };
}

/** The lockstep binary: $LOCKSTEP_BIN, or the debug build `cargo test` made. */
function binary() {
  const bin = process.env.LOCKSTEP_BIN ?? path.join(repo, "target/debug/lockstep");
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it first (cargo build -p lockstep), or set LOCKSTEP_BIN`);
  }
  return bin;
}

/** Starts the real server on a free port with its own data directory. */
export async function startServer(fixtures, env = {}) {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), "lockstep-e2e-"));
  const child = spawn(binary(), [], {
    env: {
      ...process.env,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      LOCKSTEP_LISTEN: `127.0.0.1:${port}`,
      LOCKSTEP_DATA_DIR: dataDir,
      LOCKSTEP_ALLOW_PRIVATE_MEDIA: "true",
      LOCKSTEP_LEAVE_GRACE_MS: "0",
      // Pages upload right after their first visit (the wait is tested in the Rust suite).
      LOCKSTEP_UPLOAD_MIN_ACCOUNT_AGE_SECS: "0",
      LOCKSTEP_YOUTUBE_OEMBED_URL: `${fixtures.base}/oembed`,
      LOCKSTEP_YOUTUBE_IFRAME_API_URL: `${fixtures.base}/yt/iframe_api.js?media=${encodeURIComponent(`${fixtures.base}/media`)}`,
      LOCKSTEP_HLS_JS_URL: `${fixtures.base}/hls.min.js`,
      LOCKSTEP_HLS_JS_INTEGRITY: "",
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch {
      // not yet listening
    }
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy to `targetPort`. `cut(ms)` drops every connection through it and refuses new ones
 * for `ms`: a real network failure as far as the browser and the server can tell.
 */
export async function startProxy(targetPort) {
  const port = await freePort();
  const sockets = new Set();
  let downUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < downUntil) return client.destroy();
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.pipe(upstream).pipe(client);
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${port}`,
    cut(ms) {
      downUntil = Date.now() + ms;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** The jitter of `startDelayProxy`'s links: each chunk held its one-way delay ±20%. */
export const JITTER = 0.2;

/** A TCP proxy on loopback that holds each chunk, each way, for `oneWayMs` ±20% (in order, as a
 * real link keeps TCP's order). */
export async function startDelayProxy(targetPort, oneWayMs) {
  const port = await freePort();
  const sockets = new Set();
  // One timer per direction at a time, for the chunk at the head of its queue: a timer per chunk
  // let two chunks due in the same millisecond swap (Node counts a timer from the event loop's
  // cached time, not from Date.now()), which broke a TLS stream at once and could break a
  // WebSocket frame or a module.
  const delayed = (from, to) => {
    const queue = [];
    let timer = null;
    const flush = () => {
      timer = null;
      while (queue.length && queue[0].at <= Date.now()) {
        const { chunk } = queue.shift();
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length) timer = setTimeout(flush, queue[0].at - Date.now());
    };
    from.on("data", (chunk) => {
      const at = Math.max(queue.at(-1)?.at ?? 0, Date.now() + oneWayMs * (1 - JITTER + 2 * JITTER * Math.random()));
      queue.push({ chunk, at });
      timer ??= setTimeout(flush, at - Date.now());
    });
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    delayed(client, upstream);
    delayed(upstream, client);
    client.on("error", close).on("close", () => setTimeout(close, 2 * oneWayMs));
    upstream.on("error", close).on("close", () => setTimeout(close, 2 * oneWayMs));
  });
  server.listen(port, "127.0.0.1");
  return {
    base: `http://127.0.0.1:${port}`,
    close: () => {
      for (const x of sockets) x.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Debian's Chromium, headless, allowed to start media without a click. Muted (Playwright's
 * `--mute-audio`) unless `sound` gives the environment of a PulseAudio server to play into
 * (web/bench/heard.mjs). */
export async function launchBrowser({ autoplay = true, sound = null } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    ...(sound ? { ignoreDefaultArgs: ["--mute-audio"], env: { ...process.env, ...sound } } : {}),
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
      `--autoplay-policy=${autoplay ? "no-user-gesture-required" : "user-gesture-required"}`,
    ],
  });
}

/** A viewer: its own browser context (its own cookies, so its own user) and page. */
export async function newViewer(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err.message));
  return { context, page };
}

/** Where screenshots go. */
export function artifacts() {
  const dir = path.join(repo, "target/e2e-artifacts");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** An init script (for `addInitScript`, Playwright's or firefox.js's, which passes no argument)
 * that makes the page's first play() start its video's clock `holdMs` late: the video's rate is
 * held at 0 that long (the page's own rate kept, and applied after), so it plays with its
 * currentTime held, as a Firefox start that comes out late does now and then. */
export function holdFirstStart(holdMs) {
  const script = (ms) => {
    const play = HTMLMediaElement.prototype.play;
    const rate = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "playbackRate");
    let held = false;
    HTMLMediaElement.prototype.play = function (...args) {
      if (!held) {
        held = true;
        const video = this;
        let wanted = rate.get.call(video);
        let holding = true;
        Object.defineProperty(video, "playbackRate", {
          configurable: true,
          get: () => wanted,
          set: (r) => {
            wanted = r;
            if (!holding) rate.set.call(video, r);
          },
        });
        rate.set.call(video, 0);
        setTimeout(() => {
          holding = false;
          rate.set.call(video, wanted);
        }, ms);
      }
      return play.apply(this, args);
    };
  };
  // A function of no argument with the hold written in, which both serialize and call.
  return new Function(`(${script})(${Number(holdMs)});`);
}

/**
 * What a page's player and clock say, at one instant: its video position, and where the room's
 * position is according to the page's own clock estimate (`estimatedTarget`) and according to
 * the machine's real clock (`trueTarget`: browser and server share this machine's clock).
 */
export function probe(page) {
  return page.evaluate(() => {
    const app = window.lockstep;
    const p = app?.player;
    const m = app?.model;
    if (!p || !m?.current) return null;
    const now = performance.timeOrigin + performance.now();
    const pb = m.playback;
    const at = (serverMs) => (pb.paused ? pb.position : pb.position + Math.max(0, serverMs / 1000 - pb.at / 1e6) * pb.rate);
    return {
      now,
      position: p.currentTime,
      paused: p.paused,
      rate: p.rate,
      roomPaused: pb.paused,
      roomRate: pb.rate,
      itemId: m.current.id,
      estimatedTarget: at(app.clock.serverNow(now)),
      trueTarget: at(now),
      connection: document.querySelector("#connection")?.dataset.state,
      // bench-sync's Firefox viewers: the error at the player's last step, if watched.
      edge: window.__edge ?? null,
    };
  });
}

/** How far apart viewers may be and still count as together in a browser test (bench-sync
 * measures the real figure, far wider in WebKitGTK than elsewhere; a test only has to fail when
 * sync is broken). */
export const TOGETHER = 0.15;

/** Waits until the page's player is within TOGETHER of the room (by the true clock), and with
 * `playing` until both play, or with `paused` until both are paused. */
export function together(page, what, { playing = false, paused = false } = {}) {
  return eventually(
    async () => {
      const p = await probe(page);
      const state = (!playing || (!p?.roomPaused && !p?.paused)) && (!paused || (p?.roomPaused && p?.paused));
      return p && state && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
    },
    { what: `${what} together with the room` },
  );
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually(fn, { timeoutMs = 15_000, intervalMs = 100, what = "condition" } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last?.message ?? last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Uploads the video `file` as `name` for the user whose cookies `request` carries (a page's
 * context's request, a Playwright APIRequestContext): tus creation, then the whole file in one
 * PATCH. Returns the upload's id; throws with the server's words when either is refused. */
export async function uploadFile(request, base, file, name) {
  const video = readFileSync(file);
  const headers = { "tus-resumable": "1.0.0", origin: base };
  const created = await request.post(`${base}/api/uploads`, {
    headers: { ...headers, "upload-length": String(video.length), "upload-metadata": `filename ${Buffer.from(name).toString("base64")}` },
  });
  if (created.status() !== 201) throw new Error(`upload refused: ${created.status()} ${await created.text()}`);
  const { id } = await created.json();
  const patched = await request.patch(`${base}/api/uploads/${id}`, {
    headers: { ...headers, "upload-offset": "0", "content-type": "application/offset+octet-stream" },
    data: video,
  });
  if (patched.status() !== 204) throw new Error(`upload failed: ${patched.status()} ${await patched.text()}`);
  return id;
}

/** Creates a room from the lobby at `base` and waits until the page is in it; returns its URL. */
export async function createRoom(page, base, name) {
  await page.goto(`${base}/`);
  await page.fill("#room-name", name);
  await page.click("text=Create room");
  await page.waitForURL(/\/r\//);
  await page.waitForSelector("#connection[data-state=in-sync]");
  return page.url();
}

/** Adds `url` to the room's queue as a user would (the Queue tab, the field, Add). */
export async function addToQueue(page, url) {
  await page.click("#tab-queue");
  await page.fill("#queue-input", url);
  await page.click("#queue-form button[type=submit]");
}
