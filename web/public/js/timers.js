// The sync loop's timers: its ticks, a landing's timed start, the runs it asks for between ticks,
// and the player's readings between them.
//
// A hidden page's own timers run late: Chromium runs them once a second at most (once a minute
// after five minutes hidden and silent), Firefox no sooner than a second after they were set,
// unless the page plays sound. A viewer in a background tab (muted, or after a pause) then
// started each landing's player 0.3-1 s late, seeked again after the 2 s cooldown, and again, for
// as long as the tab stayed hidden: never within 20 ms of the room (bench/RESULTS.md). A dedicated
// worker's timers are not held back so (50 ms asked, 50-51 ms taken in a hidden tab of either
// browser), and its message reaches the page at once. So while the page is hidden its timers are
// kept by a worker (timer-worker.js), and while it is visible by the page itself, as before: the
// sync loop's figures were measured with those. A timer pending when the page is hidden or shown
// moves over with what is left of its time. Where no worker can be made or run, the page keeps
// them all.
//
// npm's worker-timers does this for a bundled page; it makes its worker from a blob: URL, which
// the room page's policy does not allow (`script-src` has no blob:), and this page is not bundled:
// the worker here is a file of its own, and the bookkeeping is plain JavaScript over what
// `createTimers` is given, tested with `node --test`.

/**
 * Timers over `env`: `doc` (visibilityState, addEventListener), `makeWorker()` (a worker speaking
 * timer-worker.js's messages, or null), `now()` (ms), and the page's own `setTimeout`,
 * `setInterval` and `clearTimeout`.
 */
export function createTimers(env) {
  const pending = new Map();
  let nextHandle = 1;
  let worker;
  let watching = false;

  const hidden = () => env.doc?.visibilityState === "hidden";
  const theWorker = () => {
    if (worker === undefined) {
      try {
        worker = env.makeWorker();
      } catch {
        worker = null;
      }
      if (worker) {
        worker.onmessage = ({ data }) => fire(data.id, data.gen);
        // A worker whose script cannot load (a stricter policy in front of the site) says so
        // only now: what it was given goes back to the page, and so does all that comes after.
        worker.onerror = () => {
          worker = null;
          for (const [handle, t] of pending) if (t.inWorker) arm(handle, t);
        };
      }
    }
    return worker;
  };

  function fire(handle, gen) {
    const t = pending.get(handle);
    // Cancelled, or moved since this was sent: its new timer runs it.
    if (!t || (gen !== undefined && gen !== t.gen)) return;
    if (t.every === null) pending.delete(handle);
    else t.due = env.now() + t.every;
    t.fn();
  }

  /** Arms `t` to run in `wait` ms: what is left of its time, unless given (a new timer's own). */
  function arm(handle, t, wait = Math.max(0, t.due - env.now())) {
    t.gen += 1;
    if (hidden() && theWorker()) {
      t.inWorker = true;
      worker.postMessage({ id: handle, gen: t.gen, ms: wait, repeat: t.every });
    } else {
      t.inWorker = false;
      t.native = t.every === null
        ? env.setTimeout(() => fire(handle), wait)
        : wait === t.every
          ? env.setInterval(() => fire(handle), wait)
          // Moved back mid-period: the rest of this one, then every period.
          : env.setTimeout(() => {
            t.native = env.setInterval(() => fire(handle), t.every);
            fire(handle);
          }, wait);
    }
  }

  function disarm(handle, t) {
    if (t.inWorker) worker.postMessage({ id: handle, cancel: true });
    else env.clearTimeout(t.native);
  }

  function add(fn, ms, every) {
    if (!watching && env.doc) {
      watching = true;
      env.doc.addEventListener("visibilitychange", () => {
        for (const [handle, t] of pending) {
          if (t.inWorker === (hidden() && Boolean(theWorker()))) continue;
          disarm(handle, t);
          arm(handle, t);
        }
      });
    }
    const handle = nextHandle++;
    const t = { fn, every, due: env.now() + ms, gen: 0, inWorker: false, native: null };
    pending.set(handle, t);
    arm(handle, t, ms);
    return handle;
  }

  return {
    /** Runs `fn` once in `ms`; returns a handle for `cancel`. */
    later: (fn, ms) => add(fn, Math.max(0, ms), null),
    /** Runs `fn` every `ms`; returns a handle for `cancel`. */
    every: (fn, ms) => add(fn, ms, ms),
    /** Cancels a timer of `later` or `every` (nothing for null or one already run). */
    cancel(handle) {
      const t = pending.get(handle);
      if (!t) return;
      pending.delete(handle);
      disarm(handle, t);
    },
    /** How many timers are pending, and how many of them the worker keeps (tests). */
    counts: () => ({ pending: pending.size, inWorker: [...pending.values()].filter((t) => t.inWorker).length }),
  };
}

const page = createTimers({
  doc: globalThis.document,
  makeWorker: () => (typeof Worker === "function" ? new Worker(new URL("./timer-worker.js", import.meta.url)) : null),
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
});

/** Runs `fn` once in `ms`; returns a handle for `cancel`. */
export const later = page.later;
/** Runs `fn` every `ms`; returns a handle for `cancel`. */
export const every = page.every;
/** Cancels a timer of `later` or `every` (nothing for null or a timer already run). */
export const cancel = page.cancel;
