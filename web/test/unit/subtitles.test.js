import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseTrack, languageName, parseTracks, trackLabels } from "../../public/js/subtitles.js";

const track = (over = {}) => ({ src: "/media/uploads/u/subtitles/0.vtt", language: null, title: null, default: false, forced: false, ...over });

test("a subtitles list keeps only tracks served with the upload, with short strings", () => {
  assert.deepEqual(parseTracks(null), []);
  assert.deepEqual(parseTracks({ src: "/media/uploads/u/subtitles/0.vtt" }), []);
  const parsed = parseTracks([
    { src: "/media/uploads/u/subtitles/0.vtt", language: "eng", title: "English (SDH)", default: false, forced: false },
    { src: "https://elsewhere.example/x.vtt", language: "fre" },
    { src: "/media/uploads/u/subtitles/1.vtt", language: "x".repeat(17), title: 42, default: "yes" },
    null,
  ]);
  assert.deepEqual(parsed, [
    track({ language: "eng", title: "English (SDH)" }),
    track({ src: "/media/uploads/u/subtitles/1.vtt" }),
  ]);
  assert.equal(parseTracks(Array.from({ length: 40 }, () => track())).length, 16);
});

test("tracks are named by their title, else their language, else their place; forced and twins said", () => {
  assert.equal(languageName("eng", "en"), "English");
  assert.equal(languageName("fre", "en"), "French");
  assert.equal(languageName(null, "en"), null);
  assert.deepEqual(
    trackLabels([
      track({ language: "eng", title: "English (SDH)" }),
      track({ language: "fre" }),
      track({ language: "fre", forced: true }),
      track({ language: "qaa" }),
      track(),
      track({ language: "ger" }),
      track({ language: "ger" }),
    ], "en"),
    ["English (SDH)", "French", "French (forced)", "qaa", "Track 5", "German 1", "German 2"],
  );
});

test("the track shown: the viewer's language, none when turned off (but forced), else the file's default", () => {
  const tracks = [track({ language: "eng" }), track({ language: "fre", default: true }), track({ language: "eng", forced: true })];
  assert.equal(chooseTrack(tracks, null), 1, "the file's default");
  assert.equal(chooseTrack(tracks, { language: "eng" }), 0, "mine, not the forced one");
  assert.equal(chooseTrack(tracks, { language: "jpn" }), 1, "mine is missing: the default");
  assert.equal(chooseTrack(tracks, { off: true }), 2, "off, but forced dialogue shows");
  assert.equal(chooseTrack([track({ language: "eng" })], { off: true }), -1);
  assert.equal(chooseTrack([track({ language: "eng" })], null), -1, "nothing marked: none");
  assert.equal(chooseTrack([], { language: "eng" }), -1);
});
