// My own videos in a room: saving what plays (or is queued) to my library or "watch later", and
// the picker that adds my uploads, saved videos and playlists to the room's queue.

import { api } from "./api.js";
import { formatTime } from "./format.js";
import { $, h, thumbnail, toast } from "./ui.js";

/** What the library API needs to save a queue item. */
export function saveBody(item) {
  if (item.kind === "upload") return { upload_id: item.upload_id };
  return { url: item.url, title: item.title, thumbnail: item.thumbnail ?? undefined, duration: item.duration ?? undefined };
}

/** Saves a queue item to `list` ("library" or "watch_later"). */
export async function saveItem(item, list) {
  try {
    await api.post("/api/library", { list, item: saveBody(item) });
    toast(list === "library" ? `Saved “${item.title}” to your library` : `“${item.title}” is in watch later`);
  } catch (err) {
    toast(err.message, "error");
  }
}

function row(thumb, title, sub, onAdd) {
  const button = h("button", { text: "Add", "aria-label": `Add ${title}` });
  button.addEventListener("click", async (e) => {
    e.preventDefault();
    button.disabled = true;
    try {
      await onAdd();
      toast(`Added “${title}”`);
    } catch (err) {
      toast(err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
  return h("li", { class: "entry" }, thumbnail(thumb, "▶"), h("div", { class: "meta" }, h("span", { class: "title", text: title }), h("span", { class: "sub", text: sub })), h("div", { class: "ops" }, button));
}

function group(title, items, empty) {
  return [h("h3", { text: title }), items.length ? h("ul", { class: "picker-list" }, items) : h("p", { class: "empty-note", text: empty })];
}

/** Opens the picker; `send(frame)` sends a command to the room. */
export async function openPicker(send) {
  const dialog = $("#picker");
  const body = $("#picker-body");
  body.replaceChildren(h("p", { class: "empty-note", text: "Loading…" }));
  dialog.showModal();
  try {
    const [uploads, lib, lists] = await Promise.all([api.get("/api/uploads"), api.get("/api/library"), api.get("/api/playlists")]);
    const ready = uploads.uploads.filter((u) => u.state === "ready");
    const length = (d) => (d ? formatTime(d) : "");
    const saved = (e) => row(e.thumbnail, e.title, length(e.duration), () => (e.upload_id ? send({ t: "queue_add_upload", upload_id: e.upload_id }) : send({ t: "queue_add", url: e.url })));
    body.replaceChildren(
      ...group(
        "My uploads",
        ready.map((u) => row(u.poster, u.file_name, [length(u.media?.duration), u.playable ? "" : "still being prepared"].filter(Boolean).join(" · "), () => send({ t: "queue_add_upload", upload_id: u.id }))),
        "No uploads ready yet.",
      ),
      ...group(
        "Playlists",
        lists.playlists.map((p) => row(p.items[0]?.thumbnail, p.name, `${p.items.length} videos, in order`, () => send({ t: "queue_add_playlist", playlist_id: p.id }))),
        "No playlists yet.",
      ),
      ...group("Library", lib.library.map(saved), "Nothing saved yet."),
      ...group("Watch later", lib.watch_later.map(saved), "Nothing to watch later."),
    );
  } catch (err) {
    body.replaceChildren(h("p", { class: "error-text", text: err.message }));
  }
}
