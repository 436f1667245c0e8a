-- newsletterd schema 3: bounces read from a mailbox over IMAP ([bounce] imap_url).
--
-- Every message the IMAP intake judged, by the SHA-256 of its bytes,
-- written in the same transaction as the outcome it led to.  A message
-- seen again (the delete after that commit did not happen: a crash, a lost
-- connection) is recognised here and only deleted (or flagged), never
-- handled a second time; one left unseen because it was not understood is
-- not counted again.  One row per message (about 50 bytes).
CREATE TABLE imap_seen (
    digest      BLOB PRIMARY KEY,
    handled     INTEGER NOT NULL CHECK (handled IN (0, 1)),   -- 0: not understood, left unseen
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX imap_seen_at ON imap_seen (at);
