/* Request handlers: what each op does (the op table, PROTO_OPS in proto.h,
 * names them).  Uses the store, tokens, address checks; knows nothing of
 * sockets. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "proto.h"

struct conf;
struct store;
struct templates;
struct sched;
struct housekeeping;

/* The one import at a time: its lines are staged in the store until commit,
 * and it belongs to the connection that began it. */
struct import_session {
        bool active;
        uint64_t conn;
        bool pending;
        enum lang lang;
        char list[LIST_NAME_MAX_BYTES + 1];
        char source[300];
        int64_t staged, invalid;
};

struct handler_ctx {
        const struct conf *conf;
        struct store *store;
        const struct templates *tmpl;
        struct sched *sched;
        struct housekeeping *hk;
        int64_t now;
        uint64_t conn;                  /* the connection the request came on */
        bool checkpoint_after_commit;   /* an erase asks for the WAL to be folded in */
        struct import_session import;   /* the handlers' own: zero to begin with */
};

/* A connection closed: drop what it left unfinished (an import). */
void handler_conn_closed(struct handler_ctx *ctx, uint64_t conn);

/* Parse and answer one request line.  Writes go into the store's batch
 * inside a savepoint of their own; `reply` may then only be sent once the
 * batch committed.  `lang` is the language to answer in. */
void handler_run(struct handler_ctx *ctx, enum role role, const char *line, size_t len,
                 struct reply *reply, enum lang *lang);
