/* Archive copies of issues: what the website shows of an issue carries no
 * personal data ({{name}} empty, {{unsubscribe_url}} the sign-up page).
 * A leaf: no I/O, no SQL. */
#pragma once
#include <stdbool.h>

/* The sign-up page: `signup_url` when set, else confirm_url up to its
 * path's last "/" (malloc'd). */
char *archive_signup_url(const char *signup_url, const char *confirm_url);
/* An issue body filled for no one (HTML-escaped in HTML); NULL when it
 * holds a placeholder other than the newsletter ones. */
char *archive_fill(const char *body, bool html, const char *list, const char *signup_url);
