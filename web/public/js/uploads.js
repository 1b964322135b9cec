// The uploads page: resumable uploads (tus.js), then the checks and media jobs of each upload,
// live from the server's event stream. EventSource reconnects by itself and sends Last-Event-ID,
// so a dropped stream misses nothing.

import { api } from "./api.js";
import { reconnectDelay } from "./connection.js";
import { formatTime } from "./format.js";
import { TusUpload } from "./tus.js";
import { $, h, thumbnail, toast } from "./ui.js";
import { JOB_LABELS, PLAYABLE_HOW, UploadsModel, keyframeNote, parseTime, pixelNote, subtitlesNote } from "./uploads-model.js";
import { formatBytes } from "./format.js";

const model = new UploadsModel();
/** upload id (or a temporary key before the server gave one) → the upload running in this tab */
const local = new Map();
/** upload id → its card */
const cards = new Map();
let limits = { upload_max_bytes: null, upload_quota_bytes: null, sparse_keyframes_secs: null };

const STATE_TEXT = {
  receiving: "Uploading",
  probing: "Checking",
  preparing: "Preparing",
  unplayable: "Cannot be played",
  ready: "Ready",
  rejected: "Rejected",
};

/** The upload's state as people see it: a checked upload is ready once it can be played. */
function stateKey(u) {
  if (u.state !== "ready" || u.playable) return u.state;
  const playable = model.jobsOf(u.id).find((j) => j.kind === "playable");
  return playable && (playable.state === "failed" || playable.state === "cancelled") ? "unplayable" : "preparing";
}

function progressBar(fraction, label) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  // Set through the CSSOM: the page's CSP forbids inline style attributes.
  const bar = h("div", { class: "bar" });
  bar.style.width = `${pct.toFixed(1)}%`;
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0) },
    bar,
  );
}

function mediaLine(u) {
  const parts = [formatBytes(u.size)];
  const m = u.media;
  if (m) {
    parts.push(formatTime(m.duration));
    if (m.width && m.height) parts.push(`${m.width}×${m.height}`);
    parts.push([m.video_codec, m.audio_codec].filter(Boolean).join(" / "));
    parts.push(pixelNote(m));
    parts.push(keyframeNote(m, limits.sparse_keyframes_secs));
    parts.push(subtitlesNote(m));
  }
  return parts.filter(Boolean).join(" · ");
}

function jobRow(job) {
  const label = JOB_LABELS[job.kind] ?? job.kind;
  const what = job.kind === "thumbnail" && job.payload?.at != null ? `${label} at ${formatTime(job.payload.at)}` : label;
  let state = job.state;
  if (job.state === "queued" && job.attempts > 0) state = `retrying (attempt ${job.attempts + 1} of ${job.max_attempts})`;
  // A finished copy says how it was made ("converted" takes about the video's length).
  if (job.state === "done" && job.kind === "playable") state = PLAYABLE_HOW[job.result?.how] ?? state;
  const running = job.state === "running" || job.state === "queued";
  return h(
    "li",
    { class: `job job-${job.state}`, dataset: { job: job.id, kind: job.kind } },
    h("span", { class: "job-name", text: what }),
    progressBar(job.state === "done" ? 1 : job.progress, what),
    h("span", { class: "job-state", text: job.state === "running" ? `${Math.round(job.progress * 100)}%` : state }),
    running
      ? h("button", { class: "icon danger", title: "Cancel", "aria-label": `Cancel ${what}`, text: "✕", onclick: () => jobCommand(job, "cancel") })
      : job.state === "failed" || job.state === "cancelled"
        ? h("button", { class: "icon", title: "Run it again", "aria-label": `Retry ${what}`, text: "↻", onclick: () => jobCommand(job, "retry") })
        : null,
    job.error && job.state !== "done" ? h("p", { class: "error-text job-error", text: job.error }) : null,
  );
}

async function jobCommand(job, what) {
  try {
    await api.post(`/api/jobs/${job.id}/${what}`);
  } catch (err) {
    toast(err.message, "error");
  }
}

async function save(u, list) {
  try {
    await api.post("/api/library", { list, item: { upload_id: u.id } });
    toast(list === "library" ? "Saved to your library" : "Saved to watch later");
  } catch (err) {
    toast(err.message, "error");
  }
}

async function remove(u) {
  if (!confirm(`Delete “${u.file_name}” and everything made from it?`)) return;
  local.get(u.id)?.tus.abort();
  try {
    await api.delete(`/api/uploads/${u.id}`);
    model.remove(u.id);
    local.delete(u.id);
    cards.get(u.id)?.remove();
    cards.delete(u.id);
    renderCount();
  } catch (err) {
    toast(err.message, "error");
  }
}

/** The card of one upload: stable parts (the thumbnail form keeps its text) and a live part. */
function card(id) {
  let el = cards.get(id);
  if (el) return el;
  const timeInput = h("input", { class: "time-input", placeholder: "1:30", "aria-label": "Time of the thumbnail", inputmode: "decimal" });
  const form = h(
    "form",
    { class: "thumb-form" },
    h("label", { class: "inline" }, "Thumbnail at", timeInput),
    h("button", { type: "submit", text: "Make" }),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const at = parseTime(timeInput.value);
    if (!Number.isFinite(at)) {
      toast("Type a time like 90 or 1:30", "error");
      return;
    }
    try {
      await api.post(`/api/uploads/${id}/thumbnails`, { at });
      timeInput.value = "";
    } catch (err) {
      toast(err.message, "error");
    }
  });
  el = h(
    "li",
    { class: "upload card", dataset: { id } },
    h("div", { class: "upload-thumb" }),
    h("div", { class: "upload-body" }, h("div", { class: "upload-head" }), h("div", { class: "upload-live" }), h("div", { class: "upload-results" })),
    h("div", { class: "upload-actions" }, form, h("div", { class: "row buttons" })),
  );
  el.form = form;
  cards.set(id, el);
  return el;
}

function render(id) {
  const u = model.uploads.get(id);
  if (!u) return;
  const el = card(id);
  if (!el.isConnected) {
    // Newest first: before the first card older than this one.
    const list = $("#uploads");
    const after = [...list.children].find((c) => (model.uploads.get(c.dataset.id)?.created ?? Infinity) < u.created);
    list.insertBefore(el, after ?? null);
    $("#uploads .empty-note")?.remove();
  }
  const results = model.results(id);
  const thumbBox = $(".upload-thumb", el);
  const posterSrc = results.poster ? `${results.poster}?v=${u.updated}` : null;
  if (thumbBox.dataset.src !== (posterSrc ?? "")) {
    thumbBox.dataset.src = posterSrc ?? "";
    thumbBox.replaceChildren(thumbnail(posterSrc, u.state === "rejected" ? "✕" : "▶"));
  }
  // The thumbnail field's example: a time within this video (its middle), not one past its end.
  const duration = u.media?.duration;
  if (Number.isFinite(duration) && duration > 0) $(".time-input", el).placeholder = formatTime(duration / 2);
  const shown = stateKey(u);
  $(".upload-head", el).replaceChildren(
    h("div", { class: "title", text: u.file_name, title: u.file_name }),
    h("div", { class: "sub" }, h("span", { class: `state state-${shown}`, text: STATE_TEXT[shown] ?? u.state }), ` ${mediaLine(u)}`),
  );

  const live = [];
  const mine = local.get(id);
  if (u.state === "receiving") {
    const sent = mine ? mine.sent : u.received;
    live.push(progressBar(sent / (u.size || 1), `Upload of ${u.file_name}`));
    live.push(
      h("p", {
        class: "sub",
        text: mine
          ? `${formatBytes(sent)} of ${formatBytes(u.size)}${RETRYING[mine.retrying] ?? ""}`
          : `Interrupted at ${formatBytes(u.received)} of ${formatBytes(u.size)}. Choose the same file again to resume.`,
      }),
    );
  } else if (u.state === "probing") {
    live.push(h("p", { class: "sub", text: "Checking the file…" }));
  } else if (u.state === "rejected") {
    live.push(h("p", { class: "error-text", text: u.error ?? "This file is not a video we can play." }));
  }
  const jobs = model.jobsOf(id);
  if (jobs.length) live.push(h("ul", { class: "jobs" }, jobs.map(jobRow)));
  $(".upload-live", el).replaceChildren(...live);

  const made = [];
  if (results.storyboard) {
    made.push(h("span", { class: "sub", text: `Seek previews: ${results.storyboard.thumbnails} thumbnails, every ${results.storyboard.interval} s` }));
  }
  if (results.thumbnails.length) {
    made.push(
      h(
        "div",
        { class: "thumbs" },
        results.thumbnails.map((t) =>
          h("a", { href: t.url, target: "_blank", rel: "noopener", title: `At ${formatTime(t.at)}` }, h("img", { src: t.url, alt: `Thumbnail at ${formatTime(t.at)}`, loading: "lazy" })),
        ),
      ),
    );
  }
  if (results.video) made.push(h("a", { href: results.video, target: "_blank", rel: "noopener", text: "Open the video" }));
  $(".upload-results", el).replaceChildren(...made);

  el.form.hidden = u.state !== "ready";
  const buttons = [];
  if (u.state === "ready") {
    buttons.push(h("button", { text: "Save to library", onclick: () => save(u, "library") }));
    buttons.push(h("button", { text: "Watch later", onclick: () => save(u, "watch_later") }));
  }
  if (mine && u.state === "receiving") {
    buttons.push(h("button", { text: "Pause", onclick: () => mine.tus.abort() }));
  }
  buttons.push(h("button", { class: "danger", text: "Delete", onclick: () => remove(u) }));
  $(".upload-actions .buttons", el).replaceChildren(...buttons);
}

function renderCount() {
  const n = model.uploads.size;
  $("#upload-count").textContent = n ? `${n} ${n === 1 ? "video" : "videos"}` : "";
  if (n === 0 && !$("#uploads").children.length) {
    $("#uploads").append(h("li", { class: "empty-note", text: "Nothing uploaded yet." }));
  }
}

let pending = new Set();
function schedule(id) {
  if (!id) return;
  pending.add(id);
  if (pending.size > 1) return;
  requestAnimationFrame(() => {
    const ids = pending;
    pending = new Set();
    for (const i of ids) render(i);
    renderCount();
  });
}

/** The newest event id heard: a stream the page opens anew resumes after it. */
let lastEventId = null;
/** Streams opened anew since one last opened, for the backoff; the pending one's timer. */
let reopens = 0;
let reopenTimer = null;

/**
 * Listens to the jobs' event stream. The browser reconnects it by itself after a dropped
 * connection, saying where it got to (`Last-Event-ID`), but gives up for good on an error answer
 * (a proxy's 502 while the server restarts: the page stayed "Reconnecting…" and heard nothing
 * more). Then, after a backoff, or at once when the browser says its network is back, the page
 * opens a new one that says where the last got to (`?last_event_id=`).
 */
function listen() {
  clearTimeout(reopenTimer);
  const url = lastEventId === null ? "/api/jobs/events" : `/api/jobs/events?last_event_id=${encodeURIComponent(lastEventId)}`;
  const stream = new EventSource(url);
  const pill = $("#stream");
  const set = (state, text) => {
    pill.dataset.state = state;
    pill.textContent = text;
  };
  stream.addEventListener("open", () => {
    reopens = 0;
    set("in-sync", "Live");
  });
  stream.addEventListener("error", () => {
    set("reconnecting", "Reconnecting…");
    if (stream.readyState === EventSource.CLOSED && window.lockstepStream === stream) reopenTimer = setTimeout(listen, reconnectDelay(reopens++));
  });
  const heard = (e) => {
    if (/^\d+$/.test(e.lastEventId)) lastEventId = e.lastEventId;
  };
  for (const name of ["upload", "job"]) {
    stream.addEventListener(name, (e) => {
      heard(e);
      schedule(model.apply(name, JSON.parse(e.data)));
    });
  }
  stream.addEventListener("snapshot", heard);
  window.lockstepStream = stream;
}

window.addEventListener("online", () => {
  const stream = window.lockstepStream;
  if (!stream || stream.readyState === EventSource.OPEN) return;
  stream.close();
  listen();
});

/** What an upload's card adds while a dropped chunk waits (`TusUpload`'s `onRetrying`). */
const RETRYING = { failed: " · connection lost, retrying…", offline: " · offline, goes on when the network is back" };

async function send(file) {
  if (limits.upload_max_bytes && file.size > limits.upload_max_bytes) {
    toast(`“${file.name}” is larger than the ${formatBytes(limits.upload_max_bytes)} limit`, "error");
    return;
  }
  const entry = { sent: 0, retrying: null, tus: null };
  entry.tus = new TusUpload(file, {
    onCreated: (id) => {
      local.set(id, entry);
      if (!model.uploads.has(id)) {
        model.apply("upload", { id, file_name: file.name, size: file.size, received: 0, state: "receiving", created: Date.now() * 1000, updated: 0 });
      }
      schedule(id);
    },
    onProgress: (sent) => {
      entry.sent = sent;
      schedule(entry.tus.id);
    },
    onWaiting: (seconds, why) => toast(`“${file.name}” starts by itself in ${seconds} s: ${why}.`, "info", seconds * 1000),
    onRetrying: (why) => {
      entry.retrying = why;
      schedule(entry.tus.id);
    },
  });
  try {
    await entry.tus.start();
    if (entry.tus.resumed) toast(`Resumed “${file.name}”`);
  } catch (err) {
    if (err?.name === "AbortError") toast(`Paused “${file.name}”. Choose it again to resume.`);
    else toast(`“${file.name}”: ${err.message}`, "error");
  } finally {
    if (entry.tus.id) {
      local.delete(entry.tus.id);
      schedule(entry.tus.id);
    }
  }
}

function bindDrop() {
  const input = $("#file-input");
  input.addEventListener("change", () => {
    for (const f of input.files) send(f);
    input.value = "";
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) send(f);
  });
}

async function main() {
  bindDrop();
  renderCount();
  try {
    limits = await api.get("/api/client-config");
    if (limits.upload_max_bytes) {
      $("#limits").textContent = `Up to ${formatBytes(limits.upload_max_bytes)} per file, ${formatBytes(limits.upload_quota_bytes)} in all.`;
    }
  } catch {
    // The limits are a courtesy; the server enforces them.
  }
  listen();
}

main();
