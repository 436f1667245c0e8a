-- newsletterd schema 2: sign-up challenges ([antibot] pow = on).
--
-- The challenges the daemon hands out are stored nowhere (each is signed
-- and carries its expiry); a solved one is kept here until it expires, so
-- that it opens one sign-up only, also across a restart.  `challenge` is
-- the challenge itself, the SHA-256 of its salt and number: nothing about
-- the visitor.  Housekeeping deletes the rows whose expiry has passed, so
-- the table holds at most the sign-ups of one challenge_ttl.
CREATE TABLE challenge_used (
    challenge   BLOB PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX challenge_used_expires ON challenge_used (expires_at);
