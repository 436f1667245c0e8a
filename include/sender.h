/* The sender: threads that hand mails to the relay over SMTP with libcurl,
 * one recipient per transfer, connections reused.  Knows mails and relays,
 * nothing of the website, the protocol or the database. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "conf.h"

enum mail_outcome { OUTCOME_SENT, OUTCOME_DEFERRED, OUTCOME_FAILED };

struct mail_job {
        struct mail_job *next;
        int64_t id;             /* the outbox row */
        int64_t issue_id;       /* a newsletter's issue, else 0 */
        bool urgent;            /* confirmations: ahead of all other mail */
        char *env_from;         /* envelope sender */
        char *rcpt;             /* the one recipient */
        char *data;             /* the message, CRLF line ends */
        size_t len;
        /* or, when data is NULL: what the sender thread renders it from */
        struct mail_draft *draft;
        void *userdata;         /* the scheduler's */
        /* filled in by the sender */
        enum mail_outcome outcome;
        long code;              /* SMTP reply code, 0 when none */
        bool data_sent;        /* its data went out: the relay may have it */
        char reply[SMTP_REPLY_MAX];
};

/* What the sender needs of [smtp]; a snapshot, replaced on reload. */
struct dkim_key;

struct relay {
        char **urls;            /* each with the EHLO name as its path */
        size_t n_urls;
        enum starttls_mode starttls;
        char *username;
        char *password;
        long timeout_ms;        /* bounds every wait on the relay */
        long idle_timeout;      /* seconds a connection may idle and still be reused */
        unsigned rate;          /* messages per second, 0 = unlimited */
        struct dkim_key **dkim; /* sign every mail with each of these (owned) */
        size_t n_dkim;
};

struct sender;

/* The relay settings of a config; takes over the DKIM keys (may be NULL). */
struct relay *relay_from_conf(const struct conf *c, struct dkim_key **dkim, size_t n_dkim);

/* Start n threads.  `notify_fd` (an eventfd) is written whenever a job is
 * finished, `urgent_fd` whenever a thread waits for outcomes to be
 * committed before it may go on.  0 or -errno. */
int sender_new(unsigned n, struct relay *relay, int notify_fd, int urgent_fd, struct sender **out);
/* Queue a job (takes ownership). */
void sender_push(struct sender *s, struct mail_job *job);
/* Take all finished jobs (a list), or NULL. */
struct mail_job *sender_collect(struct sender *s);
/* The outcomes of `sent` mails the relay took are committed now: that much
 * of the budget of taken-but-unrecorded mails is free again. */
void sender_committed(struct sender *s, unsigned sent);
/* Use a new relay from the next transfer on (takes ownership). */
void sender_set_relay(struct sender *s, struct relay *relay);
/* Take back the jobs no thread has started yet (a list). */
struct mail_job *sender_take_queued(struct sender *s);
/* Let the threads finish their transfers and join them; finished jobs stay
 * collectable until sender_free(). */
void sender_stop(struct sender *s);
void sender_free(struct sender *s);

void mail_job_free(struct mail_job *j);
