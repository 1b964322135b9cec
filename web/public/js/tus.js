// A resumable upload over the tus 1.0 core protocol (with its creation extension), as the server
// speaks it at /api/uploads: POST creates, PATCH appends from an offset, HEAD tells the offset.
//
// The file goes in chunks (each one PATCH), so that a dropped connection costs at most one chunk
// and progress shows within a chunk (XMLHttpRequest upload events). The upload's URL is kept in
// localStorage under the file's name, size and date, so that choosing the same file again after a
// reload or a crash resumes where the server got to. On a network error it waits (1, 3, 5, 10,
// 20 s), asks the server for its offset and goes on; an error answer from the server (too large,
// over quota) stops it with that error. A wait ends early when the browser says its network is
// back, and a try that failed while the browser said it was offline is not counted: a phone in a
// tunnel for minutes goes on once out of it (it gave up after five tries, 39 s).

/** Bytes per PATCH request. */
export const CHUNK_BYTES = 16 * 1024 * 1024;
const RETRY_DELAYS_MS = [1000, 3000, 5000, 10000, 20000];
/** While the browser says it is offline, a failed try is not counted and the next waits this
 * long, or until the browser says it is back. */
const OFFLINE_WAIT_MS = 5000;
/** A refusal to start that says "try again in N s" (429 with Retry-After: a rate limit, or a
 * brand-new visitor's wait) is waited out when N is at most this, at most three times. */
const CREATE_WAIT_MAX_S = 120;

/**
 * Resolves after `ms`, or as soon as `target` (the window) says the network is back (`online`):
 * a retry's wait, cut short when waiting longer would only lose time.
 */
export function napUntilOnline(ms, target = globalThis) {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      target.removeEventListener?.("online", wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    target.addEventListener?.("online", wake);
  });
}

export class UploadError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A tus `Upload-Metadata` value: keys and base64 of UTF-8 values. */
export function encodeMetadata(entries) {
  const b64 = (s) => {
    const bytes = new TextEncoder().encode(s);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  };
  return Object.entries(entries)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${k} ${b64(String(v))}`)
    .join(",");
}

/** The key a file's upload URL is remembered under. */
export function fingerprint(file) {
  return `lockstep.tus:${file.name}:${file.size}:${file.lastModified ?? 0}`;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: keep the status text.
  }
  return new UploadError(response.status, body?.error?.code ?? "error", body?.error?.message ?? response.statusText);
}

/** PATCH with XMLHttpRequest, for upload progress; resolves with the new offset. */
export function xhrPatch(url, offset, blob, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PATCH", url);
    xhr.setRequestHeader("Tus-Resumable", "1.0.0");
    xhr.setRequestHeader("Upload-Offset", String(offset));
    xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
    xhr.upload.onprogress = (e) => onProgress(offset + e.loaded);
    xhr.onload = () => {
      if (xhr.status === 204) {
        resolve(Number(xhr.getResponseHeader("Upload-Offset")));
        return;
      }
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // Not JSON.
      }
      reject(new UploadError(xhr.status, body?.error?.code ?? "error", body?.error?.message ?? xhr.statusText));
    };
    xhr.onerror = () => reject(new TypeError("network error"));
    xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

export class TusUpload {
  /**
   * `file`: a File or Blob with `name`, `size`, `type`, `slice()`. Options: `endpoint`,
   * `chunkBytes`, `storage` (localStorage-like), `fetch`, `patch` (like xhrPatch), `sleep`,
   * `offline` (whether the browser says it is offline: `navigator.onLine`), `onProgress(sent,
   * total)`, `onCreated(id)`, `onWaiting(seconds, why)` (the server asked to wait before the
   * upload may start; it starts by itself after), `onRetrying(why)` ("offline" or "failed" while
   * a dropped chunk waits to be tried again, null once one goes through).
   */
  constructor(file, options = {}) {
    this.file = file;
    this.endpoint = options.endpoint ?? "/api/uploads";
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    this.storage = options.storage ?? globalThis.localStorage;
    this.fetch = options.fetch ?? ((...a) => globalThis.fetch(...a));
    this.patch = options.patch ?? xhrPatch;
    /** Waits `ms`; a retry's wait (`early`) ends when the browser says its network is back. */
    this.sleep = options.sleep ?? ((ms, early = false) => (early ? napUntilOnline(ms) : new Promise((r) => setTimeout(r, ms))));
    this.offline = options.offline ?? (() => globalThis.navigator?.onLine === false);
    this.onProgress = options.onProgress ?? (() => {});
    this.onCreated = options.onCreated ?? (() => {});
    this.onWaiting = options.onWaiting ?? (() => {});
    this.onRetrying = options.onRetrying ?? (() => {});
    this.retryDelays = options.retryDelays ?? RETRY_DELAYS_MS;
    this.controller = new AbortController();
    this.url = null;
    this.id = null;
    this.offset = 0;
    this.resumed = false;
    /** A dropped chunk waits to be tried again. */
    this.retrying = false;
  }

  /** Stops sending; the server keeps what it has, so start() (or a later page) resumes. */
  abort() {
    this.controller.abort();
  }

  get aborted() {
    return this.controller.signal.aborted;
  }

  /** Uploads the file; resolves with the upload's id once the server has every byte. */
  async start() {
    const key = fingerprint(this.file);
    const known = this.storage?.getItem(key);
    if (known) {
      const offset = await this.headOffset(known).catch(() => null);
      if (offset !== null) {
        Object.assign(this, { url: known, offset, resumed: true, id: known.split("/").pop() });
      } else {
        this.storage.removeItem(key);
      }
    }
    if (!this.url) await this.create(key);
    this.onCreated(this.id);
    this.onProgress(this.offset, this.file.size);
    let failures = 0;
    while (this.offset < this.file.size) {
      if (this.aborted) throw new DOMException("aborted", "AbortError");
      const end = Math.min(this.offset + this.chunkBytes, this.file.size);
      try {
        this.offset = await this.patch(
          this.url,
          this.offset,
          this.file.slice(this.offset, end),
          (sent) => this.onProgress(sent, this.file.size),
          this.controller.signal,
        );
        failures = 0;
        if (this.retrying) {
          this.retrying = false;
          this.onRetrying(null);
        }
        this.onProgress(this.offset, this.file.size);
      } catch (err) {
        if (err instanceof UploadError && err.status !== 409) {
          if (err.status === 404 || err.status === 410 || err.status === 413) this.storage?.removeItem(key);
          throw err;
        }
        if (this.aborted || err?.name === "AbortError") throw err;
        // The connection dropped (or the offset was stale): wait, ask where the server got to.
        // Offline, the try does not count: the upload waits for the network, however long.
        const offline = this.offline();
        if (!offline && failures >= this.retryDelays.length) throw new UploadError(0, "network", "the upload keeps failing; try again later");
        this.retrying = true;
        this.onRetrying(offline ? "offline" : "failed");
        await this.sleep(offline ? OFFLINE_WAIT_MS : this.retryDelays[failures], true);
        if (!offline) failures += 1;
        const offset = await this.headOffset(this.url).catch(() => null);
        if (offset !== null) this.offset = offset;
      }
    }
    this.storage?.removeItem(key);
    return this.id;
  }

  async create(key) {
    let response;
    for (let attempt = 0; ; attempt++) {
      try {
        response = await this.fetch(this.endpoint, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": String(this.file.size),
            "Upload-Metadata": encodeMetadata({ filename: this.file.name, filetype: this.file.type }),
          },
        });
      } catch {
        throw new UploadError(0, "network", "cannot reach the server");
      }
      const wait = Number(response.headers.get("Retry-After"));
      if (response.status !== 429 || attempt >= 3 || !(wait > 0 && wait <= CREATE_WAIT_MAX_S)) break;
      const err = await errorFrom(response);
      // The server's message ends with its own "try again in N s"; the page says when instead.
      this.onWaiting(wait, err.message.replace(/; try again in \d+ s$/, ""));
      await this.sleep(wait * 1000);
      if (this.aborted) throw new DOMException("aborted", "AbortError");
    }
    if (response.status !== 201) throw await errorFrom(response);
    const body = await response.json();
    this.id = body.id;
    this.url = response.headers.get("Location") ?? `${this.endpoint}/${body.id}`;
    this.offset = 0;
    this.storage?.setItem(key, this.url);
  }

  /** The server's offset for `url`, or a rejection (404: the upload is gone). */
  async headOffset(url) {
    const response = await this.fetch(url, { method: "HEAD", credentials: "same-origin", headers: { "Tus-Resumable": "1.0.0" } });
    if (!response.ok) throw await errorFrom(response);
    return Number(response.headers.get("Upload-Offset"));
  }
}
