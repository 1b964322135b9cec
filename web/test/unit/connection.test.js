import test from "node:test";
import assert from "node:assert/strict";
import { RoomConnection, CommandError, PONG_TIMEOUT_MS } from "../../public/js/connection.js";
import { RoomModel } from "../../public/js/model.js";
import { ClockEstimator, CLOCK } from "../../public/js/clock.js";

/** A WebSocket stand-in the test drives by hand. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  // Test helpers:
  accept() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  dropConnection() {
    this.readyState = 3;
    this.onclose?.();
  }
}

const welcome = (seq) => ({
  t: "welcome", epoch: "E", seq, server_time: 0, room_id: "r", owner_id: "o", settings: {}, you: { user_id: "me" },
  current: null, playback: { paused: true, position: 0, at: 0, rate: 1 }, waiting: false, queue: [], votes: { votes: 0, needed: 1 },
  members: [], chat: [],
});

function connection(t) {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const model = new RoomModel();
  const states = [];
  const conn = new RoomConnection({
    url: "ws://x/api/rooms/r/ws", model, clock: new ClockEstimator(), WebSocketImpl: FakeSocket,
    onState: (s) => states.push(s), now: () => 1000, random: () => 0.5,
  });
  conn.start();
  return { conn, model, states, socket: () => FakeSocket.all.at(-1) };
}

test("hello, welcome, then events; commands are matched to their answers", async (t) => {
  const { conn, model, states, socket } = connection(t);
  socket().accept();
  // The first clock ping goes ahead of hello, so that its pong comes ahead of the welcome.
  assert.deepEqual(socket().sent.slice(0, 2), [{ t: "ping", client_time: 1000 }, { t: "hello", v: 1 }]);
  socket().receive(welcome(5));
  assert.equal(conn.state, "open");
  socket().receive({ t: "chat", seq: 6, line: { id: 1, text: "hi" } });
  assert.equal(model.seq, 6);
  const ok = conn.send({ t: "play" });
  const refused = conn.send({ t: "seek", position: -1 });
  const [play, seek] = socket().sent.slice(-2);
  socket().receive({ t: "ack", id: play.id });
  socket().receive({ t: "error", id: seek.id, code: "invalid_position", message: "no" });
  assert.equal((await ok).t, "ack");
  await assert.rejects(refused, (e) => e instanceof CommandError && e.code === "invalid_position");
  assert.deepEqual(states, ["connecting", "open"]);
});

test("a frame told, not sent as a command, carries no id and is dropped while offline", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  conn.tell({ t: "sync_report", p50_ms: 3, p95_ms: 8 });
  assert.equal(socket().sent.length, 2, "not before the welcome");
  socket().receive(welcome(1));
  conn.tell({ t: "sync_report", p50_ms: 3, p95_ms: 8 });
  assert.deepEqual(socket().sent.at(-1), { t: "sync_report", p50_ms: 3, p95_ms: 8 });
  // Its refusal, an error without an id, is let go.
  socket().receive({ t: "error", code: "rate_limited", message: "slow down", retry_after_ms: 900 });
  assert.equal(conn.state, "open");
  socket().dropConnection();
  conn.tell({ t: "sync_report", p50_ms: 3, p95_ms: 8 });
  assert.equal(socket().sent.filter((f) => f.t === "sync_report").length, 1);
});

test("a dropped connection resumes from the last event, after a backoff", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  socket().receive(welcome(5));
  socket().receive({ t: "chat", seq: 6, line: { id: 1 } });
  const pending = conn.send({ t: "play" });
  socket().dropConnection();
  assert.equal(conn.state, "reconnecting");
  pending.catch(() => {});
  assert.equal(FakeSocket.all.length, 1, "waits before retrying");
  t.mock.timers.tick(250); // random 0.5 x 500 ms
  assert.equal(FakeSocket.all.length, 2);
  socket().accept();
  assert.deepEqual(socket().sent[1], { t: "hello", v: 1, epoch: "E", last_seq: 6 });
  socket().receive({ t: "resumed", epoch: "E", after_seq: 6, seq: 7, server_time: 0 });
  socket().receive({ t: "chat", seq: 7, line: { id: 2 } });
  assert.equal(conn.state, "open");
});

test("pings: a burst and warm-up on the first connection; a reconnection to the same clock goes steady after four", (t) => {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let now = 1000;
  const conn = new RoomConnection({
    url: "ws://x/api/rooms/r/ws", model: new RoomModel(), clock: new ClockEstimator(), WebSocketImpl: FakeSocket,
    now: () => now, random: () => 0.5,
  });
  const socket = () => FakeSocket.all.at(-1);
  // The server answers every ping 1 ms later, its clock 5 s ahead; `ms` pass in 1 ms steps.
  const run = (ms) => {
    for (let i = 0; i < ms; i++) {
      now += 1;
      t.mock.timers.tick(1);
      for (const f of socket().sent) {
        if (f.t === "ping" && !f.answered && now - f.client_time >= 1) {
          f.answered = true;
          const server = (f.client_time + 0.5 + 5000) * 1000;
          socket().receive({ t: "pong", client_time: f.client_time, server_recv: server, server_send: server });
        }
      }
    }
  };
  const pings = () => socket().sent.filter((f) => f.t === "ping").length;
  conn.start();
  socket().accept();
  socket().receive(welcome(1));
  run(10_000);
  assert.equal(pings(), 1 + CLOCK.BURST + CLOCK.WARMUP + 1, "the burst, the warm-up, then one every 2.5 s");
  socket().dropConnection();
  run(250); // the backoff: random 0.5 x 500 ms
  socket().accept();
  socket().receive({ t: "resumed", epoch: "E", after_seq: 1, seq: 1, server_time: 0 });
  run(3_000);
  assert.equal(pings(), 4 + 1, "four close together, then steady");
  conn.stop();
});

test("a missing pong counts as a dead connection", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  assert.equal(socket().sent[0].t, "ping", "the first ping goes out on opening");
  t.mock.timers.tick(PONG_TIMEOUT_MS);
  assert.equal(conn.state, "reconnecting");
});

test("a gap in the events reconnects at once to resume", (t) => {
  const { socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  socket().receive({ t: "chat", seq: 3, line: {} });
  assert.equal(FakeSocket.all.length, 2);
  socket().accept();
  assert.equal(socket().sent[1].last_seq, 1);
});

test("kicked: closed for good, no reconnection", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  socket().receive({ t: "kicked", banned: true, message: "bye" });
  socket().dropConnection();
  t.mock.timers.tick(60_000);
  assert.equal(conn.state, "closed");
  assert.equal(FakeSocket.all.length, 1);
});

test("the server's reconnect delay is honoured", (t) => {
  const { socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  socket().receive({ t: "reconnect", reason: "server_shutdown", retry_after_ms: 3000 });
  socket().dropConnection();
  t.mock.timers.tick(2999);
  assert.equal(FakeSocket.all.length, 1);
  t.mock.timers.tick(1);
  assert.equal(FakeSocket.all.length, 2);
});

test("commands while disconnected fail at once", async (t) => {
  const { conn } = connection(t);
  await assert.rejects(conn.send({ t: "play" }), (e) => e.code === "offline");
});

test("while it waits to reconnect, it says when the next try is, and Retry now tries at once", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  assert.equal(conn.retryAt, null);
  socket().dropConnection();
  assert.equal(conn.state, "reconnecting");
  // random() = 0.5 of the first ceiling (500 ms), from now() = 1000.
  assert.equal(conn.retryAt, 1250);
  const before = FakeSocket.all.length;
  conn.retryNow();
  assert.equal(FakeSocket.all.length, before + 1, "a new socket at once");
  assert.equal(conn.retryAt, null, "no try is waiting any more");
  // The backoff's timer does not open a second socket later.
  t.mock.timers.tick(1000);
  assert.equal(FakeSocket.all.length, before + 1);
  // Nothing to retry while a connection is being made or open.
  conn.retryNow();
  assert.equal(FakeSocket.all.length, before + 1);
});

test("Retry now does nothing once the connection has ended for good", (t) => {
  const { conn, socket } = connection(t);
  socket().accept();
  socket().receive(welcome(1));
  socket().receive({ t: "kicked", message: "bye" });
  const before = FakeSocket.all.length;
  conn.retryNow();
  assert.equal(FakeSocket.all.length, before);
  assert.equal(conn.state, "closed");
});

test("the page is told once when the clock estimate becomes usable", (t) => {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let ready = 0;
  const clock = new ClockEstimator();
  const conn = new RoomConnection({
    url: "ws://x/api/rooms/r/ws", model: new RoomModel(), clock, WebSocketImpl: FakeSocket,
    onClockReady: () => (ready += 1), now: () => 1000, random: () => 0.5,
  });
  conn.start();
  const socket = FakeSocket.all.at(-1);
  socket.accept();
  // Pongs on a slow link (200 ms round trip): the estimate needs three.
  for (let i = 0; i < 5; i++) {
    socket.receive({ t: "pong", client_time: 800, server_recv: 900_000 + i, server_send: 900_010 + i });
    assert.equal(ready, clock.ready ? 1 : 0);
  }
  assert.equal(ready, 1);
});

test("opened ahead of its page: hello and pings go at once, and adopting it tells the page what it heard", (t) => {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const model = new RoomModel();
  const clock = new ClockEstimator();
  const conn = new RoomConnection({ url: "ws://x/api/rooms/r/ws", model, clock, WebSocketImpl: FakeSocket, now: () => 1000, random: () => 0.5, provisional: true });
  conn.start();
  const socket = FakeSocket.all.at(-1);
  socket.accept();
  assert.deepEqual(socket.sent.slice(0, 2), [{ t: "ping", client_time: 1000 }, { t: "hello", v: 1 }]);
  socket.receive(welcome(5));
  for (let i = 0; i < 3; i++) socket.receive({ t: "pong", client_time: 1000, server_recv: 1_005_000, server_send: 1_005_000 });
  assert.equal(model.seq, 5);
  assert.ok(clock.ready);
  // The page takes it over: it hears the state, everything, and that the clock is ready.
  const heard = [];
  conn.adopt({ onState: (s) => heard.push(`state ${s}`), onChange: (c) => heard.push(`changes ${c}`), onClockReady: () => heard.push("clock") });
  assert.deepEqual(heard, ["state open", "changes all", "clock"]);
  socket.receive({ t: "chat", seq: 6, line: { id: 1, text: "hi" } });
  assert.deepEqual(heard.at(-1), "changes chat");
  assert.equal(FakeSocket.all.length, 1, "no second socket");
});

/** Timers a test runs by hand: `later` keeps each (its handle is its index + 1), `cancel` marks it. */
function handTimers() {
  const given = [];
  return {
    given,
    live: () => given.filter((x) => !x.cancelled && !x.ran),
    run: (x) => {
      x.ran = true;
      x.fn();
    },
    later: (fn, ms) => given.push({ fn, ms }),
    cancel: (handle) => {
      if (given[handle - 1]) given[handle - 1].cancelled = true;
    },
  };
}

test("adopted with the page's timers: its pending ones move there with what is left of their time", (t) => {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
  const conn = new RoomConnection({ url: "ws://x/api/rooms/r/ws", model: new RoomModel(), clock: new ClockEstimator(), WebSocketImpl: FakeSocket, now: () => Date.now(), random: () => 0.5, provisional: true });
  conn.start();
  const socket = FakeSocket.all.at(-1);
  socket.accept(); // a ping: its pong is due within PONG_TIMEOUT_MS, and the next ping goes in 40 ms
  t.mock.timers.tick(1000); // pings without pongs: the deadline still runs from the first
  const pings = socket.sent.filter((f) => f.t === "ping").length;
  const hand = handTimers();
  conn.adopt({ timers: hand });
  // The page's own timers no longer run: no ping, no loss.
  t.mock.timers.tick(60_000);
  assert.equal(socket.sent.filter((f) => f.t === "ping").length, pings);
  assert.equal(conn.state, "connecting");
  // The two pending (the next ping and the pong's deadline) are the hand timers', with what was left.
  const [ping, deadline] = hand.live().sort((a, b) => a.ms - b.ms);
  assert.equal(hand.live().length, 2);
  assert.ok(ping.ms <= CLOCK.BURST_INTERVAL_MS, `the next ping in ${ping.ms} ms`);
  assert.equal(deadline.ms, PONG_TIMEOUT_MS - 1000);
  hand.run(ping);
  assert.equal(socket.sent.filter((f) => f.t === "ping").length, pings + 1, "the hand timer pings");
  hand.run(deadline);
  assert.equal(conn.state, "reconnecting", "no pong in time: lost");
  // What comes after is kept by them too: the next attempt, then a command's deadline.
  assert.equal(hand.live().length, 1);
  hand.run(hand.live()[0]);
  assert.equal(FakeSocket.all.length, 2, "the next attempt");
  FakeSocket.all.at(-1).accept();
  FakeSocket.all.at(-1).receive(welcome(1));
  const sent = conn.send({ t: "pause" });
  const commandDeadline = hand.live().find((x) => x.ms === 10_000);
  hand.run(commandDeadline);
  return assert.rejects(sent, (err) => err instanceof CommandError && err.code === "timeout");
});

test("opened ahead of its page and refused (a room with a password): no retry until adopted, then a fresh one", (t) => {
  FakeSocket.all = [];
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const conn = new RoomConnection({ url: "ws://x/api/rooms/r/ws", model: new RoomModel(), clock: new ClockEstimator(), WebSocketImpl: FakeSocket, now: () => 1000, random: () => 0.5, provisional: true });
  conn.start();
  FakeSocket.all.at(-1).dropConnection();
  t.mock.timers.tick(60_000);
  assert.equal(FakeSocket.all.length, 1, "not retried while nobody owns it");
  const states = [];
  conn.adopt({ onState: (s) => states.push(s) });
  assert.equal(FakeSocket.all.length, 2);
  assert.deepEqual(states, ["connecting"]);
  FakeSocket.all.at(-1).accept();
  assert.deepEqual(FakeSocket.all.at(-1).sent[1], { t: "hello", v: 1 });
  // Adopted, a loss is retried as usual.
  FakeSocket.all.at(-1).dropConnection();
  assert.deepEqual(states.at(-1), "reconnecting");
});

/** A socket opened by the page as it was parsed (room.html's script): said the ping at `pinged`
 * and hello once open, and kept what it heard, with when. */
function firstSocket({ open = true, pinged = open ? 900 : null, heard = [] } = {}) {
  FakeSocket.all = [];
  const socket = new FakeSocket("ws://x/api/rooms/r/ws");
  socket.readyState = open ? 1 : 0;
  return { socket, pinged, heard: heard.map(([frame, at]) => ({ data: JSON.stringify(frame), at })) };
}

function takingOver(t, first, o = {}) {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const model = new RoomModel();
  const clock = new ClockEstimator();
  const states = [];
  const conn = new RoomConnection({
    url: "ws://x/api/rooms/r/ws", model, clock, WebSocketImpl: FakeSocket, onState: (s) => states.push(s),
    now: () => 1000, random: () => 0.5, provisional: true, first, ...o,
  });
  conn.start();
  return { conn, model, clock, states };
}

test("a socket the page opened as it was parsed is taken over: what it heard is handled as of when it was heard, and nothing is said twice", (t) => {
  const pong = { t: "pong", client_time: 900, server_recv: 4_940_000, server_send: 4_940_000 };
  const first = firstSocket({ heard: [[pong, 980], [welcome(5), 985]] });
  const { model, clock, states } = takingOver(t, first);
  assert.equal(FakeSocket.all.length, 1, "no second socket");
  assert.deepEqual(first.socket.sent, [], "its ping and hello were said already");
  assert.equal(model.seq, 5);
  assert.deepEqual(states, ["connecting", "open"]);
  // The pong counts as heard at 980, not when it was taken over (1000): 80 ms round trip, 4 s ahead
  // (widened at each end by the page clock's resolution, CLOCK.TIMING_RESOLUTION_MS).
  const res = CLOCK.TIMING_RESOLUTION_MS;
  assert.deepEqual(clock.samples.map((s) => [s.rtt, s.offset, s.at]), [[80 + 2 * res, 4000, 980]]);
  // Then the clock's burst goes on, and the socket is heard as its own.
  t.mock.timers.tick(40);
  assert.deepEqual(first.socket.sent, [{ t: "ping", client_time: 1000 }]);
  first.socket.receive({ t: "chat", seq: 6, line: { id: 1, text: "hi" } });
  assert.equal(model.seq, 6);
});

test("a socket taken over before it opened says the ping and hello itself once it does", (t) => {
  const first = firstSocket({ open: false });
  const { states } = takingOver(t, first);
  assert.deepEqual(states, ["connecting"]);
  first.socket.accept();
  assert.deepEqual(first.socket.sent, [{ t: "ping", client_time: 1000 }, { t: "hello", v: 1 }]);
  assert.equal(FakeSocket.all.length, 1);
});

test("the pong of the ping the page said is awaited from when it was said", (t) => {
  const first = firstSocket({ pinged: 1000 - 3_000 });
  const { conn } = takingOver(t, first, { provisional: false });
  t.mock.timers.tick(PONG_TIMEOUT_MS - 3_000 - 1);
  assert.equal(conn.state, "connecting");
  t.mock.timers.tick(1);
  assert.equal(conn.state, "reconnecting", "no pong in 4 s: a dead connection");
});

test("a socket refused before it was taken over (a room with a password) ends the provisional connection: a fresh one once adopted", (t) => {
  const first = firstSocket({ open: false });
  first.socket.readyState = 3;
  const { conn } = takingOver(t, first);
  assert.ok(conn.failed);
  t.mock.timers.tick(60_000);
  assert.equal(FakeSocket.all.length, 1, "not retried while nobody owns it");
  conn.adopt({});
  assert.equal(FakeSocket.all.length, 2);
});
