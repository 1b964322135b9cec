// Browser test of several nodes: two Lockstep nodes on one PostgreSQL and one Redis, each behind
// nginx with the configuration of deploy/nginx.conf, and one Chromium viewer on each: they follow
// each other's play, pause and seek although their room runs on one node only. Run by
// ./scripts/test (which installs redis-server, postgresql and nginx when missing).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, eventually, freePort, launchBrowser, newViewer, probe, repo, startFixtures, startServer } from "./harness.js";

const TOGETHER = 0.15;
const children = [];
let work;
let fixtures;
let nodes = [];
let fronts = [];
let browser;

/** Runs a program to the end, as the postgres user when we are root (initdb refuses root). */
function asPostgres(program, args) {
  const root = process.getuid?.() === 0;
  return execFileSync(root ? "runuser" : program, root ? ["-u", "postgres", "--", program, ...args] : args, { stdio: "pipe" });
}

function pgBin() {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(a) - Number(b)) : [];
  const dir = versions.length ? path.join(base, versions.at(-1), "bin") : null;
  if (!dir || !existsSync(path.join(dir, "postgres"))) throw new Error("PostgreSQL is missing: install Debian's postgresql package (./scripts/test does)");
  return dir;
}

function nginxBin() {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx"]) if (existsSync(p)) return p;
  throw new Error("nginx is missing: install Debian's nginx package (./scripts/test does)");
}

function start(program, args, options = {}) {
  const child = spawn(program, args, { stdio: ["ignore", "ignore", "inherit"], ...options });
  children.push(child);
  return child;
}

async function until(what, check) {
  return eventually(check, { what, timeoutMs: 30_000 });
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "lockstep-e2e-cluster-"));
  chmodSync(work, 0o755);
  fixtures = await startFixtures();

  const redisPort = await freePort();
  start("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"]);

  const bin = pgBin();
  const pgPort = await freePort();
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres", work]);
  asPostgres(path.join(bin, "initdb"), ["-D", path.join(work, "pg"), "--auth=trust", "--username=postgres", "--no-sync"]);
  const root = process.getuid?.() === 0;
  const pgArgs = ["-D", path.join(work, "pg"), "-p", String(pgPort), "-k", work, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"];
  start(root ? "runuser" : path.join(bin, "postgres"), root ? ["-u", "postgres", "--", path.join(bin, "postgres"), ...pgArgs] : pgArgs, { stdio: "ignore" });
  await until("PostgreSQL", () => {
    try { execFileSync(path.join(bin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-U", "postgres", "-p", String(pgPort)]); return true; } catch { return false; }
  });
  execFileSync(path.join(bin, "psql"), ["-q", "-h", "127.0.0.1", "-p", String(pgPort), "-U", "postgres", "-c", "CREATE DATABASE lockstep"]);

  const shared = {
    LOCKSTEP_DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/lockstep`,
    LOCKSTEP_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    LOCKSTEP_MEDIA_DIR: path.join(work, "media"),
    LOCKSTEP_COOKIE_KEY: Buffer.alloc(64, 7).toString("base64"),
    LOCKSTEP_TRUSTED_PROXIES: "127.0.0.1/32",
  };
  nodes = [await startServer(fixtures, shared), await startServer(fixtures, shared)];

  // Each node behind its own nginx, configured as deploy/nginx.conf says.
  const site = readFileSync(path.join(repo, "deploy/nginx.conf"), "utf8");
  for (const [i, node] of nodes.entries()) {
    const port = await freePort();
    const dir = path.join(work, `nginx${i}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "upstreams.conf"), `server 127.0.0.1:${node.port};\n`);
    writeFileSync(path.join(dir, "site.conf"), site.replace("listen 127.0.0.1:8080;", `listen 127.0.0.1:${port};`));
    writeFileSync(path.join(dir, "nginx.conf"), [
      "daemon off;", `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`, "events { worker_connections 256; }",
      `http { access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; include ${dir}/site.conf; }`,
    ].join("\n"));
    start(nginxBin(), ["-c", path.join(dir, "nginx.conf"), "-p", dir]);
    const base = `http://127.0.0.1:${port}`;
    await until(`nginx in front of node ${i + 1}`, async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok);
    fronts.push(base);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop();
  for (const child of children.reverse()) {
    child.kill("SIGTERM");
    if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
  }
  await fixtures?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function inSync(page, what) {
  return eventually(async () => {
    const p = await probe(page);
    return p && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
  }, { what: `${what} in sync` });
}

test("two viewers on two nodes follow each other's play, pause and seek", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  await a.page.goto(`${fronts[0]}/`);
  await a.page.fill("#room-name", "Two nodes");
  await a.page.click("text=Create room");
  await a.page.waitForURL(/\/r\//);
  await a.page.waitForSelector("#connection[data-state=in-sync]");
  const roomPath = new URL(a.page.url()).pathname;
  // B opens the same room through the other node.
  await b.page.goto(`${fronts[1]}${roomPath}`);
  await b.page.waitForSelector("#connection[data-state=in-sync]");
  await a.page.click("#tab-queue");
  await a.page.fill("#queue-input", fixtures.mediaUrl("nodes"));
  await a.page.click("#queue-form button[type=submit]");
  for (const [v, n] of [[a, "A"], [b, "B"]]) await inSync(v.page, n);

  // B (through node 2) pauses: A (on node 1) stops at the same place.
  await b.page.click("#play");
  const paused = await Promise.all([a, b].map((v) => eventually(async () => {
    const p = await probe(v.page);
    return p?.roomPaused && p.paused && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
  }, { what: "paused" })));
  assert.ok(Math.abs(paused[0].position - paused[1].position) < TOGETHER, "paused together");

  // A seeks to 30 s; B follows.
  await a.page.$eval("#seek", (el) => {
    el.value = "30";
    el.dispatchEvent(new Event("input"));
    el.dispatchEvent(new Event("change"));
  });
  for (const v of [a, b]) {
    await eventually(async () => {
      const p = await probe(v.page);
      return p && Math.abs(p.position - 30) < 0.05 && p.paused;
    }, { what: "seeked to 30" });
  }

  // B plays; both play together.
  await b.page.click("#play");
  for (const [v, n] of [[a, "A"], [b, "B"]]) {
    const p = await eventually(async () => {
      const q = await probe(v.page);
      return q && !q.roomPaused && !q.paused && Math.abs(q.position - q.trueTarget) < TOGETHER && q;
    }, { what: `${n} playing in sync` });
    assert.ok(p.position >= 30);
  }
  await b.page.screenshot({ path: path.join(artifacts(), "cluster-room.png") });
  for (const v of [a, b]) await v.context.close();
});
