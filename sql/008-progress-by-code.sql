-- newsletterd schema, migration 8: the counts of an issue's mails follow
-- inserts and state changes by the daemon's code instead of by trigger.
--
-- The update trigger of migration 6 ran for both state changes of every
-- mail (claimed, then sent or deferred or failed), newsletter or
-- confirmation, and the insert trigger for every confirmation mail queued:
-- SQLite runs a trigger's program and keeps a statement journal even when
-- its WHEN clause is false, which cost the main thread a fifth of its time
-- per newsletter mail.  Now the scheduler adds up the outcomes of each
-- batch and moves the counts once per issue and state (daemon/scheduler.c);
-- the few other statements that change an issue mail's state move them too
-- (a skipped or failed claim, a deferred mail claimed again: one row each;
-- a cancel: the issue is counted again), and an issue's recipients are
-- counted once when it is queued.  Deletes keep their trigger: a recipient
-- erased with everything of theirs goes by cascade, which no statement of
-- the daemon sees.
DROP TRIGGER outbox_progress_update;
DROP TRIGGER outbox_progress_insert;
