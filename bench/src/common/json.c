// SPDX-License-Identifier: MIT
/*
 * A tiny JSON writer: one object on one line, so that `-j` output can be
 * appended to a file and read back line by line (bench/plot.sh does).
 */
#include "bench_json.h"

#include <math.h>

void bench_json_init(struct bench_json *j, FILE *f)
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
static void prefix(struct bench_json *j, const char *key)
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

static void open_(struct bench_json *j, const char *key, char c)
{
	prefix(j, key);
	fputc(c, j->f);
	if (j->depth < (int)(sizeof(j->need_comma) - 1))
		j->depth++;
	j->need_comma[j->depth] = false;
	j->in_array[j->depth] = c == '[';
}

static void close_(struct bench_json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->f);
}

void bench_json_obj_begin(struct bench_json *j, const char *key)
{
	open_(j, key, '{');
}

void bench_json_obj_end(struct bench_json *j)
{
	close_(j, '}');
}

void bench_json_arr_begin(struct bench_json *j, const char *key)
{
	open_(j, key, '[');
}

void bench_json_arr_end(struct bench_json *j)
{
	close_(j, ']');
}

void bench_json_str(struct bench_json *j, const char *key, const char *val)
{
	prefix(j, key);
	if (val)
		put_str(j->f, val);
	else
		fputs("null", j->f);
}

void bench_json_u64(struct bench_json *j, const char *key, uint64_t val)
{
	prefix(j, key);
	fprintf(j->f, "%llu", (unsigned long long)val);
}

void bench_json_int(struct bench_json *j, const char *key, long long val)
{
	prefix(j, key);
	fprintf(j->f, "%lld", val);
}

void bench_json_dbl(struct bench_json *j, const char *key, double val)
{
	prefix(j, key);
	if (isfinite(val))
		fprintf(j->f, "%.6g", val);
	else
		fputs("null", j->f);
}

void bench_json_bool(struct bench_json *j, const char *key, bool val)
{
	prefix(j, key);
	fputs(val ? "true" : "false", j->f);
}

void bench_json_null(struct bench_json *j, const char *key)
{
	prefix(j, key);
	fputs("null", j->f);
}
