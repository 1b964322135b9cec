// Seek previews: the storyboard track of an upload (WebVTT cues pointing into sprite sheets with
// `#xywh=x,y,w,h` media fragments), and which thumbnail shows at a given time.

/** "hh:mm:ss.mmm" or "mm:ss.mmm" → seconds, or NaN. */
export function parseTimestamp(text) {
  const parts = text.trim().split(":");
  if (parts.length < 2 || parts.length > 3) return NaN;
  let seconds = 0;
  for (const p of parts) {
    if (!/^\d+(\.\d+)?$/.test(p)) return NaN;
    seconds = seconds * 60 + Number(p);
  }
  return seconds;
}

/**
 * The cues of a storyboard track: `{start, end, url, x, y, w, h}` sorted by start. `base` resolves
 * relative sheet URLs. Cues without a valid `#xywh` fragment are left out.
 */
export function parseStoryboard(text, base) {
  const cues = [];
  const blocks = text.replace(/\r\n?/g, "\n").split(/\n{2,}/);
  for (const block of blocks) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    const timing = lines.findIndex((l) => l.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->");
    const start = parseTimestamp(from);
    const end = parseTimestamp(to.trim().split(/\s+/)[0]);
    const target = lines[timing + 1].trim();
    const hash = target.lastIndexOf("#xywh=");
    if (!Number.isFinite(start) || !Number.isFinite(end) || hash < 0) continue;
    const box = target.slice(hash + 6).split(",").map(Number);
    if (box.length !== 4 || box.some((n) => !Number.isFinite(n) || n < 0)) continue;
    const url = base ? new URL(target.slice(0, hash), base).href : target.slice(0, hash);
    cues.push({ start, end, url, x: box[0], y: box[1], w: box[2], h: box[3] });
  }
  return cues.sort((a, b) => a.start - b.start);
}

/** The cue showing at `time` (the last one starting at or before it), or null. */
export function cueAt(cues, time) {
  if (!cues.length || !Number.isFinite(time) || time < cues[0].start) return null;
  let lo = 0;
  let hi = cues.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cues[mid].start <= time) lo = mid;
    else hi = mid - 1;
  }
  return cues[lo];
}
