-- newsletterd schema 5: the bounce reports.
--
-- Every bounce report, complaint or auto-reply that newsletterctl bounce
-- (or the relay's reply while sending) classified: its class and
-- Sisimai's reason, for export, stats, status and the warning about a
-- receiving domain that refuses us.  A 'sender' report changes no
-- subscriber: this is where it is counted (per receiving domain).
CREATE TABLE bounce_report (
    id              INTEGER PRIMARY KEY,
    subscriber_id   INTEGER REFERENCES subscriber(id) ON DELETE CASCADE,
    outbox_id       INTEGER,            -- the mail the VERP address named
    class           TEXT NOT NULL CHECK (class IN ('permanent', 'temporary', 'sender',
                        'complaint', 'none')),
    reason          TEXT NOT NULL,      -- userunknown, blocked, feedback, vacation, ...
    status          TEXT,               -- enhanced status code, e.g. 5.7.1
    domain          TEXT,               -- the receiving domain, lower case
    diagnostic      TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX bounce_report_subscriber ON bounce_report (subscriber_id, at)
    WHERE subscriber_id IS NOT NULL;
CREATE INDEX bounce_report_outbox ON bounce_report (outbox_id) WHERE outbox_id IS NOT NULL;
CREATE INDEX bounce_report_class ON bounce_report (class, at);
CREATE INDEX bounce_report_domain ON bounce_report (class, domain, at) WHERE domain IS NOT NULL;
