/* The figures of `stats` in the Prometheus text exposition format (a leaf). */
#pragma once
#include <jansson.h>

#include "buf.h"

/* Metric names start with this. */
#define PROMTEXT_PREFIX "newsletterd_"

/*
 * Append every figure of a stats answer (the JSON object `stats --json`
 * prints, or the daemon's answer: "state", "message" and other strings at
 * its top are not figures) to `out` as Prometheus text format 0.0.4, one
 * family after another, each with its HELP and TYPE line, no timestamps (as
 * node_exporter's textfile collector wants it).  The mapping is generic, so
 * a new figure appears without a change here:
 *   - a number (or true/false) is a gauge named by its path,
 *     {"imap":{"handled":3}} -> newsletterd_imap_handled 3; a key ending in
 *     "_total" is a counter;
 *   - an object of numbers that the table in promtext.c names gets a label
 *     instead: {"subscribers":{"pending":2}} -> newsletterd_subscribers{state="pending"} 2;
 *   - an array of objects gives one family per number member, each element
 *     one sample labelled with its string members:
 *     {"days":[{"date":"2026-12-01","signups":4}]} -> newsletterd_days_signups{date="2026-12-01"} 4;
 *   - a string holding an RFC 3339 time is a gauge of its Unix time, named
 *     ..._timestamp_seconds; other strings are labels in arrays and nothing
 *     elsewhere; null is nothing.
 * Returns 0, or -E2BIG when out's cap was reached (out then holds a part).
 */
int promtext_format(json_t *stats, struct buf *out);
