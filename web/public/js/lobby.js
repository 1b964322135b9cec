// The lobby: create a room, see public rooms and what they watch, join a random one, find my
// rooms again, change my name.

import { api } from "./api.js";
import { $, h, thumbnail, toast } from "./ui.js";

/** How often the room list refreshes. */
const REFRESH_MS = 10_000;

function roomCard(room) {
  const np = room.now_playing;
  const thumb = thumbnail(np?.thumbnail, np ? "▶" : "☾");
  const viewers = `${room.viewers} watching`;
  return h(
    "li",
    { class: "room-card" },
    h(
      "a",
      { href: `/r/${room.id}` },
      thumb,
      h(
        "div",
        { class: "meta" },
        h("span", { class: "title", text: room.name }),
        h("span", { class: "sub", text: np ? `${viewers} · ${np.title}` : `${viewers} · nothing playing` }),
        room.has_password ? h("span", { class: "sub", text: "password required" }) : null,
      ),
    ),
  );
}

async function refresh() {
  try {
    const lobby = await api.get("/api/rooms?limit=60");
    const list = $("#public-rooms");
    list.replaceChildren(...lobby.rooms.map(roomCard));
    $("#public-count").textContent = lobby.total ? `${lobby.total} public room${lobby.total === 1 ? "" : "s"}` : "";
    if (lobby.rooms.length === 0) list.append(h("li", { class: "empty-note", text: "No public rooms yet. Start one!" }));
    const mine = await api.get("/api/me/rooms");
    for (const [key, section, list] of [["owned", "#mine-section", "#my-rooms"], ["recent", "#recent-section", "#recent-rooms"]]) {
      $(section).hidden = mine[key].length === 0;
      $(list).replaceChildren(...mine[key].map(roomCard));
    }
  } catch (err) {
    toast(`Could not load rooms: ${err.message}`, "error");
  }
}

async function main() {
  // Who the user is (a first visit makes them). The forms answer from the start, each waiting for
  // this before its request: a form that had no handler yet when clicked (the lobby waited for it
  // first) was sent by the browser itself, which reloaded the lobby and lost what was typed.
  const who = api.get("/api/me");
  const nameInput = $("#my-name");
  const saveName = $("#save-name");
  let me = null;
  nameInput.addEventListener("input", () => (saveName.hidden = me !== null && nameInput.value.trim() === me.name));
  /** Saves the name in the box. */
  const save = async () => {
    await who;
    me = await api.patch("/api/me", { name: nameInput.value });
    nameInput.value = me.name;
    saveName.hidden = true;
  };
  /** Saves a name typed but not saved, before the lobby is left for a room: whoever types a name
   *  and then makes or opens a room means to be known by it there (it went unsaved, and the room
   *  showed the old name). Throws, saying so, when the server refuses the name. */
  const keepTypedName = async () => {
    const known = me ?? (await who);
    const typed = nameInput.value.trim();
    if (typed === "" || typed === known.name) return;
    try {
      await save();
    } catch (err) {
      throw new Error(`Your name was not saved: ${err.message}`);
    }
  };
  $("#name-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await save();
      toast("Name saved");
    } catch (err) {
      toast(err.message, "error");
    }
  });

  $("#create-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      name: $("#room-name").value,
      visibility: document.querySelector("input[name=visibility]:checked").value,
    };
    const password = $("#room-password").value;
    if (password) body.password = password;
    try {
      await keepTypedName();
      const room = await api.post("/api/rooms", body);
      location.href = room.settings.visibility === "private" ? room.link : `/r/${room.id}`;
    } catch (err) {
      $("#create-error").textContent = err.message;
    }
  });

  $("#random-room").addEventListener("click", async () => {
    try {
      await keepTypedName();
      const room = await api.get("/api/rooms/random");
      location.href = `/r/${room.id}`;
    } catch (err) {
      $("#random-error").textContent = err.code === "no_rooms" ? "No open public room right now. Start one!" : err.message;
    }
  });

  // A room opened from a list (a plain click): a name typed but not saved is saved first.
  document.querySelector("main").addEventListener("click", async (e) => {
    const link = e.target.closest(".room-card a");
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    try {
      await keepTypedName();
      location.href = link.href;
    } catch (err) {
      toast(err.message, "error");
    }
  });

  me = me ?? (await who);
  // Not over a name typed meanwhile.
  if (nameInput.value === "") nameInput.value = me.name;
  saveName.hidden = nameInput.value.trim() === me.name;

  await refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
