// SPDX-License-Identifier: MIT
/*
 * gpud_parse_size(): the one size parser behind gpudctl, gpud-rxbench,
 * gpud-pluginbench and the NCCL plugin's NCCL_DEVMEM_POOL_SIZE, so "64K"
 * means the same everywhere and an overflowing "99999999999G" is an error
 * rather than a silently wrapped pool size.
 */
#include "internal.h"

#include <gpudirect/gpudirect.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned int suffix_shift(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'K':
		return 10;
	case 'M':
		return 20;
	case 'G':
		return 30;
	case 'T':
		return 40;
	default:
		return 0;
	}
}

int gpud_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift;
	char *end;

	if (!out)
		return gpud_err(-EINVAL, "gpud_parse_size: out is NULL");
	/* strtoull would accept " 12", "+12" and "-12" (wrapped): digits only. */
	if (!s || !isdigit((unsigned char)*s))
		return gpud_err(-EINVAL, "'%s' is not a size: expected digits with an optional K, M, G or T suffix (e.g. 64M)",
				s ? s : "(null)");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return gpud_err(-ERANGE, "size '%s' does not fit in 64 bits", s);
	shift = suffix_shift(*end);
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end)
		return gpud_err(-EINVAL, "'%s' is not a size: unexpected '%s' (suffixes: K, M, G, T, optionally KiB/KB)",
				s, end);
	if (shift && v > (UINT64_MAX >> shift))
		return gpud_err(-ERANGE, "size '%s' does not fit in 64 bits", s);
	*out = (uint64_t)v << shift;
	return 0;
}
