/* The daemon's life: start-up, the event loop with its group commit, reload
 * on SIGHUP, a clean stop on SIGTERM. */
#pragma once

/* Run until SIGTERM/SIGINT.  Returns the process exit status. */
int daemon_run(const char *config_path);

/* --check-config: 0 when the file is valid, errors on stderr otherwise. */
int daemon_check_config(const char *config_path);
