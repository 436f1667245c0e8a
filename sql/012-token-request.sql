-- newsletterd schema, migration 12: a confirmation token names the sign-up
-- request whose mail carried it.

-- A pending sign-up may hold several requests (records in the sign-up
-- tables, keyed by subscription and mailed_at), made by anyone who typed
-- the address.  A click on a confirmation link confirms the request that
-- link was mailed for: its record's name and spelling of the address, not
-- those of a later request a stranger made.  request_at is that record's
-- mailed_at (the mail's created_at); NULL for tokens made before this
-- migration, which confirm without changing an existing subscriber's data.
ALTER TABLE token ADD COLUMN request_at INTEGER;
