-- newsletterd schema, migration 7: the same CHECK constraints, written as
-- comparisons.  SQLite (3.40) evaluates `x IN (a, b, c, ...)` with more
-- than two constants by building a temporary b-tree of the list, on every
-- row it checks: the outbox's state check alone took a third of the
-- main thread's time per newsletter mail (two state changes each), and a
-- sign-up paid it four times (subscription, consent, outbox, and the
-- outbox's state change).  `x = a OR x = b OR ...` is the same constraint,
-- checked by comparisons.
--
-- A CHECK constraint is only text in the schema: no row on disk changes,
-- every row already passes the new form, so the text is replaced in place
-- (SQLite documents this use of writable_schema for constraint changes)
-- instead of copying every table.  RESET reloads this connection's schema.
-- The guard table fails the migration, and so the start, if any of the
-- five constraints was not found as written by migrations 1, 3 and 5; its
-- CREATE and DROP also change the schema version, so that every other
-- connection reads the new text.

PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN
                        (''pending'', ''confirmed'', ''expired'', ''unsubscribed'', ''bounced''))',
    'CHECK (state = ''pending'' OR state = ''confirmed'' OR state = ''expired''
                        OR state = ''unsubscribed'' OR state = ''bounced'')')
    WHERE type = 'table' AND name = 'subscription';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN
                        (''queued'', ''sending'', ''sent'', ''deferred'', ''failed'', ''skipped''))',
    'CHECK (state = ''queued'' OR state = ''sending'' OR state = ''sent''
                        OR state = ''deferred'' OR state = ''failed'' OR state = ''skipped'')')
    WHERE type = 'table' AND name = 'outbox';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (event IN (''signup'', ''confirm'', ''unsubscribe'', ''import''))',
    'CHECK (event = ''signup'' OR event = ''confirm'' OR event = ''unsubscribe''
                        OR event = ''import'')')
    WHERE type = 'table' AND name = 'consent';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''sending'', ''paused'', ''cancelled''))',
    'CHECK (state = ''sending'' OR state = ''paused'' OR state = ''cancelled'')')
    WHERE type = 'table' AND name = 'issue';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''permanent'', ''temporary'', ''complaint''))',
    'CHECK (kind = ''permanent'' OR kind = ''temporary'' OR kind = ''complaint'')')
    WHERE type = 'table' AND name = 'bounce';

PRAGMA writable_schema = RESET;

CREATE TABLE migration_007_guard (replaced INTEGER NOT NULL CHECK (replaced));
INSERT INTO migration_007_guard
    SELECT instr(sql, CASE name
        WHEN 'subscription' THEN 'OR state = ''bounced'')'
        WHEN 'outbox' THEN 'OR state = ''skipped'')'
        WHEN 'consent' THEN 'OR event = ''import'')'
        WHEN 'issue' THEN 'OR state = ''cancelled'')'
        WHEN 'bounce' THEN 'OR kind = ''complaint'')' END) > 0
    FROM sqlite_schema
    WHERE type = 'table' AND name IN ('subscription', 'outbox', 'consent', 'issue', 'bounce');
DROP TABLE migration_007_guard;
