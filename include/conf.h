/* The configuration file: INI via inih; every key of the contract, durations,
 * file:line errors.  Parsing is a leaf (reads only the file it is given);
 * conf_load_secrets() reads the files the config names. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "secret.h"

enum starttls_mode { STARTTLS_OFF, STARTTLS_OPPORTUNISTIC, STARTTLS_REQUIRED };

struct conf_list {
        char **v;
        size_t n;
};

struct conf {
        char *path;

        /* [daemon] */
        char *public_socket;
        char *admin_socket;
        char *database;
        char *key_file;         /* the secret keys; "" = DATABASE.key */
        struct secret_keys keys;        /* read from key_file by the daemon */
        char *public_group;     /* group of the public socket; "" = ours */
        char *admin_group;      /* group of the admin socket, whose members may use it */
        struct conf_list admin_users;   /* further users who may use it */
        int log_level;

        /* [smtp] */
        struct conf_list urls;
        enum starttls_mode starttls;
        char *username;
        char *password_file;
        char *password;         /* read from password_file by conf_load_secrets() */
        char *from_name;        /* display name of from, UTF-8, may be "" */
        char *from_addr;        /* its address */
        char *from_domain;      /* the domain of from_addr (Message-ID) */
        unsigned max_connections;
        unsigned rate;          /* messages per second over all connections, 0 = unlimited */
        uint64_t timeout;       /* all durations in seconds */
        uint64_t idle_timeout;  /* a connection idle this long is not reused */
        char *helo_name;        /* the EHLO name; "" = the host's FQDN, else from's domain */
        uint64_t retry_initial;
        uint64_t retry_max;
        uint64_t give_up_after;

        /* [subscription] */
        char *confirm_url;
        char *unsubscribe_url;
        uint64_t confirm_ttl;
        uint64_t resend_interval;
        uint64_t expired_retention;
        struct conf_list lists;
        char *templates;
        char *signup_url;       /* the sign-up page (archive copies); "" = confirm_url's directory */
        bool welcome;                   /* a welcome mail after each confirmation */

        /* [limits] */
        unsigned signups_per_ip;        /* per hour; 0 = no limit */
        unsigned signups_per_network;   /* per hour and /24 (IPv4) or /56 (IPv6) */
        unsigned mails_per_hour;        /* confirmation mails of the whole daemon; 0 = off */

        /* [dkim] */
        char *dkim_domain;
        struct conf_list dkim_selectors;
        struct conf_list dkim_key_files;

        /* [bounce] */
        char *return_path;
        unsigned temporary_limit;       /* this many temporary bounces ... */
        uint64_t temporary_window;      /* ... within this window suppress the address */
        char *imap_url;                 /* the bounce mailbox: imaps://HOST/BOX or imap://; "" = none */
        char *imap_username;
        char *imap_password_file;
        char *imap_password;            /* read from imap_password_file by conf_load_secrets() */
        char *imap_ca_file;             /* CAs to trust instead of the system's; "" = the system's */
        uint64_t imap_interval;
        bool imap_keep;                 /* flag handled messages \Seen instead of deleting them */

        /* [antibot] */
        bool pow;                       /* a sign-up on the public socket needs a solved challenge */
        char *antibot_key_file;         /* the challenges' key; "" = [daemon] key_file's */
        unsigned pow_maxnumber;         /* the difficulty: numbers a browser may have to try */
        uint64_t challenge_ttl;
        /* HMAC(key, "altcha") of each key of that file, the first signing
         * (altcha.h); set by the daemon when it reads the key file */
        uint8_t altcha_keys[SECRET_KEYS_MAX][SECRET_KEY_LEN];
        size_t altcha_keys_n;
};

/* Errors, each "file:line: message", collected while parsing. */
struct conf_errors {
        char *msg[64];
        size_t n;
        size_t dropped;
};

/* Fill `c` with the documented defaults. */
void conf_defaults(struct conf *c);
void conf_free(struct conf *c);

/* Parse `path` over the defaults in `c`.  0 when valid; otherwise a
 * positive count of errors in `errs`, or -errno when the file cannot be
 * opened. */
int conf_load(struct conf *c, const char *path, struct conf_errors *errs);
/* The same for text in memory (tests, fuzzing); `name` appears in errors. */
int conf_load_string(struct conf *c, const char *name, const char *text, size_t len,
                     struct conf_errors *errs);

/* Read password_file and [bounce] imap_password_file (refused if group/world
 * readable).  0 or errors. */
int conf_load_secrets(struct conf *c, struct conf_errors *errs);

void conf_errors_print(const struct conf_errors *errs, FILE *f);
void conf_errors_free(struct conf_errors *errs);

/* "30d", "12h", "15m", "2s" or plain seconds -> seconds.  false on junk,
 * a missing number or overflow. */
bool conf_parse_duration(const char *s, uint64_t *out);
