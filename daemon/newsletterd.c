/*
 * newsletterd.c - main() of the daemon: arguments only; daemon.c does the rest.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "mailparse.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: newsletterd -c FILE [--check-config]\n"
                   "  -c, --config FILE   the configuration file\n"
                   "      --check-config  check the configuration and exit\n"
                   "  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *config = NULL;
        int check = 0, o;

        while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (o) {
                case 'c': config = optarg; break;
                case 'C': check = 1; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!config || optind != argc) {
                usage(stderr);
                return 2;
        }
        /* GMime (bounce parsing) is initialised once, before any thread */
        mailparse_init();
        return check ? daemon_check_config(config) : daemon_run(config);
}
