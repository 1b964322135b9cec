// What the uploads page knows: my uploads and their jobs, built from the Server-Sent Events of
// /api/jobs/events (a fresh stream starts with the current state of everything; later events are
// changes). Pure: no DOM, no network.

const FINAL = new Set(["done", "failed", "cancelled"]);

export const JOB_LABELS = {
  poster: "Poster",
  storyboard: "Seek previews",
  thumbnail: "Thumbnail",
  playable: "Make playable",
};

/** What an upload's media line says of its keyframes ("keyframes 10 s apart") when they are
 * sparse, further apart than `sparse` s (the client config's `sparse_keyframes_secs`: the server
 * then transcodes a short video in a codec browsers play all the same), so that its owner sees
 * why an MP4 gets a playable copy made; null otherwise, when they were not listed
 * (`keyframe_spacing` absent), or when the threshold is not known (the config did not come). */
export function keyframeNote(media, sparse) {
  const spacing = media?.keyframe_spacing;
  if (typeof sparse !== "number" || !Number.isFinite(sparse)) return null;
  if (typeof spacing !== "number" || !Number.isFinite(spacing) || spacing <= sparse) return null;
  const shown = spacing >= 10 ? Math.round(spacing) : Math.round(spacing * 10) / 10;
  return `keyframes ${shown} s apart`;
}

/** Transfers the server tone-maps to SDR when it makes frames anew (`hdr_transfer`,
 * media/video.rs): PQ and HLG. */
const HDR_TRANSFERS = new Set(["smpte2084", "arib-std-b67"]);

/** Field orders of interlaced video, which the server deinterlaces in a transcode
 * (`interlaced`, media/video.rs). */
const INTERLACED = new Set(["tt", "bb", "tb", "bt"]);

/** What an upload's media line says of its video's pixel format ("10-bit", "4:4:4", "10-bit
 * 4:2:2") when it is not the 8-bit 4:2:0 every browser decodes: H.264 or VP9 in any other is
 * transcoded (`playable_plan`, media/video.rs); "HDR" when it is (a transcode tone-maps it);
 * "interlaced" when it is (a transcode deinterlaces it). Null for 8-bit 4:2:0 progressive SDR, or
 * what was not kept. */
export function pixelNote(media) {
  const format = media?.pixel_format;
  const parts = [];
  if (typeof format === "string") pixelParts(format, parts);
  if (HDR_TRANSFERS.has(media?.color_transfer)) parts.push("HDR");
  if (INTERLACED.has(media?.field_order)) parts.push("interlaced");
  // Kept on one line ("10-bit HDR"), where the media line wraps on a phone.
  return parts.length ? parts.join("\u00a0") : null;
}

function pixelParts(format, parts) {
  const bits = Number(/p(\d+)(le|be)?$/.exec(format)?.[1] ?? 8);
  const chroma = /^yuva?j?(4\d\d)/.exec(format)?.[1];
  if (bits > 8) parts.push(`${bits}-bit`);
  if (chroma && chroma !== "420") parts.push(`${chroma[0]}:${chroma[1]}:${chroma[2]}`);
  else if (/^(gbr|rgb|bgr)/.test(format)) parts.push("RGB");
}

/** What an upload's media line says of its text subtitles, which rooms offer: "1 subtitle
 * track", "3 subtitle tracks"; null for none (or an upload checked before they were kept). */
export function subtitlesNote(media) {
  const n = Array.isArray(media?.subtitles) ? media.subtitles.length : 0;
  return n ? `${n}\u00a0subtitle ${n === 1 ? "track" : "tracks"}` : null;
}

/** How the playable job made the copy (its result's `how`), in the page's words. */
export const PLAYABLE_HOW = {
  remuxed: "copied",
  "audio transcoded": "audio converted",
  transcoded: "converted",
};

export class UploadsModel {
  constructor() {
    /** id → upload row (as the server sends it) */
    this.uploads = new Map();
    /** id → job row */
    this.jobs = new Map();
    /** ids deleted here; late events about them are ignored */
    this.gone = new Set();
  }

  /** Applies one event (`upload` or `job`); returns the id of the upload it concerns. */
  apply(name, data) {
    if (name === "upload") {
      if (this.gone.has(data.id)) return null;
      const known = this.uploads.get(data.id);
      // Events can arrive out of date (a snapshot after a live change): keep the newest.
      if (!known || (data.updated ?? 0) >= (known.updated ?? 0)) this.uploads.set(data.id, data);
      return data.id;
    }
    if (name === "job") {
      if (this.gone.has(data.upload_id)) return null;
      const known = this.jobs.get(data.id);
      if (!known || (data.updated ?? 0) >= (known.updated ?? 0)) this.jobs.set(data.id, data);
      return data.upload_id;
    }
    return null;
  }

  remove(uploadId) {
    this.gone.add(uploadId);
    this.uploads.delete(uploadId);
    for (const [id, job] of this.jobs) if (job.upload_id === uploadId) this.jobs.delete(id);
  }

  /** Uploads, newest first. */
  list() {
    return [...this.uploads.values()].sort((a, b) => (b.created ?? 0) - (a.created ?? 0));
  }

  /** The jobs of an upload, oldest first. */
  jobsOf(uploadId) {
    return [...this.jobs.values()].filter((j) => j.upload_id === uploadId).sort((a, b) => (a.created ?? 0) - (b.created ?? 0));
  }

  /** What was made for an upload: poster URL, storyboard track, thumbnails (newest first). */
  results(uploadId) {
    const out = { poster: null, storyboard: null, thumbnails: [], video: null };
    for (const job of this.jobsOf(uploadId)) {
      if (job.state !== "done" || !job.result) continue;
      if (job.kind === "poster") out.poster = job.result.poster;
      if (job.kind === "storyboard") out.storyboard = job.result;
      if (job.kind === "thumbnail") out.thumbnails.unshift({ url: job.result.thumbnail, at: job.result.at, job: job.id });
    }
    if (this.uploads.get(uploadId)?.playable) out.video = `/media/uploads/${uploadId}/video`;
    return out;
  }

  /** Whether anything about the upload is still under way. */
  busy(uploadId) {
    const u = this.uploads.get(uploadId);
    if (!u) return false;
    return u.state === "receiving" || u.state === "probing" || this.jobsOf(uploadId).some((j) => !FINAL.has(j.state));
  }
}

/** "1:30", "90", "1:02:03.5" → seconds, or NaN. */
export function parseTime(text) {
  const t = String(text).trim();
  if (!/^\d+(:\d{1,2}){0,2}(\.\d+)?$/.test(t)) return NaN;
  return t.split(":").reduce((acc, p) => acc * 60 + Number(p), 0);
}
