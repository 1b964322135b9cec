// Desktop viewers for the browser suite and the Syncplay bench: Debian's Syncplay client (no
// GUI) driving mpv with no video or audio output, and a connection to that mpv's JSON IPC to read
// and work it as its user would.

import { spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { eventually, repo } from "./harness.js";

/** Where the tests' sitecustomize for Debian's Syncplay client is. */
const SITECUSTOMIZE = path.join(repo, "crates/lockstep/tests/fixtures/syncplay");

const now = () => performance.timeOrigin + performance.now();

/** A connection to one mpv's JSON IPC. */
export class MpvIpc {
  static async connect(socket) {
    const conn = await eventually(
      () => new Promise((resolve) => {
        const c = net.connect(socket);
        c.once("connect", () => resolve(c));
        c.once("error", () => resolve(null));
      }),
      { what: `mpv's IPC at ${socket}`, timeoutMs: 30_000, intervalMs: 200 },
    );
    return new MpvIpc(conn);
  }

  constructor(conn) {
    this.conn = conn;
    this.next = 1;
    this.waiting = new Map();
    let buffer = "";
    conn.on("data", (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        const w = msg.request_id && this.waiting.get(msg.request_id);
        if (w) {
          this.waiting.delete(msg.request_id);
          w(msg);
        }
      }
    });
  }

  command(...command) {
    const request_id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(request_id, resolve);
      this.conn.write(`${JSON.stringify({ command, request_id })}\n`);
    });
  }

  /** `time-pos`, stamped with the middle of the request's round trip. */
  async position() {
    const sent = now();
    const r = await this.command("get_property", "time-pos");
    const back = now();
    return r.error === "success" && typeof r.data === "number" ? { at: (sent + back) / 2, pos: r.data } : null;
  }

  close() {
    this.conn.destroy();
  }
}

/** Syncplay settings in `home` for clients that start ready and play when their user unpauses
 * (by default a Syncplay user's first unpause only marks them ready, and play waits for the
 * others to say they are ready, which no one does here). */
export function readyAtStart(home) {
  const settings = "[client_settings]\nreadyAtStart = True\nunpauseAction = Always\n";
  writeFileSync(path.join(home, ".syncplay"), settings);
  mkdirSync(path.join(home, ".config"), { recursive: true });
  writeFileSync(path.join(home, ".config", "syncplay.ini"), settings);
}

/** Debian's Syncplay client driving mpv on `file`, in `room` of the server at `address`.
 * `onOutput` gets each line it prints for its user (chat, who paused); `DEBUG=1` keeps its debug
 * output (the protocol) in /tmp/syncplay-<name>-<port>.log. */
export function desktop({ address, name, room, file, dir, onOutput }) {
  const port = address.split(":").at(-1);
  const socket = path.join(dir, `${name}-${port}.sock`);
  const child = spawn("syncplay", [
    ...(process.env.DEBUG ? ["-d"] : []),
    // `--room=`: an invite key may start with '-', which would read as an option.
    "--no-gui", "--no-store", "-a", address, "-n", name, `--room=${room}`, "--player-path", "/usr/bin/mpv", file,
    "--", "--vo=null", "--ao=null", `--input-ipc-server=${socket}`,
  ], {
    // Its own process group, so that ending it ends the mpv it started too.
    detached: true,
    // On its path, after what the caller put there: a sitecustomize that has mpv's socket tried
    // again when it is there but not yet listening (see the file).
    env: { ...process.env, HOME: dir, PYTHONUNBUFFERED: "1", PYTHONPATH: [process.env.PYTHONPATH, SITECUSTOMIZE].filter(Boolean).join(path.delimiter) },
    stdio: [
      "ignore",
      onOutput ? "pipe" : "ignore",
      process.env.DEBUG ? openSync(`/tmp/syncplay-${name}-${port}.log`, "w") : "ignore",
    ],
  });
  if (onOutput) {
    let buffer = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        onOutput(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
      }
    });
  }
  return { child, socket, stop: () => stopGroup(child) };
}

/** Ends the client and the mpv it started: SIGKILL to the whole group. Debian's Syncplay client
 * once went on running after SIGTERM (its mpv gone), and its open stdout pipe kept the test file's
 * process, and so the whole browser suite, from ending. A kill is a dropped connection to the
 * server, which is what the tests that stop a client mean. */
export function stopGroup(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  child.stdout?.destroy();
}

export async function loaded(ipc, what) {
  await eventually(async () => (await ipc.command("get_property", "duration")).error === "success", {
    what: `${what} with its file open`, timeoutMs: 30_000, intervalMs: 200,
  });
}

