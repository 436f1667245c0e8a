-- newsletterd schema, migration 2: the indexes of the admin side.

-- pending sign-ups by the time of their last confirmation mail: which are
-- expired (mailed before now - confirm_ttl), counted and stripped in order
CREATE INDEX subscription_pending ON subscription (mailed_at) WHERE state = 'pending';
-- stripped sign-ups by the time they were stripped: purged after expired_retention
CREATE INDEX subscription_expired ON subscription (expired_at) WHERE state = 'expired';
-- stats: sign-ups and confirmations per day
CREATE INDEX consent_event_at ON consent (event, at);
