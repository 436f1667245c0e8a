-- newsletterd schema 3: the archive of issues and sends at a set time.
-- Columns added to issue (its CHECK on state stays as it is: a scheduled
-- issue is one in state 'sending' whose recipients are not queued yet).

-- send --at: the time its recipients are fixed and queued; NULL: queued
-- when it was created.  `scheduled` is 1 until that has happened.
ALTER TABLE issue ADD COLUMN send_at INTEGER;
ALTER TABLE issue ADD COLUMN scheduled INTEGER NOT NULL DEFAULT 0;
-- 1: shown in the archive once it has finished sending (send without
-- --no-archive, or publish); 0: not (--no-archive, unpublish, and every
-- issue sent before the archive existed: its author never chose that).
ALTER TABLE issue ADD COLUMN archive INTEGER NOT NULL DEFAULT 0;
-- when its last mail reached a final state: the archive's date.  NULL
-- while mails wait, and for cancelled and test issues.
ALTER TABLE issue ADD COLUMN sent_at INTEGER;

-- the scheduled issues by their time: what the scheduler releases
CREATE INDEX issue_scheduled ON issue (send_at) WHERE scheduled = 1;
-- issues still sending: the ones the scheduler looks at for their end
CREATE INDEX issue_unfinished ON issue (id)
    WHERE sent_at IS NULL AND test = 0 AND scheduled = 0 AND state = 'sending';
-- the archive, newest first
CREATE INDEX issue_archive ON issue (id) WHERE archive = 1 AND sent_at IS NOT NULL;
