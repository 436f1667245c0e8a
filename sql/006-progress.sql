-- newsletterd schema, migration 6: an issue's progress kept as counters.
-- The index outbox_issue (issue_id, state) answered `status` by counting,
-- but every mail moved in it twice (queued, sending, sent), and that cost
-- the main thread a tenth of a fan-out's speed.  Now the outbox keeps a
-- count per issue and state, maintained by triggers (so no statement that
-- changes the outbox can forget it), and the index has the issue alone.

-- 'queued' counts the mails with a sender ('sending') too: status shows
-- them as queued, and the move from queued to sending changes no counter.
CREATE TABLE issue_progress (
    issue_id    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (issue_id, state)
) WITHOUT ROWID;

INSERT INTO issue_progress (issue_id, state, n)
    SELECT issue_id, CASE state WHEN 'sending' THEN 'queued' ELSE state END, count(*)
    FROM outbox WHERE issue_id IS NOT NULL GROUP BY 1, 2;

CREATE TRIGGER outbox_progress_insert AFTER INSERT ON outbox
WHEN new.issue_id IS NOT NULL
BEGIN
    INSERT INTO issue_progress (issue_id, state, n)
        VALUES (new.issue_id, CASE new.state WHEN 'sending' THEN 'queued' ELSE new.state END, 1)
        ON CONFLICT (issue_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER outbox_progress_update AFTER UPDATE OF state, issue_id ON outbox
WHEN (old.issue_id IS NOT NULL OR new.issue_id IS NOT NULL)
 AND (old.issue_id IS NOT new.issue_id
      OR (CASE old.state WHEN 'sending' THEN 'queued' ELSE old.state END)
         IS NOT (CASE new.state WHEN 'sending' THEN 'queued' ELSE new.state END))
BEGIN
    UPDATE issue_progress SET n = n - 1
        WHERE issue_id = old.issue_id
          AND state = CASE old.state WHEN 'sending' THEN 'queued' ELSE old.state END;
    INSERT INTO issue_progress (issue_id, state, n)
        SELECT new.issue_id, CASE new.state WHEN 'sending' THEN 'queued' ELSE new.state END, 1
        WHERE new.issue_id IS NOT NULL
        ON CONFLICT (issue_id, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER outbox_progress_delete AFTER DELETE ON outbox
WHEN old.issue_id IS NOT NULL
BEGIN
    UPDATE issue_progress SET n = n - 1
        WHERE issue_id = old.issue_id
          AND state = CASE old.state WHEN 'sending' THEN 'queued' ELSE old.state END;
END;

-- cancel, pause and resume go through an issue's rows; the failures list
-- takes its failed ones (an index that changes only when a mail fails)
DROP INDEX outbox_issue;
CREATE INDEX outbox_issue ON outbox (issue_id) WHERE issue_id IS NOT NULL;
CREATE INDEX outbox_issue_failed ON outbox (issue_id, id) WHERE state = 'failed';
