// Browser tests: real Chromium, the real server, generated video. Run by ./scripts/test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addToQueue, artifacts, createRoom as createRoomAt, eventually, launchBrowser, newViewer, probe, startFixtures, startProxy, startServer, VIDEO_SECONDS } from "./harness.js";
import { SYNC } from "../../public/js/sync.js";

/** How far apart viewers may be and still count as together in these tests (the sync benchmark
 * measures the real figure; this only has to fail when sync is broken). */
const TOGETHER = 0.15;

let fixtures;
let server;
let browser;

before(async () => {
  fixtures = await startFixtures();
  // One user posts many lines in the scroll-back test.
  // One test chats 130 lines at once: the per-user and per-address chat limits are lifted.
  server = await startServer(fixtures, { LOCKSTEP_CHAT_RATE_LINES: "1000", LOCKSTEP_WS_FRAMES_BURST: "1000", LOCKSTEP_LIMIT_CHAT: "off" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await fixtures?.close();
});

/** Holds back `page`'s requests to `pattern` until the returned function is called. */
async function holdBack(page, pattern) {
  let release;
  const held = new Promise((r) => (release = r));
  await page.route(pattern, async (route) => {
    await held;
    await route.continue();
  });
  return release;
}

/**
 * Waits until the page's player is within TOGETHER of where the room is (by the true clock),
 * and, with `playing`, until the room and the player are playing.
 */
async function inSync(page, what, { playing = false } = {}) {
  return eventually(
    async () => {
      const p = await probe(page);
      const state = !playing || (!p?.roomPaused && !p?.paused);
      return p && state && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
    },
    { what: `${what} in sync${playing ? " and playing" : ""}` },
  );
}

/** Sets the seek bar as a user dragging it would. */
async function seekTo(page, seconds) {
  await page.$eval("#seek", (el, s) => {
    el.value = String(s);
    el.dispatchEvent(new Event("input"));
    el.dispatchEvent(new Event("change"));
  }, seconds);
}

const createRoom = (page, name) => createRoomAt(page, server.base, name);

test("three viewers follow pause, seek and rate; a late joiner starts at the right place", async () => {
  const [a, b, c] = [await newViewer(browser), await newViewer(browser), await newViewer(browser)];
  await a.page.goto(`${server.base}/`);
  await a.page.waitForSelector("#my-name");
  await a.page.screenshot({ path: path.join(artifacts(), "lobby.png") });
  const url = await createRoom(a.page, "Three viewers");
  for (const v of [b, c]) await v.page.goto(url);
  await addToQueue(a.page, fixtures.mediaUrl("three"));
  for (const [v, n] of [[a, "A"], [b, "B"], [c, "C"]]) await inSync(v.page, n);

  // A pauses: everyone stops at the same place.
  await a.page.click("#play");
  const paused = await Promise.all([a, b, c].map((v) => eventually(async () => {
    const p = await probe(v.page);
    return p?.roomPaused && p.paused && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
  }, { what: "paused" })));
  const spread = Math.max(...paused.map((p) => p.position)) - Math.min(...paused.map((p) => p.position));
  assert.ok(spread < TOGETHER, `paused ${spread.toFixed(3)} s apart`);

  // B seeks to 42 s while paused.
  await seekTo(b.page, 42);
  for (const v of [a, b, c]) {
    await eventually(async () => {
      const p = await probe(v.page);
      return p && Math.abs(p.position - 42) < 0.05 && p.paused;
    }, { what: "seeked to 42" });
  }

  // C sets 1.5x and plays: everyone plays at 1.5x, together. The server schedules the start a
  // moment ahead, so each player, paused where the room waits, starts then without seeking.
  await c.page.selectOption("#rate", "1.5");
  for (const v of [a, b, c]) {
    await v.page.evaluate(() => {
      window.__seeks = 0;
      window.lockstep.player.element.addEventListener("seeking", () => (window.__seeks += 1));
    });
  }
  await c.page.click("#play");
  for (const [v, n] of [[a, "A"], [b, "B"], [c, "C"]]) {
    const p = await inSync(v.page, n, { playing: true });
    assert.equal(p.roomRate, 1.5);
    // Within the first second after the play the grace may move the rate by up to MAX_NUDGE.
    assert.ok(Math.abs(p.rate / 1.5 - 1) <= SYNC.MAX_NUDGE + 1e-9, `${n} plays at ${p.rate}`);
    assert.equal(p.paused, false);
  }
  for (const [v, n] of [[a, "A"], [b, "B"], [c, "C"]]) {
    assert.equal(await v.page.evaluate(() => window.__seeks), 0, `${n} started with the room without a seek`);
  }
  assert.equal(await a.page.$eval("#rate", (el) => el.value), "1.5", "the rate menu follows the room");

  // A late joiner lands where the room is, not at the start.
  const d = await newViewer(browser);
  await d.page.goto(url);
  const late = await inSync(d.page, "late joiner");
  assert.ok(late.position > 42, `late joiner at ${late.position}`);
  await a.page.screenshot({ path: path.join(artifacts(), "room.png") });
  await d.page.setViewportSize({ width: 390, height: 844 });
  await d.page.screenshot({ path: path.join(artifacts(), "room-phone.png"), fullPage: true });
  for (const v of [a, b, c, d]) await v.context.close();
});

test("chat and queue changes appear for everyone; HTML in chat stays text", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, "Chatty");
  await b.page.goto(url);
  await b.page.waitForSelector("#connection[data-state=in-sync]");
  const evil = `<img src=x onerror="document.body.dataset.pwned=1"><b>bold</b>`;
  await a.page.fill("#chat-input", evil);
  await a.page.press("#chat-input", "Enter");
  // The last line that is not a system line (a presence line may come in after it).
  const shown = await eventually(() => b.page.$eval("#chat-log", (el) => [...el.children].filter((li) => !li.classList.contains("system")).at(-1)?.querySelector(".text")?.textContent), { what: "chat line" });
  assert.equal(shown, evil, "shown exactly as typed");
  assert.equal(await b.page.$$eval("#chat-log img, #chat-log b", (els) => els.length), 0, "no element was created");
  assert.equal(await b.page.evaluate(() => document.body.dataset.pwned ?? null), null);

  // Mentions of me are highlighted.
  const bName = await b.page.evaluate(() => window.lockstep.model.me.name);
  await a.page.fill("#chat-input", `hey ${bName}, look`);
  await a.page.press("#chat-input", "Enter");
  await eventually(() => b.page.$eval("#chat-log", (el) => el.querySelector(":scope > .mention") !== null), { what: "mention" });

  // Queue: A adds two, B sees both with their titles and who added them; A reorders, B removes.
  await addToQueue(a.page, fixtures.mediaUrl("first"));
  await addToQueue(a.page, fixtures.mediaUrl("second"));
  await addToQueue(a.page, fixtures.mediaUrl("third"));
  await b.page.click("#tab-queue");
  const titles = () => b.page.$$eval("#queue-list .title", (els) => els.map((e) => e.textContent));
  await eventually(async () => (await titles()).length === 2, { what: "queue on B" });
  // Both looked up (length and poster frame known), so the list is not rebuilt under the drag.
  await eventually(async () => (await b.page.$$("#queue-list li .len")).length === 2, { what: "both items looked up" });
  assert.deepEqual(await titles(), ["second", "third"]);
  const aName = await a.page.evaluate(() => window.lockstep.model.me.name);
  assert.match(await b.page.$eval("#queue-list .sub", (e) => e.textContent), new RegExp(`added by ${aName}`));
  await a.page.click("#queue-list li:nth-child(2) button[title='Move up']");
  await eventually(async () => (await titles())[0] === "third", { what: "reordered" });
  // Drag and drop works too: B drags the last item onto the first.
  await b.page.dragAndDrop("#queue-list li:nth-child(2)", "#queue-list li:nth-child(1)");
  await eventually(async () => (await titles())[0] === "second", { what: "dragged" });
  // B may not remove A's items (everyone may add, only moderators remove others' items).
  assert.equal(await b.page.$$eval("#queue-list button[title=Remove]", (els) => els.length), 0);
  await a.page.click("#queue-list li:first-child button[title=Remove]");
  await eventually(async () => (await titles()).join() === "third", { what: "removed" });
  for (const v of [a, b]) await v.context.close();
});

test("a viewer whose network drops for 5 s comes back in sync", async () => {
  const proxy = await startProxy(server.port);
  try {
    const a = await newViewer(browser);
    const url = await createRoom(a.page, "Flaky");
    await addToQueue(a.page, fixtures.mediaUrl("flaky"));
    await inSync(a.page, "A");
    // B reaches the server through the proxy.
    const b = await newViewer(browser);
    await b.page.goto(url.replace(server.base, proxy.base));
    await inSync(b.page, "B");
    proxy.cut(5000);
    await eventually(() => b.page.$eval("#connection", (el) => el.dataset.state === "reconnecting"), { what: "B notices" });
    // Meanwhile the room moves on without B.
    await seekTo(a.page, 60);
    await a.page.click("#tab-chat");
    await a.page.fill("#chat-input", "you missed this");
    await a.page.press("#chat-input", "Enter");
    await eventually(() => a.page.$eval("#chat-log", (el) => el.textContent.includes("you missed this")), { what: "A's line sent" });
    // B reconnects by itself, resumes, and catches up.
    await eventually(() => b.page.$eval("#connection", (el) => el.dataset.state === "in-sync"), { timeoutMs: 30_000, what: "B back" });
    // In sync with the room as it is now, past the seek it missed.
    await eventually(async () => {
      const p = await probe(b.page);
      return p && !p.paused && p.position > 60 && Math.abs(p.position - p.trueTarget) < TOGETHER;
    }, { what: "B after the drop" });
    // (Failing once in a full suite, with no more said: what B holds is told if it does again.)
    await eventually(async () => {
      const seen = await b.page.evaluate(() => ({ log: document.querySelector("#chat-log").textContent, model: window.lockstep.model.chat.map((l) => l.text), seq: window.lockstep.model.seq }));
      if (seen.log.includes("you missed this")) return true;
      throw new Error(JSON.stringify(seen));
    }, { what: "missed chat" });
    for (const v of [a, b]) await v.context.close();
  } finally {
    await proxy.close();
  }
});

test("a viewer whose clock has lost its samples still follows the room's pause and a seek while paused, and plays again once its clock is back", async () => {
  const a = await newViewer(browser);
  const b = await newViewer(browser);
  const url = await createRoom(a.page, "No clock");
  await b.page.goto(url);
  await addToQueue(a.page, fixtures.mediaUrl("noclock"));
  await inSync(a.page, "A", { playing: true });
  await inSync(b.page, "B", { playing: true });
  // B's clock forgets its samples and takes no new one, as when its pings are starved for a
  // minute (a hidden page's timers throttled): not ready, however long.
  const ready = await b.page.evaluate(() => {
    const clock = window.lockstep.clock;
    clock.addSample = () => false;
    clock.samples = [];
    return clock.ready;
  });
  assert.equal(ready, false);
  await a.page.click("#play");
  await eventually(async () => {
    const p = await probe(b.page);
    return p?.roomPaused && p.paused && Math.abs(p.position - p.trueTarget) < TOGETHER && p;
  }, { what: "B paused with the room, without a clock" });
  await seekTo(a.page, 42);
  await eventually(async () => {
    const p = await probe(b.page);
    return p && p.paused && Math.abs(p.position - 42) < 0.05;
  }, { what: "B at 42 s, without a clock" });
  // A play needs the clock: B waits for it, then plays with the room.
  await a.page.click("#play");
  await eventually(() => a.page.evaluate(() => !window.lockstep.model.playback.paused), { what: "the room plays" });
  assert.equal((await probe(b.page)).paused, true, "B waits for its clock to play");
  assert.equal(await b.page.evaluate(() => window.lockstep.clock.ready), false);
  await b.page.evaluate(() => delete window.lockstep.clock.addSample);
  await inSync(b.page, "B with its clock back", { playing: true });
  for (const v of [a, b]) await v.context.close();
});

test("a video that fails to load is loaded again until it plays, in sync", async () => {
  const a = await newViewer(browser);
  const url = await createRoom(a.page, "Retry");
  await addToQueue(a.page, fixtures.mediaUrl("retry"));
  await inSync(a.page, "A", { playing: true });
  // B's first requests for the video fail, as when the server it reached went away: three, so
  // that its player fails twice and is loaded again 1 s and then 2 s later (four took 17 s of
  // the suite: 8 s more of waiting for the same check).
  const b = await newViewer(browser);
  let refused = 0;
  await b.context.route("**/media/retry.mp4", (route) => (refused++ < 3 ? route.abort("failed") : route.continue()));
  await b.page.addInitScript(() => {
    window.__videoErrors = 0;
    document.addEventListener("error", (e) => e.target instanceof HTMLVideoElement && window.__videoErrors++, true);
  });
  await b.page.goto(url);
  await eventually(async () => {
    const p = await probe(b.page);
    return p && !p.paused && Math.abs(p.position - p.trueTarget) < TOGETHER;
  }, { timeoutMs: 40_000, what: "B playing in sync after its failed loads" });
  assert.ok(refused > 3, `every refused request was tried again (${refused} requests)`);
  assert.ok((await b.page.evaluate(() => window.__videoErrors)) >= 2, "the player's own video failed, and was loaded again");
  for (const v of [a, b]) await v.context.close();
});

test("a viewer whose video never loads holds a room that waits for everyone while it tries again, not once it has given up", async () => {
  const a = await newViewer(browser);
  const url = await createRoom(a.page, "Unreachable");
  await a.page.click("#open-settings");
  await a.page.check("#set-wait");
  await a.page.click("#settings-form button[type=submit]");
  await addToQueue(a.page, fixtures.mediaUrl("unreachable"));
  await inSync(a.page, "A", { playing: true });
  // Every request B makes for the video fails (its network cannot reach that host).
  const b = await newViewer(browser);
  await b.context.route("**/media/unreachable.mp4", (route) => route.abort("failed"));
  // B's page runs on a clock the test moves on: its retries come after 1, 2, 4 ... 30 s of it,
  // about 2 min in all, gone through in seconds.
  await b.context.clock.install();
  await b.page.goto(url);
  // While B tries again, the room waits for it.
  await eventually(async () => (await probe(a.page))?.roomPaused && (await a.page.$eval("#waiting", (e) => !e.hidden)), { what: "the room waiting for B" });
  // Its failures so far, and whether it has said it gave up (an error toast lasts 8 s of its clock).
  const retries = () => b.page.evaluate(() => ({ attempt: window.lockstep.loadRetries?.attempt ?? 0, gaveUp: /Reload the page to try again/.test(document.querySelector("#toasts")?.textContent ?? "") }));
  let last = await eventually(async () => {
    const r = await retries();
    return r.attempt >= 1 && r;
  }, { what: "B's first failed load" });
  // Each jump fires the retry that is due; the failure of that load sets the next one.
  while (!last.gaveUp) {
    assert.ok(last.attempt <= 8, `at most eight loads again (${last.attempt})`);
    assert.equal(await a.page.$eval("#waiting", (e) => !e.hidden), true, `the room waits for B during its retries (after ${last.attempt})`);
    await b.context.clock.fastForward(30_000);
    const before = last.attempt;
    last = await eventually(async () => {
      const r = await retries();
      return (r.attempt > before || r.gaveUp) && r;
    }, { what: `B's load again after failure ${before}` });
  }
  assert.equal(last.attempt, 9, "given up after the eighth load again");
  // Once B has given up (it was told so), the room plays on without it.
  await inSync(a.page, "A after B gave up", { playing: true });
  const bId = await b.page.evaluate(() => window.lockstep.model.me.user_id);
  for (let i = 0; i < 20; i++) {
    const [p, waiting, bReady] = [await probe(a.page), await a.page.$eval("#waiting", (e) => !e.hidden), await a.page.evaluate((id) => window.lockstep.model.members.get(id)?.ready, bId)];
    assert.deepEqual([p.roomPaused, waiting, bReady], [false, false, true], `the room plays on, not waiting for B (${i / 10} s)`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await a.page.evaluate((id) => window.lockstep.model.members.get(id)?.cannot_play, bId), true, "and A is told B cannot play");
  for (const v of [a, b]) await v.context.close();
});

test("a YouTube item plays through the IFrame API and is kept in sync by seeking and by steps at its rates", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, "YouTube");
  await b.page.goto(url);
  await addToQueue(a.page, "https://youtu.be/AAAAAAAAAAA");
  for (const [v, n] of [[a, "A"], [b, "B"]]) {
    await eventually(() => v.page.$("video.yt-standin"), { what: `${n} uses the YouTube player` });
    // YouTube has fixed rates only, so its seeks' band is wider: a quarter second.
    await eventually(async () => {
      const p = await probe(v.page);
      return p && !p.paused && Math.abs(p.position - p.trueTarget) < 0.3;
    }, { what: `${n} playing in sync` });
  }
  // A's seek: B's player lands 0.12 s past where it was sent, inside the band its seeks keep it
  // to. Before, it was left there for as long as the item played; now it is stepped back at
  // 0.75, the rate YouTube offers nearest below the room's, to within the step band, with no
  // second seek. B is told it is in sync all along, not "Catching up".
  await b.page.evaluate(() => {
    window.ytStandinSeekPast = 0.12;
    const v = document.querySelector("video.yt-standin");
    window.__ytSeeks = 0;
    window.__ytRates = [];
    v.addEventListener("seeking", () => window.__ytSeeks++);
    v.addEventListener("ratechange", () => window.__ytRates.push(v.playbackRate));
  });
  await seekTo(a.page, 40);
  // Where its video truly is against the room, by this machine's clock (not the API's reading).
  const truly = () =>
    b.page.evaluate(() => {
      const pb = window.lockstep.model.playback;
      const now = performance.timeOrigin + performance.now();
      const target = pb.paused ? pb.position : pb.position + Math.max(0, now / 1000 - pb.at / 1e6) * pb.rate;
      const position = document.querySelector("video.yt-standin").currentTime;
      return { position, off: position - target, seeks: window.__ytSeeks, rates: window.__ytRates, connection: document.querySelector("#connection")?.dataset.state };
    });
  // (A step at 0.75 is only taken ahead of the room: its seek landed ahead.)
  const stepped = await eventually(async () => {
    const t = await truly();
    return t.position > 39 && t.rates.includes(0.75) && t.rates.at(-1) === 1 && Math.abs(t.off) < 0.04 && t;
  }, { what: "B stepped back to within the step band" });
  assert.equal(stepped.seeks, 1, "one seek: the room's");
  assert.equal(stepped.connection, "in-sync");
  await b.page.evaluate(() => (window.ytStandinSeekPast = 0));
  assert.equal(await a.page.$eval("#np-title", (e) => e.textContent), "Test video AAAAAAAAAAA");
  // Pause, then play and pause again at once, then play: every player plays again (a pause soon
  // after a start is not taken for a blocked autoplay, which would leave the player paused
  // behind its "click to play" banner).
  await a.page.click("#play");
  await eventually(async () => (await probe(b.page))?.paused, { what: "B paused" });
  await a.page.click("#play");
  await new Promise((r) => setTimeout(r, 150));
  await a.page.click("#play");
  await new Promise((r) => setTimeout(r, 400));
  await a.page.click("#play");
  for (const [v, n] of [[a, "A"], [b, "B"]]) {
    await eventually(async () => {
      const p = await probe(v.page);
      return p && !p.roomPaused && !p.paused && Math.abs(p.position - p.trueTarget) < 0.3;
    }, { what: `${n} playing in sync again` });
    assert.equal(await v.page.$eval("#autoplay", (e) => e.hidden), true, `${n} shows no autoplay prompt`);
  }
  for (const v of [a, b]) await v.context.close();
});

test("a YouTube video one viewer cannot play: told why, no autoplay prompt, and a room that waits for everyone plays on for the others", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  // YouTube refuses B every video (error 150: not for this viewer's country or age).
  await b.context.addInitScript(() => (window.ytStandinRefuses = 150));
  const url = await createRoom(a.page, "Region");
  await b.page.goto(url);
  await a.page.click("#open-settings");
  await a.page.check("#set-wait");
  await a.page.click("#settings-form button[type=submit]");
  await eventually(() => b.page.evaluate(() => window.lockstep.model.settings.wait_for_everyone), { what: "setting" });
  await addToQueue(a.page, "https://youtu.be/AAAAAAAAAAA");
  await eventually(() => b.page.$eval("#toasts", (e) => /YouTube will not play this video here/.test(e.textContent)), { what: "B told why" });
  await eventually(async () => {
    const p = await probe(a.page);
    return p && !p.roomPaused && !p.paused && Math.abs(p.position - p.trueTarget) < 0.3 && p.position > 1.5;
  }, { what: "A playing on" });
  // And on, for 2 s: B is not waited for, not even now and then.
  const bId = await b.page.evaluate(() => window.lockstep.model.me.user_id);
  for (let i = 0; i < 20; i++) {
    const [p, waiting, bReady] = [await probe(a.page), await a.page.$eval("#waiting", (e) => !e.hidden), await a.page.evaluate((id) => window.lockstep.model.members.get(id)?.ready, bId)];
    assert.deepEqual([p.roomPaused, p.paused, waiting, bReady], [false, false, false, true], `the room plays on, not waiting for B (${i / 10} s)`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await b.page.$eval("#autoplay", (e) => e.hidden), true, "B is not asked to click to play");
  // B's own bar says so too, not "In sync" (it said so before: its last drift was of before).
  assert.equal(await b.page.$eval("#connection", (e) => [e.dataset.state, e.textContent].join()), "cannot-play,Cannot play");
  // A sees why: "cannot play" by B's name in the People tab, in place of an offset.
  await a.page.click("#tab-people");
  const badge = `#member-list li[data-user="${bId}"] .badge.cannot-play`;
  await eventually(() => a.page.$(badge), { what: "B marked as unable to play" });
  assert.equal(await a.page.$eval(badge, (e) => e.textContent), "cannot play");
  assert.equal(await a.page.$(`#member-list li[data-user="${bId}"] .badge.sync`), null, "no offset for B");
  // The next item, a video of its own, plays for B: the mark goes.
  await addToQueue(a.page, fixtures.mediaUrl("after-refused"));
  await a.page.click("#skip");
  await inSync(b.page, "B on the next item", { playing: true });
  await eventually(async () => (await a.page.$(badge)) === null, { what: "B's mark gone" });
  await b.page.waitForSelector("#connection[data-state=in-sync]");
  for (const v of [a, b]) await v.context.close();
});

test("a viewer whose YouTube player does not load is told, loads it again, and shows the next video in its page", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, "No API");
  // B's network cannot reach YouTube's API script, until it is let through.
  let refuse = Infinity;
  let requests = 0;
  await b.context.route((u) => u.pathname === "/yt/iframe_api.js", (route) => (requests++ < refuse ? route.abort("failed") : route.continue()));
  await b.page.goto(url);
  await addToQueue(a.page, fixtures.mediaUrl("before-youtube"));
  for (const link of ["https://youtu.be/BBBBBBBBBBB", fixtures.mediaUrl("after-youtube"), "https://youtu.be/CCCCCCCCCCC"]) await addToQueue(a.page, link);
  await inSync(b.page, "B", { playing: true });
  // A sees how well B keeps up (B reports every 5 s).
  const bId = await b.page.evaluate(() => window.lockstep.model.me.user_id);
  await a.page.click("#tab-people");
  const offset = `#member-list li[data-user="${bId}"] .badge.sync`;
  await eventually(() => a.page.$(offset), { timeoutMs: 15_000, what: "B's offset shown to A" });
  // The YouTube item: B is told its player did not come and that it tries again, and is not
  // asked to click to play meanwhile (its player has nothing that could start).
  await a.page.click("#skip");
  await eventually(() => b.page.$eval("#toasts", (e) => /cannot load the YouTube player\. Trying again/.test(e.textContent)), { what: "B told" });
  // While it tries again its bar does not say "In sync", and A no longer sees the offset it had
  // on the video before (it stayed for the report's 15 s, next to "buffering").
  assert.equal(await b.page.$eval("#connection", (e) => e.dataset.state), "catching-up");
  await eventually(() => a.page.evaluate((id) => window.lockstep.model.members.get(id)?.ready === false, bId), { what: "B not ready" });
  await eventually(async () => (await a.page.$(offset)) === null, { timeoutMs: 2000, what: "B's offset from before withdrawn" });
  assert.equal(await b.page.$eval("#connection", (e) => e.dataset.state), "catching-up");
  await eventually(() => a.page.$("video.yt-standin"), { what: "A plays the YouTube item" });
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await b.page.$eval("#autoplay", (e) => e.hidden), true, "B is not asked to click to play");
  assert.ok(requests >= 2, `B loaded the player again (${requests} requests)`);
  // The next video plays in a player B's page shows. Before, the page went on with the HTML5
  // player it had destroyed for the YouTube one: its <video> out of the page, heard, not seen.
  await a.page.click("#skip");
  await inSync(b.page, "B on the next video", { playing: true });
  assert.equal(await b.page.evaluate(() => document.querySelector("#player").contains(window.lockstep.player.element)), true, "B's player is in the page");
  assert.equal(await b.page.$$eval("#player video", (v) => v.length), 1, "one <video> in B's player");
  // YouTube again, its script refused once more and then let through: B loads it again and plays.
  refuse = requests + 1;
  await a.page.click("#skip");
  await eventually(async () => {
    const p = await probe(b.page);
    return p && !p.paused && Math.abs(p.position - p.trueTarget) < 0.3 && (await b.page.$("#player video.yt-standin"));
  }, { what: "B playing the YouTube item once loaded again" });
  assert.ok(requests > refuse, `refused once, then loaded (${requests} requests)`);
  for (const v of [a, b]) await v.context.close();
});

test("a video without sound is told apart: its viewers are corrected as setback-free players, by the page's clock; one with sound as before", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, "Silent film");
  await b.page.goto(url);
  await addToQueue(a.page, fixtures.silentUrl("silent-film"));
  await addToQueue(a.page, fixtures.mediaUrl("with-sound"));
  const traits = (page) => page.evaluate(() => ({ soundless: window.lockstep.player.soundless, setbackFree: window.lockstep.controller.setbackFree, paysSetback: window.lockstep.controller.paysSetback }));
  for (const [v, name] of [[a, "A"], [b, "B"]]) {
    await inSync(v.page, name, { playing: true });
    await eventually(async () => {
      const t = await traits(v.page);
      return t.soundless && t.setbackFree && !t.paysSetback;
    }, { what: `${name}'s player known to have no sound` });
  }
  // The next item has sound: Chromium's setback is paid again.
  await a.page.click("#skip");
  for (const [v, name] of [[a, "A"], [b, "B"]]) {
    await inSync(v.page, `${name} on the video with sound`, { playing: true });
    await eventually(async () => {
      const t = await traits(v.page);
      return t.soundless === false && !t.setbackFree && t.paysSetback;
    }, { what: `${name}'s player known to have sound` });
  }
  for (const v of [a, b]) await v.context.close();
});

/** Creates a private room from the lobby (with `password`, if given); returns its invite link.
 * The invite is read from the navigation itself: once the page is in, it replaces its address
 * with the room's own (/r/...), which a guest of a private room cannot open, so reading
 * page.url() after the navigation raced with that. */
async function createPrivateRoom(page, name, { password = null } = {}) {
  await page.goto(`${server.base}/`);
  await page.fill("#room-name", name);
  await page.check("input[value=private]");
  if (password !== null) await page.fill("#room-password", password);
  const inviteNav = page.waitForRequest((r) => r.isNavigationRequest() && /\/i\//.test(r.url()));
  await page.click("text=Create room");
  const invite = (await inviteNav).url();
  await page.waitForURL(/\/(i|r)\//);
  return invite;
}

test("a private room with a password: invite link, password prompt, then in", async () => {
  const owner = await newViewer(browser);
  const invite = await createPrivateRoom(owner.page, "Secret club", { password: "hunter2" });
  const guest = await newViewer(browser);
  await guest.page.goto(invite);
  await guest.page.waitForSelector("#password-dialog[open]");
  await guest.page.fill("#password-input", "wrong");
  await guest.page.click("#password-form button[type=submit]");
  await eventually(() => guest.page.$eval("#password-error", (e) => e.textContent.includes("not the password")), { what: "refusal" });
  await guest.page.fill("#password-input", "hunter2");
  await guest.page.click("#password-form button[type=submit]");
  await guest.page.waitForSelector("#connection[data-state=in-sync]");
  assert.match(guest.page.url(), /\/r\//);
  assert.equal(await guest.page.$eval("#room-name", (e) => e.textContent), "Secret club");
  // A stranger with the room's own address gets nothing.
  const stranger = await newViewer(browser);
  await stranger.page.goto(guest.page.url());
  await stranger.page.waitForSelector("#message:not([hidden])");
  assert.match(await stranger.page.$eval("#message", (e) => e.textContent), /No such room/);
  for (const v of [owner, guest, stranger]) await v.context.close();
});

/** Waits until the page's clock holds its three samples taken over HTTP: `/api/clock` requests
 * with the network stack's timings (`timed`), and how many of those the clock holds (`used`; an
 * answer's timing entry is there a moment before the page has read it). */
const httpClockSamples = (page) =>
  eventually(
    async () => {
      const found = await page.evaluate(() => {
        const timed = performance.getEntriesByType("resource").filter((e) => new URL(e.name).pathname === "/api/clock" && e.requestStart > 0 && e.responseStart >= e.requestStart);
        const ats = new Set(window.lockstep.clock.samples.map((s) => s.at));
        return { timed: timed.length, used: timed.filter((e) => ats.has(performance.timeOrigin + e.responseStart)).length };
      });
      return found.used === 3 ? found : Promise.reject(new Error(JSON.stringify(found)));
    },
    { what: "the clock's three samples over HTTP", timeoutMs: 5000 },
  );

test("the clock's first samples come over HTTP, timed by the browser, on a room's own address and through an invite", async () => {
  const owner = await newViewer(browser);
  const invite = await createPrivateRoom(owner.page, "Clocks");
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  // Through the invite: the page opens its connection itself (room.js), not early.js.
  const guest = await newViewer(browser);
  await guest.page.goto(invite);
  await guest.page.waitForSelector("#connection[data-state=in-sync]");
  assert.deepEqual(await httpClockSamples(guest.page), { timed: 3, used: 3 });
  // By the room's own address (early.js), a reload of the same guest's page.
  await guest.page.goto(guest.page.url());
  await guest.page.waitForSelector("#connection[data-state=in-sync]");
  assert.match(guest.page.url(), /\/r\//);
  assert.deepEqual(await httpClockSamples(guest.page), { timed: 3, used: 3 });
  for (const v of [owner, guest]) await v.context.close();
});

test("a public room with a password, opened by its own address: the page asks, then connects", async () => {
  // The page opens the room's socket before it knows the room needs a password (early.js); the
  // server refuses it, and once the password is given the page connects anew.
  const owner = await newViewer(browser);
  await owner.page.goto(`${server.base}/`);
  await owner.page.fill("#room-name", "Open door");
  await owner.page.fill("#room-password", "swordfish");
  await owner.page.click("text=Create room");
  await owner.page.waitForURL(/\/r\//);
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  const guest = await newViewer(browser);
  await guest.page.goto(owner.page.url());
  await guest.page.waitForSelector("#password-dialog[open]");
  await guest.page.fill("#password-input", "swordfish");
  await guest.page.click("#password-form button[type=submit]");
  await guest.page.waitForSelector("#connection[data-state=in-sync]");
  await eventually(() => owner.page.$$eval("#member-list li", (xs) => xs.length === 2), { what: "the guest among the people" });
  for (const v of [owner, guest]) await v.context.close();
});

test("a page that hears the welcome before the room's view enters with it; a private room's invite link comes with the view", async () => {
  const owner = await newViewer(browser);
  await owner.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.base });
  await owner.page.goto(`${server.base}/`);
  await owner.page.fill("#room-name", "Slow view");
  await owner.page.check("input[value=private]");
  await owner.page.click("text=Create room");
  await owner.page.waitForURL(/\/r\//);
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  const id = new URL(owner.page.url()).pathname.split("/")[2];
  // The room's view is held back until released: the page enters on its socket's welcome.
  const release = await holdBack(owner.page, `**/api/rooms/${id}`);
  await owner.page.reload();
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  assert.equal(await owner.page.$eval("#room-name", (e) => e.textContent), "Slow view");
  // The invite of a private room is not in the welcome: copying it waits for the view.
  await owner.page.click("#invite");
  release();
  const copied = await eventually(async () => {
    const text = await owner.page.evaluate(() => navigator.clipboard.readText());
    return /\/i\//.test(text) && text;
  }, { what: "the invite link copied" });
  assert.match(copied, new RegExp(`^${server.base}/i/`));
  await owner.context.close();
});

test("until the panels' modules arrive the panels say they are loading; then they show the room", async () => {
  const owner = await newViewer(browser);
  const url = await createRoom(owner.page, "Slow panels");
  await owner.page.fill("#chat-input", "said before the reload");
  await owner.page.press("#chat-input", "Enter");
  await eventually(() => owner.page.$$eval("#chat-log .line .text", (els) => els.some((e) => e.textContent === "said before the reload")), { what: "the line said" });
  // The chat's module is held back: the page enters and syncs without it.
  const release = await holdBack(owner.page, "**/static/js/chat.js");
  await owner.page.goto(url);
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  const notes = () => owner.page.evaluate(() => ["#chat-log", "#queue-list", "#member-list"].map((s) => document.querySelector(s).textContent.trim()));
  assert.deepEqual(await notes(), ["Loading the chat…", "Loading the queue…", "Loading who is here…"]);
  assert.ok(await owner.page.isVisible("#chat-log .empty-note"), "shown where the chat will be");
  release();
  await eventually(() => owner.page.$$eval("#chat-log .line .text", (els) => els.some((e) => e.textContent === "said before the reload")), { what: "the chat shown" });
  const [chat, queue, people] = await notes();
  assert.doesNotMatch(chat, /Loading/);
  assert.equal(queue, "The queue is empty.");
  assert.match(people, /\(you\)/);
  await owner.context.close();
});

test("a late joiner sets up its panels once it plays in step with the room, or after a second if its video does not come, or at once when a line is sent", async () => {
  const owner = await newViewer(browser);
  const url = await createRoom(owner.page, "Panels after the landing");
  await addToQueue(owner.page, fixtures.mediaUrl("panels"));
  await inSync(owner.page, "owner", { playing: true });
  // When the page's module made the room's page, and, looked at every 4 ms, when its chat was
  // set up and where its player and its landing were then.
  const watch = () => {
    window.__seen = null;
    Object.defineProperty(window, "lockstep", {
      configurable: true,
      get: () => window.__page,
      set: (page) => {
        window.__page = page;
        window.__appAt = performance.now();
      },
    });
    const poll = setInterval(() => {
      const app = window.lockstep;
      if (!app?.chat) return;
      clearInterval(poll);
      window.__seen = {
        waited: performance.now() - window.__appAt,
        playing: Boolean(app.player && !app.player.paused),
        landing: app.controller.holding() || app.controller.starting(),
      };
    }, 4);
  };
  const guest = await newViewer(browser);
  await guest.page.addInitScript(watch);
  await guest.page.goto(url);
  const seen = await eventually(() => guest.page.evaluate(() => window.__seen), { what: "the guest's chat set up" });
  // Unless the page took over a second from its module to its start (a slow machine).
  assert.ok((seen.playing && !seen.landing) || seen.waited >= 900, `the chat was set up while the player landed: ${JSON.stringify(seen)}`);
  await inSync(guest.page, "guest", { playing: true });
  // A joiner whose video does not come still gets its panels.
  const stuck = await newViewer(browser);
  await stuck.page.addInitScript(watch);
  const release = await holdBack(stuck.page, "**/media/panels.mp4");
  await stuck.page.goto(url);
  const late = await eventually(() => stuck.page.evaluate(() => window.__seen), { what: "the stuck joiner's chat set up" });
  assert.equal(late.playing, false, "set up while its video had not come");
  assert.ok(late.waited >= 500, `after the wait (PANELS_WAIT_MS), not at once: ${JSON.stringify(late)}`);
  release();
  await inSync(stuck.page, "stuck joiner", { playing: true });
  // A line sent before the panels are set up sets them up at once, and goes out.
  const eager = await newViewer(browser);
  await eager.page.addInitScript(watch);
  const releaseEager = await holdBack(eager.page, "**/media/panels.mp4");
  // (Not waiting for the page's load event: a <video> still loading holds it back.)
  await eager.page.goto(url, { waitUntil: "commit" });
  await eager.page.waitForFunction(() => window.lockstep && !window.lockstep.chat);
  await eager.page.fill("#chat-input", "said before the panels");
  await eager.page.press("#chat-input", "Enter");
  await eventually(() => owner.page.$$eval("#chat-log .line .text", (els) => els.some((e) => e.textContent === "said before the panels")), { what: "the early line at the owner's" });
  assert.equal((await eager.page.evaluate(() => window.__seen)).playing, false, "set up before its video came");
  assert.equal(await eager.page.inputValue("#chat-input"), "");
  releaseEager();
  for (const v of [owner, guest, stuck, eager]) await v.context.close();
});

test("a late joiner's video is fetched before the player's modules run, the player takes that <video> as its own, and its first landing plans by the time that video's first seek took", async () => {
  const owner = await newViewer(browser);
  const url = await createRoom(owner.page, "Early video");
  await addToQueue(owner.page, fixtures.mediaUrl("early"));
  await inSync(owner.page, "owner", { playing: true });
  // Well into the video: the guest's first response does not hold where it starts, so its early
  // <video>'s first seek fetches (one whose point came with the metadata is not timed).
  await seekTo(owner.page, 90);
  await inSync(owner.page, "owner", { playing: true });
  const guest = await newViewer(browser);
  // Every <video> the page makes, and the room's video fetched while room.js (which makes the
  // player) is held back.
  await guest.page.addInitScript(() => {
    const make = document.createElement.bind(document);
    window.__videos = [];
    document.createElement = (name, ...rest) => {
      const e = make(name, ...rest);
      if (String(name).toLowerCase() === "video") window.__videos.push(e);
      return e;
    };
    // The seek time its first landing planned by (sync.js: `firstSeekTimed`).
    const look = setInterval(() => {
      const c = window.lockstep?.controller;
      if (c && Number.isFinite(c.lastSeekAt)) {
        window.__landedBy = c.seekLatency;
        clearInterval(look);
      }
    }, 2);
  });
  const release = await holdBack(guest.page, "**/static/js/room.js");
  const fetched = guest.page.waitForRequest((r) => r.url().endsWith("/media/early.mp4"));
  await guest.page.goto(url, { waitUntil: "commit" });
  await fetched;
  assert.equal(await guest.page.evaluate(() => window.lockstep), undefined, "fetched before the page's own module ran");
  release();
  await inSync(guest.page, "guest", { playing: true });
  const adopted = await guest.page.evaluate(() => window.__videos.length === 1 && window.__videos[0] === window.lockstep.player.element && window.__videos[0].isConnected);
  assert.ok(adopted, "one <video>, made early, is the player's and in the page");
  const landedBy = await guest.page.evaluate(() => window.__landedBy);
  assert.ok(landedBy !== SYNC.INITIAL_SEEK_LATENCY && landedBy >= SYNC.INITIAL_BUFFERED_SEEK_LATENCY && landedBy <= SYNC.MAX_SEEK_LATENCY, `planned by ${landedBy} s`);
  for (const v of [owner, guest]) await v.context.close();
});

test("a linked MP4's keyframes reach the pages: the owner's, which loaded it while the server read them, and a joiner's", async () => {
  const owner = await newViewer(browser);
  const url = await createRoom(owner.page, "Keyframes");
  const link = fixtures.mediaUrl("keyframes");
  const asked = owner.page.waitForRequest((r) => r.url().includes("/media/keyframes?url="));
  await addToQueue(owner.page, link);
  await inSync(owner.page, "owner", { playing: true });
  // The test video has a keyframe every second (x264 may add one at a cut); the server read them
  // from its moov box.
  const expected = await eventually(async () => {
    const answer = await fetch(`${server.base}/media/keyframes?url=${encodeURIComponent(link)}`);
    return answer.ok && answer.json();
  }, { what: "the server to have read the keyframes" });
  assert.ok(expected.keyframes[0] === 0 && expected.keyframes.length >= VIDEO_SECONDS - 1, JSON.stringify(expected));
  await asked;
  const known = (page) => page.evaluate(() => Array.from(window.lockstep.controller.keyframes ?? []));
  await eventually(async () => (await known(owner.page)).length === expected.keyframes.length, { what: "the owner's page has the keyframes" });
  const guest = await newViewer(browser);
  await guest.page.goto(url);
  await inSync(guest.page, "guest", { playing: true });
  assert.deepEqual(await known(guest.page), expected.keyframes);
  for (const v of [owner, guest]) await v.context.close();
});

test("the room's socket opens as the page is parsed: the welcome comes before any module, and the page goes on with that socket", async () => {
  const owner = await newViewer(browser);
  const url = await createRoom(owner.page, "First socket");
  await addToQueue(owner.page, fixtures.mediaUrl("first"));
  await inSync(owner.page, "owner", { playing: true });
  const guest = await newViewer(browser);
  const sockets = [];
  const welcomed = new Promise((resolve) => {
    guest.page.on("websocket", (ws) => {
      sockets.push(ws.url());
      ws.on("framereceived", (f) => String(f.payload).startsWith('{"t":"welcome"') && resolve());
    });
  });
  // A script the CSP refused would be reported here.
  const refused = [];
  guest.page.on("console", (m) => /Content Security Policy/i.test(m.text()) && refused.push(m.text()));
  const release = await holdBack(guest.page, "**/static/js/early.js");
  await guest.page.goto(url, { waitUntil: "commit" });
  const timedOut = new Promise((resolve) => setTimeout(() => resolve("timed out"), 10_000).unref());
  assert.equal(await Promise.race([welcomed.then(() => "welcomed"), timedOut]), "welcomed", "the welcome came while early.js was held back");
  release();
  await inSync(guest.page, "guest", { playing: true });
  assert.deepEqual(sockets, [url.replace(/^http/, "ws").replace("/r/", "/api/rooms/") + "/ws"], "one socket, the page's first");
  assert.deepEqual(refused, []);
  for (const v of [owner, guest]) await v.context.close();
});

test("a ban in a private room: the owner is told about the invite link; clearing cookies does not get back in", async () => {
  const owner = await newViewer(browser);
  const invite = await createPrivateRoom(owner.page, "Book club");
  await owner.page.waitForSelector("#connection[data-state=in-sync]");
  const troll = await newViewer(browser);
  await troll.page.goto(invite);
  await troll.page.waitForSelector("#connection[data-state=in-sync]");
  const name = await troll.page.evaluate(() => window.lockstep.model.you.name);
  // The owner bans from the people list.
  await owner.page.click("#tab-people");
  const row = owner.page.locator(`#member-list li:has(.name:text-is("${name}"))`);
  await row.locator("summary").click();
  owner.page.once("dialog", (d) => d.accept());
  await row.locator("button.danger").click();
  const told = await eventually(
    () => owner.page.$$eval(".toast", (ts) => ts.map((t) => t.textContent).find((t) => t.includes("invite link")) ?? null),
    { what: "the invite-link advice" },
  );
  assert.match(told, /New invite link/);
  await troll.page.waitForSelector("#message:not([hidden])");
  // Cookies cleared (a new browser context), same address, old link: still out, and told why.
  const again = await newViewer(browser);
  await again.page.goto(invite);
  await again.page.waitForSelector("#message:not([hidden])");
  assert.match(await again.page.$eval("#message", (e) => e.textContent), /network address was banned/);
  for (const v of [owner, troll, again]) await v.context.close();
});

test("when the browser blocks autoplay, a banner explains it and one click joins playback", async () => {
  const a = await newViewer(browser);
  const url = await createRoom(a.page, "Autoplay");
  await addToQueue(a.page, fixtures.mediaUrl("autoplay"));
  await inSync(a.page, "A", { playing: true });
  // Playwright's navigation counts as a user gesture, so Chromium would allow autoplay here.
  // Emulate its policy for people who have not clicked yet: play() rejects with NotAllowedError
  // until the page sees a real pointer or key event.
  const b = await newViewer(browser);
  await b.context.addInitScript(() => {
    let activated = false;
    for (const type of ["pointerdown", "keydown"]) addEventListener(type, () => (activated = true), true);
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function () {
      if (!activated) return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
      return play.call(this);
    };
  });
  await b.page.goto(url);
  await b.page.waitForSelector("#autoplay:not([hidden])");
  assert.match(await b.page.$eval("#autoplay", (e) => e.textContent), /did not let the video start/);
  assert.equal((await probe(b.page)).paused, true);
  // While the banner waits for the click the player waits too: it landed again every 2 s
  // (SEEK_COOLDOWN), seeking (and fetching) each time, 5 times in 10 s.
  await b.page.evaluate(() => {
    window.__seeks = 0;
    window.lockstep.player.element.addEventListener("seeking", () => (window.__seeks += 1));
  });
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(await b.page.evaluate(() => window.__seeks), 0, "seeks while the banner waits");
  await b.page.click("#join-playback");
  await b.page.waitForSelector("#autoplay", { state: "hidden" });
  await inSync(b.page, "B after the click", { playing: true });
  for (const v of [a, b]) await v.context.close();
});

test("wait for everyone: the room pauses while one viewer buffers and resumes when it is ready", async () => {
  const [a, b] = [await newViewer(browser), await newViewer(browser)];
  const url = await createRoom(a.page, "Patient");
  await b.page.goto(url);
  await addToQueue(a.page, fixtures.mediaUrl("patient"));
  for (const [v, n] of [[a, "A"], [b, "B"]]) await inSync(v.page, n, { playing: true });
  // The owner turns the setting on in the settings dialog.
  await a.page.click("#open-settings");
  await a.page.check("#set-wait");
  await a.page.click("#settings-form button[type=submit]");
  await eventually(() => b.page.evaluate(() => window.lockstep.model.settings.wait_for_everyone), { what: "setting" });
  // B's media requests stall: after a seek far ahead it has nothing to play, and buffers.
  let release;
  const stalled = new Promise((r) => (release = r));
  await b.page.route("**/media/patient.mp4", async (route) => {
    await stalled;
    // Unrouting right after the release may have handled this request already.
    await route.continue().catch(() => {});
  });
  await b.page.evaluate(() => window.lockstep.player.video.load()); // drop what it has buffered
  await seekTo(a.page, 100);
  // The room holds: A pauses too, and says who it waits for.
  await eventually(async () => (await probe(a.page))?.paused && (await a.page.$eval("#waiting", (e) => !e.hidden)), { what: "A waits" });
  const bName = await b.page.evaluate(() => window.lockstep.model.me.name);
  assert.match(await a.page.$eval("#waiting-text", (e) => e.textContent), new RegExp(bName));
  // B's data arrives: everyone plays on, together.
  release();
  await b.page.unroute("**/media/patient.mp4");
  for (const [v, n] of [[a, "A"], [b, "B"]]) await inSync(v.page, n, { playing: true });
  for (const v of [a, b]) await v.context.close();
});

test("chat history: the last lines on joining, older ones when scrolling up", async () => {
  const a = await newViewer(browser);
  const url = await createRoom(a.page, "Talkative");
  await a.page.evaluate(async () => {
    for (let i = 0; i < 130; i++) await window.lockstep.conn.send({ t: "chat", text: `line ${i}` });
  });
  const b = await newViewer(browser);
  await b.page.goto(url);
  await b.page.waitForSelector("#connection[data-state=in-sync]");
  const texts = () => b.page.$$eval("#chat-log .text", (els) => els.map((e) => e.textContent));
  const first = await texts();
  assert.ok(first.includes("line 129"));
  assert.ok(!first.includes("line 0"), "only the last lines come with the welcome");
  // Scrolled to the newest line (at the frame after the welcome), with nothing older fetched.
  await eventually(() => b.page.$eval("#chat-log", (el) => el.scrollTop > 0 && el.scrollHeight - el.scrollTop - el.clientHeight < 2) || null, { what: "the log at its newest line" });
  assert.deepEqual(await texts(), first, "nothing older loaded by itself");
  await b.page.$eval("#chat-log", (el) => (el.scrollTop = 0));
  await eventually(async () => (await texts()).includes("line 0"), { what: "older lines" });
  const all = await texts();
  assert.ok(all.indexOf("line 0") < all.indexOf("line 129"), "older lines go on top");
  for (const v of [a, b]) await v.context.close();
});

test("HLS plays natively, and through hls.js in a browser without native HLS", async () => {
  const a = await newViewer(browser);
  const url = await createRoom(a.page, "Streams");
  // B behaves like a browser without native HLS (Firefox): it must load hls.js.
  const b = await newViewer(browser);
  await b.context.addInitScript(() => {
    const canPlayType = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (type) {
      return /mpegurl/i.test(type) ? "" : canPlayType.call(this, type);
    };
  });
  await b.page.goto(url);
  await addToQueue(a.page, fixtures.hlsUrl);
  for (const [v, n] of [[a, "A (native)"], [b, "B (hls.js)"]]) await inSync(v.page, n, { playing: true });
  assert.equal(await a.page.evaluate(() => typeof window.Hls), "undefined", "native HLS needs no hls.js");
  assert.equal(await b.page.evaluate(() => typeof window.Hls), "function", "hls.js was loaded");
  // Seeking works in both.
  await seekTo(a.page, 80);
  for (const [v, n] of [[a, "A"], [b, "B"]]) {
    // Until the seek's event arrives, a viewer is "in sync" with the old position: wait for both.
    await eventually(async () => {
      const p = await probe(v.page);
      return p && !p.paused && p.position > 79 && Math.abs(p.position - p.trueTarget) < TOGETHER;
    }, { what: `${n} after the seek` });
  }
  for (const v of [a, b]) await v.context.close();
});
