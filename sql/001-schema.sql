-- newsletterd schema 1.  Applied at start-up inside one transaction and
-- recorded as PRAGMA user_version = 1; a later change of the schema is a
-- new numbered file beside this one.  Times are Unix seconds (UTC).
--
-- CHECK constraints name their values as comparisons (`x = a OR x = b`),
-- not `x IN (a, b, c)`: SQLite 3.40 checks an IN over more than two
-- constants by building a temporary b-tree on every row it checks, on
-- every state change of every mail.  (The partial index outbox_due keeps
-- its IN of two: the due scans say it so.)

-- One row per address.  email_key is the identity: the whole address
-- lower-cased, its domain as A-labels.  email is what the mail is sent to.
-- A sign-up made through the socket gets its subscriber only when it is
-- confirmed (until then it waits in `signup`).
CREATE TABLE subscriber (
    id          INTEGER PRIMARY KEY,
    email_key   TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL
);

-- One row per address and list: the state the website's visitor sees.
-- A pending sign-up whose last confirmation mail is older than confirm_ttl
-- is expired by then, whatever its row says; housekeeping strips such rows
-- soon after (state 'expired', no subscriber, the address, name and
-- consent record gone).  What stays (list, dates, token hashes) tells a
-- late click "expired" until expired_retention has passed.
-- AUTOINCREMENT: an id is never reused.
CREATE TABLE subscription (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id   INTEGER REFERENCES subscriber(id) ON DELETE SET NULL,
    list            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state = 'pending' OR state = 'confirmed'
                        OR state = 'expired' OR state = 'unsubscribed' OR state = 'bounced'),
    lang            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,   -- start of the current sign-up
    mailed_at       INTEGER,            -- last confirmation mail queued (resend_interval)
    confirmed_at    INTEGER,
    confirm_ip      TEXT,
    unsubscribed_at INTEGER,
    expired_at      INTEGER,            -- when housekeeping stripped it
    UNIQUE (subscriber_id, list)
);
-- pending sign-ups by their last confirmation mail: which have expired
CREATE INDEX subscription_pending ON subscription (mailed_at) WHERE state = 'pending';
-- those of them that have a subscriber (import --pending, a sign-up again
-- after an unsubscribe), stripped by housekeeping in that order
CREATE INDEX subscription_pending_linked ON subscription (mailed_at)
    WHERE state = 'pending' AND subscriber_id IS NOT NULL;
-- stripped sign-ups by the time they were stripped: purged after expired_retention
CREATE INDEX subscription_expired ON subscription (expired_at) WHERE state = 'expired';

-- A pending sign-up's personal data, apart until it is confirmed: one row
-- per request (a sign-up made again before it expired adds one), with the
-- address it was made for, the name, and what consent would record.
-- Confirming moves the rows into subscriber and consent and links the
-- subscription, in one transaction; expiry deletes them a slice at a time
-- in the order of mailed_at, so that none outlives its expiry by long.
-- Keyed by (subscription, mailed_at): rows go in at the end, and the
-- secondary indexes repeat that short key rather than an address.
CREATE TABLE signup (
    subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    mailed_at       INTEGER NOT NULL,   -- the request's confirmation mail
    email_key       TEXT NOT NULL,
    list            TEXT NOT NULL,
    email           TEXT NOT NULL,
    name            TEXT,
    at              INTEGER NOT NULL,   -- the request, as consent keeps it
    ip              TEXT,
    user_agent      TEXT,
    lang            TEXT,
    source          TEXT NOT NULL,
    text_version    TEXT,
    consent_text    TEXT,
    consent_version TEXT,
    PRIMARY KEY (subscription_id, mailed_at)
) WITHOUT ROWID;
CREATE INDEX signup_key ON signup (email_key, list);
CREATE INDEX signup_mailed ON signup (mailed_at);

-- Secrets are never stored: only the SHA-256 of each token.  A confirmation
-- token expires confirm_ttl after it was issued and names the request
-- (signup.mailed_at) whose mail carried it, so that a click confirms that
-- request's name and spelling, not a later one a stranger made; an
-- unsubscribe token does not expire (expires_at NULL).
CREATE TABLE token (
    hash            BLOB PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind = 'confirm' OR kind = 'unsubscribe'),
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER,
    request_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX token_subscription ON token (subscription_id);

-- One row per issue; its recipients are outbox rows (issue_id), fixed when
-- the issue is queued.  A test send is an issue of one recipient (rcpt)
-- that is no subscriber.
CREATE TABLE issue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    list        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    text_body   TEXT NOT NULL,
    html_body   TEXT,
    state       TEXT NOT NULL CHECK (state = 'sending' OR state = 'paused' OR state = 'cancelled'),
    test        INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- Every mail to send, one recipient each.  queued and deferred rows are due
-- at next_at; sending rows are handed to a sender thread (after a crash they
-- are queued again: at-least-once).  Lower priority values go first.
-- skipped: not sent on purpose (unsubscribed before its turn, cancelled).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind = 'confirm' OR kind = 'newsletter'),
    subscription_id INTEGER REFERENCES subscription(id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state = 'queued' OR state = 'sending' OR state = 'sent'
                        OR state = 'deferred' OR state = 'failed' OR state = 'skipped'),
    priority        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    done_at         INTEGER,
    reply           TEXT,               -- last SMTP reply or transport error
    issue_id        INTEGER REFERENCES issue(id) ON DELETE CASCADE,
    rcpt            TEXT,               -- the recipient of a mail with no subscription
    -- the SHA-256 of the unsubscribe token (32 random bytes) in a
    -- newsletter mail, by which a click finds the mail; and of the attempt
    -- before: a mail the relay took but whose answer got lost is sent again
    -- with a new token, and the first copy's link must still work
    token_hash      BLOB,
    token_hash_prev BLOB
);
CREATE INDEX outbox_due ON outbox (priority, next_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX outbox_subscription ON outbox (subscription_id);
-- cancel, pause and resume go through an issue's rows; the failures list
-- takes its failed ones (an index that changes only when a mail fails)
CREATE INDEX outbox_issue ON outbox (issue_id) WHERE issue_id IS NOT NULL;
CREATE INDEX outbox_issue_failed ON outbox (issue_id, id) WHERE state = 'failed';
CREATE INDEX outbox_token_hash ON outbox (token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX outbox_token_hash_prev ON outbox (token_hash_prev) WHERE token_hash_prev IS NOT NULL;
-- (no index on state alone: every mail changes state twice, and only the
-- start-up requeue and stats, both rare, ask by state over the whole table)

-- An issue's progress as counts per state, so that `status` need not count
-- rows.  'queued' counts the mails with a sender ('sending') too.  The
-- daemon moves the counts (daemon/scheduler.c adds up each batch's
-- outcomes), not a trigger on every state change: SQLite runs a trigger's
-- program even when its WHEN is false, twice for every mail.  Deletes
-- keep their trigger: an erased recipient's mails go by
-- cascade, which no statement of the daemon sees.
CREATE TABLE issue_progress (
    issue_id    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (issue_id, state)
) WITHOUT ROWID;
CREATE TRIGGER outbox_progress_delete AFTER DELETE ON outbox
WHEN old.issue_id IS NOT NULL
BEGIN
    UPDATE issue_progress SET n = n - 1
        WHERE issue_id = old.issue_id
          AND state = CASE old.state WHEN 'sending' THEN 'queued' ELSE old.state END;
END;

-- The proof of consent: what happened, when, from where.  Append-only.
CREATE TABLE consent (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscriber(id) ON DELETE CASCADE,
    list            TEXT NOT NULL,
    event           TEXT NOT NULL CHECK (event = 'signup' OR event = 'confirm'
                        OR event = 'unsubscribe' OR event = 'import'),
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
-- stats: sign-ups and confirmations per day
CREATE INDEX consent_event_at ON consent (event, at);
CREATE TRIGGER consent_append_only BEFORE UPDATE ON consent
BEGIN
    SELECT RAISE(ABORT, 'the consent record is append-only');
END;

-- Rate limit counters: one row per limited thing (a client ip, its /24 or
-- /56 network, the confirmation mails of the whole daemon), counted over a
-- window of an hour.  The key is a keyed hash: no ip address is kept.
-- Housekeeping purges windows that have ended.
CREATE TABLE rate_limit (
    key             BLOB PRIMARY KEY,
    window_start    INTEGER NOT NULL,
    count           INTEGER NOT NULL
) WITHOUT ROWID;

-- Bounces and complaints, as `newsletterctl bounce` reports them.
-- Permanent failures suppress the subscriber (subscription state
-- 'bounced'), temporary ones are counted (enough of them within a window
-- suppress too), complaints unsubscribe.
CREATE TABLE bounce (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscriber(id) ON DELETE CASCADE,
    outbox_id       INTEGER,            -- the mail it names, when the VERP address said
    issue_id        INTEGER,            -- that mail's issue, for status
    kind            TEXT NOT NULL CHECK (kind = 'permanent' OR kind = 'temporary'
                        OR kind = 'complaint'),
    status          TEXT,               -- enhanced status code, e.g. 5.1.1
    diagnostic      TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX bounce_subscriber ON bounce (subscriber_id, kind, at);
CREATE INDEX bounce_issue ON bounce (issue_id, kind) WHERE issue_id IS NOT NULL;
CREATE INDEX bounce_outbox ON bounce (outbox_id, kind) WHERE outbox_id IS NOT NULL;

-- Messages to the bounce address that changed nothing, only counted per
-- reason for `stats`: reports refused for want of proof (no valid VERP tag
-- for a mail to the recipient named: a forgery, a guess), and messages
-- that are no report of ours ('autoreply', 'not understood', 'unknown
-- mail', 'too large'), which `newsletterctl bounce` consumes all the same
-- (a pipe that fails makes the MTA return its input to a sender that may be
-- forged).  No address is kept.
CREATE TABLE bounce_refused (
    reason          TEXT PRIMARY KEY,
    n               INTEGER NOT NULL,
    last            INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE bounce_ignored (
    reason          TEXT PRIMARY KEY,
    n               INTEGER NOT NULL,
    last            INTEGER NOT NULL
) WITHOUT ROWID;
