/* The socket front: listening Unix sockets, connections, per-connection
 * buffers and limits.  Lines go to the handlers; answers are held until the
 * batch they depend on has committed. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "handlers.h"

struct server;

/* Who may use the admin socket besides root and the daemon's own user. */
struct admin_acl {
        uid_t uids[16];
        size_t n_uids;
        gid_t gid;              /* (gid_t)-1: no admin group */
};

int server_new(sd_event *ev, struct handler_ctx *ctx, struct server **out);
void server_free(struct server *s);
/* Create, bind and listen on `path` (a stale socket there is replaced; a
 * live one is an error).  0 or -errno. */
int server_listen(struct server *s, const char *path, enum role role, mode_t mode, gid_t gid);
/* The batch committed: send the held answers. */
void server_release_answers(struct server *s);
/* The batch failed: every held answer becomes this error. */
void server_fail_answers(struct server *s, enum errcode e);
/* Stop accepting; close each connection once its answers are out. */
void server_shutdown(struct server *s);
size_t server_connections(const struct server *s);
/* Answers are waiting for this iteration's commit. */
bool server_busy(const struct server *s);
void server_set_admin_acl(struct server *s, const struct admin_acl *acl);
