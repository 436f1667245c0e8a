/* The languages of answers and mails. */
#pragma once
#include <stddef.h>

enum lang { LANG_DE, LANG_EN, LANG_N };
#define LANG_DEFAULT LANG_DE

/* "de"/"en" -> lang; -1 for anything else */
int lang_parse(const char *s, size_t len);
const char *lang_name(enum lang l);
