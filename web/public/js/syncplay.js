// How desktop players join this room through the server's Syncplay door (docs/syncplay.md): the
// People tab tells members the server and room name to type into Syncplay, and the settings let
// the owner choose a short room name instead of the invite key.

import { api } from "./api.js";
import { $, h, toast } from "./ui.js";

/** `host:port` of the Syncplay door for a page at `hostname` (IPv6 literals in brackets). */
export function syncplayServer(hostname, port) {
  const host = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  return `${host}:${port}`;
}

/** The Syncplay room name to tell people: the short name when there is one, else the key. */
export function syncplayRoom(info) {
  return info.short_name || info.room;
}

/** Fills the People tab's "desktop player" box, or hides it when the server has no door. */
export async function showSyncplay({ box, roomId, hasPassword }) {
  let info;
  try {
    info = await api.get(`/api/rooms/${roomId}/syncplay`);
  } catch {
    box.hidden = true;
    return null;
  }
  render(box, info, hasPassword);
  return info;
}

function render(box, info, hasPassword) {
  box.hidden = !info.enabled;
  if (!info.enabled) return;
  const server = syncplayServer(location.hostname, info.port);
  const room = syncplayRoom(info);
  const copy = (text, what) =>
    h("button", {
      type: "button",
      class: "copy",
      "aria-label": `Copy the ${what}`,
      text: "Copy",
      onclick: () => navigator.clipboard?.writeText(text).then(() => toast(`${what} copied`, "info")).catch(() => prompt(`Copy the ${what}:`, text)),
    });
  $(".syncplay-fields", box).replaceChildren(
    h("dt", { text: "Server" }), h("dd", {}, h("code", { text: server }), copy(server, "server address")),
    h("dt", { text: "Room" }), h("dd", {}, h("code", { text: room }), copy(room, "room name")),
    h("dt", { text: "Password" }), h("dd", { text: hasPassword ? "the room's password" : "none" }),
  );
}

/** The owner's short-name field in the settings: shown when the door is open. Returns a
 * function that saves a changed name (called on Save) and refreshes the People tab's box. */
export function setUpShortName({ input, row, roomId, box, hasPassword }) {
  let current = null;
  // Whether the server has the door is its configuration: once told it has none, never ask again.
  let closed = false;
  const load = async () => {
    if (closed) return;
    const info = await showSyncplay({ box, roomId, hasPassword: hasPassword() });
    closed = info?.enabled === false;
    row.hidden = !info?.enabled;
    current = info?.short_name ?? null;
    input.value = current ?? "";
  };
  const save = async () => {
    if (row.hidden) return;
    const wanted = input.value.trim().toLowerCase() || null;
    if (wanted === current) return;
    const info = await api.put(`/api/rooms/${roomId}/syncplay`, { short_name: wanted });
    current = info.short_name ?? null;
    render(box, info, hasPassword());
  };
  return { load, save };
}
