// The library page: my library, "watch later", and my playlists (create, rename, reorder,
// remove, delete). Rooms enqueue a whole playlist from their queue panel.

import { api } from "./api.js";
import { formatTime } from "./format.js";
import { $, h, thumbnail, toast } from "./ui.js";

let playlists = [];

const KIND = { youtube: "YouTube", url: "Link", upload: "My upload" };

function describe(item) {
  return [KIND[item.kind] ?? item.kind, item.duration ? formatTime(item.duration) : null].filter(Boolean).join(" · ");
}

/** One saved video; `ops` are its buttons. */
function entryEl(item, ops) {
  const title = item.kind === "upload" ? h("span", { class: "title", text: item.title }) : h("a", { class: "title", href: item.url, target: "_blank", rel: "noopener noreferrer", text: item.title });
  return h(
    "li",
    { class: "entry", dataset: { id: item.id } },
    thumbnail(item.thumbnail, "▶"),
    h("div", { class: "meta" }, title, h("span", { class: "sub", text: describe(item) })),
    h("div", { class: "ops" }, ...ops),
  );
}

/** The "add to playlist" picker of a library entry. */
function addToPlaylist(entry) {
  if (!playlists.length) return null;
  const select = h(
    "select",
    { "aria-label": `Add ${entry.title} to a playlist` },
    h("option", { value: "", text: "Add to playlist…" }),
    playlists.map((p) => h("option", { value: p.id, text: p.name })),
  );
  select.addEventListener("change", async () => {
    const id = select.value;
    if (!id) return;
    try {
      const body = entry.upload_id ? { upload_id: entry.upload_id } : { url: entry.url, title: entry.title, thumbnail: entry.thumbnail, duration: entry.duration };
      await api.post(`/api/playlists/${id}/items`, { item: body });
      toast(`Added to ${playlists.find((p) => p.id === id)?.name ?? "the playlist"}`);
      await refresh();
    } catch (err) {
      toast(err.message, "error");
      select.value = "";
    }
  });
  return select;
}

function renderList(selector, countSelector, entries, emptyText) {
  const list = $(selector);
  const items = entries.map((e) =>
    entryEl(e, [
      addToPlaylist(e),
      h("button", {
        class: "icon danger",
        title: "Remove",
        "aria-label": `Remove ${e.title}`,
        text: "✕",
        onclick: async () => {
          try {
            await api.delete(`/api/library/${e.id}`);
            await refresh();
          } catch (err) {
            toast(err.message, "error");
          }
        },
      }),
    ]),
  );
  if (!items.length) items.push(h("li", { class: "empty-note", text: emptyText }));
  list.replaceChildren(...items);
  $(countSelector).textContent = entries.length ? String(entries.length) : "";
}

async function change(promise) {
  try {
    await promise;
    await refresh();
  } catch (err) {
    toast(err.message, "error");
  }
}

function playlistEl(p) {
  const base = `/api/playlists/${p.id}`;
  const ids = p.items.map((i) => i.id);
  const move = (from, to) => {
    const order = [...ids];
    const [x] = order.splice(from, 1);
    order.splice(to, 0, x);
    return change(api.put(`${base}/order`, { items: order }));
  };
  const nameInput = h("input", { value: p.name, maxlength: "120", "aria-label": "Playlist name", class: "playlist-name" });
  const rename = h("form", { class: "inline-form" }, nameInput, h("button", { type: "submit", text: "Rename" }));
  rename.addEventListener("submit", (e) => {
    e.preventDefault();
    change(api.patch(base, { name: nameInput.value }));
  });
  const linkInput = h("input", { type: "url", placeholder: "Add a YouTube or video URL", "aria-label": `Add a video to ${p.name}`, required: true });
  const add = h("form", { class: "inline-form" }, linkInput, h("button", { type: "submit", text: "Add" }));
  add.addEventListener("submit", (e) => {
    e.preventDefault();
    change(api.post(`${base}/items`, { item: { url: linkInput.value.trim() } }));
  });
  const items = p.items.map((item, i) =>
    entryEl(item, [
      i > 0 ? h("button", { class: "icon", title: "Move up", "aria-label": `Move ${item.title} up`, text: "↑", onclick: () => move(i, i - 1) }) : null,
      i < ids.length - 1 ? h("button", { class: "icon", title: "Move down", "aria-label": `Move ${item.title} down`, text: "↓", onclick: () => move(i, i + 1) }) : null,
      h("button", { class: "icon danger", title: "Remove", "aria-label": `Remove ${item.title} from ${p.name}`, text: "✕", onclick: () => change(api.delete(`${base}/items/${item.id}`)) }),
    ]),
  );
  if (!items.length) items.push(h("li", { class: "empty-note", text: "Empty. Add videos from your library or paste a link." }));
  return h(
    "article",
    { class: "card playlist", dataset: { id: p.id } },
    h(
      "div",
      { class: "section-head" },
      rename,
      h("span", { class: "empty-note", text: `${p.items.length} ${p.items.length === 1 ? "video" : "videos"}` }),
      h("button", {
        class: "danger",
        text: "Delete",
        onclick: () => {
          if (confirm(`Delete the playlist “${p.name}”?`)) change(api.delete(base));
        },
      }),
    ),
    h("ol", { class: "entry-list" }, items),
    add,
  );
}

async function refresh() {
  const [lib, lists] = await Promise.all([api.get("/api/library"), api.get("/api/playlists")]);
  playlists = lists.playlists;
  renderList("#library", "#library-count", lib.library, "Nothing saved yet.");
  renderList("#watch-later", "#later-count", lib.watch_later, "Nothing to watch later.");
  const boxes = playlists.map(playlistEl);
  if (!boxes.length) boxes.push(h("p", { class: "empty-note", text: "No playlists yet. Name one above to start." }));
  $("#playlists").replaceChildren(...boxes);
}

async function main() {
  $("#save-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.post("/api/library", { list: $("#save-list").value, item: { url: $("#save-url").value.trim() } });
      $("#save-url").value = "";
      await refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  });
  $("#new-playlist").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.post("/api/playlists", { name: $("#playlist-name").value });
      $("#playlist-name").value = "";
      await refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  });
  try {
    await refresh();
  } catch (err) {
    toast(`Could not load your library: ${err.message}`, "error");
  }
}

main();
