import test from "node:test";
import assert from "node:assert/strict";
import { formatTime, mentions } from "../../public/js/format.js";
import { reconnectDelay, BACKOFF } from "../../public/js/connection.js";

test("times", () => {
  assert.equal(formatTime(0), "0:00");
  assert.equal(formatTime(65.9), "1:05");
  assert.equal(formatTime(3723), "1:02:03");
  assert.equal(formatTime(NaN), "0:00");
});

test("mentions: the name as a word or @name, any case", () => {
  assert.ok(mentions("hey @ann look", "Ann"));
  assert.ok(mentions("Ann, look!", "ann"));
  assert.ok(mentions("thanks Curious Otter", "Curious Otter"));
  assert.ok(!mentions("Annette is here", "Ann"));
  assert.ok(!mentions("joann", "ann"));
  assert.ok(!mentions("anything", ""));
});

test("backoff grows, is capped, jittered, and honours the server's delay", () => {
  assert.equal(reconnectDelay(0, { random: () => 1 }), BACKOFF.BASE_MS);
  assert.equal(reconnectDelay(3, { random: () => 1 }), Math.round(BACKOFF.BASE_MS * BACKOFF.FACTOR ** 3));
  assert.ok(reconnectDelay(3, { random: () => 1 }) > reconnectDelay(2, { random: () => 1 }));
  assert.equal(reconnectDelay(30, { random: () => 1 }), BACKOFF.MAX_MS);
  assert.equal(reconnectDelay(5, { random: () => 0 }), 0);
  assert.equal(reconnectDelay(0, { random: () => 0, retryAfterMs: 1000 }), 1000);
});

test("desktop viewers: their file, and a mismatch only on two durations more than 1 s apart", async () => {
  const { desktopNote, formatBytes } = await import("../../public/js/format.js");
  assert.equal(desktopNote(undefined, { duration: 10 }), null);
  const d = (duration, size) => ({ client: "Syncplay 1.6.9", file: { name: "film.mkv", duration, size } });
  assert.deepEqual(desktopNote(d(100, 734_000_000), { duration: 100.5 }), {
    label: "Syncplay 1.6.9",
    file: "film.mkv (1:40), 700 MiB",
    mismatch: false,
  });
  assert.equal(desktopNote(d(100), { duration: 101.5 }).mismatch, true);
  assert.equal(desktopNote(d(100), { duration: 98 }).mismatch, true);
  assert.equal(desktopNote(d(undefined), { duration: 98 }).mismatch, false);
  assert.equal(desktopNote(d(100), { duration: null }).mismatch, false);
  assert.equal(desktopNote(d(100), null).mismatch, false);
  assert.equal(desktopNote({ client: "" }, null).file, "no file open");
  assert.equal(desktopNote({ client: "" }, null).label, "Desktop player");
  assert.equal(formatBytes(512), "512 B");
});

test("Syncplay: the server as host:port, the short room name before the key", async () => {
  const { syncplayServer, syncplayRoom } = await import("../../public/js/syncplay.js");
  assert.equal(syncplayServer("watch.example", 8999), "watch.example:8999");
  assert.equal(syncplayServer("::1", 8999), "[::1]:8999");
  assert.equal(syncplayServer("[::1]", 8999), "[::1]:8999");
  assert.equal(syncplayRoom({ room: "KEY", short_name: "movies" }), "movies");
  assert.equal(syncplayRoom({ room: "KEY", short_name: null }), "KEY");
});
