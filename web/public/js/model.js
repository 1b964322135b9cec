// The room as this client knows it: the welcome snapshot, updated by each numbered event.
// Applying events here is the mirror of the server's room state machine (the server's tests check
// that replaying its events reproduces its state; these tests check the same here). No DOM.

/** Chat lines kept in memory; older ones are dropped from the top as new ones arrive. */
export const CHAT_KEEP = 500;

export class RoomModel {
  constructor() {
    this.reset(null);
  }

  /** Starts over from a welcome (or empties the model with `null`). */
  reset(welcome) {
    this.epoch = welcome?.epoch ?? null;
    this.seq = welcome?.seq ?? 0;
    this.roomId = welcome?.room_id ?? null;
    this.ownerId = welcome?.owner_id ?? null;
    this.settings = welcome?.settings ?? null;
    this.you = welcome?.you ?? null;
    this.current = welcome?.current ?? null;
    this.playback = welcome?.playback ?? { paused: true, position: 0, at: 0, rate: 1 };
    this.lastCause = null;
    this.waiting = welcome?.waiting ?? false;
    this.queue = welcome?.queue ? [...welcome.queue] : [];
    this.votes = welcome?.votes ?? { votes: 0, needed: 1 };
    /** The member window (the first 100 in the server's list order), kept live by `presence`.
     * @type {Map<string, object>} */
    this.members = new Map((welcome?.members ?? []).map((m) => [m.user_id, m]));
    /** Members past the window, from `members` pages: a snapshot, which goes stale as people
     * come and go (read again to refresh it).
     * @type {Map<string, object>} */
    this.paged = new Map();
    /** How many members are present (the window may hold fewer). */
    this.memberCount = welcome?.member_count ?? this.members.size;
    this.chat = welcome?.chat ? [...welcome.chat] : [];
    /** The last `sync_quality`: each window member's reported error (ms), and the room's worst
     * p95. Empty until one arrives (within a few seconds of playing).
     * @type {Map<string, {p50_ms: number, p95_ms: number}>} */
    this.sync = new Map();
    this.syncWorst = null;
  }

  /** The room as its REST view (`GET /api/rooms/{id}`) describes it, as far as the welcome tells:
   * a page that hears the welcome first starts with this (a welcome means it was let in). Only a
   * public room's link is known from it; a private one's (its invite) comes with the view. */
  welcomeView() {
    const id = this.roomId;
    return {
      id,
      name: this.settings?.name ?? "",
      admitted: true,
      link: this.settings?.visibility === "public" ? `/r/${id}` : undefined,
      fromWelcome: true,
    };
  }

  /** The member record of this viewer (kept current by member events). */
  get me() {
    return (this.you && this.members.get(this.you.user_id)) ?? this.you;
  }

  /** Whether this viewer may do something the room's `playback` or `queue` setting controls. */
  may(setting) {
    const role = this.me?.role;
    return this.settings?.[setting] === "everyone" || role === "owner" || role === "moderator";
  }

  /** Whether an item plays (the room is not paused, nor held). The viewers' sync figures are
   * shown only then: they tell how they kept up while it played. */
  get playing() {
    return Boolean(this.current) && !this.playback.paused;
  }

  get isModerator() {
    const role = this.me?.role;
    return role === "owner" || role === "moderator";
  }

  /**
   * Applies a numbered event. Returns the kinds of change ("playback", "queue", "chat", "members",
   * "settings", "votes"), or throws a `GapError` when an event is missing (the caller resumes or
   * starts over).
   */
  apply(frame) {
    if (frame.seq !== this.seq + 1) throw new GapError(this.seq, frame.seq);
    this.seq = frame.seq;
    switch (frame.t) {
      case "playback":
        this.playback = frame.state;
        this.lastCause = frame.cause;
        this.waiting = frame.cause === "buffering";
        return ["playback"];
      case "now_playing":
        if (frame.item) this.queue = this.queue.filter((i) => i.id !== frame.item.id);
        this.current = frame.item;
        this.playback = frame.state;
        this.lastCause = frame.cause;
        this.waiting = false;
        this.votes = { votes: 0, needed: this.votes.needed };
        return ["playback", "queue", "votes"];
      case "queue_added":
        this.queue.splice(frame.index, 0, frame.item);
        return ["queue"];
      case "queue_removed":
        this.queue = this.queue.filter((i) => i.id !== frame.item_id);
        return ["queue"];
      case "queue_moved": {
        const from = this.queue.findIndex((i) => i.id === frame.item_id);
        if (from >= 0) {
          const [item] = this.queue.splice(from, 1);
          this.queue.splice(frame.index, 0, item);
        }
        return ["queue"];
      }
      case "item_updated":
        // What an item is (its duration learnt, its media ready) changed, not where the room is:
        // reported as a playback change, it ended every viewer's landing and grace when the first
        // player of a new item reported its duration, 0.1-0.3 s into the item's start (their
        // starts then rested 10-25 ms off, or closed that at 2% over seconds).
        if (this.current?.id === frame.item.id) this.current = frame.item;
        this.queue = this.queue.map((i) => (i.id === frame.item.id ? frame.item : i));
        return ["queue"];
      case "votes":
        this.votes = { votes: frame.votes, needed: frame.needed };
        return ["votes"];
      case "chat":
        this.chat.push(frame.line);
        if (this.chat.length > CHAT_KEEP) this.chat.splice(0, this.chat.length - CHAT_KEEP);
        return ["chat"];
      case "presence":
        for (const id of frame.left) this.members.delete(id);
        for (const m of frame.joined) {
          this.members.set(m.user_id, m);
          this.paged.delete(m.user_id);
        }
        this.memberCount = frame.count;
        return ["members"];
      case "member_updated": {
        const id = frame.member.user_id;
        // Members outside the window and the pages read are not held; I always am.
        if (this.members.has(id)) this.members.set(id, frame.member);
        if (this.paged.has(id)) this.paged.set(id, frame.member);
        if (this.you?.user_id === id) this.you = frame.member;
        // Its player stopped playing the room's video (it buffers, or cannot play it): its last
        // sync report tells how it kept up before, and the server withdrew it too. (A desktop
        // viewer's "not ready" is its user's choice in Syncplay, not buffering.)
        if ((frame.member.ready === false && !frame.member.desktop) || frame.member.cannot_play) this.sync.delete(id);
        return ["members"];
      }
      case "settings":
        this.settings = frame.settings;
        return ["settings"];
      case "sync_quality":
        this.sync = new Map(frame.members.map((m) => [m.user_id, { p50_ms: m.p50_ms, p95_ms: m.p95_ms }]));
        this.syncWorst = frame.worst_p95_ms ?? null;
        return ["sync"];
      default:
        return [];
    }
  }

  /** Every member known here: the window, then pages read past it. */
  get knownMembers() {
    return [...this.members.values(), ...[...this.paged.values()].filter((m) => !this.members.has(m.user_id))];
  }

  /** Adds a page of the member list (a `members_page` answer). */
  addMemberPage(page) {
    for (const m of page.members) if (!this.members.has(m.user_id)) this.paged.set(m.user_id, m);
    this.memberCount = page.count;
  }

  /** Adds older chat lines (from the history endpoint) at the top. */
  prependChat(lines) {
    const known = new Set(this.chat.map((l) => l.id));
    this.chat = [...lines.filter((l) => !known.has(l.id)), ...this.chat];
  }
}

/**
 * Where the video should be at server time `serverNowMs` (ms), in seconds, within [0, duration].
 * @param {{paused: boolean, position: number, at: number, rate: number}} playback
 */
export function targetPosition(playback, serverNowMs, duration = Infinity) {
  let position = playback.position;
  if (!playback.paused) {
    const elapsed = Math.max(0, serverNowMs / 1000 - playback.at / 1e6);
    position += elapsed * playback.rate;
  }
  const end = Number.isFinite(duration) && duration > 0 ? duration : Infinity;
  return Math.min(Math.max(position, 0), end);
}

/**
 * Where a player should be at server time `serverNowMs` (ms) to keep with the room (s): as
 * `targetPosition`, except before a start the room scheduled (a play starts moving a moment after
 * the command: `at` is then ahead), where it is as far behind the position as the start is ahead.
 * A player paused at the position is then ahead of the room by the time left, and waits for it
 * (sync.js) rather than seeking. May be below 0.
 */
export function controlTarget(playback, serverNowMs, duration = Infinity) {
  const left = playback.paused ? 0 : Math.max(0, playback.at / 1e6 - serverNowMs / 1000);
  return targetPosition(playback, serverNowMs, duration) - left * playback.rate;
}

/** Whether the room's playback is to start moving after server time `serverNowMs` (ms). */
export const startsAfter = (playback, serverNowMs) => !playback.paused && playback.at / 1000 > serverNowMs;

/** Whether `item` is an upload whose playable copy is still being made: nothing to load yet. */
export const awaitsMedia = (item) => item?.kind === "upload" && item.status === "pending";

/**
 * Where a player loading the room's current item starts (s), so that the browser fetches from
 * there: where the room is at local time `localNow` (ms) by `clock` once it is ready, else by this
 * machine's own clock (off by the two clocks' difference, against minutes for where the room last
 * said it was). The player's landing then seeks to the exact place.
 */
export function startPosition(playback, clock, localNow, duration = Infinity) {
  return targetPosition(playback, clock.ready ? clock.serverNow(localNow) : localNow, duration);
}

/** How far ahead of where the room is (s of the room's time) a playing room's video is set
 * fetching before the page's modules run (early.js): about how long the page takes from then to
 * be ready to start it (its modules, its clock, the video's data at that point) and to start it.
 * Its first landing waits there for the room when that is no further ahead than the landing
 * would seek (`SyncController.decide`), instead of seeking, and decoding from the keyframe
 * before, once more. */
export const EARLY_LEAD = 0.6;
/** The same for a browser whose media starts at once after play() (Gecko: video.js
 * `startsAtOnce`), about 0.1 s sooner than Chromium's. With EARLY_LEAD, half of Firefox's joiners
 * were ready while their early place was further ahead than their landing would seek, and seeked
 * once more rather than wait there. Three runs of each, alternated (bench-sync, Firefox on
 * loopback and behind the delays, 36 joiners each): within 20 ms in 1 s 19 -> 25 of 36, median
 * 1.00 -> 0.94 s, slowest 2.68 -> 1.79 s. Chromium's 18 joiners did no better with 0.45 (10
 * against 12 within 1 s), so it keeps EARLY_LEAD (bench/RESULTS.md, forty-ninth session). */
export const QUICK_START_EARLY_LEAD = 0.45;

/** Where a joiner's early <video> is set fetching (s): where the room is (`startPosition`), and
 * for a playing room the early lead further on at its rate (QUICK_START_EARLY_LEAD in a browser
 * whose media starts at once, `quickStart`; EARLY_LEAD otherwise), unless that is past the end. */
export function earlyPosition(playback, clock, localNow, duration = Infinity, quickStart = false) {
  const from = startPosition(playback, clock, localNow, duration);
  const ahead = playback.paused ? 0 : (quickStart ? QUICK_START_EARLY_LEAD : EARLY_LEAD) * playback.rate;
  return from + ahead < duration ? from + ahead : from;
}

/** An event arrived out of order: some were missed. */
export class GapError extends Error {
  constructor(have, got) {
    super(`expected event ${have + 1}, got ${got}`);
    this.have = have;
    this.got = got;
  }
}
