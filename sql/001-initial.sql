-- newsletterd schema, migration 1: subscribers, per-list subscriptions,
-- token hashes, the outbox and the append-only consent record.
-- Applied at start-up inside one transaction; PRAGMA user_version = 1.
-- Times are Unix seconds (UTC).

-- One row per address.  email_key is the identity: the whole address
-- lower-cased, its domain as A-labels.  email is what the mail is sent to.
CREATE TABLE subscriber (
    id          INTEGER PRIMARY KEY,
    email_key   TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL
);

-- One row per address and list: the state the website's visitor sees.
-- A pending sign-up whose last confirmation mail is older than confirm_ttl
-- is expired by then, whatever its row says; the daemon strips such rows
-- (sql/002): state 'expired', subscriber_id NULL, the address, name and
-- consent record deleted.  What stays (list, dates, token hashes) tells a
-- late click "expired" until expired_retention has passed.
-- AUTOINCREMENT: an id is never reused.
CREATE TABLE subscription (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id   INTEGER REFERENCES subscriber(id) ON DELETE SET NULL,
    list            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('pending', 'confirmed', 'expired', 'unsubscribed', 'bounced')),
    lang            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,   -- start of the current sign-up
    mailed_at       INTEGER,            -- last confirmation mail queued (resend_interval)
    confirmed_at    INTEGER,
    confirm_ip      TEXT,
    unsubscribed_at INTEGER,
    expired_at      INTEGER,            -- when the daemon stripped it
    UNIQUE (subscriber_id, list)
);

-- Secrets are never stored: only the SHA-256 of each token.  A confirmation
-- token expires confirm_ttl after it was issued; an unsubscribe token does
-- not expire (expires_at NULL).
CREATE TABLE token (
    hash            BLOB PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('confirm', 'unsubscribe')),
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX token_subscription ON token (subscription_id);

-- Every mail to send, one recipient each.  queued and deferred rows are due
-- at next_at; sending rows are handed to a sender thread (after a crash they
-- are queued again: at-least-once).  Lower priority values go first.
-- skipped: not sent on purpose (unsubscribed before its turn, cancelled).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('confirm', 'newsletter')),
    subscription_id INTEGER REFERENCES subscription(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped')),
    priority        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    done_at         INTEGER,
    reply           TEXT                -- last SMTP reply or transport error
);
CREATE INDEX outbox_due ON outbox (priority, next_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX outbox_subscription ON outbox (subscription_id);
-- (no index on state alone: every mail changes state twice, and only the
-- start-up requeue and stats, both rare, ask by state over the whole table)

-- The proof of consent: what happened, when, from where.  Append-only.
CREATE TABLE consent (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscriber(id) ON DELETE CASCADE,
    list            TEXT NOT NULL,
    event           TEXT NOT NULL CHECK (event IN ('signup', 'confirm', 'unsubscribe', 'import')),
    at              INTEGER NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    lang            TEXT,
    source          TEXT NOT NULL,      -- 'socket', or 'import:FILE'
    text_version    TEXT,               -- version of the confirmation mail text
    consent_text    TEXT,               -- the consent wording the visitor agreed to
    consent_version TEXT                -- and its version, as the website names it
);
CREATE INDEX consent_subscriber ON consent (subscriber_id);
CREATE TRIGGER consent_append_only BEFORE UPDATE ON consent
BEGIN
    SELECT RAISE(ABORT, 'the consent record is append-only');
END;
