-- newsletterd schema, migration 2: what is left of expired sign-ups, and the
-- indexes the admin side needs.

-- A sign-up nobody confirmed within confirm_ttl is deleted by `expire`: its
-- address, name and consent record go.  Only this stays, for
-- expired_retention, so that a late click on its link is still told
-- "expired" instead of "unknown": no address, no ip, nothing personal.
-- The id is the former subscription's id (never reused: AUTOINCREMENT).
CREATE TABLE expired_signup (
    id          INTEGER PRIMARY KEY,
    list        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expired_at  INTEGER NOT NULL
);
CREATE INDEX expired_signup_at ON expired_signup (expired_at);

CREATE TABLE expired_token (
    hash        BLOB PRIMARY KEY,
    signup_id   INTEGER NOT NULL REFERENCES expired_signup(id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX expired_token_signup ON expired_token (signup_id);

-- expire: pending sign-ups by the time of their last confirmation mail
CREATE INDEX subscription_pending ON subscription (mailed_at) WHERE state = 'pending';
-- stats: sign-ups and confirmations per day
CREATE INDEX consent_event_at ON consent (event, at);
