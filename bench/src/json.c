// SPDX-License-Identifier: MIT
/*
 * A tiny JSON writer: one object on one line, so that `-j` output can be
 * appended to a file and read back line by line (bench/plot.sh does).
 */
#include "rxbench.h"

#include <math.h>

void rxb_json_init(struct rxb_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->need_comma[0] = false;
	j->in_array[0] = false;
}

static void put_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Comma and key for the next value; keys only count inside objects. */
static void prefix(struct rxb_json *j, const char *key)
{
	if (j->depth > 0) {
		if (j->need_comma[j->depth])
			fputc(',', j->f);
		j->need_comma[j->depth] = true;
	}
	if (key && j->depth > 0 && !j->in_array[j->depth]) {
		put_str(j->f, key);
		fputc(':', j->f);
	}
}

static void open_(struct rxb_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth < (int)(sizeof(j->need_comma) - 1))
		j->depth++;
	j->need_comma[j->depth] = false;
	j->in_array[j->depth] = c == '[';
}

static void close_(struct rxb_json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->f);
}

void rxb_json_obj_begin(struct rxb_json *j, const char *key)
{
	open_(j, key, '{');
}

void rxb_json_obj_end(struct rxb_json *j)
{
	close_(j, '}');
}

void rxb_json_arr_begin(struct rxb_json *j, const char *key)
{
	open_(j, key, '[');
}

void rxb_json_arr_end(struct rxb_json *j)
{
	close_(j, ']');
}

void rxb_json_str(struct rxb_json *j, const char *key, const char *val)
{
	prefix(j, key);
	if (val)
		put_str(j->f, val);
	else
		fputs("null", j->f);
}

void rxb_json_u64(struct rxb_json *j, const char *key, uint64_t val)
{
	prefix(j, key);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void rxb_json_int(struct rxb_json *j, const char *key, long long val)
{
	prefix(j, key);
	fprintf(j->f, "%lld", val);
}

void rxb_json_dbl(struct rxb_json *j, const char *key, double val)
{
	prefix(j, key);
	if (isfinite(val))
		fprintf(j->f, "%.6g", val);
	else
		fputs("null", j->f);
}

void rxb_json_bool(struct rxb_json *j, const char *key, bool val)
{
	prefix(j, key);
	fputs(val ? "true" : "false", j->f);
}

void rxb_json_null(struct rxb_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}

/* [{"min":4096,"max":8191,"count":12}, ...] for non-empty buckets only. */
void rxb_json_hist(struct rxb_json *j, const char *key, const struct rxb_hist *h)
{
	rxb_json_arr_begin(j, key);
	for (int i = 0; i < RXB_HIST_BUCKETS; i++) {
		uint64_t lo = i ? 1ull << i : 0;
		uint64_t hi = (2ull << i) - 1;

		if (!h->count[i])
			continue;
		rxb_json_obj_begin(j, NULL);
		rxb_json_u64(j, "min", lo);
		rxb_json_u64(j, "max", hi);
		rxb_json_u64(j, "count", h->count[i]);
		rxb_json_obj_end(j);
	}
	rxb_json_arr_end(j);
}
