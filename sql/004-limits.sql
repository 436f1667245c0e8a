-- newsletterd schema, migration 4: rate limit counters.
-- One row per limited thing (a client ip, its /24 or /56 network, the
-- confirmation mails of the whole daemon), counted over a window of an
-- hour.  The key is a hash: no ip address is kept here.  `expire` purges
-- windows that have ended.
CREATE TABLE rate_limit (
    key             BLOB PRIMARY KEY,
    window_start    INTEGER NOT NULL,
    count           INTEGER NOT NULL
) WITHOUT ROWID;
