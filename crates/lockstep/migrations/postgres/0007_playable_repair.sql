-- Until this version the make-playable job's end and the upload's playable mark were two writes,
-- so a stop between them left an upload whose playable copy was made but which never played.
-- They are one transaction now; this repairs what the old order may have left.
UPDATE uploads SET playable = 1
WHERE playable = 0
  AND state = 'ready'
  AND id IN (SELECT upload_id FROM jobs WHERE kind = 'playable' AND state = 'done');
