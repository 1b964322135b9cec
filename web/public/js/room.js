// The room page: enters the room (invite link, password), connects, and keeps the player in sync.
//
// The sync loop runs every TICK_MS: it estimates the server's time (clock.js), computes where the
// video should be (sync.js), and lets the controller decide whether to nudge the rate or seek.
// Everything the user does is a command to the server; the player follows the server's events,
// never the user's click directly, so every viewer (including this one) moves together.

import { api, ApiError } from "./api.js";
import { ClockEstimator } from "./clock.js";
import { RoomConnection } from "./connection.js";
import { early, keyframesAddress, keyframesOf, sampleClock, socketUrl } from "./early.js";
import { formatTime } from "./format.js";
import { RoomModel, awaitsMedia, controlTarget, startPosition, startsAfter, targetPosition } from "./model.js";
import { playerFor } from "./player/player.js";
import { staleReading } from "./position.js";
import { changesRateAtACost, changesRateFreely, dropsStretchedSound, startsAtOnce, startsSlowAfterSeek } from "./player/video.js";
import { SYNC, SyncController, SyncStats, latenciesFrom, sinceChange, storedLatencies } from "./sync.js";
import * as timers from "./timers.js";
import { $, h, shortcutsAllowed, toast, typingInField } from "./ui.js";

/** The panels and dialogs (chat, queue, people, settings, the seek bar's preview, the menus, the
 * library picker): not needed to play in sync, so imported after the modules that are, which
 * room.html preloads first (a late joiner's modules come over HTTP/1.1's six connections, six at a
 * time: it was playing ~0.1 s sooner behind an 80 ms round trip, bench-sync). The page sets them
 * up when they come (`RoomPage.setUpPanels`). */
const panels = Promise.all([
  import("./chat.js"),
  import("./queue.js"),
  import("./members.js"),
  import("./syncplay.js"),
  import("./settings.js"),
  import("./seek-preview.js"),
  import("./subtitles.js"),
  import("./menus.js"),
  import("./mine.js"),
]).then((modules) => Object.assign({}, ...modules));
// A failure is told by the page that waits for them.
panels.catch(() => {});

/** The panels are set up once the page has landed (`RoomPage.landed`), or this long (ms) after
 * the room's page was made if it has not: their setup is one long task (57 ms in a trace of a
 * joiner with four viewers playing on two cores), and set up as their modules came it fell right
 * as the joiner's video was ready, delaying its metadata, its landing and its start, which each
 * wait for the page's main thread. */
const PANELS_WAIT_MS = 1000;
/** Whether this browser's <video>, set fetching while the page loaded, starts moving at once
 * after play() (SyncController's `quickStart`). */
const QUICK_START = startsAtOnce();
/** What this browser's <video> does that every SyncController of this page is told: whether it
 * keeps its position when its rate leaves 1 (`setbackFree`), whether a landing leads
 * SEEK_PREROLL more (`seekPreroll`), and whether every change of its rate costs it some of its
 * position (`rateChangeCost`). */
const MEDIA_TRAITS = Object.freeze({ setbackFree: changesRateFreely(), seekPreroll: startsSlowAfterSeek(), rateChangeCost: changesRateAtACost(), dropsStretchedSound: dropsStretchedSound() });

/** How often the sync loop runs. */
const TICK_MS = 100;
/** A video that failed to load (a network error, a refused request, a server that went away)
 * is loaded again after LOAD_RETRY_MS, doubled each time up to LOAD_RETRY_MAX_MS, at most
 * LOAD_RETRIES times in a row, while it is still the room's item: the browser does not try again
 * by itself, and the player stayed stuck until the page was reloaded. */
const LOAD_RETRY_MS = 1000;
const LOAD_RETRY_MAX_MS = 30_000;
const LOAD_RETRIES = 8;
/** How long a loaded item's landing waits for its keyframe times (ms): early.js asked for them
 * with the room's view, so they have come by then unless the server is slow to answer. */
const KEYFRAMES_WAIT_MS = 200;
/** While a landing's start waits to be measured, the loop runs this often (sync.js: a start is
 * measured once the position moves, rather than at the first tick 0.2 s after it). */
const START_TICK_MS = 20;
/** Buffering shorter than this is not reported (a hiccup should not pause a waiting room). */
const BUFFERING_REPORT_MS = 500;
/** A start (`play()`) not begun this long (ms) while the page is hidden is the browser holding it
 * until the tab is in front: Firefox holds a tab's media until it has first been in front
 * (media.block-autoplay-until-in-foreground, on by default: a link opened in a tab behind), and
 * Chromium does not even load it. It is waited out (`startHeld`). */
const START_HELD_HIDDEN_MS = 1000;
/** Where the seek and start latencies learnt on this browser are kept between pages (".2": starts
 * are stretched since START_STRETCH, so a start latency learnt before is ~20 ms short), and a
 * YouTube player's apart (`fineRate` false: its own seeks and starts). */
const LATENCIES_KEY = "lockstep.latencies.2";
const YOUTUBE_LATENCIES_KEY = "lockstep.latencies.youtube.1";
const latenciesKey = (fineRate) => (fineRate ? LATENCIES_KEY : YOUTUBE_LATENCIES_KEY);
/** What this browser learnt for players of that kind on earlier pages, or null. */
const keptLatencies = (fineRate) => latenciesFrom(localStorage.getItem(latenciesKey(fineRate)), fineRate);
/** Arrow keys seek by this much. */
const ARROW_SEEK_S = 5;
/** Page Up / Page Down on the seek bar seek by this much. */
const PAGE_SEEK_S = 30;
/** The panels, in tab order. */
const TABS = ["chat", "queue", "people"];
/** Why the playback controls are off while the connection is down. */
const OFFLINE_REASON = "Not connected: playback controls come back when the connection does";

const localNow = () => performance.timeOrigin + performance.now();

function showMessage(title, text) {
  $("#room").hidden = true;
  const box = $("#message");
  box.replaceChildren(h("h1", { text: title }), h("p", { text }), h("p", {}, h("a", { href: "/", text: "Back to the lobby" })));
  box.hidden = false;
  $("#connection").hidden = true;
}

/** Asks for the room's password until `join(password)` succeeds. */
function askPassword(name, join) {
  const dialog = $("#password-dialog");
  $("#password-title").textContent = `“${name}” has a password`;
  return new Promise((resolve) => {
    $("#password-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        resolve(await join($("#password-input").value));
        dialog.close();
      } catch (err) {
        $("#password-error").textContent = err.code === "wrong_password" ? "That is not the password." : err.message;
      }
    });
    dialog.showModal();
  });
}

/** Gets into the room named by the URL; returns the room's REST view. */
async function enter() {
  const { kind, token } = early;
  if (kind === "i") {
    const invite = await early.first;
    const join = (password) => api.post(`/api/invites/${token}/join`, password ? { password } : {});
    const view = invite.has_password && !invite.admitted ? await askPassword(invite.name, join) : await join();
    // The room's own address works from now on (we are admitted); the invite stays shareable.
    history.replaceState(null, "", `/r/${view.id}`);
    return view;
  }
  // The welcome on early.js's socket often comes before the view, which waits behind the module
  // downloads: a welcome means this user was let in, and tells the page all it needs to start
  // (the view adds a private room's invite link when it comes: RoomPage.viewArrived).
  let view = await (early.connection ? Promise.race([early.first, early.connection.welcomed]) : early.first);
  if (!view.admitted) {
    view = await askPassword(view.name, (password) => api.post(`/api/rooms/${token}/join`, { password }));
  }
  return view;
}

class RoomPage {
  /** `view`: the room's REST view, or what its welcome tells (`fromWelcome`: `viewArrived` then
   * completes it); `config`: the client config, a promise (only a player needs it); `opened`: the
   * connection early.js opened, if any (taken over when it is this room's). */
  constructor(view, config, opened = null) {
    if (opened && opened.id !== view.id) {
      opened.conn.stop();
      opened = null;
    }
    this.view = view;
    this.config = config;
    this.model = opened?.model ?? new RoomModel();
    this.clock = opened?.clock ?? new ClockEstimator();
    // What this browser's players were learnt to need on earlier pages (seek and start latencies).
    this.controller = new SyncController(MEDIA_TRAITS).learntFrom(keptLatencies(true));
    this.latenciesKept = null;
    /** The first seek of the <video> early.js set fetching, until timed (`firstSeekTimed`). */
    this.firstSeek = null;
    /** The room's scheduled start (its playback's `at`) a YouTube player was last let go for. */
    this.coarseStartedFor = null;
    /** This viewer's sync error, reported to the room every few seconds. */
    this.syncStats = new SyncStats(localNow());
    this.player = null;
    this.loadedItemId = null;
    this.loading = false;
    this.autoplayBlocked = false;
    /** When (local ms) the player's pending start (`play()`) was asked for; null when none is. */
    this.playPendingSince = null;
    this.seekDragging = false;
    this.lastDrift = 0;
    /** A run of the sync loop asked for between its ticks ({at, timer}: tickIn), if any. */
    this.extraTick = null;
    /** When (local s) the loop first found the player's reading stale, in this stretch of stale
     * readings; null when it is not (position.js, staleReading). */
    this.staleSince = null;
    /** When this page heard of the room's last playback change (server ms), null if unknown. */
    this.playbackHeardAt = null;
    /** Whether it learnt that playback whole, in a welcome (a join, a reconnection). */
    this.playbackLearntWhole = true;
    this.reportedReady = true;
    /** Whether the room was told this player cannot play its item (`ready` with `cannot_play`). */
    this.reportedCannotPlay = false;
    this.notReadySince = null;
    this.durationReported = new Set();
    /** The item this player cannot play: its loads failed LOAD_RETRIES times in a row
     * (`loadFailed`), or its player said loading again would not help (`playerEvent`). */
    this.loadGaveUp = null;
    /** Chat lines from others that arrived while the chat was not in view. */
    this.unread = 0;
    this.tab = "chat";
    this.prefs = {
      volume: Number(localStorage.getItem("lockstep.volume") ?? 1),
      muted: localStorage.getItem("lockstep.muted") === "1",
      tolerance: Number(localStorage.getItem("lockstep.tolerance") ?? 1) || 1,
      presenceLines: localStorage.getItem("lockstep.presenceLines") !== "0",
      notifyMentions: localStorage.getItem("lockstep.notifyMentions") === "1",
    };

    const handlers = {
      onChange: (changes) => this.changed(changes),
      onState: (state, detail) => this.connectionState(state, detail),
      // A late joiner lands as soon as the clock allows, not at the next tick.
      onClockReady: () => this.tick(),
      // Kept by a worker while the page is hidden, as the sync loop's are: a hidden page's own
      // timers sent its clock pings once a minute (connection.js, MovableTimers).
      timers,
    };
    this.conn = opened?.conn ?? new RoomConnection({ url: socketUrl(view.id), model: this.model, clock: this.clock, ...handlers });
    // The panels, once their modules are here (null until then).
    this.chat = null;
    this.queue = null;
    this.members = null;
    this.shortName = null;
    this.settings = null;
    this.seekPreview = null;
    // Set up once this page plays in step with the room, or after PANELS_WAIT_MS (see there).
    this.landedThen = null;
    const landed = new Promise((resolve) => (this.landedThen = resolve));
    setTimeout(() => this.showPanels(), PANELS_WAIT_MS);
    /** Once the panels are set up (rejected if their modules did not load: told once, here). */
    this.panelsReady = Promise.all([panels, landed]).then(([p]) => this.setUpPanels(p));
    this.panelsReady.catch((err) => toast(`Part of this page did not load (${err.message}): reload it to chat and see the queue.`, "error"));
    this.bindControls();
    $("#room-name").textContent = view.name;
    this.renderTitle();
    $("#room").hidden = false;
    // What plays, from the room's view: its video loads while the connection opens, and the
    // welcome then says exactly where the room is (it replaces both). A late joiner's video was
    // loaded ~0.3 s sooner than when it waited for the welcome (bench-sync). A welcome heard
    // already says it better (adopting the connection renders it). Not an upload: its files
    // are served to the room's members, which a first visit makes this page only with its join.
    if (view.current && view.playback && !this.model.epoch && view.current.kind !== "upload") {
      this.model.current = view.current;
      this.model.playback = view.playback;
      this.loadCurrent();
    }
    if (opened) this.conn.adopt(handlers);
    else {
      this.conn.start();
      // As early.js does for a room it opened (an invite's room, or one with a password, opens here).
      sampleClock(this.clock, this.conn);
    }
    timers.every(() => this.tick(), TICK_MS);
  }

  /** Lets the panels be set up (once their modules are here). */
  showPanels() {
    this.landedThen?.();
    this.landedThen = null;
  }

  /** Whether this page is done with its first landing: the room plays nothing (or is paused) and
   * its item is loaded, or the player plays and its start was measured, or it cannot play. */
  landed() {
    const m = this.model;
    if (!m.epoch) return false;
    if (!m.current || awaitsMedia(m.current)) return true;
    if (this.loading || this.loadedItemId !== m.current.id) return false;
    if (!this.player || m.playback.paused || this.autoplayBlocked) return true;
    return !this.player.paused && !this.controller.holding() && !this.controller.starting();
  }

  /** Sets up the panels and dialogs (`panels`), and shows them what the page knows already. */
  setUpPanels(p) {
    const view = this.view;
    const send = (frame) => this.conn.send(frame);
    this.chat = new p.ChatView({
      log: $("#chat-log"), form: $("#chat-form"), input: $("#chat-input"), note: $("#chat-note"), model: this.model, roomId: view.id, send,
      online: () => this.conn.state === "open",
    });
    this.queue = new p.QueueView({
      list: $("#queue-list"), form: $("#queue-form"), input: $("#queue-input"), model: this.model, send,
      onCount: (n) => ($("#queue-count").textContent = n ? ` ${n}` : ""),
    });
    this.members = new p.MembersView({ list: $("#member-list"), model: this.model, send, onCount: (n) => ($("#people-count").textContent = ` ${n}`) });
    this.shortName = p.setUpShortName({
      input: $("#set-syncplay-name"), row: $("#set-syncplay-row"), roomId: view.id, box: $("#syncplay-box"),
      hasPassword: () => Boolean(this.model.settings?.has_password),
    });
    this.settings = p.setUpSettings({
      dialog: $("#settings-dialog"), model: this.model, roomId: view.id,
      onInviteChanged: (key, link) => {
        Object.assign(this.view, { invite_key: key, link });
        this.shortName.load();
      },
      saveMore: () => this.shortName.save(),
    });
    this.seekPreview = new p.SeekPreview($("#seek"), () => this.model.current?.duration ?? this.player?.duration ?? 0);
    this.subtitles = new p.Subtitles($("#subtitles"));
    p.setUpMenus();
    // What the page heard before they came.
    if (this.model.epoch) {
      this.chat.renderAll();
      this.queue.render();
      this.members.render();
      this.shortName.load().catch(() => {});
    }
    if (this.model.current) this.seekPreview.setItem(this.model.current);
    if (this.model.current && this.loadedItemId === this.model.current.id) this.subtitles.setItem(this.model.current, this.player?.video);
    if (this.conn.state === "open") this.chat.flushUnsent();
  }

  command(frame) {
    this.conn.send(frame).catch((err) => toast(err.message, "error"));
  }

  // ---- Events from the server --------------------------------------------------------------

  changed(changes) {
    const all = changes.includes("all");
    // A welcome to a room with nothing to land in sets the panels up now, not at the next tick.
    if (all && this.landedThen && this.landed()) this.showPanels();
    // A welcome says what the room holds of this member (a reconnection may find it forgotten):
    // readiness is reported from there.
    const me = all ? this.model.me : null;
    if (me) [this.reportedReady, this.reportedCannotPlay] = [me.ready !== false, Boolean(me.cannot_play)];
    if (all || changes.includes("settings")) {
      $("#room-name").textContent = this.model.settings.name;
      this.renderTitle();
      // The Syncplay box tells whether a password is needed; the short name may have changed.
      this.shortName?.load().catch(() => {});
    }
    // The panels, once set up (`setUpPanels` renders what came before).
    if (all) this.chat?.renderAll();
    else if (changes.includes("chat") && this.chat) this.newChat(this.chat.renderNew());
    if (all || changes.includes("queue") || changes.includes("settings") || changes.includes("members")) this.queue?.render();
    // (The sync figures are shown only while the room plays: `renderSpread`, `syncBadge`.)
    if (all || changes.includes("members") || changes.includes("settings") || changes.includes("queue") || changes.includes("sync") || changes.includes("playback")) this.members?.render();
    if (all || changes.includes("sync") || changes.includes("playback")) this.renderSpread();
    if (all || changes.includes("playback") || changes.includes("queue")) this.loadCurrent();
    this.renderStatic();
    // A play, pause or seek is followed at once, not at the next tick (up to TICK_MS later).
    if (all || changes.includes("playback")) {
      this.controller.roomChanged();
      // When this page heard of it, by the server's clock (a grace counts from it), and whether
      // it learnt it whole (a welcome: not a change it heard of, `sinceChange`).
      this.playbackHeardAt = this.clock.ready ? this.clock.serverNow(localNow()) : null;
      this.playbackLearntWhole = all;
    }
    // A play while this player waits paused where the room was: it lands, as after a seek (not
    // when the browser blocks autoplay: the player cannot start until the user clicks). So does
    // a player loaded before the welcome (from the room's view), or paused when a reconnection
    // finds the room playing.
    const p = this.player;
    if ((all || changes.includes("playback")) && !this.model.playback.paused && p?.paused && !this.autoplayBlocked) this.controller.roomStarted();
    if (!all && changes.includes("playback")) this.tick();
  }

  // ---- Chat: unread lines and mentions ------------------------------------------------------

  /** Whether the chat is where the user can read it now. */
  chatInView() {
    return this.tab === "chat" && document.visibilityState === "visible";
  }

  newChat(lines) {
    const mine = this.model.you?.user_id;
    for (const line of lines) {
      if (line.system || line.user_id === mine) continue;
      if (!this.chatInView()) this.unread += 1;
      if (this.chat.mentionsMe(line) && document.visibilityState === "hidden") this.notifyMention(line);
    }
    this.renderUnread();
  }

  notifyMention(line) {
    if (!this.prefs.notifyMentions || typeof Notification === "undefined" || Notification.permission !== "granted") return;
    const note = new Notification(`${line.name ?? "Someone"} mentioned you in ${this.model.settings?.name ?? this.view.name}`, {
      body: line.text.slice(0, 200),
      tag: `lockstep-mention-${this.view.id}`,
    });
    note.onclick = () => {
      window.focus();
      this.showTab("chat");
      note.close();
    };
  }

  renderUnread() {
    if (this.chatInView()) this.unread = 0;
    $("#chat-unread").textContent = this.unread ? ` ${this.unread > 99 ? "99+" : this.unread}` : "";
    $("#tab-chat").setAttribute("aria-label", this.unread ? `Chat, ${this.unread} unread` : "Chat");
    this.renderTitle();
  }

  renderTitle() {
    const name = this.model.settings?.name ?? this.view.name;
    document.title = `${this.unread ? `(${this.unread}) ` : ""}${name} · Lockstep`;
  }

  // ---- Connection --------------------------------------------------------------------------

  connectionState(state, detail) {
    if (state === "closed" && detail?.t === "kicked") {
      showMessage(detail.banned ? "You were banned" : "You were removed", detail.message);
      this.player?.pause();
    } else if (state === "closed" && detail?.t === "closed") {
      showMessage("This room was deleted", detail.message);
      this.player?.pause();
    }
    if (state === "open") this.chat?.flushUnsent();
    this.renderConnection();
    this.renderStatic();
  }

  /** The room's spread as its viewers report it: the worst p95 of their distance from the room.
   * Not while the room is paused: the figures are of how its viewers kept up while it played, and
   * the room keeps them for 15 s, so a paused room showed "Room ±3 ms" as if it were current. */
  renderSpread() {
    const worst = this.model.syncWorst;
    const known = Number.isFinite(worst) && this.model.playing;
    const text = known ? `Room ±${Math.round(worst)} ms` : "";
    const title = known
      ? `Every viewer who reported was within ${Math.round(worst)} ms of the room 95% of the time over their last 5 s`
      : "";
    for (const el of [$("#room-spread"), $("#people-spread")]) {
      el.hidden = !known;
      el.title = title;
    }
    $("#room-spread").textContent = text;
    $("#people-spread").textContent = known ? `Everyone within ${Math.round(worst)} ms of the room, 95% of the time` : "";
  }

  renderConnection() {
    const pill = $("#connection");
    let key;
    let label;
    if (this.conn.state === "open") {
      const item = this.model.current;
      const playing = item && !this.model.playback.paused;
      // Its player holds no video of the room's to play yet (loading, or waiting to load again
      // after a failure): its last drift is of before.
      const retrying = this.loadRetries?.id === item?.id && !this.player?.canPlay;
      const loading = playing && !awaitsMedia(item) && (!this.playerCurrent() || retrying);
      const off = !this.clock.ready || loading || (playing && !this.controller.inSync(this.lastDrift));
      if (item && this.loadGaveUp === item.id) [key, label] = ["cannot-play", "Cannot play"];
      else if (off) [key, label] = ["catching-up", "Catching up"];
      else [key, label] = ["in-sync", "In sync"];
    } else if (this.conn.state === "reconnecting") {
      const wait = this.conn.retryAt === null ? 0 : Math.ceil((this.conn.retryAt - localNow()) / 1000);
      // The browser says it has no network: no countdown, it tries again once told it is back.
      if (navigator.onLine === false) [key, label] = ["reconnecting", "Offline"];
      else [key, label] = ["reconnecting", wait > 0 ? `Reconnecting in ${wait} s` : "Reconnecting…"];
    } else if (this.conn.state === "closed") {
      [key, label] = ["closed", "Disconnected"];
    } else {
      [key, label] = ["connecting", "Connecting…"];
    }
    // While reconnecting, the pill keeps the widest its countdown was and Retry now stays, off
    // while an attempt is under way: an attempt that fails at once (a server that refuses) takes
    // 5-15 ms, and the pill shrinking to "Reconnecting…" and Retry now going for that long moved
    // the room's name, and the toasts over it, once a second.
    const reconnecting = key === "reconnecting";
    if (!reconnecting) pill.style.minWidth = "";
    else if (pill.dataset.state === key && pill.textContent !== label) {
      const width = pill.getBoundingClientRect().width;
      if (width > (parseFloat(pill.style.minWidth) || 0)) pill.style.minWidth = `${width}px`;
    }
    if (pill.dataset.state !== key) pill.dataset.state = key;
    if (pill.textContent !== label) pill.textContent = label;
    const retry = $("#retry");
    retry.hidden = !reconnecting;
    retry.disabled = this.conn.retryAt === null;
  }

  /** Parts of the page that follow the model but not the clock. */
  renderStatic() {
    const m = this.model;
    const item = m.current;
    $("#empty").hidden = !!item;
    $("#preparing").hidden = !awaitsMedia(item);
    $("#save-current").hidden = !item;
    $("#later-current").hidden = !item;
    $("#np-title").textContent = item ? item.title : "Nothing playing";
    $("#np-sub").textContent = item ? `added by ${item.added_by_name}` : "";
    const mayPlay = m.may("playback");
    const online = this.conn.state === "open";
    // Offline, a press would be lost: the controls say why they are off instead.
    for (const [id, usual] of [["#play", "Play / pause (space)"], ["#seek", ""], ["#rate", "Speed"]]) {
      const el = $(id);
      el.disabled = !item || !mayPlay || !online;
      el.title = !online && item ? OFFLINE_REASON : usual;
    }
    $("#rate").value = String(m.playback.rate);
    // With nothing playing the seek bar and the time would keep the last item's (the ticks that
    // render them stop with the player).
    if (!item) this.renderTime(0, NaN);
    const voteSkip = $("#vote-skip");
    const voting = !!m.settings?.skip_requires_vote;
    const maySkip = m.isModerator || (mayPlay && !voting);
    // Voting is offered only when the room votes, and not to those who may skip outright.
    voteSkip.hidden = !item || !voting || maySkip;
    voteSkip.disabled = !online;
    voteSkip.textContent = `Vote to skip (${m.votes.votes}/${m.votes.needed})`;
    $("#skip").hidden = !item || !maySkip;
    $("#skip").disabled = !online;
    $("#open-settings").hidden = !m.isModerator;
    // While the video is being prepared nobody can be ready: that overlay says why already.
    const waiting = m.waiting && !awaitsMedia(item);
    $("#waiting").hidden = !waiting;
    if (waiting) {
      const names = [...m.members.values()].filter((x) => x.ready === false).map((x) => x.name);
      $("#waiting-text").textContent = names.length ? `Waiting for ${names.join(", ")}…` : "Waiting for everyone to be ready…";
    }
  }

  // ---- The player --------------------------------------------------------------------------

  async loadCurrent() {
    const item = this.model.current;
    // The first load takes the <video> early.js set fetching, when it is this item's.
    const fetched = early.takeVideo(item);
    if (!item) {
      this.player?.pause();
      this.loadedItemId = null;
      this.subtitles?.setItem(null);
      return;
    }
    this.seekPreview?.setItem(item);
    if (awaitsMedia(item)) {
      this.subtitles?.setItem(null);
      // Its video cannot be fetched yet; the room holds until it can (item_updated, then load).
      this.player?.pause();
      this.loadedItemId = null;
      return;
    }
    if (item.id === this.loadedItemId && !this.loading) this.keyframesLearnt(item);
    if (item.id === this.loadedItemId || this.loading) return;
    this.loading = true;
    const id = item.id;
    // Its keyframes (asked by early.js already for the room's first item).
    this.keyframesAddress = keyframesAddress(item);
    const keyframes = keyframesOf(item);
    try {
      // The page's player from here on, loaded or not (the old one is destroyed when of another kind).
      this.player = playerFor(item, this.player, $("#player"), this.config, (name, detail, how) => this.playerEvent(name, detail, how), fetched);
      await this.player.load(item, this.loadPosition());
      // Its subtitles, if it has any (an upload's), on the element that plays it.
      this.subtitles?.setItem(item, this.player.video);
      // A correction lets go of its rate at a good reading (sync.js), looked for at every reading.
      this.player.onReading = (position, raw) => this.releaseCheck(position, raw);
      this.player.volume = this.prefs.volume;
      this.player.muted = this.prefs.muted;
      timers.cancel(this.startTimer);
      // What this page learnt for this kind of player, else what an earlier page did.
      const fineRate = this.player.fineRate;
      // A first start on the video early.js set fetching (a late joiner's), in a browser whose
      // media starts at once, is timed by that (an assumption is not learnt: `learntFrom`).
      const quickStart = QUICK_START && Boolean(fetched);
      this.controller = new SyncController({ fineRate, tolerance: this.prefs.tolerance, quickStart, ...MEDIA_TRAITS }).learntFrom(this.controller.fineRate === fineRate ? this.controller : keptLatencies(fineRate));
      // The early <video>'s first seek, timed until this page's first landing (`tick`).
      this.firstSeek = fetched ? early.takenFirstSeek() : null;
      // The landings plan their seeks by the keyframes when known; waited for up to
      // KEYFRAMES_WAIT_MS (a page that lands without them takes them when they come).
      const times = await Promise.race([keyframes, new Promise((r) => setTimeout(r, KEYFRAMES_WAIT_MS, undefined))]);
      this.controller.setKeyframes(times);
      if (times === undefined) keyframes.then((late) => this.loadedItemId === id && this.controller.setKeyframes(late));
      // The room plays already (an item that just started, a late join): the player lands, held
      // paused meanwhile. Started as soon as it could play, it was 20-120 ms late (the time to
      // buffer and its start latency), under the 150 ms that lands, and the steady 2% took
      // seconds to close that (bench-sync, at an item's start).
      // Not when the browser blocks autoplay, as in `changed`.
      if (!this.model.playback.paused && !this.autoplayBlocked) this.controller.roomStarted();
      this.loadedItemId = id;
      // It failed while loading (its error came before the page knew what it held).
      if (this.player.loadError) this.loadFailed(this.player.loadError);
      // Land at once rather than at the next tick.
      queueMicrotask(() => this.tick());
    } catch (err) {
      // Loading failed (YouTube's API script did not come, or its player failed before it was
      // ready; hls.js did not come): loaded again as a failed video is, unless the player said
      // that cannot help (`playerEvent`), and waited for meanwhile.
      this.loadedItemId = id;
      if (this.loadGaveUp !== id) this.loadFailed(err.message);
    } finally {
      this.loading = false;
    }
    // The current item may have changed while this one loaded.
    if (this.model.current?.id !== this.loadedItemId) this.loadCurrent();
  }

  /** A link loaded while the server still looked it up has keyframes to ask for once that is
   * done (its item updated: `keyframesAddress`); the landings from then on plan by them. */
  keyframesLearnt(item) {
    const address = keyframesAddress(item);
    if (!address || address === this.keyframesAddress) return;
    this.keyframesAddress = address;
    const id = item.id;
    keyframesOf(item).then((times) => times && this.loadedItemId === id && this.controller.setKeyframes(times));
  }

  /** Where a player loading the current item starts (`startPosition`). */
  loadPosition() {
    const { current, playback } = this.model;
    return playback ? startPosition(playback, this.clock, localNow(), current?.duration ?? Infinity) : 0;
  }

  playerEvent(name, detail, { retry = false } = {}) {
    // "durationchange": the tick reports a duration the server did not know (reportDuration).
    if (name === "error") {
      if (retry) {
        this.loadFailed(detail);
      } else {
        // One that loading again cannot mend (YouTube: removed, or not for this viewer).
        this.loadGaveUp = this.model.current?.id ?? null;
        toast(`Player: ${detail}`, "error");
      }
    } else if (name === "seeked" || name === "canplay") {
      // Loaded: a later failure starts its retries over.
      if (name === "canplay") [this.loadRetries, this.loadGaveUp] = [null, null];
      // A landing times its start from the moment its seek completed; one due waits for the
      // video to be able to play (`buffering`), and lands then, not at the next tick: a late
      // joiner whose `canplay` came after the seek to its start position landed up to 0.1 s later
      // (bench-sync: 0.12 s after `canplay`, one joiner in fourteen).
      this.tick();
    }
  }

  /** A fresh browser's seek time, as the early <video>'s first seek took, once that is done and
   * before the page seeks the video itself (`SyncController.firstSeekTimed`). */
  firstSeekTimed() {
    const first = this.firstSeek;
    if (!first) return;
    if (!Number.isFinite(this.controller.lastSeekAt)) {
      const took = first.took();
      if (took === null) return;
      this.controller.firstSeekTimed(took, first.point);
    }
    this.firstSeek = null;
  }

  /** The player's video failed to load (`detail`: why): load it again, after a wait that grows
   * with each failure in a row (LOAD_RETRY_MS). */
  loadFailed(detail) {
    const id = this.loadedItemId;
    if (!id || this.model.current?.id !== id) return;
    const attempt = this.loadRetries?.id === id ? this.loadRetries.attempt + 1 : 1;
    this.loadRetries = { id, attempt };
    if (attempt > LOAD_RETRIES) {
      // Not loaded again: nothing is left to wait for (`tick`).
      this.loadGaveUp = id;
      toast(`Player: ${detail}. Reload the page to try again.`, "error");
      return;
    }
    if (attempt === 1) toast(`Player: ${detail}. Trying again…`, "error");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.model.current?.id !== id || this.loadedItemId !== id || this.loading) return;
      this.loadedItemId = null;
      this.loadCurrent();
    }, Math.min(LOAD_RETRY_MAX_MS, LOAD_RETRY_MS * 2 ** (attempt - 1)));
  }

  /** The server could not learn the current item's duration: the first player that knows it
   * says so (once connected: a player loaded from the room's view may know it before). */
  reportDuration() {
    const item = this.model.current;
    const duration = this.player?.duration;
    if (!this.playerCurrent() || item.duration != null || !(duration > 0) || !Number.isFinite(duration)) return;
    if (this.conn.state !== "open" || this.durationReported.has(item.id)) return;
    this.durationReported.add(item.id);
    this.conn.send({ t: "duration", item_id: item.id, duration }).catch(() => {});
  }

  /** Whether the player holds the room's current item, loaded. */
  playerCurrent() {
    const m = this.model;
    return Boolean(this.player && m.current && !this.loading && m.current.id === this.loadedItemId);
  }

  /** The current item's duration (s): the server's, else the player's, else Infinity. */
  duration() {
    const p = this.player;
    return this.model.current.duration ?? (Number.isFinite(p.duration) ? p.duration : Infinity);
  }

  tick() {
    if (this.landedThen && this.landed()) this.showPanels();
    this.renderConnection();
    const m = this.model;
    const p = this.player;
    if (!this.playerCurrent()) return;
    const duration = this.duration();
    const now = localNow();
    const serverNow = this.clock.serverNow(now);
    const target = this.controlTarget(serverNow, duration);
    this.renderTime(this.seekDragging ? Number($("#seek").value) : p.currentTime, duration);
    // A player that cannot play its video (`loadGaveUp`) is not waited for: the room plays on for
    // the others, and nothing is left to steer. One that tries again is waited for meanwhile.
    const cannotPlay = this.loadGaveUp !== null && this.loadGaveUp === this.loadedItemId;
    this.reportReadiness(p.canPlay, now, cannotPlay);
    this.reportDuration();
    if (this.conn.state !== "open" || cannotPlay) return;
    // Without a clock only a paused room is followed: where it waits is known without one. A
    // viewer whose clock lost its samples (pings starved for a minute: a hidden page's timers
    // throttled, before 20c9214) played on through the room's pause, 15 s off 2 s later.
    if (!this.clock.ready && !m.playback.paused) return;
    // A start the browser holds while the page is hidden, or refuses until the user clicks, is
    // waited out, not landed again: a Firefox tab opened behind another, and a page whose
    // autoplay was refused, seeked every 2 s (to where the room would be once its start came),
    // fetching each time, for as long as it stayed behind or the click did not come (5 seeks in
    // 10 s). Once the tab is in front, or clicked, the start goes and the loop lands it. A paused
    // room is still followed.
    if ((this.startHeld(now) || this.autoplayBlocked) && !m.playback.paused) return;
    // A player that cannot be started at a chosen moment (YouTube's) is held paused until the
    // room's scheduled start, less the time it was measured to take to move, and decided on again
    // then: it starts with the room, not when it hears.
    // Once let go for a start it is not held again for that start: the start is measured before
    // the room starts, and a shorter latency learnt held it once more (paused, then started
    // again), which is what a viewer sees and hears.
    const coarseLead = this.controller.landingOn ? 0 : this.controller.coarseStartLead(Boolean(p.resumes)) * 1000;
    const heldForStart = !this.controller.landingOn && this.coarseStartedFor !== m.playback.at && startsAfter(m.playback, serverNow + coarseLead);
    if (!this.controller.landingOn && !heldForStart && startsAfter(m.playback, serverNow)) this.coarseStartedFor = m.playback.at;
    this.firstSeekTimed();
    // Read once in this task: a second reading, equal, would look to a stepped player's reader
    // like a player holding still.
    const actual = p.position;
    // A stepped reading held too long while the video plays, or the first after the page was
    // held up, or one far behind its steps' line, is the page's, not the video's (position.js,
    // staleReading): decided on once it moves on, or back. (Firefox's currentTime reads where
    // the video was before a long task until a few ms after the page yields: a viewer held 400 ms
    // read 400 ms behind and seeked, 8 of 8 in a probe. Chromium reads its video as it is.)
    const stale = staleReading({ held: p.readingHeld ?? 0, behind: p.readingBehind ?? 0, playing: !p.paused && !p.seeking && p.canPlay, since: this.staleSince, now: now / 1000 });
    this.staleSince = stale.since;
    if (stale.wait) {
      this.tickIn(START_TICK_MS);
      return;
    }
    const d = this.controller.decide({
      target,
      actual,
      // Read just now by `position`.
      raw: p.rawPosition,
      ceiling: p.positionCeiling ?? null,
      roomPaused: m.playback.paused || heldForStart,
      baseRate: m.playback.rate,
      now: now / 1000,
      seeking: p.seeking,
      buffering: !p.canPlay && !m.playback.paused,
      // A landing within the buffer is timed shorter (it seeks without fetching).
      bufferedTo: p.bufferedEnd?.(target) ?? null,
      playerPaused: p.paused,
      playerResumes: Boolean(p.resumes),
      // The rates a YouTube player offers, to step at (SYNC.COARSE_STEP_BAND).
      rates: p.rates ?? null,
      // A seek that follows the room's change ends its grace within a second of that change: it
      // is shortened by how late this page heard of the change (not by how long ago the change
      // was: a player that first had to load its video got almost none, and closed what its
      // landing missed at 2% over seconds). Not a join's: it heard of no change.
      sinceChange: sinceChange({ at: m.playback.at, heardAt: this.playbackHeardAt, now: serverNow, whole: this.playbackLearntWhole }),
      // The clock estimate the target was worked out with, and its skew: a rest's drift is read
      // apart from the estimate's moves (SYNC.SKEW_AIM).
      clockOffset: (serverNow - now) / 1000,
      clockSkew: this.clock.skew,
      // A video without sound: its clock is the page's (sync.js, `noteSound`).
      soundless: Boolean(p.soundless),
    });
    this.lastDrift = d.action === "wait" ? this.lastDrift : d.drift;
    const learnt = storedLatencies(this.controller);
    if (learnt !== null && learnt !== this.latenciesKept) {
      this.latenciesKept = learnt;
      localStorage.setItem(latenciesKey(this.controller.fineRate), learnt);
    }
    // Steady samples only, while the room and the player play: not while seeking or buffering,
    // nor while landing (the seek and the timed start after a join or the room's jump, and a
    // Firefox start held once more, are the room moving, not this viewer keeping up with it),
    // nor until a YouTube player's start or seek is measured, nor while the grace closes what
    // a landing or the room's change of rate missed (`reportable`).
    // The report counts each reading as it is (`rawDrift`), not the line the controller steers by:
    // a stretching Chromium player's readings scatter ±5 ms around it (at 1.25 the pages told
    // 3.7-4.0 ms at p95 where bench-sync read 7.1-7.5 ms over the same windows).
    const steady = (d.action === "none" || d.action === "nudge") && this.controller.reportable(now / 1000);
    if (steady && !m.playback.paused && !p.paused) this.syncStats.add(d.rawDrift);
    const report = this.syncStats.take(now);
    if (report) this.conn.tell({ t: "sync_report", p50_ms: report.p50_ms, p95_ms: report.p95_ms });
    // A landing holds the player paused while it seeks and until its moment (startIn).
    if (d.action !== "armed") {
      timers.cancel(this.startTimer);
      this.startTimer = null;
    }
    if (!d.play && !p.paused) p.pause();
    if (d.seekTo !== null) p.seek(d.seekTo);
    p.rate = d.rate;
    // Decide again before the next tick: when the grace's larger nudge ends (it ends on time:
    // SyncController.graceLeft), and while a start waits to be measured.
    const graceLeft = this.controller.graceLeft(now / 1000);
    if (graceLeft > 0 && Math.abs(d.rate / m.playback.rate - 1) > SYNC.STEADY_MAX_NUDGE) this.tickIn(graceLeft * 1000 + 1);
    if (this.controller.starting()) this.tickIn(START_TICK_MS);
    // A YouTube player's step ends on time, not at the next tick (it closes 0.25 ms a ms).
    const stepLeft = this.controller.stepLeft(now / 1000);
    if (stepLeft > 0) this.tickIn(Math.ceil(stepLeft * 1000));
    if (heldForStart) this.tickIn(m.playback.at / 1000 - serverNow - coarseLead + 1);
    if (d.startIn !== null) {
      // Whole milliseconds, rounded up: setTimeout truncates a fraction (SYNC.START_TIMER_SLACK).
      this.startTimer = timers.later(() => {
        this.startTimer = null;
        this.startPlayer(p);
        // The start is measured from now on (every START_TICK_MS).
        this.tick();
      }, Math.ceil(d.startIn * 1000));
    } else if (d.play && p.paused) {
      this.startPlayer(p);
    }
  }

  /** Where the controller keeps the player at server time `serverNow` (ms): before the room's
   * scheduled start, a player that lands waits for it (`controlTarget`); one that cannot is kept
   * where the room waits. */
  controlTarget(serverNow, duration) {
    const m = this.model;
    return this.controller.landingOn ? controlTarget(m.playback, serverNow, duration) : targetPosition(m.playback, serverNow, duration);
  }

  /** Runs the loop once more in `ms`, between its ticks. One such run is pending at a time, the
   * earliest asked for: each run asks again for what it still needs. */
  tickIn(ms) {
    const at = performance.now() + ms;
    if (this.extraTick && this.extraTick.at <= at) return;
    timers.cancel(this.extraTick?.timer);
    const timer = timers.later(() => {
      this.extraTick = null;
      this.tick();
    }, ms);
    this.extraTick = { at, timer };
  }

  /** Between ticks, on a reading of the player (`position`, `raw`: html5.js): lets go of a
   * correction's rate now if the controller finds the moment good (SyncController.releaseNow). */
  releaseCheck(position, raw) {
    const m = this.model;
    const p = this.player;
    if (!this.playerCurrent() || m.playback.paused || !this.clock.ready || !this.controller.releasing(m.playback.rate)) return;
    const now = localNow();
    const target = this.controlTarget(this.clock.serverNow(now), this.duration());
    const rate = this.controller.releaseNow({ target, actual: position, raw, baseRate: m.playback.rate, now: now / 1000 });
    if (rate !== null) p.rate = rate;
  }

  /** Whether the browser holds the player's pending start while the page is hidden (local ms
   * `now`: START_HELD_HIDDEN_MS). */
  startHeld(now) {
    return this.playPendingSince !== null && document.hidden && now - this.playPendingSince > START_HELD_HIDDEN_MS;
  }

  /** Starts the player, unless the browser blocks autoplay (then the page asks for a click). */
  startPlayer(p) {
    if (p !== this.player || !p.paused || this.autoplayBlocked || this.playPendingSince !== null) return;
    this.playPendingSince = localNow();
    p.play()
      .catch((err) => {
        if (err?.name === "NotAllowedError") {
          this.autoplayBlocked = true;
          $("#autoplay").hidden = false;
        }
      })
      .finally(() => (this.playPendingSince = null));
  }

  /** Tells the room when this player cannot play for now (debounced: a hiccup does not make the
   * room flicker) and when it can again; and at once when it cannot play its item at all
   * (`cannotPlay`: it is not waited for, and the others see so) and when that is over. */
  reportReadiness(canPlay, now, cannotPlay = false) {
    if (canPlay || cannotPlay) {
      this.notReadySince = null;
      if (!this.reportedReady || this.reportedCannotPlay !== cannotPlay) this.sendReadiness(true, cannotPlay);
      return;
    }
    this.notReadySince ??= now;
    if (this.reportedReady && now - this.notReadySince > BUFFERING_REPORT_MS && this.conn.state === "open") this.sendReadiness(false, false);
  }

  /** Sends `ready` (with `cannot_play` when set), held as reported unless the send fails. */
  sendReadiness(ready, cannotPlay) {
    const was = [this.reportedReady, this.reportedCannotPlay];
    [this.reportedReady, this.reportedCannotPlay] = [ready, cannotPlay];
    // The room withdraws its last report (it told how this player kept up before): the next one
    // counts from now.
    if (!ready || cannotPlay) this.syncStats.restart(localNow());
    this.conn.send(cannotPlay ? { t: "ready", ready, cannot_play: true } : { t: "ready", ready }).catch(() => ([this.reportedReady, this.reportedCannotPlay] = was));
  }

  renderTime(position, duration) {
    const seek = $("#seek");
    const known = Number.isFinite(duration);
    seek.max = known ? String(duration) : "0";
    if (!this.seekDragging) seek.value = String(position);
    $("#time").textContent = `${formatTime(position)} / ${known ? formatTime(duration) : "--:--"}`;
    const play = $("#play");
    const paused = this.model.playback.paused || !this.model.current;
    play.textContent = paused ? "▶" : "❚❚";
    play.setAttribute("aria-label", paused ? "Play" : "Pause");
  }

  // ---- Controls ----------------------------------------------------------------------------

  togglePlay() {
    if (!this.model.current) return;
    this.command({ t: this.model.playback.paused ? "play" : "pause" });
  }

  /** Seeks `delta` seconds from where the room is now (the player may still be on its way). */
  seekBy(delta) {
    const item = this.model.current;
    if (!item) return;
    const at = targetPosition(this.model.playback, this.clock.serverNow(localNow()), item.duration ?? Infinity);
    this.seekToPosition(at + delta);
  }

  seekToPosition(position) {
    if (!this.model.current || !this.player || !this.model.may("playback")) return;
    if (this.conn.state !== "open") {
      toast(OFFLINE_REASON, "error");
      return;
    }
    this.command({ t: "seek", position: Math.min(Math.max(0, position), this.duration()) });
  }

  fullscreen() {
    const wrap = $("#player-wrap");
    if (document.fullscreenElement) document.exitFullscreen();
    else wrap.requestFullscreen?.().catch(() => {});
  }

  bindControls() {
    $("#play").addEventListener("click", () => this.togglePlay());
    const seek = $("#seek");
    seek.addEventListener("input", () => (this.seekDragging = true));
    seek.addEventListener("change", () => {
      this.seekDragging = false;
      this.command({ t: "seek", position: Number(seek.value) });
    });
    // The slider's own keys would step by 0.1 s and send a seek per press: 5 s with the arrows,
    // 30 s with Page Up / Down, and the ends with Home / End instead.
    seek.addEventListener("keydown", (e) => {
      const steps = { ArrowLeft: -ARROW_SEEK_S, ArrowDown: -ARROW_SEEK_S, ArrowRight: ARROW_SEEK_S, ArrowUp: ARROW_SEEK_S, PageDown: -PAGE_SEEK_S, PageUp: PAGE_SEEK_S };
      if (e.key in steps) this.seekBy(steps[e.key]);
      else if (e.key === "Home") this.seekToPosition(0);
      else if (e.key === "End") this.seekToPosition(Number(seek.max) - 1);
      else return;
      e.preventDefault();
    });
    $("#rate").addEventListener("change", (e) => this.command({ t: "rate", rate: Number(e.target.value) }));
    const volume = $("#volume");
    volume.value = String(this.prefs.volume);
    const mute = $("#mute");
    // `remember`: the user changed it (not on the page's start, which read it from there: a
    // write then cost a joining page up to 8 ms of its main thread).
    const applyVolume = (remember = true) => {
      mute.classList.toggle("muted", this.prefs.muted || this.prefs.volume === 0);
      if (remember) {
        localStorage.setItem("lockstep.volume", String(this.prefs.volume));
        localStorage.setItem("lockstep.muted", this.prefs.muted ? "1" : "0");
      }
      if (this.player) {
        this.player.volume = this.prefs.volume;
        this.player.muted = this.prefs.muted;
      }
    };
    volume.addEventListener("input", () => {
      this.prefs.volume = Number(volume.value);
      this.prefs.muted = false;
      applyVolume();
    });
    mute.addEventListener("click", () => {
      this.prefs.muted = !this.prefs.muted;
      applyVolume();
    });
    applyVolume(false);
    $("#fullscreen").addEventListener("click", () => this.fullscreen());
    const tolerance = $("#tolerance");
    tolerance.value = String(this.prefs.tolerance);
    tolerance.addEventListener("change", () => {
      // A per-viewer choice: only this screen follows the room more loosely.
      this.prefs.tolerance = Number(tolerance.value);
      localStorage.setItem("lockstep.tolerance", tolerance.value);
      const keyframes = this.controller.keyframes;
      this.controller = new SyncController({ fineRate: this.player?.fineRate ?? true, tolerance: this.prefs.tolerance, quickStart: this.controller.quickStart, ...MEDIA_TRAITS }).learntFrom(this.controller);
      this.controller.setKeyframes(keyframes);
    });
    $("#resync").addEventListener("click", () => {
      // A manual resync: allow an immediate seek to wherever the room is.
      this.controller.resync();
      this.tick();
      toast("Resynced");
    });
    $("#join-playback").addEventListener("click", () => {
      this.autoplayBlocked = false;
      $("#autoplay").hidden = true;
      // Inside the click: the browser lets playback start now. The loop stood still while the
      // start was refused: it lands the player now, from wherever it waited.
      if (!this.model.playback.paused) {
        this.player?.play().catch(() => {});
        this.tick();
      }
    });
    $("#vote-skip").addEventListener("click", () => this.command({ t: "vote_skip" }));
    // Until the panels are set up, their forms are not submitted (the browser's own submission
    // would reload the page): a submission sets them up now, not once the page has landed, and
    // is made again once they are (what was typed stays in the form meanwhile).
    for (const id of ["#chat-form", "#queue-form"]) {
      const form = $(id);
      let again = false;
      form.addEventListener("submit", (e) => {
        if (this.chat) return;
        e.preventDefault();
        this.showPanels();
        if (again) return;
        again = true;
        // In a task of its own: the panels may be set up before this submission's dispatch ends,
        // and a form does not submit again while it is submitting.
        this.panelsReady.then(() => setTimeout(() => form.requestSubmit()), () => {});
      });
    }
    // These wait for their modules (`panels`) if pressed before; a failure to load them was told.
    const withPanels = (fn) => panels.then(fn, () => {});
    const save = (list) => this.model.current && withPanels((p) => p.saveItem(this.model.current, list));
    $("#save-current").addEventListener("click", () => save("library"));
    $("#later-current").addEventListener("click", () => save("watch_later"));
    $("#open-picker").addEventListener("click", () => withPanels((p) => p.openPicker((frame) => this.conn.send(frame))));
    $("#skip").addEventListener("click", () => this.command({ t: "skip" }));
    $("#open-settings").addEventListener("click", () => withPanels(() => this.settings.open()));
    $("#invite").addEventListener("click", () => this.copyInvite());

    $("#retry").addEventListener("click", () => this.conn.retryNow());
    // A reconnection waiting out its backoff tries at once when the browser says its network is
    // back (a laptop's Wi-Fi, a phone out of a tunnel: after 2-5 s offline a page waited up to
    // 7.8 s more, out of the room all along, bench/RESULTS.md), and when the page is shown again (a
    // hidden tab's timers may run a minute late). Each is one client's own event, not a herd.
    window.addEventListener("online", () => this.conn.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.conn.retryNow();
    });
    // The width the reconnecting pill keeps is of this window's layout (renderConnection).
    window.addEventListener("resize", () => {
      $("#connection").style.minWidth = "";
    });

    const presence = $("#show-presence-lines");
    presence.checked = this.prefs.presenceLines;
    const applyPresence = () => $("#chat-log").classList.toggle("hide-presence", !this.prefs.presenceLines);
    presence.addEventListener("change", () => {
      this.prefs.presenceLines = presence.checked;
      localStorage.setItem("lockstep.presenceLines", presence.checked ? "1" : "0");
      applyPresence();
    });
    applyPresence();
    const notify = $("#notify-mentions");
    notify.checked = this.prefs.notifyMentions && typeof Notification !== "undefined" && Notification.permission === "granted";
    notify.disabled = typeof Notification === "undefined";
    notify.addEventListener("change", async () => {
      let on = notify.checked;
      if (on && Notification.permission !== "granted") {
        on = (await Notification.requestPermission()) === "granted";
        if (!on) toast("Your browser does not allow notifications from this site.", "error");
      }
      notify.checked = on;
      this.prefs.notifyMentions = on;
      localStorage.setItem("lockstep.notifyMentions", on ? "1" : "0");
    });
    document.addEventListener("visibilitychange", () => this.renderUnread());

    for (const name of TABS) {
      const tab = $(`#tab-${name}`);
      tab.addEventListener("click", () => this.showTab(name));
      // WAI-ARIA tabs: arrows move between the tabs (and show them), Home and End go to the ends.
      tab.addEventListener("keydown", (e) => {
        const i = TABS.indexOf(name);
        const to = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: TABS.length - 1 }[e.key];
        if (to === undefined) return;
        e.preventDefault();
        const next = TABS[(to + TABS.length) % TABS.length];
        this.showTab(next);
        $(`#tab-${next}`).focus();
      });
    }
    const playerWrap = $("#player-wrap");
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "/" && !typingInField()) {
        e.preventDefault();
        this.showTab("chat");
        $("#chat-input").focus();
        return;
      }
      if (e.key === "Escape" && typingInField() && !document.querySelector("dialog[open]")) {
        document.activeElement.blur();
        return;
      }
      if (!shortcutsAllowed(playerWrap) || document.querySelector("dialog[open]")) return;
      if (e.key === " " || e.key === "k") {
        e.preventDefault();
        this.togglePlay();
      } else if (e.key === "ArrowLeft") {
        e.preventDefault();
        this.seekBy(-ARROW_SEEK_S);
      } else if (e.key === "ArrowRight") {
        e.preventDefault();
        this.seekBy(ARROW_SEEK_S);
      } else if (e.key === "f") {
        this.fullscreen();
      } else if (e.key === "c") {
        this.subtitles?.toggle();
      }
    });
  }

  showTab(name) {
    this.tab = name;
    for (const n of TABS) {
      const tab = $(`#tab-${n}`);
      tab.setAttribute("aria-selected", String(n === name));
      tab.tabIndex = n === name ? 0 : -1;
      $(`#panel-${n}`).hidden = n !== name;
    }
    if (name === "chat") this.renderUnread();
  }

  /** The room's REST view, for a page that entered on the welcome: what the welcome does not
   * tell (a private room's invite key and link). */
  viewArrived(view) {
    if (view.id !== this.view.id) return;
    this.view.link ??= view.link;
    this.view.invite_key ??= view.invite_key;
  }

  async copyInvite() {
    // A private room's link comes with its view (a page that entered on the welcome may wait).
    if (this.view.link === undefined) await early.first.then((v) => this.viewArrived(v), () => {});
    const link = new URL(this.view.link ?? `/r/${this.view.id}`, location.origin).href;
    try {
      await navigator.clipboard.writeText(link);
      toast("Invite link copied");
    } catch {
      // Clipboard access can be refused (insecure origin, permissions): show it instead.
      prompt("Copy this invite link:", link);
    }
  }
}

async function main() {
  // The room's view and the client config were asked for by early.js, and the connection opened.
  let view;
  try {
    view = await enter();
  } catch (err) {
    early.connection?.conn.stop();
    if (err instanceof ApiError && err.status === 404) {
      showMessage("No such room", "This room does not exist, or this link is no longer valid.");
    } else if (err instanceof ApiError && err.code === "banned") {
      // The server says whether it is you or your network address that is barred, and for how long.
      showMessage("You are banned", err.message || "You are banned from this room.");
    } else {
      showMessage("Cannot open this room", err.message);
    }
    return;
  }
  const page = new RoomPage(view, early.config, early.connection);
  window.lockstep = page;
  if (view.fromWelcome) early.first.then((v) => page.viewArrived(v), () => {});
  early.config.catch((err) => {
    page.conn.stop();
    page.player?.pause();
    showMessage("Cannot open this room", err.message);
  });
}

main();
