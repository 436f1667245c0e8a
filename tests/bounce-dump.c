/*
 * bounce-dump.c - what the classifier makes of each message named on the
 * command line, one tab-separated line each (file, class, reason,
 * recipient, status): for looking at a corpus by hand.  No VERP.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bounce.h"
#include "log.h"
#include "mailparse.h"

int main(int argc, char **argv)
{
        mailparse_init();
        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "rb");
                if (!f) {
                        perror(argv[i]);
                        return 1;
                }
                char *buf = xmalloc(BOUNCE_MSG_MAX + 1);
                size_t n = fread(buf, 1, BOUNCE_MSG_MAX + 1, f);
                fclose(f);
                struct bounce_info bi;
                bounce_parse(buf, n, NULL, NULL, &bi);
                printf("%s\t%s\t%s\t%s\t%s\t%s\n", argv[i], bounce_class_name(bi.kind), bi.reason,
                       bi.recipient[0] ? bi.recipient : "-", bi.status[0] ? bi.status : "-", bi.diagnostic);
                free(buf);
        }
        return 0;
}
