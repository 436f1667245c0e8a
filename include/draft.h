/* Drafts: what a sender thread turns into a mail, so that building mails
 * (placeholders, quoted-printable, encoded words) costs the main thread
 * nothing.  A newsletter draft shares its issue's texts (immutable,
 * reference-counted) and fills one recipient's placeholders and
 * List-Unsubscribe headers; a confirmation draft carries its finished
 * subject and body (a leaf: no I/O). */
#pragma once
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "lang.h"

struct body_prep;

struct issue_text {
        unsigned refs;
        int64_t id;
        char *subject;
        char *text;
        char *html;             /* NULL: text only */
        /* each body with its footer, per language, split at line ends into
         * lines without placeholders, quoted-printable already (the same
         * for every recipient), and lines to fill per recipient: an issue
         * is encoded once, not once per mail */
        struct body_prep *prep[LANG_N][2];      /* [lang][0 text, 1 HTML] */
};

/* Takes the strings over; prepares the bodies (see prep above). */
struct issue_text *issue_text_new(int64_t id, char *subject, char *text, char *html);
struct issue_text *issue_text_ref(struct issue_text *it);
void issue_text_unref(struct issue_text *it);       /* accepts NULL */

struct mail_draft {
        struct issue_text *issue;       /* a newsletter: a reference to its texts */
        char *subject, *text;           /* without an issue: the finished texts */
        char *to;
        char *unsubscribe_url;          /* carries the recipient's token: wiped on free */
        char *name;                     /* the subscriber's, "" when none */
        char *list;
        enum lang lang;
        char *from_name, *from_addr, *from_domain;
        time_t date;
};

/* The whole message (see mime_build).  0, or the mime_result.  A newsletter
 * gets List-Id and List-Unsubscribe(-Post), anything else Auto-Submitted. */
int draft_render(const struct mail_draft *m, struct buf *out);
void draft_free(struct mail_draft *m);      /* accepts NULL */
