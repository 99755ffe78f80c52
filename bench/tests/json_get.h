/* SPDX-License-Identifier: MIT */
/*
 * Test-only JSON reader: checks that a document is well-formed JSON and
 * fetches values by path ("runs.1.mode", "ratio.gbps_gpud_over_plain"), so
 * the bench tests check gpud-rxbench's -j output without a JSON library.
 */
#ifndef JSON_GET_H
#define JSON_GET_H

#include <stdbool.h>
#include <stddef.h>

/* Whole document is one valid JSON value (trailing whitespace allowed). */
bool jg_valid(const char *doc);

/*
 * Finds @path (keys and array indexes separated by '.'); copies the value
 * into @out: strings unquoted (escapes other than \" and \\ kept as is),
 * numbers, true/false/null, objects and arrays verbatim. Returns false when
 * the path does not exist.
 */
bool jg_get(const char *doc, const char *path, char *out, size_t len);

/* Conveniences; a missing path or wrong type fails the test (T_FAIL). */
double jg_num(const char *doc, const char *path);
bool jg_bool(const char *doc, const char *path);
/* Static buffer, valid until the next call. */
const char *jg_str(const char *doc, const char *path);
bool jg_is_null(const char *doc, const char *path);

#endif
