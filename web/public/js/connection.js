// The connection to a room: WebSocket protocol v1 (docs/protocol.md).
//
// Says hello (resuming from the model's epoch and sequence number when it has them), keeps the
// clock estimator fed with pings, applies numbered events to the model, matches acks and errors
// to commands, and reconnects with exponential backoff and jitter when the connection drops. A
// pong that does not come back in time counts as a dead connection: a dropped network can leave
// a TCP connection silent for minutes. No DOM; the WebSocket class and the clock are injectable.
//
// A connection may be opened before its page exists (`provisional`, then `adopt`): the room page
// opens it while it fetches the room's view, so that the hello, the welcome and the clock's first
// pings overlap that fetch. Until adopted it keeps what it hears in the model and the clock, and a
// loss ends it instead of retrying (a room with a password refuses it until the page has asked).
// Its first socket may be older still (`first`): room.html opens one as it is parsed, says the
// opening ping and hello on it and keeps what it hears, with when (see `take`).

import { GapError } from "./model.js";

/** Reconnection delays: exponential backoff with full jitter, so that after a server restart
 * thousands of viewers do not all knock at the same instant. (Here rather than a module of its
 * own: early.js's imports are fetched in the page's first round of requests, six at a time.) */
export const BACKOFF = Object.freeze({
  BASE_MS: 500,
  /** The ceiling grows by this much per failed attempt. Doubling, a page was back 3.3 s on average
   * after a 5 s outage (a server restarting), 7.0 s at p90; by 1.5, 1.8 and 4.0 s, with as few
   * attempts in a long outage once at MAX_MS (web/bench/backoff.mjs, bench/RESULTS.md). */
  FACTOR: 1.5,
  MAX_MS: 15_000,
});

/**
 * How long to wait before reconnection attempt number `attempt` (0 for the first), in ms: a random
 * time between 0 and min(MAX, BASE * FACTOR^attempt). A server that asked for a delay
 * (`retryAfterMs`) gets at least that.
 */
export function reconnectDelay(attempt, { retryAfterMs = 0, random = Math.random } = {}) {
  const ceiling = Math.min(BACKOFF.MAX_MS, BACKOFF.BASE_MS * BACKOFF.FACTOR ** Math.max(0, attempt));
  return Math.max(retryAfterMs, Math.round(random() * ceiling));
}

/** How long a command waits for its ack before failing. */
export const COMMAND_TIMEOUT_MS = 10_000;
/** How long a ping waits for its pong before the connection counts as dead. */
export const PONG_TIMEOUT_MS = 4_000;

/** The page's own timers: a connection keeps its timers with them until it is given others. */
const PAGE_TIMERS = Object.freeze({ later: (fn, ms) => setTimeout(fn, ms), cancel: (handle) => clearTimeout(handle) });

/**
 * The connection's timers (its pings, a pong's deadline, the next attempt, each command's
 * deadline), kept by `impl` ({later, cancel}) until `use` moves those pending to another, with
 * what is left of their time. A hidden page's own timers run late (once a minute, after five
 * minutes hidden and silent, in Chromium): its pings then went once a minute, the clock's samples
 * aged out of its window between two, and behind a link of some tens of ms it was no longer
 * ready, so the page stopped following the room (bench/RESULTS.md). The room page hands its
 * connection timers.js's, which a worker keeps while the page is hidden; early.js, which opens
 * the connection, does not load timers.js (its imports come in the page's first round of
 * requests, six at a time), so the connection starts on the page's own.
 */
class MovableTimers {
  constructor(impl, now) {
    Object.assign(this, { impl, now });
    this.pending = new Map();
    this.nextKey = 1;
  }

  /** Runs `fn` once in `ms`; returns a key for `cancel` (never 0 nor null). */
  later(fn, ms) {
    const key = this.nextKey++;
    const t = { fn, due: this.now() + ms, handle: null };
    this.pending.set(key, t);
    this.arm(key, t, ms);
    return key;
  }

  arm(key, t, ms) {
    t.handle = this.impl.later(() => {
      this.pending.delete(key);
      t.fn();
    }, ms);
  }

  /** Cancels a timer of `later` (nothing for null or one already run). */
  cancel(key) {
    const t = this.pending.get(key);
    if (!t) return;
    this.pending.delete(key);
    this.impl.cancel(t.handle);
  }

  /** Keeps the timers with `impl` from now on, those pending too. */
  use(impl) {
    const old = this.impl;
    this.impl = impl;
    for (const [key, t] of this.pending) {
      old.cancel(t.handle);
      this.arm(key, t, Math.max(0, t.due - this.now()));
    }
  }
}

/** A command the server refused, or that could not be sent. */
export class CommandError extends Error {
  constructor(code, message, retryAfterMs) {
    super(message);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

export class RoomConnection {
  /**
   * @param {object} o
   * @param {string} o.url          the room's WebSocket URL
   * @param {import("./model.js").RoomModel} o.model
   * @param {import("./clock.js").ClockEstimator} o.clock
   * @param {(changes: string[], frame: object) => void} [o.onChange] after an event or welcome
   * @param {(state: string, detail?: object) => void} [o.onState] connecting | open | reconnecting | closed
   * @param {() => void} [o.onClockReady] when the clock estimate becomes usable (the page can land)
   * @param {(frame: object) => void} [o.onFrame] every frame, after it was handled
   * @param {boolean} [o.provisional] opened ahead of its page: see `adopt`
   * @param {{socket: WebSocket, heard: {data: string, at: number}[], pinged: number | null}} [o.first]
   *   a socket already opened to `url` (room.html's): its first ping (sent at `pinged`) and hello
   *   are said once it is open, and what it heard is kept with when. `start` takes it over.
   * @param {{later: (fn: () => void, ms: number) => any, cancel: (handle: any) => void}} [o.timers]
   *   what keeps its timers (the page's own by default; `adopt` may give others)
   */
  constructor({ url, model, clock, onChange = () => {}, onState = () => {}, onFrame = () => {}, onClockReady = () => {}, WebSocketImpl = globalThis.WebSocket, now = () => performance.timeOrigin + performance.now(), random = Math.random, provisional = false, first = null, timers = PAGE_TIMERS }) {
    Object.assign(this, { url, model, clock, onChange, onState, onFrame, onClockReady, WebSocketImpl, now, random, provisional, first });
    this.timers = new MovableTimers(timers, now);
    this.state = "idle";
    /** The detail of the last state (what `adopt` replays). */
    this.stateDetail = undefined;
    /** A provisional connection that was lost before it was adopted. */
    this.failed = false;
    this.socket = null;
    this.nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();
    this.attempt = 0;
    this.retryAfterMs = 0;
    this.finished = false;
    this.pingTimer = null;
    this.pongTimer = null;
    this.reconnectTimer = null;
    /** When the next attempt starts (ms, this.now()), while one waits; else null. */
    this.retryAt = null;
  }

  start() {
    const first = this.first;
    this.first = null;
    if (first) this.take(first);
    else this.open();
  }

  /** Closes for good. */
  stop() {
    this.finished = true;
    this.drop("stopped");
    this.setState("closed", { reason: "stopped" });
  }

  setState(state, detail) {
    this.state = state;
    this.stateDetail = detail;
    this.onState(state, detail);
  }

  /**
   * Takes over a provisional connection with the page's handlers: tells them what it already
   * heard (its state; everything, once welcomed; the clock, once ready), or, if it was lost
   * meanwhile, opens anew as `start` does. Given `timers`, keeps its timers with them from now on.
   * @param {{onChange?: Function, onState?: Function, onFrame?: Function, onClockReady?: Function, timers?: object}} handlers
   */
  adopt({ timers, ...handlers }) {
    if (timers) this.timers.use(timers);
    Object.assign(this, handlers);
    this.provisional = false;
    if (this.failed) {
      this.failed = false;
      this.open();
      return;
    }
    this.onState(this.state, this.stateDetail);
    if (this.state === "open") this.onChange(["all"], null);
    if (this.clock.ready) this.onClockReady();
  }

  open() {
    this.attach(new this.WebSocketImpl(this.url));
  }

  /**
   * Takes over a socket opened before this connection (see `first`): hears what it heard, at the
   * times it heard it (a pong's time is its arrival, not now), then goes on as if it had opened
   * it. Said already once it is open: the first ping (its pong is awaited from when it went) and
   * hello.
   */
  take({ socket, heard, pinged }) {
    this.attach(socket);
    if (pinged !== null) {
      socket.onopen = null;
      this.clock.connected(pinged);
      this.pongTimer = this.timers.later(() => this.lost(), Math.max(0, PONG_TIMEOUT_MS - (this.now() - pinged)));
      this.schedulePing(this.clock.nextPingDelay());
    }
    for (const { data, at } of heard) {
      if (socket !== this.socket) return;
      this.receive(data, at);
    }
    // Closed before it was taken over (refused: a room with a password): as if closed now.
    if (socket === this.socket && socket.readyState >= 2) this.lost();
  }

  /** Listens to a new socket, which says the first ping and hello once it opens. */
  attach(socket) {
    this.timers.cancel(this.reconnectTimer);
    this.retryAt = null;
    this.setState(this.attempt === 0 && !this.model.epoch ? "connecting" : "reconnecting");
    this.socket = socket;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      // The first clock ping goes before hello (the server answers pings before it): its pong
      // then comes ahead of the welcome, not behind it, and is read before the page spends tens
      // of ms on the welcome, which would count as round trip and leave the clock unsure.
      this.clock.connected(this.now()); // a fresh burst of clock samples, unless it agrees
      this.ping();
      const hello = { t: "hello", v: 1 };
      if (this.model.epoch) Object.assign(hello, { epoch: this.model.epoch, last_seq: this.model.seq });
      this.sendRaw(hello);
    };
    socket.onmessage = (e) => {
      if (socket === this.socket) this.receive(e.data, this.now());
    };
    socket.onclose = () => {
      if (socket === this.socket) this.lost();
    };
    socket.onerror = () => {};
  }

  /** One frame's text, heard at local time `at` (ms). */
  receive(data, at) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    this.handle(frame, at);
    this.onFrame(frame);
  }

  /** Forgets the current socket (its late events are ignored) and closes it. */
  drop() {
    const socket = this.socket;
    this.socket = null;
    this.timers.cancel(this.pingTimer);
    this.timers.cancel(this.pongTimer);
    this.pongTimer = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
    for (const [id, p] of this.pending) {
      this.timers.cancel(p.timer);
      p.reject(new CommandError("connection_lost", "the connection was lost"));
      this.pending.delete(id);
    }
  }

  /** The connection is gone: reconnect after a backoff, unless we are done. */
  lost() {
    this.drop();
    if (this.finished) return;
    if (this.provisional) {
      this.failed = true;
      return;
    }
    const delay = reconnectDelay(this.attempt, { retryAfterMs: this.retryAfterMs, random: this.random });
    this.attempt += 1;
    this.retryAfterMs = 0;
    this.retryAt = this.now() + delay;
    this.setState("reconnecting", { inMs: delay });
    this.reconnectTimer = this.timers.later(() => this.open(), delay);
  }

  /** Tries at once instead of waiting out the backoff (the user's "Retry now"). */
  retryNow() {
    if (this.finished || this.retryAt === null) return;
    this.open();
  }

  /** Reconnects at once (a gap in events, a dead connection). */
  reconnectNow() {
    this.drop();
    if (!this.finished) this.open();
  }

  /** Sends a clock ping now and schedules the next. */
  ping() {
    if (!this.socket) return;
    this.sendRaw({ t: "ping", client_time: this.now() });
    // The deadline runs from the oldest unanswered ping; later pings must not push it back.
    this.pongTimer ??= this.timers.later(() => this.lost(), PONG_TIMEOUT_MS);
    this.schedulePing(this.clock.nextPingDelay());
  }

  schedulePing(delay) {
    this.timers.cancel(this.pingTimer);
    this.pingTimer = this.timers.later(() => this.ping(), delay);
  }

  sendRaw(frame) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  /**
   * Sends a frame that wants no answer (a `sync_report`, made again a few seconds later); it is
   * dropped while not connected. A refusal comes as an `error` without `id`, and is ignored.
   */
  tell(frame) {
    if (this.state === "open") this.sendRaw(frame);
  }

  /**
   * Sends a command (a frame without `id`); resolves with the ack, rejects with a CommandError.
   */
  send(frame) {
    if (this.state !== "open") {
      return Promise.reject(new CommandError("offline", "not connected; reconnecting"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = this.timers.later(() => {
        this.pending.delete(id);
        reject(new CommandError("timeout", "the server did not answer"));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.sendRaw({ ...frame, id });
    });
  }

  /** One frame, heard at local time `at` (ms). */
  handle(frame, at) {
    switch (frame.t) {
      case "welcome":
        this.model.reset(frame);
        this.attempt = 0;
        this.setState("open");
        this.onChange(["all"], frame);
        return;
      case "resumed":
        this.attempt = 0;
        this.setState("open");
        return;
      case "pong":
        this.timers.cancel(this.pongTimer);
        this.pongTimer = null;
        {
          const wasReady = this.clock.ready;
          this.clock.addPong(frame, at);
          if (!wasReady && this.clock.ready) this.onClockReady();
        }
        return;
      case "ack":
      case "members_page":
      case "error": {
        const p = frame.id != null && this.pending.get(frame.id);
        if (p) {
          this.timers.cancel(p.timer);
          this.pending.delete(frame.id);
          if (frame.t !== "error") p.resolve(frame);
          else p.reject(new CommandError(frame.code, frame.message, frame.retry_after_ms));
        }
        return;
      }
      case "kicked":
      case "closed":
        this.finished = true;
        this.drop();
        this.setState("closed", frame);
        return;
      case "reconnect":
        this.retryAfterMs = frame.retry_after_ms ?? 0;
        return; // the server closes the socket next
      default:
        if (typeof frame.seq !== "number") return;
        try {
          const changes = this.model.apply(frame);
          this.onChange(changes, frame);
        } catch (err) {
          if (err instanceof GapError) this.reconnectNow();
          else throw err;
        }
    }
  }
}
