// SPDX-License-Identifier: MIT
/* Unit: gpudctl's queue-list and size parsing. */
#include "gpud_test.h"
#include "gpudctl.h"

#include <errno.h>

static void expect_queues(const char *s, const unsigned int *want, size_t nwant)
{
	unsigned int q[16];
	size_t n = 99;

	if (gpudctl_parse_queues(s, q, 16, &n))
		T_FAIL("\"%s\" should parse", s);
	T_ASSERT_EQ(nwant, n);
	for (size_t i = 0; i < n; i++)
		T_ASSERT_EQ(want[i], q[i]);
}

static void expect_bad_queues(const char *s, int err)
{
	unsigned int q[4];
	size_t n = 99;
	int ret = gpudctl_parse_queues(s, q, 4, &n);

	if (ret != err)
		T_FAIL("\"%s\": expected %d, got %d", s ? s : "(null)", err, ret);
	T_ASSERT_EQ(99, n);	/* untouched on failure */
}

static void expect_size(const char *s, size_t want)
{
	size_t v = 0;

	if (gpudctl_parse_size(s, &v))
		T_FAIL("size \"%s\" should parse", s);
	T_ASSERT_EQ(want, v);
}

int main(void)
{
	size_t v = 7;

	expect_queues("1", (unsigned int[]){ 1 }, 1);
	expect_queues("1-3", (unsigned int[]){ 1, 2, 3 }, 3);
	expect_queues("1,3", (unsigned int[]){ 1, 3 }, 2);
	expect_queues("1-3,5", (unsigned int[]){ 1, 2, 3, 5 }, 4);
	expect_queues("7,0-1", (unsigned int[]){ 7, 0, 1 }, 3);
	expect_queues("4-4", (unsigned int[]){ 4 }, 1);
	expect_queues("65535", (unsigned int[]){ 65535 }, 1);

	expect_bad_queues(NULL, -EINVAL);
	expect_bad_queues("", -EINVAL);
	expect_bad_queues(",", -EINVAL);
	expect_bad_queues("1,", -EINVAL);
	expect_bad_queues(",1", -EINVAL);
	expect_bad_queues("1,,2", -EINVAL);
	expect_bad_queues("3-1", -EINVAL);
	expect_bad_queues("1-", -EINVAL);
	expect_bad_queues("-1", -EINVAL);
	expect_bad_queues("1-2-3", -EINVAL);
	expect_bad_queues("1,1", -EINVAL);
	expect_bad_queues("1-3,2", -EINVAL);
	expect_bad_queues("a", -EINVAL);
	expect_bad_queues("1 ", -EINVAL);
	expect_bad_queues(" 1", -EINVAL);
	expect_bad_queues("+1", -EINVAL);
	expect_bad_queues("65536", -EINVAL);
	expect_bad_queues("99999999999999999999", -EINVAL);
	expect_bad_queues("0-4", -E2BIG);	/* five queues, room for four */

	expect_size("4096", 4096);
	expect_size("64K", 64 << 10);
	expect_size("64k", 64 << 10);
	expect_size("256M", 256 << 20);
	expect_size("256MiB", 256 << 20);
	expect_size("1G", 1ULL << 30);
	expect_size("2GB", 2ULL << 30);
	expect_size("1T", 1ULL << 40);
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("0", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("M", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("12P", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("12Mx", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("-1", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("99999999999999999999G", &v));
	T_ASSERT_EQ(-EINVAL, gpudctl_parse_size("17179869184G", &v));	/* overflows */
	T_ASSERT_EQ(7, v);
	printf("nic_gpudctl_parse: all checks passed\n");
	return T_EXIT_PASS;
}
