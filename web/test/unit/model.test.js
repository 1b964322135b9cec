import test from "node:test";
import assert from "node:assert/strict";
import { EARLY_LEAD, QUICK_START_EARLY_LEAD, RoomModel, GapError, controlTarget, earlyPosition, startPosition, startsAfter, targetPosition } from "../../public/js/model.js";

const item = (id, extra = {}) => ({ id, kind: "url", format: "mp4", url: `https://x.test/${id}.mp4`, title: id, duration: 10, thumbnail: null, start: 0, added_by: "u1", added_by_name: "Ann", added_at: 0, status: "ready", ...extra });
const member = (id, role = "viewer", extra = {}) => ({ user_id: id, name: id, role, muted: false, ready: true, ...extra });

function welcome() {
  return {
    t: "welcome", epoch: "e1", seq: 10, server_time: 0, room_id: "r", owner_id: "u1",
    settings: { name: "R", visibility: "public", playback: "moderators", queue: "everyone", skip_requires_vote: false, vote_skip_ratio: 0.5, chat_slow_mode_secs: 0, wait_for_everyone: false, has_password: false },
    you: member("u2"), current: item("a"), playback: { paused: false, position: 1, at: 5, rate: 1 }, waiting: false,
    queue: [item("b"), item("c")], votes: { votes: 0, needed: 1 }, members: [member("u1", "owner"), member("u2")],
    chat: [{ id: 1, text: "hi", at: 0 }],
  };
}

test("events update the model in order", () => {
  const m = new RoomModel();
  m.reset(welcome());
  assert.deepEqual(m.apply({ t: "queue_added", seq: 11, item: item("d"), index: 2 }), ["queue"]);
  m.apply({ t: "queue_moved", seq: 12, item_id: "d", index: 0 });
  assert.deepEqual(m.queue.map((i) => i.id), ["d", "b", "c"]);
  m.apply({ t: "now_playing", seq: 13, item: item("b"), previous: "a", state: { paused: false, position: 0, at: 9, rate: 1 }, cause: "ended", by: null });
  assert.equal(m.current.id, "b");
  assert.deepEqual(m.queue.map((i) => i.id), ["d", "c"]);
  // An item's update is not the room moving (room.js would end a landing under way).
  assert.deepEqual(m.apply({ t: "item_updated", seq: 14, item: item("c", { title: "Cee" }) }), ["queue"]);
  assert.equal(m.queue[1].title, "Cee");
  m.apply({ t: "queue_removed", seq: 15, item_id: "d", by: "u1" });
  m.apply({ t: "playback", seq: 16, item_id: "b", state: { paused: true, position: 3, at: 12, rate: 1 }, cause: "buffering", by: null });
  assert.ok(m.waiting && m.playback.paused);
  m.apply({ t: "member_updated", seq: 17, member: member("u2", "moderator") });
  assert.equal(m.me.role, "moderator");
  assert.ok(m.isModerator && m.may("playback"));
  m.apply({ t: "presence", seq: 18, joined: [], left: ["u1"], count: 1 });
  assert.equal(m.members.size, 1);
  assert.equal(m.memberCount, 1);
  m.apply({ t: "chat", seq: 19, line: { id: 2, text: "yo", at: 1 } });
  m.apply({ t: "votes", seq: 20, item_id: "b", votes: 1, needed: 2 });
  assert.deepEqual(m.votes, { votes: 1, needed: 2 });
  assert.equal(m.seq, 20);
});

test("presence keeps the member window and the count; pages add the members past it", () => {
  const m = new RoomModel();
  m.reset({ ...welcome(), member_count: 150 });
  assert.equal(m.memberCount, 150);
  assert.deepEqual(m.apply({ t: "presence", seq: 11, joined: [member("u3")], left: ["u1"], count: 151 }), ["members"]);
  assert.deepEqual([...m.members.keys()], ["u2", "u3"]);
  assert.equal(m.memberCount, 151);
  m.addMemberPage({ offset: 2, count: 152, members: [member("u3"), member("u9"), member("u10")] });
  assert.deepEqual(m.knownMembers.map((x) => x.user_id), ["u2", "u3", "u9", "u10"], "no member twice");
  assert.equal(m.memberCount, 152);
  // An update of a paged member is kept; one of a member nobody holds is not.
  m.apply({ t: "member_updated", seq: 12, member: member("u9", "moderator") });
  m.apply({ t: "member_updated", seq: 13, member: member("u77") });
  assert.equal(m.paged.get("u9").role, "moderator");
  assert.equal(m.knownMembers.length, 4);
  // A paged member who enters the window is held there only.
  m.apply({ t: "presence", seq: 14, joined: [member("u9", "moderator")], left: [], count: 152 });
  assert.equal(m.paged.has("u9"), false);
  assert.equal(m.knownMembers.length, 4);
});

test("a missing event is a gap", () => {
  const m = new RoomModel();
  m.reset(welcome());
  assert.throws(() => m.apply({ t: "chat", seq: 12, line: {} }), GapError);
  assert.equal(m.seq, 10, "nothing applied");
});

test("permissions follow settings and roles", () => {
  const m = new RoomModel();
  m.reset(welcome());
  assert.equal(m.may("playback"), false, "moderators only, and I am a viewer");
  assert.equal(m.may("queue"), true);
});

test("older history goes on top, without duplicates", () => {
  const m = new RoomModel();
  m.reset(welcome());
  m.prependChat([{ id: 0, text: "old" }, { id: 1, text: "hi" }]);
  assert.deepEqual(m.chat.map((l) => l.id), [0, 1]);
});

test("sync quality replaces the members' figures and the room's worst p95", () => {
  const m = new RoomModel();
  m.reset(welcome());
  assert.equal(m.sync.size, 0);
  assert.equal(m.syncWorst, null);
  assert.deepEqual(m.apply({ t: "sync_quality", seq: 11, members: [{ user_id: "u1", p50_ms: 2, p95_ms: 7 }], worst_p95_ms: 12 }), ["sync"]);
  assert.deepEqual(m.sync.get("u1"), { p50_ms: 2, p95_ms: 7 });
  assert.equal(m.syncWorst, 12);
  m.apply({ t: "sync_quality", seq: 12, members: [], worst_p95_ms: null });
  assert.equal(m.sync.size, 0);
  assert.equal(m.syncWorst, null);
});

test("a member whose player stops playing the room's video shows no offset from before", () => {
  const m = new RoomModel();
  m.reset(welcome());
  const figures = [{ user_id: "u1", p50_ms: 2, p95_ms: 7 }, { user_id: "u2", p50_ms: 3, p95_ms: 9 }];
  m.apply({ t: "sync_quality", seq: 11, members: figures, worst_p95_ms: 9 });
  // Buffering, then unable to play: its figures go at once (the server withdrew them too).
  m.apply({ t: "member_updated", seq: 12, member: member("u1", "owner", { ready: false }) });
  assert.equal(m.sync.has("u1"), false);
  m.apply({ t: "member_updated", seq: 13, member: member("u2", "viewer", { cannot_play: true }) });
  assert.equal(m.sync.has("u2"), false);
  // Ready again: no figures until its next report.
  m.apply({ t: "member_updated", seq: 14, member: member("u1", "owner") });
  assert.equal(m.sync.has("u1"), false);
  m.apply({ t: "sync_quality", seq: 15, members: figures.slice(0, 1), worst_p95_ms: 7 });
  assert.deepEqual(m.sync.get("u1"), { p50_ms: 2, p95_ms: 7 });
});

test("a welcome tells the room's view as far as it can: a public room's link, not a private one's", () => {
  const m = new RoomModel();
  m.reset(welcome());
  assert.deepEqual(m.welcomeView(), { id: "r", name: "R", admitted: true, link: "/r/r", fromWelcome: true });
  const w = welcome();
  m.reset({ ...w, settings: { ...w.settings, visibility: "private" } });
  // A private room's link is its invite, which only the room's view tells.
  assert.equal(m.welcomeView().link, undefined);
});

test("target position follows the server clock", () => {
  const pb = { paused: false, position: 10, at: 1_000_000_000, rate: 2 };
  assert.equal(targetPosition(pb, 1_000_000 + 1500), 13);
  assert.equal(targetPosition({ ...pb, paused: true }, 9e12), 10);
  assert.equal(targetPosition(pb, 2e12, 20), 20, "clamped to the duration");
  assert.equal(targetPosition(pb, 0), 10, "never before `at`");
  assert.equal(targetPosition({ ...pb, position: -1, paused: true }, 0), 0);
});

test("before a scheduled start the controller's target is behind where the room waits by the time left", () => {
  // Starts at 1000.3 s (server ms 1_000_300) from 10, at rate 2.
  const pb = { paused: false, position: 10, at: 1_000_300_000, rate: 2 };
  assert.ok(startsAfter(pb, 1_000_000) && !startsAfter(pb, 1_000_300) && !startsAfter({ ...pb, paused: true }, 0));
  assert.equal(targetPosition(pb, 1_000_000), 10, "the room waits at 10");
  assert.ok(Math.abs(controlTarget(pb, 1_000_000) - 9.4) < 1e-9, "0.3 s before, at rate 2");
  assert.equal(controlTarget(pb, 1_000_300), 10);
  assert.equal(controlTarget(pb, 1_001_300), 12, "as targetPosition once started");
  assert.ok(Math.abs(controlTarget({ ...pb, position: 0 }, 1_000_000) + 0.6) < 1e-9, "may be below 0");
  assert.equal(controlTarget({ ...pb, paused: true }, 1_000_000), 10);
});

test("a player starts where the room is by the clock once it is ready, else by this machine's clock", () => {
  const pb = { paused: false, position: 10, at: 1_000_000_000, rate: 1 };
  const clock = (ready, offset) => ({ ready, serverNow: (local) => local + offset });
  assert.equal(startPosition(pb, clock(true, 500), 1_000_000 + 1500), 12, "by the server's time");
  assert.equal(startPosition(pb, clock(false, 500), 1_000_000 + 1500), 11.5, "by this machine's");
  assert.equal(startPosition({ ...pb, paused: true }, clock(false, 0), 9e12), 10, "paused: where it is");
  assert.equal(startPosition(pb, clock(false, 0), 9e12, 60), 60, "within the item");
});

test("a joiner's early <video> is set fetching the early lead ahead of the room at its rate, less far in a browser whose media starts at once", () => {
  const pb = { paused: false, position: 10, at: 1_000_000_000, rate: 1.25 };
  const clock = { ready: true, serverNow: (local) => local };
  const at = 1_000_000 + 2000;
  const near = (x, y) => Math.abs(x - y) < 1e-9;
  assert.ok(near(earlyPosition(pb, clock, at), 12.5 + EARLY_LEAD * 1.25), "Chromium: EARLY_LEAD");
  assert.ok(near(earlyPosition(pb, clock, at, Infinity, true), 12.5 + QUICK_START_EARLY_LEAD * 1.25), "Firefox: QUICK_START_EARLY_LEAD");
  assert.ok(QUICK_START_EARLY_LEAD < EARLY_LEAD);
  assert.equal(earlyPosition({ ...pb, paused: true }, clock, at, Infinity, true), 10, "a paused room: where it waits");
  assert.ok(near(earlyPosition(pb, clock, at, 12.8, true), 12.5), "no lead past the end of the item");
});
