-- newsletterd schema, migration 11: reports refused for want of proof.
-- With [bounce] return_path set, a bounce or complaint counts only when it
-- came to a VERP address whose tag the daemon made for a mail to the
-- recipient it names; anything else (a forgery, a guess) is refused and
-- only counted here, per reason, for `stats`.  No address is kept: what a
-- forged report names is nobody's business of ours.
CREATE TABLE bounce_refused (
    reason          TEXT PRIMARY KEY,
    n               INTEGER NOT NULL,
    last            INTEGER NOT NULL
) WITHOUT ROWID;
