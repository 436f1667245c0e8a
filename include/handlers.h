/* Request handlers: what each op does (the op table, PROTO_OPS in proto.h,
 * names them).  Uses the store, tokens, address checks; knows nothing of
 * sockets. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "proto.h"
#include "store.h"

struct conf;
struct store;
struct templates;
struct sched;
struct dkim_key;
struct housekeeping;
struct imap;

/* The one import at a time: its lines are staged in the store until commit,
 * and it belongs to the connection that began it. */
/* The one import that may run.  Its lines are staged while the file is
 * read (import_rows); once all are in and valid, import_commit starts
 * applying them, a slice at a time between the requests
 * (handler_import_work), and import_status tells the connection that
 * began it how far that got. */
struct import_session {
        bool active;            /* begun, not yet finished and reported */
        uint64_t conn;          /* the connection that began it; 0 once that closed */
        bool applying;          /* committed: slices are applied */
        bool done;              /* applied; the counts wait for import_status */
        bool pending;
        bool welcome;           /* confirmed subscribers get a welcome mail */
        enum lang lang;
        char list[LIST_NAME_MAX_BYTES + 1];
        char source[300];
        char text_version[17];  /* of the confirmation text, when committed */
        int64_t now;            /* the time of the commit: of every record made */
        int64_t staged, duplicates, invalid;
        struct import_result res;
};

struct handler_ctx {
        const struct conf *conf;
        struct store *store;
        const struct templates *tmpl;
        struct sched *sched;
        struct housekeeping *hk;
        struct dkim_key *const *dkim;   /* the senders' keys (their relay owns them): previews */
        size_t n_dkim;
        struct imap *imap;              /* the bounce mailbox's poller, for stats; NULL: none */
        int64_t now;
        uint64_t conn;                  /* the connection the request came on */
        enum role role;                 /* and its socket */
        bool checkpoint_after_commit;   /* an erase asks for the WAL to be folded in */
        struct import_session import;   /* the handlers' own: zero to begin with */
};

/* A connection closed: drop what it left unfinished (an import not yet
 * committed; a committed one is applied all the same). */
void handler_conn_closed(struct handler_ctx *ctx, uint64_t conn);

/* One slice of a committed import, inside the batch: 1 when more is left,
 * 0 when there is nothing (more) to do, negative on a store failure (the
 * slice undone, the import given up). */
int handler_import_work(struct handler_ctx *ctx);

/* Parse and answer one request line.  Writes go into the store's batch
 * inside a savepoint of their own; `reply` may then only be sent once the
 * batch committed.  `lang` is the language to answer in. */
void handler_run(struct handler_ctx *ctx, enum role role, const char *line, size_t len,
                 struct reply *reply, enum lang *lang);
