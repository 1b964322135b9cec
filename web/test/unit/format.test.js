import test from "node:test";
import assert from "node:assert/strict";
import { formatTime, mentions } from "../../public/js/format.js";
import { reconnectDelay, BACKOFF } from "../../public/js/backoff.js";

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
  assert.equal(reconnectDelay(3, { random: () => 1 }), BACKOFF.BASE_MS * 8);
  assert.equal(reconnectDelay(30, { random: () => 1 }), BACKOFF.MAX_MS);
  assert.equal(reconnectDelay(5, { random: () => 0 }), 0);
  assert.equal(reconnectDelay(0, { random: () => 0, retryAfterMs: 1000 }), 1000);
});
