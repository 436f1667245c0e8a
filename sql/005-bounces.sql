-- newsletterd schema, migration 5: bounces and complaints, as
-- `newsletterctl bounce` reports them.  Permanent failures suppress the
-- subscriber (subscription state 'bounced'), temporary ones are counted
-- (enough of them within a window suppress too), complaints unsubscribe.
CREATE TABLE bounce (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER NOT NULL REFERENCES subscriber(id) ON DELETE CASCADE,
    outbox_id       INTEGER,            -- the mail it names, when the VERP address said
    issue_id        INTEGER,            -- that mail's issue, for status
    kind            TEXT NOT NULL CHECK (kind IN ('permanent', 'temporary', 'complaint')),
    status          TEXT,               -- enhanced status code, e.g. 5.1.1
    diagnostic      TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX bounce_subscriber ON bounce (subscriber_id, kind, at);
CREATE INDEX bounce_issue ON bounce (issue_id, kind) WHERE issue_id IS NOT NULL;
CREATE INDEX bounce_outbox ON bounce (outbox_id, kind) WHERE outbox_id IS NOT NULL;
