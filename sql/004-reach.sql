-- newsletterd schema 4: bounces read from a mailbox over IMAP ([bounce] imap_url),
-- and the welcome mail.
--
-- Every message the IMAP intake judged, by the SHA-256 of its bytes,
-- written in the same transaction as the outcome it led to.  A message
-- seen again (the delete after that commit did not happen: a crash, a lost
-- connection) is recognised here and only deleted (or flagged), never
-- handled a second time; one left unseen because it was not understood is
-- not counted again.  One row per message (about 50 bytes).
CREATE TABLE imap_seen (
    digest      BLOB PRIMARY KEY,
    handled     INTEGER NOT NULL CHECK (handled IN (0, 1)),   -- 0: not understood, left unseen
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX imap_seen_at ON imap_seen (at);

-- The welcome mail ([subscription] welcome = yes): a third kind of mail.
-- SQLite cannot alter a CHECK constraint, so the outbox is built anew with
-- the wider one (its rows, ids included, copied over; nothing references
-- the outbox by a foreign key), and its indexes and its trigger made again
-- as sql/001-schema.sql has them.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind = 'confirm' OR kind = 'newsletter'
                        OR kind = 'welcome'),
    subscription_id INTEGER REFERENCES subscription(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state = 'queued' OR state = 'sending' OR state = 'sent'
                        OR state = 'deferred' OR state = 'failed' OR state = 'skipped'),
    priority        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    done_at         INTEGER,
    reply           TEXT,
    issue_id        INTEGER REFERENCES issue(id) ON DELETE CASCADE,
    rcpt            TEXT,
    token_hash      BLOB,
    token_hash_prev BLOB
);
INSERT INTO outbox_new (id, kind, subscription_id, state, priority, created_at, next_at, attempts,
                        done_at, reply, issue_id, rcpt, token_hash, token_hash_prev)
    SELECT id, kind, subscription_id, state, priority, created_at, next_at, attempts,
           done_at, reply, issue_id, rcpt, token_hash, token_hash_prev FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (priority, next_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX outbox_subscription ON outbox (subscription_id);
CREATE INDEX outbox_issue ON outbox (issue_id) WHERE issue_id IS NOT NULL;
CREATE INDEX outbox_issue_failed ON outbox (issue_id, id) WHERE state = 'failed';
CREATE INDEX outbox_token_hash ON outbox (token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX outbox_token_hash_prev ON outbox (token_hash_prev) WHERE token_hash_prev IS NOT NULL;
CREATE TRIGGER outbox_progress_delete AFTER DELETE ON outbox
WHEN old.issue_id IS NOT NULL
BEGIN
    UPDATE issue_progress SET n = n - 1
        WHERE issue_id = old.issue_id
          AND state = CASE old.state WHEN 'sending' THEN 'queued' ELSE old.state END;
END;
