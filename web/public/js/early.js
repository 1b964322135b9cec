// What the room page asks the server first, asked as soon as the page starts. room.html loads
// this module on its own (`async`) ahead of the rest, so these overlap the download of the other
// modules instead of following it:
// - the room's view (or the invite's) and the client config;
// - the room's connection: its hello, the welcome and the clock's first pings. room.js takes it
//   over (`RoomConnection.adopt`) once it knows the room. Only when the address names the room
//   (`/r/{id}`): an invite's room is known only from its answer. A room with a password refuses
//   the socket until the page has asked for the password; the page then opens its own.
// A late joiner behind an 80 ms round trip was within 20 ms of the room ~0.3 s sooner (bench-sync).
// The view and the config wait behind the module downloads (HTTP/1.1: six connections), the
// socket does not: a page that hears the welcome first enters the room with it (room.js).

import { api } from "./api.js";
import { ClockEstimator } from "./clock.js";
import { RoomConnection } from "./connection.js";
import { RoomModel } from "./model.js";

/** The room's WebSocket address (`roomId` as it stands in a path: the address's own segment, or
 * a view's id). */
export function socketUrl(roomId) {
  const url = new URL(`/api/rooms/${roomId}/ws`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** A request whose failure is reported to whoever awaits it, not as an unhandled rejection. */
function asked(promise) {
  promise.catch(() => {});
  return promise;
}

function connect(roomId) {
  const model = new RoomModel();
  const clock = new ClockEstimator();
  let heard;
  const welcomed = new Promise((resolve) => (heard = resolve));
  // Until the page adopts the connection (it then has its own handlers).
  const onChange = (changes) => {
    if (changes.includes("all")) heard(model.welcomeView());
  };
  const conn = new RoomConnection({ url: socketUrl(roomId), model, clock, provisional: true, onChange });
  conn.start();
  return { id: roomId, model, clock, conn, welcomed };
}

const [, kind, token] = location.pathname.split("/");

export const early = {
  /** The address: "r" (a room) or "i" (an invite), and its id or key. */
  kind,
  token,
  config: asked(api.get("/api/client-config")),
  /** `GET /api/rooms/{id}` or `GET /api/invites/{key}`, as the address says. */
  first: kind === "r" ? asked(api.get(`/api/rooms/${token}`)) : asked(api.get(`/api/invites/${token}`)),
  /** `{id, model, clock, conn, welcomed}` (a provisional RoomConnection; `welcomed`: the room's
   * view as its welcome tells it, once heard: `RoomModel.welcomeView`), or null. */
  connection: kind === "r" && token ? connect(token) : null,
};
