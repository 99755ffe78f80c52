// SPDX-License-Identifier: MIT
/* Options structs grow safely; errors are -errno with a message. */
#include "gpud_test.h"
#include "internal.h"

struct opts_v1 {
	size_t sz;
	uint64_t a;
};

struct opts_v2 {
	size_t sz;
	uint64_t a;
	uint64_t b;
};

int main(void)
{
	struct opts_v2 newer = { .sz = sizeof(newer), .a = 7, .b = 0 };
	struct opts_v1 older = { .sz = sizeof(older), .a = 5 };
	struct opts_v2 out2;
	struct opts_v1 out1;

	/* Older caller: missing fields are zero. */
	T_ASSERT_OK(gpud_opts_copy(&out2, sizeof(out2), &older, "opts"));
	T_ASSERT_EQ(5, out2.a);
	T_ASSERT_EQ(0, out2.b);
	T_ASSERT_EQ(sizeof(out2), out2.sz);

	/* Newer caller with the unknown field zero: accepted. */
	T_ASSERT_OK(gpud_opts_copy(&out1, sizeof(out1), &newer, "opts"));
	T_ASSERT_EQ(7, out1.a);

	/* Newer caller using the unknown field: refused with a message. */
	newer.b = 1;
	T_ASSERT_EQ(-EINVAL, gpud_opts_copy(&out1, sizeof(out1), &newer, "opts"));
	T_ASSERT(strstr(gpud_errmsg(), "unknown") != NULL);

	/* NULL means defaults. */
	T_ASSERT_OK(gpud_opts_copy(&out2, sizeof(out2), NULL, "opts"));
	T_ASSERT_EQ(0, out2.a);

	/* sz too small is a caller bug. */
	older.sz = 1;
	T_ASSERT_EQ(-EINVAL, gpud_opts_copy(&out2, sizeof(out2), &older, "opts"));

	/* gpud_err returns -|err| and records the message. */
	T_ASSERT_EQ(-ENODEV, gpud_err(ENODEV, "thing %d missing", 3));
	T_ASSERT_STREQ("thing 3 missing", gpud_errmsg());
	gpud_errmsg_clear();
	T_ASSERT_STREQ("", gpud_errmsg());
	t_log("ok");
	return T_EXIT_PASS;
}
