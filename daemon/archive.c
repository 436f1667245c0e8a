/*
 * archive.c - the archive copy of an issue: its bodies with the
 * placeholders filled for no one, so that what the website shows carries
 * no name and no token (an unsubscribe link would unsubscribe whoever's
 * token it held): {{name}} becomes empty, {{unsubscribe_url}} the sign-up
 * page.  No footer is added (the mails' unsubscribe link has no place on a
 * web page).  A leaf: no I/O, no SQL.
 */
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "log.h"
#include "tmpl.h"

char *archive_signup_url(const char *signup_url, const char *confirm_url)
{
        if (signup_url && *signup_url)
                return xstrdup(signup_url);
        /* the path starts at the first "/" after "scheme://host" */
        const char *host = strstr(confirm_url, "://");
        host = host ? host + 3 : confirm_url;
        size_t end = strcspn(host, "?#");
        const char *path = memchr(host, '/', end);
        if (!path)
                return xstrdup(confirm_url);
        const char *last = path;
        for (const char *p = path; p < host + end; p++)
                if (*p == '/')
                        last = p;
        return xstrndup(confirm_url, (size_t)(last + 1 - confirm_url));
}

char *archive_fill(const char *body, bool html, const char *list, const char *signup_url)
{
        char *url = html ? html_escape(signup_url) : xstrdup(signup_url);
        char *elist = html ? html_escape(list) : xstrdup(list);
        struct tmpl_var vars[] = {
                { "unsubscribe_url", url }, { "name", "" }, { "list", elist },
        };
        char *out = tmpl_fill(body, vars, 3);
        free(url);
        free(elist);
        return out;
}
