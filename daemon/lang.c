/* lang.c - the two languages of answers and mails. */
#include <string.h>

#include "lang.h"

static const char *const lang_names[LANG_N] = { [LANG_DE] = "de", [LANG_EN] = "en" };

int lang_parse(const char *s, size_t len)
{
        for (int i = 0; i < LANG_N; i++)
                if (len == strlen(lang_names[i]) && memcmp(s, lang_names[i], len) == 0)
                        return i;
        return -1;
}

const char *lang_name(enum lang l)
{
        return (unsigned)l < LANG_N ? lang_names[l] : lang_names[LANG_DEFAULT];
}
