/* Fuzz target: the configuration parser.  Invariants: no crash, no leak,
 * every error message names the file, and a config that parses leaves
 * every required value set. */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct conf c;
        struct conf_errors errs = { 0 };
        log_set_level(LOG_LVL_ERR - 1);
        conf_defaults(&c);
        int r = conf_load_string(&c, "fuzz.conf", (const char *)data, size, &errs);
        for (size_t i = 0; i < errs.n; i++)
                if (strncmp(errs.msg[i], "fuzz.conf", 9) != 0)
                        abort();
        if (r == 0 && (!c.lists.n || !c.urls.n || !c.from_addr || !c.confirm_url ||
                       !strstr(c.confirm_url, "{token}") || c.max_connections == 0))
                abort();
        conf_errors_free(&errs);
        conf_free(&c);
        return 0;
}
