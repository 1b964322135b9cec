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

/** How far a desktop viewer's file may be from the room's item before it is another file
 * (seconds; the server's `DESKTOP_MISMATCH_SECS`). */
export const DESKTOP_MISMATCH_SECS = 1;

/** What the member list says of a desktop viewer (`member.desktop`, from the Syncplay door)
 * against the room's `current` item: `null` for a browser viewer, else `{ label, file,
 * mismatch }`. Both durations must be known to call it a mismatch. */
export function desktopNote(desktop, current) {
  if (!desktop) return null;
  const file = desktop.file ?? null;
  const mine = file?.duration;
  const room = current?.duration;
  const mismatch = Number.isFinite(mine) && Number.isFinite(room) && Math.abs(mine - room) > DESKTOP_MISMATCH_SECS;
  let text = file ? file.name : "no file open";
  if (file && Number.isFinite(mine)) text += ` (${formatTime(mine)})`;
  if (file && Number.isFinite(file.size)) text += `, ${formatBytes(file.size)}`;
  return { label: desktop.client || "Desktop player", file: text, mismatch };
}

/** Bytes as people read them, in binary units (as the server's limits are set). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  const shown = i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0).replace(/\.0$/, "");
  return `${shown} ${units[i]}`;
}
