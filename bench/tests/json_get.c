// SPDX-License-Identifier: MIT
/* Test-only JSON reader: a recursive-descent skipper plus path lookup. */
#include "json_get.h"
#include "gpud_test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *ws(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static const char *skip_value(const char *p, int depth);

static const char *skip_string(const char *p)
{
	if (*p != '"')
		return NULL;
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return NULL;
			p++;
		} else if (*p == '"') {
			return p + 1;
		} else if ((unsigned char)*p < 0x20) {
			return NULL;
		}
	}
	return NULL;
}

static const char *skip_number(const char *p)
{
	const char *s = p;

	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return NULL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return p > s ? p : NULL;
}

static const char *skip_container(const char *p, int depth, char close, bool obj)
{
	p = ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (obj) {
			p = skip_string(ws(p));
			if (!p)
				return NULL;
			p = ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = skip_value(ws(p), depth + 1);
		if (!p)
			return NULL;
		p = ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *skip_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = ws(p);
	switch (*p) {
	case '{':
		return skip_container(p, depth, '}', true);
	case '[':
		return skip_container(p, depth, ']', false);
	case '"':
		return skip_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		return skip_number(p);
	}
}

bool jg_valid(const char *doc)
{
	const char *end = skip_value(doc, 0);

	return end && !*ws(end);
}

/* Moves @p (at a container) to member @key / element @idx; NULL if absent. */
static const char *member(const char *p, const char *key, size_t klen)
{
	char *end;
	long idx;

	p = ws(p);
	if (*p == '[') {
		idx = strtol(key, &end, 10);
		if (end != key + klen || idx < 0)
			return NULL;
		p = ws(p + 1);
		for (long i = 0; *p && *p != ']'; i++) {
			if (i == idx)
				return p;
			p = ws(skip_value(p, 0));
			if (*p == ',')
				p = ws(p + 1);
		}
		return NULL;
	}
	if (*p != '{')
		return NULL;
	p = ws(p + 1);
	while (*p == '"') {
		const char *k = p + 1, *kend = skip_string(p);

		if (!kend)
			return NULL;
		p = ws(kend);
		if (*p++ != ':')
			return NULL;
		p = ws(p);
		if ((size_t)(kend - 1 - k) == klen && !strncmp(k, key, klen))
			return p;
		p = ws(skip_value(p, 0));
		if (*p == ',')
			p = ws(p + 1);
	}
	return NULL;
}

bool jg_get(const char *doc, const char *path, char *out, size_t len)
{
	const char *p = doc, *end;
	size_t n;

	while (*path) {
		const char *dot = strchr(path, '.');
		size_t klen = dot ? (size_t)(dot - path) : strlen(path);

		p = member(p, path, klen);
		if (!p)
			return false;
		path += klen + (dot ? 1 : 0);
	}
	p = ws(p);
	end = skip_value(p, 0);
	if (!end)
		return false;
	if (*p == '"') {
		p++;
		end--;
	}
	n = (size_t)(end - p);
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

double jg_num(const char *doc, const char *path)
{
	char buf[64], *end;
	double v;

	if (!jg_get(doc, path, buf, sizeof(buf)))
		T_FAIL("JSON has no %s", path);
	v = strtod(buf, &end);
	if (end == buf || *end)
		T_FAIL("JSON %s is not a number: %s", path, buf);
	return v;
}

bool jg_bool(const char *doc, const char *path)
{
	char buf[16];

	if (!jg_get(doc, path, buf, sizeof(buf)))
		T_FAIL("JSON has no %s", path);
	if (!strcmp(buf, "true"))
		return true;
	if (!strcmp(buf, "false"))
		return false;
	T_FAIL("JSON %s is not a boolean: %s", path, buf);
}

const char *jg_str(const char *doc, const char *path)
{
	static char buf[4096];

	if (!jg_get(doc, path, buf, sizeof(buf)))
		T_FAIL("JSON has no %s", path);
	return buf;
}

bool jg_is_null(const char *doc, const char *path)
{
	char buf[8];

	return jg_get(doc, path, buf, sizeof(buf)) && !strcmp(buf, "null");
}
