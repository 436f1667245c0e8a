/*
 * bounce-dump.c - what the classifier makes of each message named on the
 * command line, one tab-separated line each (file, class, reason,
 * recipient, status, diagnostic): for looking at a corpus by hand.  No
 * VERP.  An argument FILE::RCPT judges the report as about RCPT, as the
 * intake does with the recipient of the mail the VERP address names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "log.h"
#include "mailparse.h"

int main(int argc, char **argv)
{
        mailparse_init();
        for (int i = 1; i < argc; i++) {
                char *rcpt = strstr(argv[i], "::");
                if (rcpt) {
                        *rcpt = '\0';
                        rcpt += 2;
                }
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
                if (rcpt)
                        bounce_info_select(&bi, rcpt);
                printf("%s\t%s\t%s\t%s\t%s\t%s\n", argv[i], bounce_class_name(bi.kind), bi.reason,
                       bi.recipient[0] ? bi.recipient : "-", bi.status[0] ? bi.status : "-", bi.diagnostic);
                free(buf);
        }
        return 0;
}
