// What each viewer is heard playing, from the sound itself: a private PulseAudio server with one
// null sink of N channels, each viewer's <video> sent to a channel of its own (`setSinkId`), and
// one recording of that sink's monitor, so the channels are sample-aligned. Each channel is then
// matched against the test video's own audio (white noise, decoded by ffmpeg): every 10 ms of
// it, where in the video those 10 ms come from (normalised cross-correlation, to a fraction of a
// sample). The spread between viewers at one instant of the recording is then what a listener in
// the room would hear: no reading of currentTime, no clock, no timer.
//
// Why: Chromium's currentTime is not where its sound is. At rates other than 1 its time
// stretching (WSOLA) plays the video's sound at rate 1 in stretches and jumps between them, and
// its clock is re-anchored to that once per audio buffer (~21 ms); through PulseAudio even at
// rate 1 its readings step by ±5 ms while the sound runs smoothly (bench/RESULTS.md).
//
// Used by sync.mjs when SYNC_HEARD=1 (Chromium and Firefox). Needs Debian's pulseaudio and
// pulseaudio-utils (parec, pactl): scripts/bench-sync installs them for SYNC_HEARD=1.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The recording's sample rate (the sinks', so nothing is resampled between them). */
export const RATE = 48_000;
/** One match: 10 ms of a channel. */
const WINDOW = 480;
/** A match is kept when at least this like the video's sound (normalised correlation). */
const LIKE = 0.5;
/** Speaker positions, one per viewer (PulseAudio's names): up to eight viewers. */
const POSITIONS = ["front-left", "front-right", "rear-left", "rear-right", "front-center", "lfe", "side-left", "side-right"];

/** The device label of viewer `i`'s sink, as `enumerateDevices` gives it. */
export const sinkLabel = (i) => `lockstep-viewer-${i}`;

function need(binary) {
  if (spawnSync("sh", ["-c", `command -v ${binary}`]).status !== 0) {
    throw new Error(`SYNC_HEARD=1 needs ${binary}: install Debian's pulseaudio and pulseaudio-utils (scripts/bench-sync does)`);
  }
}

/**
 * Starts a private PulseAudio (its own runtime folder, no configuration read from the machine's)
 * with `sinks` (module lines, given its folder) and a default sink that plays nowhere (late joiners
 * play into it).
 * Returns its folder, the environment that reaches it, and its process.
 */
async function pulseDaemon(sinks) {
  need("pulseaudio");
  need("pactl");
  const dir = mkdtempSync(path.join(tmpdir(), "lockstep-pulse-"));
  const config = path.join(dir, "config", "pulse");
  mkdirSync(config, { recursive: true });
  // Chromium opens its streams at the server's default rate: the sinks' own.
  writeFileSync(path.join(config, "daemon.conf"), `default-sample-rate = ${RATE}\ndefault-sample-format = float32le\nexit-idle-time = -1\nflat-volumes = no\n`);
  const socket = path.join(dir, "native");
  const env = { HOME: dir, XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: path.join(dir, "config"), PULSE_SERVER: `unix:${socket}` };
  const modules = [`module-native-protocol-unix socket=${socket} auth-anonymous=1`, `module-null-sink sink_name=discard rate=${RATE}`, ...sinks(dir)];
  const daemon = spawn("pulseaudio", ["-n", "--daemonize=no", "--use-pid-file=no", "--exit-idle-time=-1", "--log-target=stderr", ...modules.map((m) => `--load=${m}`)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  daemon.stderr.on("data", (d) => (log = (log + d).slice(-4000)));
  const pactl = (...args) => execFileSync("pactl", args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }).toString();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if (existsSync(socket)) {
        pactl("set-default-sink", "discard");
        break;
      }
    } catch {
      // not up yet
    }
    if (daemon.exitCode !== null || Date.now() > deadline) {
      daemon.kill();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PulseAudio did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { dir, env, daemon };
}

/**
 * Starts a private PulseAudio (its own runtime folder, no configuration read from the machine's)
 * with a sink of `channels` channels, a mono sink per viewer feeding one channel of it, and a
 * default sink that nobody records (late joiners play into it). Returns `env` (for the browsers),
 * `record(file)` (starts recording the sink; returns `{ startedAt, stop }`, `startedAt` when its
 * first sample was played, by this machine's clock), `close()`.
 */
export async function startPulse(channels) {
  need("parec");
  if (channels > POSITIONS.length) throw new Error(`SYNC_HEARD=1 records at most ${POSITIONS.length} viewers`);
  const map = POSITIONS.slice(0, channels).join(",");
  const { dir, env, daemon } = await pulseDaemon(() => [
    `module-null-sink sink_name=heard rate=${RATE} channels=${channels} channel_map=${map} format=float32le`,
    ...POSITIONS.slice(0, channels).map((p, i) => `module-remap-sink sink_name=viewer${i} master=heard channels=1 channel_map=mono master_channel_map=${p} remix=no sink_properties=device.description=${sinkLabel(i)}`),
  ]);
  return {
    env,
    record(file) {
      const out = openSync(file, "w");
      const spawnedAt = Date.now();
      // When the recording's first sample was played (epoch ms): parec may take a second or two
      // to start delivering, so its start is told by the file's growth: a length seen at some
      // instant was all played by then, less up to its ~20 ms of latency.
      let firstAt = null;
      const watch = setInterval(() => {
        const frames = statSync(file).size / 4 / channels;
        const at = Date.now() - (frames / RATE) * 1000;
        if (frames > 0 && (firstAt === null || at < firstAt)) firstAt = at;
      }, 10);
      const parec = spawn("parec", ["-d", "heard.monitor", "--format=float32le", `--rate=${RATE}`, `--channels=${channels}`, `--channel-map=${map}`, "--no-remix", "--no-remap", "--raw", "--latency-msec=20"], {
        env: { ...process.env, ...env },
        stdio: ["ignore", out, "inherit"],
      });
      return {
        /** When its first sample was played, as far as told yet (at first, when parec started). */
        get startedAt() {
          return firstAt ?? spawnedAt;
        },
        stop: () => new Promise((r) => {
          clearInterval(watch);
          parec.once("exit", () => {
            closeSync(out);
            r();
          });
          parec.kill();
        }),
      };
    },
    close() {
      daemon.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a private PulseAudio whose viewer sinks are sound cards with clocks of their own: viewer
 * `i`'s sink (labelled `sinkLabel(i)`, for `routeSound`) is a pipe read `ppms[i]` parts per
 * million faster than its rate by the machine's clock (negative: slower; paced-reader.mjs). A
 * player's clock runs on its sound (Chromium's: a viewer's position ran 541 ppm ahead of the
 * machine's clock over 40 s with its sink 500 ppm fast, -95 with it 100 ppm slow), so each
 * viewer plays as on a machine whose sound card's crystal is that far off. Returns `env` (for the
 * browsers) and `close()`.
 */
export async function startSkewedSinks(ppms) {
  const fifo = (dir, i) => path.join(dir, `viewer${i}.fifo`);
  const { dir, env, daemon } = await pulseDaemon((dir) => ppms.map((_, i) => `module-pipe-sink sink_name=viewer${i} file=${fifo(dir, i)} rate=${RATE} format=s16le channels=2 use_system_clock_for_timing=no sink_properties=device.description=${sinkLabel(i)}`));
  const reader = fileURLToPath(new URL("paced-reader.mjs", import.meta.url));
  const readers = ppms.map((ppm, i) => spawn(process.execPath, [reader, fifo(dir, i), String(RATE), String(ppm), "4"], { stdio: ["ignore", "ignore", "inherit"] }));
  return {
    env,
    close() {
      for (const r of readers) r.kill();
      daemon.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Installed in a viewer's page before it opens: every <video> it makes plays into `label`'s sink.
 * (Device ids are the page's own. Chromium names the outputs to a context granted "microphone";
 * Firefox only once the page has had a microphone: firefox.js's `sound` answers with a fake one.)
 */
export function routeSound(label) {
  // (Firefox runs it in the window's first about:blank too, which has no media devices.)
  if (!navigator.mediaDevices) return;
  const find = () => navigator.mediaDevices.enumerateDevices().then((ds) => ds.find((d) => d.kind === "audiooutput" && d.label === label)?.deviceId);
  const device = find().then(async (id) => {
    if (id) return id;
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of mic.getTracks()) track.stop();
    return find();
  });
  const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "src");
  Object.defineProperty(HTMLMediaElement.prototype, "src", {
    ...src,
    set(value) {
      if (!this.__routed) {
        this.__routed = true;
        device.then((id) => (id ? this.setSinkId(id) : console.error(`no audio output ${label}`))).catch((e) => console.error(`setSinkId: ${e.message}`));
      }
      src.set.call(this, value);
    },
  });
}

/** The video's sound, as Chromium decodes it, mono at RATE (ffmpeg). */
export function referenceSound(video) {
  const raw = execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", video, "-vn", "-ac", "1", "-ar", String(RATE), "-f", "f32le", "-"], { maxBuffer: 1 << 30 });
  return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
}

/** A recording of `channels` interleaved float channels, one Float32Array each. */
export function readRecording(file, channels) {
  const raw = readFileSync(file);
  const all = new Float32Array(raw.buffer, raw.byteOffset, Math.floor(raw.byteLength / 4 / channels) * channels);
  const frames = all.length / channels;
  return Array.from({ length: channels }, (_, c) => {
    const x = new Float32Array(frames);
    for (let i = 0; i < frames; i++) x[i] = all[i * channels + c];
    return x;
  });
}

/** The reference's running sums of squares (for each lag's energy). */
export function energies(ref) {
  const sums = new Float64Array(ref.length + 1);
  for (let i = 0; i < ref.length; i++) sums[i + 1] = sums[i] + ref[i] * ref[i];
  return sums;
}

/** The lag in [lo, hi] (reference samples) where `seg` (from `at`, WINDOW long) is most like the
 * reference: `{ lag, like }`, the lag refined between samples. */
function match(seg, at, ref, sums, lo, hi) {
  lo = Math.max(0, Math.floor(lo));
  hi = Math.min(ref.length - WINDOW, Math.ceil(hi));
  let segEnergy = 0;
  for (let i = 0; i < WINDOW; i++) segEnergy += seg[at + i] * seg[at + i];
  if (hi < lo || segEnergy === 0) return { lag: NaN, like: 0 };
  const likeAt = (lag) => {
    let c = 0;
    for (let i = 0; i < WINDOW; i++) c += seg[at + i] * ref[lag + i];
    const e = sums[lag + WINDOW] - sums[lag];
    return e > 0 ? c / Math.sqrt(e * segEnergy) : 0;
  };
  let best = lo;
  let bestLike = -Infinity;
  for (let lag = lo; lag <= hi; lag++) {
    const like = likeAt(lag);
    if (like > bestLike) {
      bestLike = like;
      best = lag;
    }
  }
  let lag = best;
  if (best > 0 && best + 1 <= ref.length - WINDOW) {
    const a = likeAt(best - 1);
    const c = likeAt(best + 1);
    const bend = a - 2 * bestLike + c;
    if (bend < 0) lag += (0.5 * (a - c)) / bend;
  }
  return { lag, like: bestLike };
}

/** Where in the reference `seg` at `at` comes from, searched between `from` and `to` (s of the
 * video): a coarse pass on 8-sample sums of 50 ms, then `match` around the best. */
function locate(seg, at, ref, sums, coarse, from = 0, to = Infinity) {
  const n = 300;
  if (at + n * 8 > seg.length) return { lag: NaN, like: 0 };
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let k = 0; k < 8; k++) v += seg[at + i * 8 + k];
    s[i] = v;
  }
  let best = 0;
  let bestLike = -Infinity;
  const first = Math.max(0, Math.floor((from * RATE) / 8));
  const last = Math.min(coarse.values.length - n, Math.ceil((to * RATE) / 8));
  for (let lag = first; lag <= last; lag++) {
    let c = 0;
    for (let i = 0; i < n; i++) c += s[i] * coarse.values[lag + i];
    const e = coarse.sums[lag + n] - coarse.sums[lag];
    const like = e > 0 ? c / Math.sqrt(e) : 0;
    if (like > bestLike) {
      bestLike = like;
      best = lag;
    }
  }
  return match(seg, at, ref, sums, best * 8 - 16, best * 8 + 16);
}

/**
 * Where a channel's sound comes from in the video, every 10 ms of it: `[[recording s, video s], ...]`
 * (the video time of the window's first sample), silence and unlike stretches left out. Each
 * window is first looked for where the last one continues (±1 ms), then within ±60 ms of that
 * (time stretching jumps up to ~30 ms), then, after three windows missed so (a seek), within 2 s
 * of `hint(recording s)` (where the room is then, in s of the video, or null), then anywhere.
 */
export function heardPositions(channel, ref, sums = energies(ref), coarse = coarsen(ref), hint = () => null) {
  const out = [];
  let last = null;
  // Windows in a row not found where the last one continues: a few are a crossfade of time
  // stretching, more a seek. Only then is the window looked for everywhere (which reads the
  // whole reference), and after such a look failed, not again for 100 ms.
  let misses = 0;
  let lostUntil = 0;
  for (let at = 0; at + WINDOW * 5 <= channel.length; at += WINDOW) {
    let peak = 0;
    for (let i = 0; i < WINDOW; i++) peak = Math.max(peak, Math.abs(channel[at + i]));
    if (peak < 1e-3) {
      last = null;
      misses = 0;
      continue;
    }
    let found = null;
    if (last) {
      const expect = last.lag + (at - last.at);
      found = match(channel, at, ref, sums, expect - RATE / 1000, expect + RATE / 1000);
      if (found.like < LIKE) found = match(channel, at, ref, sums, expect - (60 * RATE) / 1000, expect + (60 * RATE) / 1000);
    }
    if ((!found || found.like < LIKE) && (!last || misses >= 3) && at >= lostUntil) {
      const near = hint(at / RATE);
      if (near !== null) found = locate(channel, at, ref, sums, coarse, near - 2, near + 2);
      if (!found || found.like < LIKE) found = locate(channel, at, ref, sums, coarse);
      if (found.like < LIKE) lostUntil = at + 10 * WINDOW;
    }
    if (!found || found.like < LIKE) {
      misses += 1;
      continue;
    }
    misses = 0;
    last = { at, lag: found.lag };
    out.push([at / RATE, found.lag / RATE]);
  }
  return out;
}

/** The reference in 8-sample sums, and their running sums of squares, for `locate`. */
export function coarsen(ref) {
  const values = new Float64Array(Math.floor(ref.length / 8));
  for (let i = 0; i < values.length; i++) {
    let v = 0;
    for (let k = 0; k < 8; k++) v += ref[i * 8 + k];
    values[i] = v;
  }
  return { values, sums: energies(values) };
}

/**
 * What each channel is heard playing at recording time `t` (s): the video time of the window that
 * holds `t`, moved on by how far into it `t` is (within a window the sound runs at rate 1, time
 * stretched or not), or null when that window was silent or unlike.
 */
export function heardAt(positions, t) {
  let lo = 0;
  let hi = positions.length - 1;
  if (hi < 0 || t < positions[0][0]) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (positions[mid][0] <= t) lo = mid;
    else hi = mid - 1;
  }
  const [at, video] = positions[lo];
  return t - at < WINDOW / RATE ? video + (t - at) : null;
}

/**
 * The spread between what the channels of `recording` play (`readRecording`'s file, `channels`
 * of them), every `stepMs` of it, at the instants `keep(epoch ms)` keeps where every channel is
 * heard playing the video `video` (its file): `[{ now, at, spread }]` (s; `at`: each channel's
 * place in the video). `startedAt`: when the recording's first sample was played (`record`'s),
 * by this machine's clock (epoch ms); `hint(epoch ms)`: where the room was then (s of the video),
 * or null.
 */
export function heardSpreads({ recording, channels, video, startedAt, stepMs, keep, hint = () => null }) {
  const ref = referenceSound(video);
  const sums = energies(ref);
  const coarse = coarsen(ref);
  const heard = readRecording(recording, channels).map((c) => heardPositions(c, ref, sums, coarse, (t) => hint(startedAt + t * 1000)));
  const rows = [];
  const length = Math.max(...heard.map((h) => h.at(-1)?.[0] ?? 0));
  for (let t = 0; t < length; t += stepMs / 1000) {
    const now = startedAt + t * 1000;
    if (!keep(now)) continue;
    const at = heard.map((h) => heardAt(h, t));
    if (at.some((x) => x === null)) continue;
    rows.push({ now, at, spread: Math.max(...at) - Math.min(...at) });
  }
  return { rows, matched: heard.map((h) => h.length) };
}
