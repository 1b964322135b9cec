import test from "node:test";
import assert from "node:assert/strict";
import { TusUpload, UploadError, encodeMetadata, fingerprint, napUntilOnline } from "../../public/js/tus.js";
import { parseStoryboard, cueAt, parseTimestamp } from "../../public/js/storyboard.js";
import { PLAYABLE_HOW, UploadsModel, keyframeNote, parseTime, pixelNote, subtitlesNote } from "../../public/js/uploads-model.js";
import { formatBytes } from "../../public/js/format.js";

/** A tus server in memory, with a switch to drop the connection in the middle of a PATCH. */
function fakeServer({ dropAt = null, limit = Infinity, waits = 0 } = {}) {
  const uploads = new Map();
  let n = 0;
  const state = { uploads, patches: 0, heads: 0, dropAt, waits };
  const headers = (h) => ({ get: (k) => h[k.toLowerCase()] ?? null });
  state.fetch = async (url, init) => {
    if (init.method === "POST" && state.waits > 0) {
      state.waits -= 1;
      const error = { code: "account_too_new", message: "new visitors can upload 60 s after their first visit" };
      return { status: 429, ok: false, statusText: "wait", headers: headers({ "retry-after": "7" }), json: async () => ({ error }) };
    }
    if (init.method === "POST") {
      const size = Number(init.headers["Upload-Length"]);
      if (size > limit) {
        return { status: 413, ok: false, statusText: "too large", headers: headers({}), json: async () => ({ error: { code: "upload_too_large", message: "too large" } }) };
      }
      const id = `u${++n}`;
      uploads.set(id, { size, data: [], metadata: init.headers["Upload-Metadata"] });
      return { status: 201, ok: true, headers: headers({ location: `/api/uploads/${id}` }), json: async () => ({ id }) };
    }
    if (init.method === "HEAD") {
      state.heads += 1;
      const u = uploads.get(url.split("/").pop());
      if (!u) return { status: 404, ok: false, statusText: "gone", headers: headers({}), json: async () => ({ error: { code: "upload_not_found", message: "no" } }) };
      return { status: 200, ok: true, headers: headers({ "upload-offset": String(u.data.length) }) };
    }
    throw new Error(`unexpected ${init.method}`);
  };
  state.patch = async (url, offset, blob, onProgress) => {
    state.patches += 1;
    const u = uploads.get(url.split("/").pop());
    if (offset !== u.data.length) throw new UploadError(409, "offset_mismatch", "wrong offset");
    const bytes = [...blob.bytes];
    if (state.dropAt !== null && offset + bytes.length > state.dropAt) {
      // Half the chunk arrives, then the connection drops.
      const kept = state.dropAt - offset;
      u.data.push(...bytes.slice(0, kept));
      onProgress(offset + kept);
      state.dropAt = null;
      throw new TypeError("network error");
    }
    u.data.push(...bytes);
    return u.data.length;
  };
  return state;
}

function fakeFile(size, name = "holiday.mp4") {
  const bytes = Array.from({ length: size }, (_, i) => i % 251);
  const blob = (b) => ({ bytes: b, size: b.length, slice: (s, e) => blob(b.slice(s, e)) });
  return { ...blob(bytes), name, type: "video/mp4", lastModified: 42 };
}

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k), m };
}

test("tus metadata is base64 of UTF-8", () => {
  assert.equal(encodeMetadata({ filename: "a.mp4", filetype: "" }), "filename YS5tcDQ=");
  assert.equal(encodeMetadata({ filename: "été.mp4" }), `filename ${Buffer.from("été.mp4").toString("base64")}`);
});

test("an upload goes in chunks and reports progress", async () => {
  const server = fakeServer();
  const file = fakeFile(100);
  const seen = [];
  const up = new TusUpload(file, { fetch: server.fetch, patch: server.patch, storage: memoryStorage(), chunkBytes: 30, onProgress: (s) => seen.push(s) });
  const id = await up.start();
  assert.equal(id, "u1");
  assert.equal(server.patches, 4);
  assert.deepEqual(server.uploads.get("u1").data, file.bytes);
  assert.equal(seen.at(-1), 100);
});

test("a refusal that says when to try again is waited out, then the upload starts", async () => {
  const server = fakeServer({ waits: 1 });
  const slept = [];
  const told = [];
  const up = new TusUpload(fakeFile(10), {
    fetch: server.fetch, patch: server.patch, storage: memoryStorage(),
    sleep: async (ms) => slept.push(ms), onWaiting: (s, why) => told.push([s, why]),
  });
  assert.equal(await up.start(), "u1");
  assert.deepEqual(slept, [7000]);
  assert.deepEqual(told, [[7, "new visitors can upload 60 s after their first visit"]]);
  // Refused again and again: after three waits the error is the caller's.
  const stubborn = fakeServer({ waits: 10 });
  const again = new TusUpload(fakeFile(10), { fetch: stubborn.fetch, patch: stubborn.patch, storage: memoryStorage(), sleep: async () => {} });
  await assert.rejects(again.start(), (err) => err instanceof UploadError && err.code === "account_too_new");
});

test("a dropped connection is resumed from the server's offset", async () => {
  const server = fakeServer({ dropAt: 45 });
  const file = fakeFile(100);
  const sleeps = [];
  const up = new TusUpload(file, { fetch: server.fetch, patch: server.patch, storage: memoryStorage(), chunkBytes: 30, sleep: async (ms) => sleeps.push(ms) });
  await up.start();
  assert.deepEqual(server.uploads.get("u1").data, file.bytes, "every byte once, in order");
  assert.equal(sleeps.length, 1);
  assert.equal(server.heads, 1);
});

test("tries that fail while the browser says it is offline do not count: the upload goes on once back", async () => {
  const server = fakeServer();
  const file = fakeFile(100);
  const net = { offline: false };
  // The network goes after the first chunk, for twelve tries (five counted ones gave up before).
  let failed = 0;
  const patch = async (...args) => {
    if (server.patches >= 1 && failed < 12) {
      failed += 1;
      net.offline = true;
      server.patches += 1;
      throw new TypeError("network error");
    }
    return server.patch(...args);
  };
  const waits = [];
  const sleep = async (ms, early) => {
    waits.push([ms, early]);
    if (failed >= 12) net.offline = false;
  };
  const told = [];
  const up = new TusUpload(file, { fetch: server.fetch, patch, storage: memoryStorage(), chunkBytes: 30, retryDelays: [1000, 3000], sleep, offline: () => net.offline, onRetrying: (why) => told.push(why) });
  assert.equal(await up.start(), "u1");
  // The page is told while it waits, and once it goes on.
  assert.deepEqual(told, [...Array(12).fill("offline"), null]);
  assert.deepEqual(server.uploads.get("u1").data, file.bytes, "every byte once, in order");
  assert.equal(waits.length, 12);
  assert.ok(waits.every(([ms, early]) => ms === 5000 && early === true), `offline waits: ${JSON.stringify(waits)}`);
  // Online, the tries count as before: two delays, then it gives up.
  const flakyTold = [];
  const flaky = new TusUpload(fakeFile(100), { fetch: fakeServer().fetch, patch: async () => { throw new TypeError("network error"); }, storage: memoryStorage(), retryDelays: [1000, 3000], sleep: async () => {}, offline: () => false, onRetrying: (why) => flakyTold.push(why) });
  await assert.rejects(flaky.start(), /keeps failing/);
  assert.deepEqual(flakyTold, ["failed", "failed"]);
});

test("a retry's wait ends when the browser says its network is back", async () => {
  const window = new EventTarget();
  let woke = false;
  const nap = napUntilOnline(3_600_000, window).then(() => (woke = true));
  await null;
  assert.equal(woke, false);
  window.dispatchEvent(new Event("online"));
  await nap;
  assert.equal(woke, true);
  // Its timer went with it (the test would otherwise wait an hour to exit), and a later event
  // finds nothing listening.
  window.dispatchEvent(new Event("online"));
});

test("choosing the same file again after a reload resumes the same upload", async () => {
  const server = fakeServer({ dropAt: 50 });
  const storage = memoryStorage();
  const file = fakeFile(100);
  const first = new TusUpload(file, { fetch: server.fetch, patch: server.patch, storage, chunkBytes: 100, retryDelays: [] });
  await assert.rejects(first.start(), /keeps failing/);
  assert.equal(storage.getItem(fingerprint(file)), "/api/uploads/u1");
  // A new page: the same file resumes at 50 rather than starting again.
  const again = new TusUpload(file, { fetch: server.fetch, patch: server.patch, storage, chunkBytes: 100 });
  assert.equal(await again.start(), "u1");
  assert.ok(again.resumed);
  assert.equal(server.uploads.size, 1);
  assert.deepEqual(server.uploads.get("u1").data, file.bytes);
  assert.equal(storage.getItem(fingerprint(file)), null, "forgotten once complete");
});

test("a remembered upload the server no longer has starts afresh", async () => {
  const server = fakeServer();
  const storage = memoryStorage();
  const file = fakeFile(10);
  storage.setItem(fingerprint(file), "/api/uploads/expired");
  const up = new TusUpload(file, { fetch: server.fetch, patch: server.patch, storage });
  assert.equal(await up.start(), "u1");
  assert.ok(!up.resumed);
});

test("the server's refusal stops the upload with its code", async () => {
  const server = fakeServer({ limit: 5 });
  const up = new TusUpload(fakeFile(10), { fetch: server.fetch, patch: server.patch, storage: memoryStorage() });
  await assert.rejects(up.start(), (err) => err.code === "upload_too_large" && err.status === 413);
});

test("storyboard tracks", () => {
  const vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n/media/uploads/u/storyboard/sheet-000.jpg#xywh=0,0,160,90\n\n" +
    "00:00:04.000 --> 00:00:08.000\n/media/uploads/u/storyboard/sheet-000.jpg#xywh=160,0,160,90\n\n" +
    "01:06:40.000 --> 01:06:44.000\nsheet-001.jpg#xywh=0,0,160,90\n\nbroken --> cue\nx.jpg\n";
  const cues = parseStoryboard(vtt, "http://h/media/uploads/u/storyboard.vtt");
  assert.equal(cues.length, 3);
  assert.deepEqual(cues[1], { start: 4, end: 8, url: "http://h/media/uploads/u/storyboard/sheet-000.jpg", x: 160, y: 0, w: 160, h: 90 });
  assert.equal(cues[2].url, "http://h/media/uploads/u/sheet-001.jpg");
  assert.equal(cueAt(cues, 5.5), cues[1]);
  assert.equal(cueAt(cues, 0), cues[0]);
  assert.equal(cueAt(cues, 99999), cues[2]);
  assert.equal(cueAt(cues, -1), null);
  assert.equal(cueAt([], 3), null);
  assert.equal(parseTimestamp("01:02.5"), 62.5);
  assert.ok(Number.isNaN(parseTimestamp("1:x")));
});

test("the uploads model follows the event stream", () => {
  const m = new UploadsModel();
  m.apply("upload", { id: "a", state: "probing", created: 1, updated: 1, playable: false });
  m.apply("upload", { id: "b", state: "ready", created: 2, updated: 2, playable: true });
  m.apply("job", { id: "j1", upload_id: "a", kind: "poster", state: "running", progress: 0.5, created: 3, updated: 3 });
  m.apply("job", { id: "j1", upload_id: "a", kind: "poster", state: "done", progress: 1, result: { poster: "/p.jpg" }, created: 3, updated: 5 });
  // A stale snapshot of the job does not undo the newer state.
  m.apply("job", { id: "j1", upload_id: "a", kind: "poster", state: "running", progress: 0.5, created: 3, updated: 3 });
  m.apply("job", { id: "j2", upload_id: "a", kind: "thumbnail", state: "done", result: { thumbnail: "/t.jpg", at: 1.5 }, created: 4, updated: 6 });
  assert.deepEqual(m.list().map((u) => u.id), ["b", "a"]);
  assert.equal(m.results("a").poster, "/p.jpg");
  assert.deepEqual(m.results("a").thumbnails, [{ url: "/t.jpg", at: 1.5, job: "j2" }]);
  assert.equal(m.results("b").video, "/media/uploads/b/video");
  assert.ok(m.busy("a"), "still probing");
  m.remove("a");
  assert.equal(m.apply("job", { id: "j3", upload_id: "a", kind: "poster", state: "queued" }), null);
  assert.deepEqual(m.list().map((u) => u.id), ["b"]);
});

test("bytes and times typed by people", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.4 MiB");
  assert.equal(formatBytes(4_294_967_296), "4 GiB");
  assert.equal(formatBytes(21_474_836_480), "20 GiB");
  assert.equal(parseTime("1:30"), 90);
  assert.equal(parseTime("90"), 90);
  assert.equal(parseTime("1:02:03.5"), 3723.5);
  assert.ok(Number.isNaN(parseTime("abc")));
  assert.ok(Number.isNaN(parseTime("-3")));
});

test("an upload's media line tells when its keyframes are sparse, by the server's threshold, and only then", () => {
  assert.equal(keyframeNote({ keyframe_spacing: 7 }, 3), "keyframes 7 s apart");
  assert.equal(keyframeNote({ keyframe_spacing: 3.25 }, 3), "keyframes 3.3 s apart");
  assert.equal(keyframeNote({ keyframe_spacing: 10.4 }, 3), "keyframes 10 s apart");
  for (const media of [{ keyframe_spacing: 3 }, { keyframe_spacing: 1 }, {}, null, undefined, { keyframe_spacing: "9" }, { keyframe_spacing: Infinity }]) {
    assert.equal(keyframeNote(media, 3), null, JSON.stringify(media));
  }
  // Another server's threshold, or none known (the client config did not come).
  assert.equal(keyframeNote({ keyframe_spacing: 4 }, 5), null);
  assert.equal(keyframeNote({ keyframe_spacing: 6 }, 5), "keyframes 6 s apart");
  for (const sparse of [undefined, null, "3", NaN]) assert.equal(keyframeNote({ keyframe_spacing: 7 }, sparse), null, String(sparse));
});

test("an upload's media line tells a pixel format other than 8-bit 4:2:0, HDR and interlacing, and only then", () => {
  for (const [format, note] of [
    ["yuv420p10le", "10-bit"],
    ["yuv420p10be", "10-bit"],
    ["yuv422p", "4:2:2"],
    ["yuvj422p", "4:2:2"],
    ["yuv444p", "4:4:4"],
    ["yuv422p10le", "10-bit 4:2:2"],
    ["yuv444p12le", "12-bit 4:4:4"],
    ["yuva444p", "4:4:4"],
    ["gbrp", "RGB"],
    ["gbrp10le", "10-bit RGB"],
  ]) {
    assert.equal(pixelNote({ pixel_format: format })?.replaceAll("\u00a0", " "), note, format);
  }
  assert.equal(pixelNote({ pixel_format: "yuv420p10le", color_transfer: "smpte2084" }), "10-bit\u00a0HDR");
  assert.equal(pixelNote({ pixel_format: "yuv420p10le", color_transfer: "arib-std-b67" }), "10-bit\u00a0HDR");
  assert.equal(pixelNote({ color_transfer: "smpte2084" }), "HDR");
  for (const order of ["tt", "bb", "tb", "bt"]) {
    assert.equal(pixelNote({ pixel_format: "yuv420p", field_order: order }), "interlaced", order);
  }
  assert.equal(pixelNote({ pixel_format: "yuv420p10le", field_order: "tt" }), "10-bit\u00a0interlaced");
  assert.equal(pixelNote({ pixel_format: "yuv420p", field_order: "progressive" }), null);
  assert.equal(pixelNote({ pixel_format: "yuv420p10le", color_transfer: "bt709" }), "10-bit");
  for (const media of [{ pixel_format: "yuv420p" }, { pixel_format: "yuvj420p" }, { pixel_format: "nv12" }, { pixel_format: "yuv420p", color_transfer: "bt709" }, {}, null, undefined, { pixel_format: 10 }]) {
    assert.equal(pixelNote(media), null, JSON.stringify(media));
  }
});

test("a finished playable copy says how it was made, in the page's words, for each way the server makes one", () => {
  assert.deepEqual(Object.keys(PLAYABLE_HOW).sort(), ["audio transcoded", "remuxed", "transcoded"]);
  assert.ok(Object.values(PLAYABLE_HOW).every((text) => text.length <= 16));
});

test("an upload's media line counts its subtitle tracks", () => {
  assert.equal(subtitlesNote({ subtitles: [{ stream: 2 }] }), "1\u00a0subtitle track");
  assert.equal(subtitlesNote({ subtitles: [{ stream: 2 }, { stream: 3 }, { stream: 4 }] }), "3\u00a0subtitle tracks");
  for (const media of [{ subtitles: [] }, {}, null, { subtitles: "x" }]) assert.equal(subtitlesNote(media), null, JSON.stringify(media));
});
