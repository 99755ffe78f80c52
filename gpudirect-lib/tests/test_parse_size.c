// SPDX-License-Identifier: MIT
/* gpud_parse_size(): the sizes users write, and every way one can be wrong. */
#include "gpud_test.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

static void ok(const char *s, uint64_t want)
{
	uint64_t v = 12345;

	if (gpud_parse_size(s, &v))
		T_FAIL("gpud_parse_size(\"%s\") failed: %s", s, gpud_errmsg());
	if (v != want)
		T_FAIL("gpud_parse_size(\"%s\") = %llu, want %llu", s, (unsigned long long)v,
		       (unsigned long long)want);
}

static void bad(const char *s, int err, const char *msg_part)
{
	uint64_t v = 777;
	int ret = gpud_parse_size(s, &v);

	if (ret != err)
		T_FAIL("gpud_parse_size(\"%s\") = %d, want %d", s ? s : "(null)", ret, err);
	if (v != 777)
		T_FAIL("gpud_parse_size(\"%s\") wrote %llu on failure", s ? s : "(null)",
		       (unsigned long long)v);
	if (!strstr(gpud_errmsg(), msg_part))
		T_FAIL("message for \"%s\" is \"%s\", want it to contain \"%s\"", s ? s : "(null)",
		       gpud_errmsg(), msg_part);
}

int main(void)
{
	ok("0", 0);
	ok("1", 1);
	ok("1048576", 1048576);
	ok("64K", 64ULL << 10);
	ok("64k", 64ULL << 10);
	ok("256M", 256ULL << 20);
	ok("256MiB", 256ULL << 20);
	ok("256MB", 256ULL << 20);
	ok("4g", 4ULL << 30);
	ok("2T", 2ULL << 40);
	ok("010", 10);			/* decimal, not octal */
	ok("18446744073709551615", UINT64_MAX);
	ok("16777215T", 16777215ULL << 40);	/* largest T that fits */

	bad(NULL, -EINVAL, "not a size");
	bad("", -EINVAL, "not a size");
	bad("M", -EINVAL, "not a size");
	bad(" 12", -EINVAL, "not a size");
	bad("+12", -EINVAL, "not a size");
	bad("-1", -EINVAL, "not a size");
	bad("0x10", -EINVAL, "unexpected 'x10'");
	bad("12P", -EINVAL, "unexpected 'P'");
	bad("12Mx", -EINVAL, "unexpected 'x'");
	bad("12MiBs", -EINVAL, "unexpected 'iBs'");
	bad("12 M", -EINVAL, "unexpected ' M'");
	bad("1.5G", -EINVAL, "unexpected '.5G'");
	bad("18446744073709551616", -ERANGE, "64 bits");
	bad("16777216T", -ERANGE, "64 bits");
	bad("17179869184G", -ERANGE, "64 bits");
	T_ASSERT_EQ(-EINVAL, gpud_parse_size("1", NULL));
	return T_EXIT_PASS;
}
