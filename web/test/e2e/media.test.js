// Browser tests of own videos: uploading (with a dropped connection), the jobs page live over
// Server-Sent Events, the library and playlists pages, and an upload played in a room with its
// seek previews. Real Chromium, the real server, the real ffmpeg.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { artifacts, eventually, launchBrowser, newViewer, startFixtures, startProxy, startServer, testVideo, uploadFile } from "./harness.js";

let fixtures;
let server;
let browser;

before(async () => {
  fixtures = await startFixtures();
  server = await startServer(fixtures, { LOCKSTEP_JOB_RETRY_BASE_MS: "200" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await fixtures?.close();
});

const jobsDone = (page) => page.$$eval(".upload.card .job-done", (els) => els.map((e) => e.dataset.kind).sort());

test("an upload survives a dropped connection, its jobs show live, and a room plays it with seek previews", async () => {
  const { page } = await newViewer(browser);
  await page.goto(`${server.base}/uploads`);
  await page.waitForSelector("#stream[data-state=in-sync]");
  assert.match(await page.textContent("#limits"), /per file/);

  // The first PATCH is cut off: the page retries by itself from the server's offset.
  let cut = 0;
  await page.route("**/api/uploads/*", (route) => {
    if (route.request().method() === "PATCH" && cut++ === 0) return route.abort("connectionreset");
    return route.continue();
  });
  await page.setInputFiles("#file-input", testVideo());
  // While the dropped chunk waits to be sent again, its card says so.
  await page.waitForSelector(".upload.card .upload-live >> text=connection lost, retrying", { timeout: 10_000 });
  await page.waitForSelector(".upload.card .state-probing, .upload.card .state-preparing, .upload.card .state-ready", { timeout: 30_000 });
  assert.ok(cut >= 2, "the upload was retried after the cut");

  // Its three jobs appear and finish while the page watches; a progress bar for each.
  await eventually(async () => (await jobsDone(page)).join() === "playable,poster,storyboard" || null, { timeoutMs: 60_000, what: "the three jobs done" });
  assert.equal(await page.textContent(".upload.card .state"), "Ready");
  await page.waitForSelector(".upload.card .upload-thumb img.thumb");
  assert.match(await page.textContent(".upload.card .upload-head .sub"), /2:00 · 480×270 · h264 \/ aac/);
  // An H.264 MP4 in 8-bit 4:2:0 is copied, and its job says so.
  assert.equal(await page.textContent('.upload.card .job-done[data-kind="playable"] .job-state'), "copied");
  // The thumbnail field's example is a time within the video.
  assert.equal(await page.getAttribute(".upload.card .time-input", "placeholder"), "1:00");
  assert.match(await page.textContent(".upload.card .upload-results"), /Seek previews: \d+ thumbnails/);

  // A thumbnail at a time the user picks; a time past the end is refused with the server's words.
  await page.fill(".thumb-form .time-input", "9:00");
  await page.click(".thumb-form button");
  await page.waitForSelector("#toasts .toast-error");
  assert.match(await page.textContent("#toasts .toast-error"), /pick a time from 0 to 120/);
  await page.fill(".thumb-form .time-input", "1:00");
  await page.click(".thumb-form button");
  await page.waitForSelector(".upload.card .thumbs img", { timeout: 30_000 });
  assert.match(await page.getAttribute(".upload.card .thumbs a", "title"), /1:00/);
  await page.screenshot({ path: path.join(artifacts(), "uploads.png"), fullPage: true });

  const id = await page.getAttribute(".upload.card", "data-id");

  // Save it, then make a playlist of it on the library page.
  await page.click(".upload.card >> text=Save to library");
  await page.waitForSelector("#toasts >> text=Saved to your library");
  await page.goto(`${server.base}/library`);
  await page.waitForSelector("#library .entry");
  assert.match(await page.textContent("#library .entry"), /clip\.mp4.*My upload · 2:00/);
  await page.fill("#save-url", "https://www.youtube.com/watch?v=aaaaaaaaaaa");
  await page.selectOption("#save-list", "watch_later");
  await page.click("#save-form button");
  await page.waitForSelector("#watch-later .entry");
  await page.fill("#playlist-name", "Movie night");
  await page.click("#new-playlist button");
  await page.waitForSelector(".playlist");
  await page.selectOption("#library .entry select", { label: "Movie night" });
  await page.waitForSelector(".playlist .entry");
  await page.fill(".playlist input[type=url]", "https://youtu.be/bbbbbbbbbbb");
  await page.click(".playlist .inline-form:last-child button");
  await eventually(async () => (await page.$$(".playlist .entry")).length === 2 || null, { what: "two entries in the playlist" });
  // Reorder: the link goes first.
  await page.click(".playlist .entry:nth-child(2) button[title='Move up']");
  await eventually(async () => /YouTube/.test(await page.textContent(".playlist .entry:first-child")) || null, { what: "reordered" });
  await page.fill(".playlist .playlist-name", "Film night");
  await page.click(".playlist .inline-form:first-child button");
  await eventually(async () => (await page.inputValue(".playlist .playlist-name")) === "Film night" || null, { what: "renamed" });
  await page.screenshot({ path: path.join(artifacts(), "library.png"), fullPage: true });
  // On a phone an entry's buttons stay beside it (they took a row of their own, even a lone ✕);
  // with the playlist menu too, they go under it.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(artifacts(), "library-390.png"), fullPage: true });
  const rows = (sel) => page.$eval(sel, (el) => {
    const [meta, ops] = [el.querySelector(".meta").getBoundingClientRect(), el.querySelector(".ops").getBoundingClientRect()];
    return { beside: ops.top < meta.bottom, inside: ops.right <= el.getBoundingClientRect().right };
  });
  assert.deepEqual(await rows(".playlist .entry"), { beside: true, inside: true }, "a playlist entry's buttons beside it");
  assert.deepEqual(await rows("#library .entry"), { beside: false, inside: true }, "a library entry's menu and ✕ under it");
  await page.setViewportSize({ width: 1280, height: 800 });

  // In a room: add the upload from "Mine…"; it plays; hovering the seek bar shows its storyboard.
  await page.goto(`${server.base}/`);
  await page.fill("#room-name", "Home videos");
  await page.click("text=Create room");
  await page.waitForURL(/\/r\//);
  await page.click("#tab-queue");
  await page.click("#open-picker");
  await page.waitForSelector("#picker .entry");
  await page.click(`#picker .entry:has-text("clip.mp4") button`);
  await page.click("#picker button[value=close]");
  await eventually(async () => {
    const t = await page.evaluate(() => window.lockstep?.player?.currentTime ?? 0);
    return t > 0.3 || null;
  }, { what: "the upload playing", timeoutMs: 20_000 });
  assert.match(await page.textContent("#np-title"), /clip\.mp4/);
  await eventually(async () => (await page.evaluate(() => window.lockstep.seekPreview.cues.length)) > 10 || null, { what: "the storyboard loaded" });
  const bar = await page.locator("#seek").boundingBox();
  await page.mouse.move(bar.x + bar.width * 0.75, bar.y + bar.height / 2);
  await page.waitForSelector(".seek-preview:not([hidden])");
  const preview = await page.$eval(".seek-preview", (el) => ({ sheet: el.dataset.sheet, xywh: el.dataset.xywh, at: el.textContent }));
  assert.match(preview.sheet, new RegExp(`/media/uploads/${id}/storyboard/sheet-000\\.jpg$`));
  assert.match(preview.at, /^1:3\d$/, "three quarters of 2:00");
  const sheet = await page.evaluate(async (u) => (await fetch(u)).headers.get("content-type"), preview.sheet);
  assert.equal(sheet, "image/jpeg");
  await page.screenshot({ path: path.join(artifacts(), "room-seek-preview.png") });

  // Save what plays to watch later from under the player.
  await page.click("#later-current");
  await page.waitForSelector("#toasts >> text=is in watch later");

  // The whole playlist goes into the queue in its order.
  await page.click("#open-picker");
  await page.click(`#picker .entry:has-text("Film night") button`);
  await page.click("#picker button[value=close]");
  await eventually(async () => (await page.$$("#queue-list li[data-id]")).length === 2 || null, { what: "the playlist queued" });
  assert.match(await page.textContent("#queue-list li:first-child"), /YouTube video bbbbbbbbbbb|bbbbbbbbbbb/);
  await page.screenshot({ path: path.join(artifacts(), "room-queue.png") });
});

test("an upload that is not a video is rejected with a clear message", async () => {
  const { page } = await newViewer(browser);
  await page.goto(`${server.base}/uploads`);
  await page.waitForSelector("#stream[data-state=in-sync]");
  await page.setInputFiles("#file-input", { name: "notes.mp4", mimeType: "video/mp4", buffer: Buffer.from("this is not a video\n".repeat(100)) });
  await page.waitForSelector(".upload.card .state-rejected", { timeout: 30_000 });
  assert.match(await page.textContent(".upload.card .upload-live"), /not a video|no video/i);
});

test("the jobs page's event stream comes back with Last-Event-ID and misses nothing", async () => {
  const proxy = await startProxy(server.port);
  const { context, page } = await newViewer(browser);
  try {
    const streams = [];
    page.on("request", (r) => {
      if (!r.url().endsWith("/api/jobs/events")) return;
      const slot = streams.push(undefined) - 1;
      // A stream opened as the page closes has no headers to give: nothing to record.
      r.allHeaders().then((h) => { streams[slot] = h["last-event-id"] ?? null; }, () => {});
    });
    await page.goto(`${proxy.base}/uploads`);
    await page.waitForSelector("#stream[data-state=in-sync]");
    proxy.cut(1500);
    await page.waitForSelector("#stream[data-state=reconnecting]");
    // While the page is cut off, the same user uploads from elsewhere (cookies do not depend on
    // the port): the page learns of it, and of its jobs, from what it missed.
    const id = await uploadFile(context.request, server.base, testVideo(), "while-away.mp4");
    await page.waitForSelector(`.upload.card[data-id="${id}"] .state-ready`, { timeout: 30_000 });
    await eventually(async () => (await page.$$(`.upload.card[data-id="${id}"] .job-done`)).length === 3 || null, { timeoutMs: 60_000, what: "its jobs done" });
    await page.waitForSelector("#stream[data-state=in-sync]");
    assert.equal(streams[0], null, "a fresh stream first");
    assert.ok(streams.length >= 2, "the stream was opened again");
    assert.match(streams.at(-1) ?? "", /^\d+$/, `and it said where it had got to: ${JSON.stringify(streams)}`);
  } finally {
    await context.close();
    await proxy.close();
  }
});

test("the jobs page's event stream outlives an error answer (a proxy's 502): the page opens a new one, saying where it got to", async () => {
  const proxy = await startProxy(server.port);
  const { context, page } = await newViewer(browser);
  try {
    await page.goto(`${proxy.base}/uploads`);
    await page.waitForSelector("#stream[data-state=in-sync]");
    // The browser's own reconnection is answered 502 (nginx while the server restarts): its
    // EventSource gives up for good. The page's next stream goes through.
    const asked = [];
    await page.route("**/api/jobs/events*", (route) => {
      asked.push(new URL(route.request().url()).search);
      if (asked.length === 1) return route.fulfill({ status: 502, contentType: "text/html", body: "<h1>502 Bad Gateway</h1>" });
      return route.continue();
    });
    proxy.cut(300);
    await eventually(() => asked.length >= 2 || null, { what: "a new stream after the 502", timeoutMs: 20_000 });
    await page.waitForSelector("#stream[data-state=in-sync]");
    assert.match(asked[1], /^\?last_event_id=\d+$/, `it said where it had got to: ${JSON.stringify(asked)}`);
    // And it hears what happens next.
    const id = await uploadFile(context.request, server.base, testVideo(), "after-502.mp4");
    await page.waitForSelector(`.upload.card[data-id="${id}"] .state-ready`, { timeout: 30_000 });
  } finally {
    await context.close();
    await proxy.close();
  }
});

test("an MP4 whose keyframes are 10 s apart is transcoded: its room waits with one message, then plays it with a keyframe every second", async () => {
  const { page } = await newViewer(browser, { width: 1366, height: 768 });
  await page.goto(`${server.base}/`);
  await page.fill("#room-name", "Sparse keyframes");
  await page.click("text=Create room");
  await page.waitForURL(/\/r\//);
  await page.waitForSelector("#connection[data-state=in-sync]");
  const request = page.context().request;
  // Half a minute of it: the transcode of the test video's usual 2 minutes took about ten seconds
  // here, for the same checks.
  const id = await uploadFile(request, server.base, testVideo({ gop: 10, seconds: 30 }), "sparse.mp4");
  // Queued once checked, while its playable copy is made.
  const checked = await eventually(async () => {
    const u = await (await request.get(`${server.base}/api/uploads/${id}`)).json();
    return u.state === "ready" ? u : null;
  }, { what: "the upload checked", timeoutMs: 30_000 });
  assert.equal(checked.playable, false, "not playable before its copy is made");
  await page.evaluate((uploadId) => window.lockstep.conn.send({ t: "queue_add_upload", upload_id: uploadId }), id);
  await page.waitForSelector("#preparing:not([hidden])");
  assert.equal(await page.isHidden("#waiting"), true, "one message over the player, not two");
  await page.screenshot({ path: path.join(artifacts(), "room-preparing.png") });
  await eventually(async () => ((await page.evaluate(() => window.lockstep?.player?.currentTime ?? 0)) > 0.3) || null, { what: "the upload playing", timeoutMs: 90_000 });
  const upload = await (await request.get(`${server.base}/api/uploads/${id}`)).json();
  assert.equal(upload.media.keyframe_spacing, 10);
  assert.equal(upload.jobs.find((j) => j.kind === "playable")?.result?.how, "transcoded");
  const { keyframes } = await (await request.get(`${server.base}/media/uploads/${id}/keyframes.json`)).json();
  assert.equal(keyframes.length, 30, "a keyframe every second");
  await page.context().close();
});

test("an upload's subtitles are offered in the room; each viewer picks their own, kept for the next video", async () => {
  // 20 s with two SRT tracks in Matroska: English (titled) and French (marked default).
  const dir = mkdtempSync(path.join(tmpdir(), "lockstep-e2e-subs-"));
  writeFileSync(path.join(dir, "en.srt"), "1\n00:00:00,000 --> 00:00:19,000\nHello from the subtitles\n");
  writeFileSync(path.join(dir, "fr.srt"), "1\n00:00:00,000 --> 00:00:19,000\nBonjour des sous-titres\n");
  const film = path.join(dir, "film.mkv");
  execFileSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=duration=20:size=320x180:rate=25", "-f", "lavfi", "-i", "sine=duration=20",
    "-i", path.join(dir, "en.srt"), "-i", path.join(dir, "fr.srt"),
    "-map", "0", "-map", "1", "-map", "2", "-map", "3",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt", "-shortest",
    "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=English (SDH)",
    "-metadata:s:s:1", "language=fre", "-disposition:s:1", "default", film,
  ]);
  for (const [width, height] of [[1366, 768], [390, 844]]) {
    const { page } = await newViewer(browser, { width, height });
    await page.goto(`${server.base}/`);
    await page.fill("#room-name", `Subtitles ${width}`);
    await page.click("text=Create room");
    await page.waitForURL(/\/r\//);
    await page.waitForSelector("#connection[data-state=in-sync]");
    const request = page.context().request;
    const id = await uploadFile(request, server.base, film, "film.mkv");
    await eventually(async () => (await (await request.get(`${server.base}/api/uploads/${id}`)).json()).playable || null, { what: "the upload playable", timeoutMs: 60_000 });
    await page.evaluate((uploadId) => window.lockstep.conn.send({ t: "queue_add_upload", upload_id: uploadId }), id);
    await page.waitForSelector("#subtitles:not([hidden])", { timeout: 30_000 });
    const options = await page.$$eval("#subtitles option", (os) => os.map((o) => o.textContent));
    assert.deepEqual(options, ["Subtitles off", "English (SDH)", "French"]);
    // The cue on screen: the track showing, its active cue's text.
    const showing = () => page.evaluate(() => {
      const tracks = [...document.querySelector("#player video").textTracks];
      const track = tracks.find((t) => t.mode === "showing");
      return track ? { label: track.label, cue: track.activeCues?.[0]?.text ?? null } : null;
    });
    if (width === 1366) {
      // No choice made yet: the file's default track shows.
      assert.equal(await page.inputValue("#subtitles"), "1");
      await eventually(async () => (await showing())?.cue === "Bonjour des sous-titres" || null, { what: "the French cue" });
      await page.selectOption("#subtitles", { label: "English (SDH)" });
      await eventually(async () => (await showing())?.cue === "Hello from the subtitles" || null, { what: "the English cue" });
      assert.equal(await page.evaluate(() => localStorage.getItem("lockstep.subtitles")), JSON.stringify({ language: "eng" }));
      await page.screenshot({ path: path.join(artifacts(), "room-subtitles.png") });
      // Off: nothing shows, and the next video starts without.
      await page.selectOption("#subtitles", "-1");
      assert.equal(await showing(), null);
      // The c key, from the page: on again with the track last shown, then off.
      await page.locator("#np-title").click();
      await page.keyboard.press("c");
      await eventually(async () => (await showing())?.cue === "Hello from the subtitles" || null, { what: "the English cue again" });
      assert.equal(await page.inputValue("#subtitles"), "0");
      await page.keyboard.press("c");
      assert.equal(await showing(), null);
      assert.equal(await page.evaluate(() => localStorage.getItem("lockstep.subtitles")), JSON.stringify({ off: true }));
    } else {
      // Another browser (its own storage): the file's default again; the menu fits a phone.
      await eventually(async () => (await showing())?.cue === "Bonjour des sous-titres" || null, { what: "the French cue" });
      await page.screenshot({ path: path.join(artifacts(), "room-subtitles-narrow.png") });
      const box = await page.locator("#subtitles").boundingBox();
      assert.ok(box && box.x + box.width <= width, `the menu is on screen: ${JSON.stringify(box)}`);
      // Its choices are not cut ("Subtitles o" was all a phone showed of "Subtitles off"): the menu
      // is as wide as its widest choice, and the buttons beside it keep one row.
      const cut = await page.evaluate(() => {
        const menu = document.querySelector("#subtitles");
        const capped = menu.getBoundingClientRect().width;
        menu.style.maxWidth = "none";
        const whole = menu.getBoundingClientRect().width;
        menu.style.maxWidth = "";
        return whole - capped;
      });
      assert.ok(cut < 0.5, `the menu is ${cut} px narrower than its choices`);
      const row = await page.$$eval(".now-playing > :not(.info):not([hidden])", (els) => {
        const boxes = els.map((e) => e.getBoundingClientRect());
        return { n: boxes.length, oneRow: Math.max(...boxes.map((b) => b.top)) < Math.min(...boxes.map((b) => b.bottom)) };
      });
      assert.ok(row.n >= 3 && row.oneRow, `the menu and the buttons beside it on one row: ${JSON.stringify(row)}`);
    }
    await page.context().close();
  }
});
