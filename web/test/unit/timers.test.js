// The sync loop's timers: the page's own while it is visible, a worker's while it is hidden, and
// a pending timer moved with what is left of its time when that changes. A fake clock stands in
// for both kinds of timer; the worker stand-in speaks timer-worker.js's messages.
import test from "node:test";
import assert from "node:assert/strict";
import { createTimers } from "../../public/js/timers.js";

/** A fake clock with the page's timers, a document whose visibility the test sets, and a worker
 * keeping its timers on the same clock. `log` records which side ran what. */
function world({ worker = true } = {}) {
  let now = 0;
  let nextId = 1;
  const queue = new Map();
  const schedule = (fn, ms, period, side) => {
    const id = nextId++;
    queue.set(id, { at: now + ms, fn, period, side });
    return id;
  };
  const listeners = [];
  const doc = {
    visibilityState: "visible",
    addEventListener: (name, fn) => name === "visibilitychange" && listeners.push(fn),
  };
  const log = [];
  const pageTimers = { set: 0 };
  let made = 0;
  let last = null;
  const makeWorker = () => {
    if (!worker) throw new Error("no workers here");
    made += 1;
    const inner = new Map();
    const w = {
      onmessage: null,
      onerror: null,
      /** Its script failed: nothing it was given runs, nor anything given later. */
      kill() {
        for (const id of inner.values()) queue.delete(id);
        inner.clear();
        w.postMessage = () => {};
        w.onerror(new Event("error"));
      },
      postMessage(data) {
        const old = inner.get(data.id);
        if (old !== undefined) queue.delete(old);
        inner.delete(data.id);
        if (data.cancel) return;
        const run = () => {
          log.push({ side: "worker", at: now });
          w.onmessage({ data: { id: data.id, gen: data.gen } });
          if (data.repeat === null) inner.delete(data.id);
          else inner.set(data.id, schedule(run, data.repeat, null, "worker"));
        };
        inner.set(data.id, schedule(run, data.ms, null, "worker"));
      },
    };
    last = w;
    return w;
  };
  const timers = createTimers({
    doc,
    makeWorker,
    now: () => now,
    setTimeout: (fn, ms) => {
      pageTimers.set += 1;
      return schedule(() => { log.push({ side: "page", at: now }); fn(); }, ms, null, "page");
    },
    setInterval: (fn, ms) => {
      pageTimers.set += 1;
      return schedule(() => { log.push({ side: "page", at: now }); fn(); }, ms, ms, "page");
    },
    clearTimeout: (id) => queue.delete(id),
  });
  /** Runs the clock on to `t`, each timer at its time. */
  const runTo = (t) => {
    for (;;) {
      let next = null;
      for (const [id, e] of queue) if (e.at <= t && (next === null || e.at < queue.get(next).at)) next = id;
      if (next === null) break;
      const e = queue.get(next);
      now = e.at;
      if (e.period === null) queue.delete(next);
      else e.at += e.period;
      e.fn();
    }
    now = t;
  };
  const setVisibility = (state) => {
    doc.visibilityState = state;
    for (const fn of listeners) fn();
  };
  return { timers, runTo, setVisibility, log, pageTimers, workersMade: () => made, worker: () => last, now: () => now };
}

test("a visible page keeps its timers itself, as before; a worker is not even made", () => {
  const w = world();
  const ran = [];
  w.timers.later(() => ran.push(w.now()), 300);
  const tick = w.timers.every(() => ran.push(`tick ${w.now()}`), 100);
  w.runTo(350);
  assert.deepEqual(ran, ["tick 100", "tick 200", 300, "tick 300"]);
  assert.ok(w.log.every((l) => l.side === "page"));
  assert.equal(w.workersMade(), 0);
  w.timers.cancel(tick);
  w.runTo(1000);
  assert.equal(ran.length, 4);
  assert.deepEqual(w.timers.counts(), { pending: 0, inWorker: 0 });
});

test("a hidden page's timers are kept by the worker, on time", () => {
  const w = world();
  w.setVisibility("hidden");
  const ran = [];
  w.timers.later(() => ran.push(w.now()), 20);
  w.timers.every(() => ran.push(`tick ${w.now()}`), 100);
  assert.deepEqual(w.timers.counts(), { pending: 2, inWorker: 2 });
  w.runTo(250);
  assert.deepEqual(ran, [20, "tick 100", "tick 200"]);
  assert.ok(w.log.every((l) => l.side === "worker"));
  assert.equal(w.pageTimers.set, 0);
});

test("a pending timer moves with what is left of its time when the page is hidden, and back when shown", () => {
  const w = world();
  const ran = [];
  w.timers.later(() => ran.push(w.now()), 500);
  w.timers.every(() => ran.push(`tick ${w.now()}`), 100);
  w.runTo(230);
  w.setVisibility("hidden");
  assert.deepEqual(w.timers.counts(), { pending: 2, inWorker: 2 });
  w.runTo(430);
  w.setVisibility("visible");
  assert.deepEqual(w.timers.counts(), { pending: 2, inWorker: 0 });
  w.runTo(720);
  // The start at 500 as asked; the ticks every 100 ms throughout, by whichever side kept them.
  assert.deepEqual(ran, ["tick 100", "tick 200", "tick 300", "tick 400", 500, "tick 500", "tick 600", "tick 700"]);
  assert.deepEqual(w.log.map((l) => l.side), ["page", "page", "worker", "worker", "page", "page", "page", "page"]);
});

test("a cancelled timer does not run, nor does a message the worker sent before it was moved", () => {
  const w = world();
  w.setVisibility("hidden");
  const ran = [];
  const start = w.timers.later(() => ran.push("start"), 50);
  w.timers.cancel(start);
  w.runTo(100);
  assert.deepEqual(ran, []);
  // A message already on its way from an earlier arming (its generation) is not this timer's.
  const h = w.timers.later(() => ran.push(w.now()), 100);
  w.setVisibility("visible");
  w.setVisibility("hidden");
  w.worker().onmessage({ data: { id: h, gen: 1 } });
  assert.deepEqual(ran, []);
  w.runTo(300);
  assert.deepEqual(ran, [200]);
  assert.deepEqual(w.timers.counts(), { pending: 0, inWorker: 0 });
  w.timers.cancel(h);
});

test("where no worker can be made, a hidden page keeps its timers itself", () => {
  const w = world({ worker: false });
  w.setVisibility("hidden");
  const ran = [];
  w.timers.later(() => ran.push(w.now()), 40);
  w.runTo(100);
  assert.deepEqual(ran, [40]);
  assert.ok(w.log.every((l) => l.side === "page"));
});

test("a worker that fails to run hands its timers back to the page, and gets no more", () => {
  const w = world();
  w.setVisibility("hidden");
  const ran = [];
  w.timers.later(() => ran.push(w.now()), 300);
  w.timers.every(() => ran.push(`tick ${w.now()}`), 100);
  assert.deepEqual(w.timers.counts(), { pending: 2, inWorker: 2 });
  // Its script could not load: nothing it was given would ever run.
  w.runTo(50);
  w.worker().kill();
  assert.deepEqual(w.timers.counts(), { pending: 2, inWorker: 0 });
  w.timers.later(() => ran.push(`late ${w.now()}`), 10);
  w.runTo(320);
  assert.deepEqual(ran, ["late 60", "tick 100", "tick 200", 300, "tick 300"]);
  assert.ok(w.log.every((l) => l.side === "page"));
  assert.equal(w.workersMade(), 1);
});
