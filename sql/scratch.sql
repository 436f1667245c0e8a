-- newsletterd: the scratch tables of the daemon's connection, made at
-- every start in its temporary schema (a file of its own, apart from the
-- database and its WAL: nothing in them is ever synced or kept).  Not
-- part of the schema's version: they hold rows only inside one
-- transaction.
PRAGMA temp_store = FILE;

-- the sign-ups one housekeeping slice strips
CREATE TEMP TABLE expire_ids (id INTEGER PRIMARY KEY, subscriber_id INTEGER, list TEXT);

-- an import: one row per address of the file (its first line), in the
-- order of the file, until it is applied
CREATE TEMP TABLE import_keys (email_key TEXT PRIMARY KEY, email TEXT, name TEXT,
                               subscriber_id INTEGER);
