-- newsletterd schema, migration 9: a sign-up's personal data stays apart
-- until it is confirmed, in tables per period that expiry drops whole.
--
-- A pending sign-up made through the socket keeps the address it was made
-- for, the name and the record of the sign-up (what consent would hold) in
-- one row of a table signup_<id>, chosen by the time of its last
-- confirmation mail (mailed_at); its subscription row has no subscriber
-- yet.  Confirming moves them into subscriber and consent and links the
-- subscription, in one transaction.  A period ends a quarter of
-- confirm_ttl after it starts; once every row of its table has expired,
-- expiry drops the table: deleting a million sign-ups row by row took 12 to
-- 23 s in any layout measured (two ways into the rows, by address and by
-- subscription, and deleting in the order of one walks the other at
-- random), dropping their table takes under one (bench/README.md).  Rows
-- of the one period that straddles the cut-off are deleted one by one, in
-- the order of their mailed_at index.  The subscription row, its token
-- hashes and its mail stay, unlinked and still 'pending' with their old
-- mailed_at, which is "expired" to every reader, until expired_retention
-- has passed.
--
-- The daemon creates the tables (daemon/store.c, signup_table_sql),
-- inserts into the newest and reads them through a temporary view `signup`
-- of all of them, whose INSTEAD OF trigger deletes a row from whichever
-- table holds it.  A sign-up made again before it expired adds a row: the
-- record of each request goes into consent at confirmation, as long as it
-- has not expired itself.
--
-- Pending sign-ups of the older layout (and those of `import --pending`
-- and of a re-sign-up after an unsubscribe, which keep their subscriber)
-- are stripped as before.
CREATE TABLE signup_period (
    id      INTEGER PRIMARY KEY,
    starts  INTEGER NOT NULL,       -- its rows were mailed at starts <= mailed_at < ends
    ends    INTEGER NOT NULL
);

-- the sign-ups that expiry strips the old way: pending with a subscriber
CREATE INDEX subscription_pending_linked ON subscription (mailed_at)
    WHERE state = 'pending' AND subscriber_id IS NOT NULL;

