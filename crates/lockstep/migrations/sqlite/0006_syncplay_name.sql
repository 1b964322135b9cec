-- A room's short Syncplay name (lowercase; lockstep_core::syncplay::ShortName), which desktop
-- users may type as the Syncplay room instead of the invite key. One room per name.
ALTER TABLE rooms ADD COLUMN syncplay_name TEXT;
CREATE UNIQUE INDEX rooms_syncplay_name ON rooms (syncplay_name);
