-- Own videos: uploads, the media jobs made from them, their progress events (for SSE resume),
-- the personal library and playlists.

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Shown to people; sanitised (no path, no control characters).
    file_name   TEXT NOT NULL,
    -- Upload-Length and Upload-Offset of the tus protocol.
    size        BIGINT NOT NULL,
    received    BIGINT NOT NULL DEFAULT 0,
    -- receiving | probing | ready | rejected
    state       TEXT NOT NULL,
    error       TEXT,
    -- JSON of what ffprobe found (duration, width, height, codecs, container).
    media       TEXT,
    -- 1 once a browser can play it (as uploaded, or after the make-playable job).
    playable    INTEGER NOT NULL DEFAULT 0,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX uploads_owner ON uploads(owner_id, created_ms);
CREATE INDEX uploads_state ON uploads(state, updated_ms);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    upload_id    TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL,
    -- poster | storyboard | thumbnail | playable
    kind         TEXT NOT NULL,
    -- JSON: what the job needs beyond its upload (the time of a thumbnail).
    payload      TEXT NOT NULL,
    -- queued | running | done | failed | cancelled
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    progress     DOUBLE PRECISION NOT NULL DEFAULT 0,
    error        TEXT,
    -- JSON: what the job made (file names).
    result       TEXT,
    run_after_ms BIGINT NOT NULL,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);
CREATE INDEX jobs_queue ON jobs(state, run_after_ms);
CREATE INDEX jobs_owner ON jobs(owner_id, created_ms);
CREATE INDEX jobs_upload ON jobs(upload_id);

-- Every change of a job, numbered: the `id:` of the Server-Sent Events, so that a browser that
-- reconnects with Last-Event-ID gets exactly what it missed.
CREATE TABLE job_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    -- JSON of the job as it was.
    data     TEXT NOT NULL,
    at_ms    BIGINT NOT NULL
);
CREATE INDEX job_events_owner ON job_events(owner_id, id);
CREATE INDEX job_events_job ON job_events(job_id, id);

-- Which upload a queue item plays, so media access can be checked by room.
ALTER TABLE queue_items ADD COLUMN upload_id TEXT;
CREATE INDEX queue_items_upload ON queue_items(upload_id);

-- The library ("library" and "watch_later") and playlists hold media references (JSON).
CREATE TABLE library_items (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    list       TEXT NOT NULL,
    url        TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (owner_id, list, url)
);
CREATE INDEX library_owner ON library_items(owner_id, list, created_ms);

CREATE TABLE playlists (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX playlists_owner ON playlists(owner_id, created_ms);

CREATE TABLE playlist_items (
    id          TEXT PRIMARY KEY,
    playlist_id TEXT NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    ord         BIGINT NOT NULL,
    data        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX playlist_items_order ON playlist_items(playlist_id, ord);
