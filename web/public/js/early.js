// What the room page asks the server first, asked as soon as the page starts. room.html loads
// this module on its own (`async`) ahead of the rest, so these overlap the download of the other
// modules instead of following it:
// - the room's view (or the invite's) and the client config;
// - the room's connection: its hello, the welcome and the clock's first pings (and samples over
//   HTTP, timed by the browser's network stack, not by this busy page), on the socket room.html
//   opened as it was parsed, before this module and its imports had come. room.js takes it
//   over (`RoomConnection.adopt`) once it knows the room. Only when the address names the room
//   (`/r/{id}`): an invite's room is known only from its answer. A room with a password refuses
//   the socket until the page has asked for the password; the page then opens its own.
// - the room's video, once the view or the welcome says what plays: a <video> set fetching from
//   where the room is, which the player adopts (`early.takeVideo`), so that the fetch and the
//   start of the browser's media pipeline overlap the player's modules instead of following them;
//   its keyframe times (`keyframesOf`), which its first landing plans by, and how long that
//   video's first seek took (`timeFirstSeek`), which a fresh page's first landing plans by too.
// A late joiner behind an 80 ms round trip was within 20 ms of the room ~0.3 s sooner (bench-sync).
// The view and the config wait behind the module downloads (HTTP/1.1: six connections), the
// socket does not: a page that hears the welcome first enters the room with it (room.js).

import { api } from "./api.js";
import { ClockEstimator, sampleOverHttp } from "./clock.js";
import { RoomConnection } from "./connection.js";
import { RoomModel, awaitsMedia, earlyPosition } from "./model.js";
import { bufferedEnd, canPlay, isHls, startsAtOnce, understatesReadiness, videoElement } from "./player/video.js";

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

/** The room's video fetched early: `{item, video, firstSeek}`, until the page takes it. */
let fetched = null;
let taken = false;
/** The first seek of the video the page took (`fetched.firstSeek`), or null. */
let firstSeekTaken = null;

/** The keyframe times last asked for: `{address, times}` (a promise of an array of s, or of null
 * when not known). */
let keyframesAsked = null;

/** Where `item`'s keyframe times are served, or null: an upload's are listed when it is made
 * playable; a link to an MP4's are read from its file by the server's lookup, so they are asked
 * for once that is done (`status` "ready"). */
export function keyframesAddress(item) {
  if (item?.kind === "upload" && typeof item.upload_id === "string") return `/media/uploads/${encodeURIComponent(item.upload_id)}/keyframes.json`;
  if (item?.kind === "url" && item.format === "mp4" && item.status === "ready" && typeof item.url === "string") return `/media/keyframes?url=${encodeURIComponent(item.url)}`;
  return null;
}

/** The keyframe times (s) of `item`'s video, fetched once per address: a promise of an array, or
 * of null when there is none to ask (`keyframesAddress`), none kept (an upload from before its
 * keyframes were listed, a link whose file could not be read), or an error. A landing plans its
 * seek by them (SyncController.setKeyframes). */
export function keyframesOf(item) {
  const address = keyframesAddress(item);
  if (!address) return Promise.resolve(null);
  if (keyframesAsked?.address !== address) {
    const times = fetch(address, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((v) => (Array.isArray(v?.keyframes) ? v.keyframes : null))
      .catch(() => null);
    keyframesAsked = { address, times };
  }
  return keyframesAsked.times;
}

/** Sets a <video> fetching `current` from where the room will be once the page can start it (by
 * `clock` once it is ready). Only a plain video file: a YouTube item, an HLS stream (hls.js
 * attaches itself) and an upload still being prepared are left to the player. */
function prefetch(current, playback, clock) {
  if (taken || fetched || !current || !playback || current.kind === "youtube" || isHls(current) || awaitsMedia(current)) return;
  keyframesOf(current);
  const video = videoElement();
  video.src = current.url;
  const from = earlyPosition(playback, clock, performance.timeOrigin + performance.now(), current.duration ?? Infinity, startsAtOnce());
  fetched = { item: current, video, firstSeek: null };
  if (from > 0) {
    video.currentTime = from;
    fetched.firstSeek = timeFirstSeek(video, from);
  }
}

/** The <video>'s first seek, to `from` (set before its metadata came): the browser seeks once it
 * has the metadata and fetches from there, so this times a seek that fetches, on this page's own
 * connection to where the video is. A fresh page's first landing plans by that rather than by an
 * assumption (`SyncController.firstSeekTimed`). `{point, took}`: `took()` is how long it took (s,
 * from its metadata until the video can play at its point), or null until it can; it is done at
 * `canplay`, or when the page looks before that (Firefox's readyState may say so a tick before its
 * `canplay`). Looked at only until the page seeks the video itself. Never done when the
 * video held its point already as its metadata came. */
function timeFirstSeek(video, from) {
  let metadataAt = null;
  let took = null;
  // Not a seek that fetches when the metadata's own response already held its point (a room
  // near the start of its video): timed so, it would plan later landings that fetch far too short.
  video.addEventListener("loadedmetadata", () => (metadataAt = bufferedEnd(video, from) === null ? performance.now() : null), { once: true });
  const done = () => {
    if (took === null && metadataAt !== null && canPlay(video, understatesReadiness())) took = (performance.now() - metadataAt) / 1000;
    return took;
  };
  video.addEventListener("canplay", done, { once: true });
  return { point: from, took: done };
}

/** The first seek of the <video> `takeVideo` gave (`timeFirstSeek`), or null when it gave none or
 * that made none. */
function takenFirstSeek() {
  return firstSeekTaken;
}

/** The <video> fetched early if it is `item`'s (the same item at the same address), else null.
 * Either way the page has it from now on: an early fetch of anything else is stopped. */
function takeVideo(item) {
  taken = true;
  const f = fetched;
  fetched = null;
  if (!f) return null;
  if (item && f.item.id === item.id && f.item.url === item.url) {
    firstSeekTaken = f.firstSeek;
    return f.video;
  }
  f.video.removeAttribute("src");
  f.video.load();
  return null;
}

/** Takes the clock's samples over HTTP for a connection opened now, alongside its pings: samples the
 * page's own business does not blur (see `sampleOverHttp`). Ready by them, the page lands at once
 * as it does on a pong (`onClockReady` is the page's once it has adopted the connection; until
 * then `adopt` looks). */
export function sampleClock(clock, conn) {
  sampleOverHttp(clock, new URL("/api/clock", location.href).href, { onReady: () => conn.onClockReady() });
}

/** The socket room.html opened to `url` as it was parsed (see there), once: or null. */
function firstSocket(url) {
  const first = globalThis.lockstepFirstSocket;
  delete globalThis.lockstepFirstSocket;
  return first?.socket.url === url ? first : null;
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
  const url = socketUrl(roomId);
  const conn = new RoomConnection({ url, model, clock, provisional: true, onChange, first: firstSocket(url) });
  conn.start();
  sampleClock(clock, conn);
  welcomed.then(() => prefetch(model.current, model.playback, clock));
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
  takeVideo,
  takenFirstSeek,
};

// The view may come before the welcome (or without one: the socket of a room with a password).
// Not an upload: its files are served to the room's members, which a first visit makes this page
// only with its join (the welcome); asked before, the video was refused (404) and never loaded.
if (early.connection) early.first.then((view) => view.admitted && view.current?.kind !== "upload" && prefetch(view.current, view.playback, early.connection.clock), () => {});
