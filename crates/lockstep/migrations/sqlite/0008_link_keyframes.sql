-- The keyframe times of direct links to MP4 files (read from their moov box: media::moov), by the
-- first 128 bits of the URL's SHA-256 in hex (a poster's name without .jpg), as the JSON the room
-- page reads. In the database rather than on one node's disk, so that any node serves them.
CREATE TABLE link_keyframes (
    name TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX link_keyframes_created ON link_keyframes (created_ms);
