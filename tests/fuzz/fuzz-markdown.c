/* Fuzz target: a Markdown issue (markdown.c) and a send --at time
 * (clock_parse_time).  Invariants: the rendering of any UTF-8 source holds
 * no raw HTML of the source (no script, no script link, no event handler)
 * and no marker of a placeholder, and ends in the layout;
 * a parsed time formats back to a valid RFC 3339 string. */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "markdown.h"
#include "tmpl.h"

static size_t count(const char *s, const char *what)
{
        size_t n = 0;
        for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
                n++;
        return n;
}

/* Every "<" starts a tag cmark or the layout writes, or cmark's comment. */
static bool tags_allowed(const char *html)
{
        static const char *const tags[] = {
                "html", "head", "meta", "body", "div", "p", "h1", "h2", "h3", "h4", "h5", "h6",
                "ul", "ol", "li", "a", "em", "strong", "code", "pre", "blockquote", "hr", "br",
                "img", NULL,
        };
        for (const char *p = html; (p = strchr(p, '<')); p++) {
                const char *t = p + 1;
                if (strncmp(t, "!DOCTYPE html>", 14) == 0 || strncmp(t, "!-- raw HTML omitted -->", 24) == 0)
                        continue;
                if (*t == '/')
                        t++;
                size_t n = strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789");
                bool ok = false;
                for (size_t i = 0; tags[i] && !ok; i++)
                        ok = strlen(tags[i]) == n && memcmp(tags[i], t, n) == 0 &&
                             (t[n] == ' ' || t[n] == '>' || t[n] == '/');
                if (!ok)
                        return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *src = malloc(size + 1);
        if (!src)
                abort();
        memcpy(src, data, size);
        src[size] = '\0';
        size_t len = strlen(src);

        int64_t t;
        if (len < 64 && clock_parse_time(src, &t) == 0) {
                char out[CLOCK_RFC3339_LEN];
                clock_format_rfc3339(t, out);
                int64_t back;
                if (clock_parse_time(out, &back) != 0 || back != t)
                        abort();
        }

        char *html = NULL;
        enum markdown_result r = markdown_render(src, len, &html);
        if (r == MARKDOWN_OK) {
                if (!html || !tags_allowed(html) || strcasestr(html, "href=\"javascript:") ||
                    strstr(html, "x7nlph"))
                        abort();
                static const char tail[] = "</div>\n</body>\n</html>\n";
                size_t hl = strlen(html);
                if (hl < sizeof(tail) - 1 || strcmp(html + hl - (sizeof(tail) - 1), tail) != 0)
                        abort();
                /* no placeholder is cut in two by a tag cmark added */
                const char *const names[] = { "{{name", "{{list", "{{unsubscribe_url" };
                for (size_t i = 0; i < 3; i++)
                        if (count(html, names[i]) && count(html, names[i]) > count(src, names[i]) +
                                                     count(src, names[i] + 2))
                                abort();
        } else if (html) {
                abort();
        }
        free(html);
        free(src);
        return 0;
}
