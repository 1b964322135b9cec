// The sync loop's timers: its ticks, a landing's timed start, the runs it asks for between ticks,
// and the player's readings between them. One place, so that how they are kept can change.

/** Runs `fn` once in `ms`; returns a handle for `cancel`. */
export function later(fn, ms) {
  return setTimeout(fn, ms);
}

/** Runs `fn` every `ms`; returns a handle for `cancel`. */
export function every(fn, ms) {
  return setInterval(fn, ms);
}

/** Cancels a timer of `later` or `every` (nothing for null or a timer already run). */
export function cancel(handle) {
  clearTimeout(handle);
}
