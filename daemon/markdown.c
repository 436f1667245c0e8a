/*
 * markdown.c - turns a Markdown issue into its HTML part.  cmark parses and
 * renders (CMARK_OPT_SAFE, its default since 0.29, said anyway: raw HTML
 * becomes a comment, dangerous link schemes an empty link); this file only
 * keeps the {{placeholders}} whole (cmark would percent-encode the braces
 * of one in a link target) and dresses the result: an inline style on each
 * element cmark writes, inside a box of limited width.  Every "<" in cmark's
 * output starts a tag of its own (text comes escaped), so adding a style
 * attribute after a tag's name is safe.  Owns nothing; a leaf: no I/O.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "buf.h"
#include "log.h"
#include "markdown.h"
#include "mime.h"

/* A placeholder {{NAME}} travels through cmark as MARK<n>MARK: letters and
 * digits only, which no part of CommonMark changes, escapes or links. */
#define MARK "x7nlph"
#define PLACEHOLDERS_MAX 1000

static const struct {
        const char *tag, *style;
} styles[] = {
        { "h1", "font-size:26px;line-height:1.25;margin:0 0 16px;font-weight:bold" },
        { "h2", "font-size:21px;line-height:1.3;margin:24px 0 12px;font-weight:bold" },
        { "h3", "font-size:18px;line-height:1.3;margin:20px 0 8px;font-weight:bold" },
        { "h4", "font-size:16px;margin:16px 0 8px;font-weight:bold" },
        { "h5", "font-size:15px;margin:16px 0 8px;font-weight:bold" },
        { "h6", "font-size:14px;margin:16px 0 8px;font-weight:bold" },
        { "p", "margin:0 0 16px" },
        { "ul", "margin:0 0 16px;padding-left:24px" },
        { "ol", "margin:0 0 16px;padding-left:24px" },
        { "li", "margin:0 0 4px" },
        { "a", "color:#1a5fb4;text-decoration:underline" },
        { "blockquote", "margin:0 0 16px;padding:0 0 0 12px;border-left:4px solid #cccccc;color:#555555" },
        { "pre", "margin:0 0 16px;padding:12px;background:#f2f2f2;overflow:auto;font-size:14px" },
        { "code", "font-family:Menlo,Consolas,monospace;font-size:90%" },
        { "hr", "border:0;border-top:1px solid #dddddd;margin:24px 0" },
        { "img", "max-width:100%;height:auto" },
};

static const char layout_head[] =
        "<!DOCTYPE html>\n"
        "<html>\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "</head>\n"
        "<body style=\"margin:0;padding:0;background:#f4f4f4\">\n"
        "<div style=\"max-width:600px;margin:0 auto;padding:24px 20px;background:#ffffff;"
        "font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#222222\">\n";
static const char layout_tail[] = "</div>\n</body>\n</html>\n";

const char *markdown_result_str(enum markdown_result r)
{
        switch (r) {
        case MARKDOWN_OK: return "ok";
        case MARKDOWN_BAD_UTF8: return "the Markdown source is not UTF-8";
        case MARKDOWN_RESERVED: return "the Markdown source holds the reserved word " MARK;
        }
        return "?";
}

/* Each {{...}} (found as tmpl_fill() finds them) replaced by its marker;
 * the originals kept in order. */
static void protect(const char *src, size_t len, struct buf *out, char ***names, size_t *n)
{
        const char *p = src, *end = src + len;
        *names = NULL;
        *n = 0;
        while (p < end) {
                const char *o = memmem(p, (size_t)(end - p), "{{", 2);
                const char *e = o ? memmem(o + 2, (size_t)(end - o - 2), "}}", 2) : NULL;
                if (!e || *n >= PLACEHOLDERS_MAX)
                        break;
                /* only a name ([a-z_]) is kept as it is: anything else goes
                 * through cmark as text (escaped), and the caller's check
                 * of the placeholders refuses it */
                size_t nl = (size_t)(e - o - 2);
                if (nl == 0 || strspn(o + 2, "abcdefghijklmnopqrstuvwxyz_") != nl) {
                        buf_append(out, p, (size_t)(o + 2 - p));
                        p = o + 2;
                        continue;
                }
                buf_append(out, p, (size_t)(o - p));
                *names = xrealloc(*names, (*n + 1) * sizeof(**names));
                (*names)[*n] = xstrndup(o, (size_t)(e + 2 - o));
                buf_printf(out, MARK "%zu" MARK, *n);
                (*n)++;
                p = e + 2;
        }
        buf_append(out, p, (size_t)(end - p));
}

static const char *style_of(const char *tag, size_t n)
{
        for (size_t i = 0; i < sizeof(styles) / sizeof(styles[0]); i++)
                if (strlen(styles[i].tag) == n && memcmp(styles[i].tag, tag, n) == 0)
                        return styles[i].style;
        return NULL;
}

/* cmark's HTML with styles added and the markers put back. */
static void dress(const char *html, char *const *names, size_t n_names, struct buf *out)
{
        const char *p = html;
        while (*p) {
                if (*p == '<' && p[1] >= 'a' && p[1] <= 'z') {
                        const char *t = p + 1, *q = t;
                        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9'))
                                q++;
                        const char *style = style_of(t, (size_t)(q - t));
                        buf_append(out, p, (size_t)(q - p));
                        if (style)
                                buf_printf(out, " style=\"%s\"", style);
                        p = q;
                        continue;
                }
                if (strncmp(p, MARK, strlen(MARK)) == 0) {
                        const char *d = p + strlen(MARK);
                        char *e;
                        unsigned long k = strtoul(d, &e, 10);
                        if (e > d && *d >= '0' && *d <= '9' && strncmp(e, MARK, strlen(MARK)) == 0 &&
                            k < n_names) {
                                buf_puts(out, names[k]);
                                p = e + strlen(MARK);
                                continue;
                        }
                }
                buf_putc(out, *p++);
        }
}

enum markdown_result markdown_render(const char *src, size_t len, char **html)
{
        *html = NULL;
        if (!mime_utf8_valid(src, len))
                return MARKDOWN_BAD_UTF8;
        if (memmem(src, len, MARK, strlen(MARK)))
                return MARKDOWN_RESERVED;
        struct buf in, out;
        buf_init(&in, 0);
        buf_init(&out, 0);
        char **names;
        size_t n_names;
        protect(src, len, &in, &names, &n_names);
        char *body = cmark_markdown_to_html(in.data ? in.data : "", in.len,
                                            CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8);
        if (!body)
                oom();
        buf_puts(&out, layout_head);
        dress(body, names, n_names, &out);
        buf_puts(&out, layout_tail);
        free(body);
        for (size_t i = 0; i < n_names; i++)
                free(names[i]);
        free(names);
        buf_free(&in);
        *html = buf_steal(&out, NULL);
        return MARKDOWN_OK;
}
