-- Poster frames of direct links, by the first 128 bits of the URL's SHA-256 (hex, then .jpg).
-- In the database rather than on one node's disk, so that any node serves any room's posters.
CREATE TABLE posters (
    name TEXT PRIMARY KEY,
    jpeg BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX posters_created ON posters (created_ms);
