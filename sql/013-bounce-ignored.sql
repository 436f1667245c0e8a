-- newsletterd schema, migration 13: messages to the bounce address that
-- are no report of ours.  `newsletterctl bounce` consumes every message it
-- reads (an MTA returns the input of a pipe that fails, to a sender that
-- may be forged: backscatter), so what it does not act on is only counted
-- here, per reason ('autoreply', 'not understood', 'unknown mail', 'too
-- large'), for `stats`.  Like bounce_refused, no address is kept.
CREATE TABLE bounce_ignored (
    reason          TEXT PRIMARY KEY,
    n               INTEGER NOT NULL,
    last            INTEGER NOT NULL
) WITHOUT ROWID;
