// SPDX-License-Identifier: MIT
/* Forward- and backward-compatible option structs (a leading size_t sz). */
#include "internal.h"

#include <string.h>

int gpud_opts_copy(void *dst, size_t dst_sz, const void *src, const char *what)
{
	const unsigned char *s = src;
	size_t user_sz;

	memset(dst, 0, dst_sz);
	if (!src) {
		*(size_t *)dst = dst_sz;
		return 0;
	}
	user_sz = *(const size_t *)src;
	if (user_sz < sizeof(size_t))
		return gpud_err(-EINVAL, "%s: .sz is %zu; set it to sizeof(struct %s)",
				what, user_sz, what);
	/* A newer caller may pass fields we do not know: they must be zero. */
	for (size_t i = dst_sz; i < user_sz; i++)
		if (s[i])
			return gpud_err(-EINVAL,
					"%s: field at byte %zu is unknown to this libgpudirect %s; upgrade the library",
					what, i, GPUD_VERSION_STRING);
	memcpy(dst, src, user_sz < dst_sz ? user_sz : dst_sz);
	*(size_t *)dst = dst_sz;
	return 0;
}
