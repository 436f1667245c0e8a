/*
 * unit-stderr.h - for unit tests of what the daemon logs: stderr (the
 * log's sink) is sent to a temporary file between unit_capture_stderr()
 * and unit_captured_stderr(), which returns what was written (the caller
 * frees it).  One capture at a time.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static FILE *unit_captured;
static int unit_saved_stderr = -1;

static inline void unit_capture_stderr(void)
{
        fflush(stderr);
        unit_captured = tmpfile();
        if (!unit_captured)
                abort();
        unit_saved_stderr = dup(2);
        dup2(fileno(unit_captured), 2);
}

static inline char *unit_captured_stderr(void)
{
        fflush(stderr);
        dup2(unit_saved_stderr, 2);
        close(unit_saved_stderr);
        long n = ftell(unit_captured);
        char *text = calloc(1, (size_t)(n < 0 ? 0 : n) + 1);
        if (!text)
                abort();
        rewind(unit_captured);
        if (n > 0 && fread(text, 1, (size_t)n, unit_captured) != (size_t)n)
                text[0] = '\0';
        fclose(unit_captured);
        return text;
}
