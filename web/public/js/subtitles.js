// Subtitles of uploads: the text tracks the server extracted from the file (its
// `subtitles.json`), added to the player's <video> as <track> elements and offered in the
// controls' subtitles menu. Which one shows is each viewer's own choice, not the room's: it is
// kept in this browser (by language) for the next video.

/** Where the choice is kept: `{ "language": "eng" }`, `{ "off": true }`. */
const STORAGE_KEY = "lockstep.subtitles";

/**
 * The tracks of a `subtitles.json` answer, `[{src, language, title, default, forced}]`, each
 * checked: a `src` under `/media/uploads/`, a language and title that are short strings or null.
 * Anything else is left out.
 */
export function parseTracks(json) {
  if (!Array.isArray(json)) return [];
  const text = (v, max) => (typeof v === "string" && v.length > 0 && v.length <= max ? v : null);
  return json
    .filter((t) => t && typeof t.src === "string" && t.src.startsWith("/media/uploads/"))
    .slice(0, 16)
    .map((t) => ({
      src: t.src,
      language: text(t.language, 16),
      title: text(t.title, 80),
      default: t.default === true,
      forced: t.forced === true,
    }));
}

/** The name of a language tag in `locale` ("eng" → "English"), or null when it has none. */
export function languageName(language, locale) {
  if (!language) return null;
  try {
    const name = new Intl.DisplayNames([locale, "en"], { type: "language" }).of(language);
    return name && name !== language ? name : null;
  } catch {
    return null;
  }
}

/**
 * What the menu calls each track: its title, else its language's name, else "Track n"; a
 * forced track says so; two alike are numbered.
 */
export function trackLabels(tracks, locale = "en") {
  const labels = tracks.map((t, i) => {
    const base = t.title ?? languageName(t.language, locale) ?? t.language ?? `Track ${i + 1}`;
    return t.forced && !/forced/i.test(base) ? `${base} (forced)` : base;
  });
  const seen = new Map();
  return labels.map((label) => {
    const n = (seen.get(label) ?? 0) + 1;
    seen.set(label, n);
    const total = labels.filter((l) => l === label).length;
    return total > 1 ? `${label} ${n}` : label;
  });
}

/**
 * The track to show (its index, or -1 for none): the viewer's language when they chose one and
 * the video has it; none when they turned subtitles off, except a forced track (dialogue in
 * another language than the film's); with no choice made, the track the file marks default or
 * forced.
 */
export function chooseTrack(tracks, choice) {
  const forced = tracks.findIndex((t) => t.forced);
  if (choice?.off) return forced;
  if (choice?.language) {
    const mine = tracks.findIndex((t) => t.language === choice.language && !t.forced);
    if (mine >= 0) return mine;
    const any = tracks.findIndex((t) => t.language === choice.language);
    if (any >= 0) return any;
  }
  const marked = tracks.findIndex((t) => t.default);
  return marked >= 0 ? marked : forced;
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export class Subtitles {
  /** `select`: the controls' subtitles menu (hidden while the video has no subtitles). */
  constructor(select, { store = storage(), locale = navigator.language || "en" } = {}) {
    this.select = select;
    this.store = store;
    this.locale = locale;
    this.key = null;
    this.video = null;
    this.tracks = [];
    this.elements = [];
    this.index = -1;
    // The browser picks tracks of its own as they are added (Chromium showed the first one
    // beside the one chosen): the viewer's choice is put back whenever a mode changes.
    this.enforce = () => {
      if (this.elements.some((el, i) => el.track.mode !== (i === this.index ? "showing" : "disabled"))) this.show(this.index);
    };
    select.addEventListener("change", () => this.pick(Number(select.value)));
  }

  /** The viewer shows track `index` (-1: none), and it is kept for the next video. */
  pick(index) {
    this.show(index);
    const track = this.tracks[this.index];
    this.remember(track ? { language: track.language } : { off: true });
  }

  /** Turns subtitles off when some show (the `c` key), else on: the track last shown, else the
   * first that is not forced. False when the video has none. */
  toggle() {
    if (!this.elements.length) return false;
    const on = this.index >= 0 && !this.tracks[this.index].forced;
    const first = this.tracks.findIndex((t) => !t.forced);
    this.pick(on ? -1 : (this.lastShown ?? (first >= 0 ? first : 0)));
    return true;
  }

  /** Shows the subtitles of `item` (an upload) on `video`, its player's element, or none. */
  async setItem(item, video) {
    const key = item?.kind === "upload" && video ? item.upload_id : null;
    if (key === this.key && video === this.video) return;
    this.clear();
    this.key = key;
    this.video = video ?? null;
    if (!key) return;
    let tracks = [];
    try {
      const response = await fetch(`/media/uploads/${encodeURIComponent(key)}/subtitles.json`, { credentials: "same-origin" });
      if (response.ok) tracks = parseTracks(await response.json());
    } catch {
      // No subtitles: the video plays all the same.
    }
    if (this.key !== key || this.video !== video || !tracks.length) return;
    this.tracks = tracks;
    const labels = trackLabels(tracks, this.locale);
    this.elements = tracks.map((t, i) => {
      const el = document.createElement("track");
      el.kind = "subtitles";
      el.src = t.src;
      el.label = labels[i];
      if (t.language) el.srclang = t.language;
      video.append(el);
      return el;
    });
    this.select.replaceChildren(
      new Option("Subtitles off", "-1"),
      ...labels.map((label, i) => new Option(label, String(i))),
    );
    this.select.hidden = false;
    video.textTracks.addEventListener("change", this.enforce);
    this.show(chooseTrack(tracks, this.choice()));
  }

  /** Shows track `index` (-1: none). */
  show(index) {
    this.index = this.elements[index] ? index : -1;
    if (this.index >= 0 && !this.tracks[this.index].forced) this.lastShown = this.index;
    this.elements.forEach((el, i) => {
      // "showing" loads the track's file; the others are not fetched at all.
      el.track.mode = i === index ? "showing" : "disabled";
    });
    this.select.value = String(this.index);
  }

  clear() {
    this.lastShown = undefined;
    this.video?.textTracks.removeEventListener("change", this.enforce);
    for (const el of this.elements) el.remove();
    this.elements = [];
    this.tracks = [];
    this.select.hidden = true;
    this.select.replaceChildren();
  }

  choice() {
    try {
      return JSON.parse(this.store?.getItem(STORAGE_KEY) ?? "null");
    } catch {
      return null;
    }
  }

  remember(choice) {
    try {
      this.store?.setItem(STORAGE_KEY, JSON.stringify(choice));
    } catch {
      // Private mode: the choice lasts for this video.
    }
  }
}
