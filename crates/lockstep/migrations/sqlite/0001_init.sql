-- Lockstep schema, SQLite flavour. Ids are UUID text, times are BIGINT (ms or µs as named),
-- flags are INTEGER 0/1 (the Any driver decodes no BOOLEAN on SQLite), so the same queries run
-- through sqlx's Any driver on SQLite and PostgreSQL.

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_ms   BIGINT NOT NULL
);

-- Session tokens are stored hashed (SHA-256); the cookie carries the token, encrypted.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    -- Set when the token was rotated; still accepted for a grace period after.
    replaced_ms BIGINT
);
CREATE INDEX sessions_expiry ON sessions(expires_ms);

CREATE TABLE rooms (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users(id),
    visibility      TEXT NOT NULL,
    password_hash   TEXT,
    invite_key      TEXT NOT NULL UNIQUE,
    -- JSON of lockstep_core::settings::RoomSettings (the name and visibility are copied out
    -- into columns because the lobby queries them).
    settings        TEXT NOT NULL,
    name            TEXT NOT NULL,
    current_item_id TEXT,
    paused          INTEGER NOT NULL DEFAULT 1,
    position        DOUBLE PRECISION NOT NULL DEFAULT 0,
    rate            DOUBLE PRECISION NOT NULL DEFAULT 1,
    created_ms      BIGINT NOT NULL,
    active_ms       BIGINT NOT NULL
);
CREATE INDEX rooms_lobby ON rooms(visibility, active_ms);
CREATE INDEX rooms_owner ON rooms(owner_id);

-- A user's lasting standing in a room and whether they passed its gate (invite, password).
CREATE TABLE room_members (
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    moderator   INTEGER NOT NULL DEFAULT 0,
    muted       INTEGER NOT NULL DEFAULT 0,
    banned      INTEGER NOT NULL DEFAULT 0,
    admitted_ms BIGINT,
    visited_ms  BIGINT,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_visits ON room_members(user_id, visited_ms);

-- The current item (rooms.current_item_id) and the upcoming queue, ordered by ord.
CREATE TABLE queue_items (
    id      TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    ord     BIGINT NOT NULL,
    -- JSON of lockstep_core::queue::QueueItem
    data    TEXT NOT NULL
);
CREATE INDEX queue_items_room ON queue_items(room_id, ord);

CREATE TABLE chat_lines (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT,
    name    TEXT,
    text    TEXT NOT NULL,
    system  TEXT,
    at_us   BIGINT NOT NULL
);
CREATE INDEX chat_lines_room ON chat_lines(room_id, id);
