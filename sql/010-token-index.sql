-- newsletterd schema, migration 10: newsletter unsubscribe tokens found by
-- their hash.

-- A newsletter mail's unsubscribe token is 32 random bytes and names
-- nothing; its row keeps the SHA-256 of the token of its latest attempt
-- (token_hash) and of the attempt before (token_hash_prev), and a click is
-- looked up by either.  Tokens of mails sent before (whose first 8 bytes
-- named the row) are found the same way: their hashes are in these columns.
CREATE INDEX outbox_token_hash ON outbox (token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX outbox_token_hash_prev ON outbox (token_hash_prev) WHERE token_hash_prev IS NOT NULL;
