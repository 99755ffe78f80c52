// SPDX-License-Identifier: MIT
/* gpudctl argument parsing, kept apart so the unit tests can link it. */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parses a decimal queue number at *s (no sign, no spaces), advances *s. */
static int parse_qnum(const char **s, unsigned int *v)
{
	unsigned long x = 0;
	const char *p = *s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		x = x * 10 + (unsigned long)(*p++ - '0');
		if (x > 65535)
			return -EINVAL;
	}
	*v = (unsigned int)x;
	*s = p;
	return 0;
}

static bool seen_before(const unsigned int *out, size_t n, unsigned int q)
{
	for (size_t i = 0; i < n; i++)
		if (out[i] == q)
			return true;
	return false;
}

int gpudctl_parse_queues(const char *s, unsigned int *out, size_t max, size_t *n)
{
	unsigned int lo, hi;
	size_t cnt = 0;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		if (parse_qnum(&s, &lo))
			return -EINVAL;
		hi = lo;
		if (*s == '-') {
			s++;
			if (parse_qnum(&s, &hi) || hi < lo)
				return -EINVAL;
		}
		for (unsigned int q = lo; q <= hi; q++) {
			if (seen_before(out, cnt, q))
				return -EINVAL;
			if (cnt == max)
				return -E2BIG;
			out[cnt++] = q;
		}
		if (!*s)
			break;
		if (*s++ != ',')
			return -EINVAL;
	}
	*n = cnt;
	return 0;
}

int gpudctl_parse_size(const char *s, size_t *out)
{
	uint64_t v;

	/* gpudctl bind needs a buffer: zero is as wrong as "12T" on 32-bit. */
	if (gpud_parse_size(s, &v) || !v || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

void gpudctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
