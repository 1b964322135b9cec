// Small pure helpers for display. No DOM.

/** `m:ss` or `h:mm:ss` for a position in seconds. */
export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Whether chat `text` mentions `name` (as `@name` or the whole name as a word), ignoring case. */
export function mentions(text, name) {
  if (!name) return false;
  const t = text.toLowerCase();
  const n = name.toLowerCase();
  let from = 0;
  for (;;) {
    const i = t.indexOf(n, from);
    if (i < 0) return false;
    const before = i === 0 ? " " : t[i - 1];
    const after = i + n.length >= t.length ? " " : t[i + n.length];
    const isWordEdge = (c) => !/[\p{L}\p{N}_]/u.test(c);
    if ((before === "@" || isWordEdge(before)) && isWordEdge(after)) return true;
    from = i + 1;
  }
}

/** A clock time like `14:05` for a server time in microseconds. */
export function clockTime(micros) {
  const d = new Date(micros / 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}
