-- Several nodes: the fencing token of the node that last took the room's lease. A node writes
-- the room only while the token it took is still this one, so a node that was frozen past its
-- lease cannot write over its successor's work.
ALTER TABLE rooms ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
