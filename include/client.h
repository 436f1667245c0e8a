/* The admin socket's client side, for newsletterctl: one JSON request out,
 * one JSON answer back, with timeouts. */
#pragma once
#include <jansson.h>

#include "buf.h"

struct client {
        int fd;
        struct buf in;
        int timeout_ms;
};

/* 0 or -errno */
int client_connect(struct client *c, const char *path, int timeout_ms);
void client_close(struct client *c);
/* Send `req` (not consumed) and wait for its answer.  0, or -errno
 * (-ETIMEDOUT, -ECONNRESET when the daemon closed, -EPROTO for garbage). */
int client_call(struct client *c, json_t *req, json_t **answer);
