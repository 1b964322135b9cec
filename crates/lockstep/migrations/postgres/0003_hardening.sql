-- Hardening for the open internet (docs/security.md).

-- Where a session was made or last rotated from (an IPv4 address, or an IPv6 /64): a ban also
-- bars the addresses of the banned user's sessions for a while.
ALTER TABLE sessions ADD COLUMN addr TEXT;
CREATE INDEX sessions_user ON sessions(user_id);

-- Addresses barred from a room until a time, and the ban that barred them.
CREATE TABLE room_address_bans (
    room_id  TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    addr     TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (room_id, addr, user_id)
);

-- The address an upload was started from: bytes are bounded per address as well as per user.
ALTER TABLE uploads ADD COLUMN client_addr TEXT;
CREATE INDEX uploads_client ON uploads(client_addr);

-- Bytes the media jobs made from an upload (poster, storyboard, thumbnails, playable copy),
-- counted against its owner's quota.
ALTER TABLE uploads ADD COLUMN derived_bytes BIGINT NOT NULL DEFAULT 0;

-- When a job's current run started: workers take the queued job whose owner started a run
-- least recently, so one user's many jobs cannot starve everyone else's.
ALTER TABLE jobs ADD COLUMN started_ms BIGINT;

-- Purging users who never did anything looks them up by age, and for chat lines by user (the
-- other tables already have an index led by the user's id).
CREATE INDEX users_created ON users(created_ms);
CREATE INDEX chat_lines_user ON chat_lines(user_id);
