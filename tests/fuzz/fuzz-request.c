/* Fuzz target: one public request line through the parser, the handlers
 * (against a real SQLite file, rolled back after every input) and the
 * answer formatter.  Invariants: an answer always comes out, it is one line
 * of JSON with a known state, and an error state carries an error code. */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "handlers.h"
#include "housekeeping.h"
#include "log.h"
#include "scheduler.h"
#include "store.h"
#include "tmpl.h"

static struct conf conf;
static struct templates tmpl;
static struct store *store;
static struct sched *sched;
static struct housekeeping hk;

static void setup(void)
{
        char dir[] = "/tmp/nl-fuzz-XXXXXX", path[64];
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof(path), "%s/db", dir);
        log_set_level(LOG_LVL_ERR - 1);
        conf_defaults(&conf);
        char err[256];
        if (templates_load(&tmpl, NULL, err, sizeof(err)) != 0 || store_open(path, &store) != 0)
                abort();
        sched = sched_new(store, NULL);
        sched_configure(sched, &conf, &tmpl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!store)
                setup();
        struct handler_ctx ctx = { .conf = &conf, .store = store, .tmpl = &tmpl, .sched = sched,
                                   .hk = &hk, .now = 1800000000, .conn = 1 };
        struct reply rep;
        enum lang lang;
        /* the admin role reaches every op */
        handler_run(&ctx, (size & 1) ? ROLE_ADMIN : ROLE_PUBLIC, (const char *)data, size, &rep, &lang);
        handler_conn_closed(&ctx, 1);
        store_batch_rollback(store);
        size_t len;
        char *line = proto_format(&rep, lang, &len);
        json_decref(rep.extra);
        if (len < 2 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
                abort();
        json_error_t e;
        json_t *j = json_loadb(line, len - 1, 0, &e);
        if (!j || !json_is_string(json_object_get(j, "state")))
                abort();
        if (rep.state == ST_ERROR && !json_is_string(json_object_get(j, "error")))
                abort();
        json_decref(j);
        free(line);
        return 0;
}
