-- newsletterd schema, migration 3: newsletter issues.

-- One row per issue; its recipients are outbox rows (issue_id), fixed when
-- the issue is queued.  A test send is an issue of one recipient (rcpt)
-- that is no subscriber.
CREATE TABLE issue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    list        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    text_body   TEXT NOT NULL,
    html_body   TEXT,
    state       TEXT NOT NULL CHECK (state IN ('sending', 'paused', 'cancelled')),
    test        INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

ALTER TABLE outbox ADD COLUMN issue_id INTEGER REFERENCES issue(id) ON DELETE CASCADE;
-- the recipient of a mail with no subscription (a test send)
ALTER TABLE outbox ADD COLUMN rcpt TEXT;
-- the SHA-256 of the unsubscribe token in that newsletter mail, by which
-- a click finds the mail (sql/010)
ALTER TABLE outbox ADD COLUMN token_hash BLOB;
-- and of the attempt before: a mail the relay took but whose answer got lost
-- is sent again with a new token, and the first copy's link must still work
ALTER TABLE outbox ADD COLUMN token_hash_prev BLOB;

CREATE INDEX outbox_issue ON outbox (issue_id, state) WHERE issue_id IS NOT NULL;
