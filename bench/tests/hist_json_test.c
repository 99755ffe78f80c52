// SPDX-License-Identifier: MIT
/*
 * Unit test of gpud-rxbench's building blocks: the power-of-two fragment
 * histogram, the JSON writer (well-formed, escaped, NaN as null, one line),
 * and the payload pattern check that --validate relies on.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "json_get.h"
#include "rxbench.h"

#include <math.h>

static void test_hist(void)
{
	struct rxb_hist a, b;

	T_ASSERT_EQ(0, rxb_hist_bucket(0));
	T_ASSERT_EQ(0, rxb_hist_bucket(1));
	T_ASSERT_EQ(1, rxb_hist_bucket(2));
	T_ASSERT_EQ(1, rxb_hist_bucket(3));
	T_ASSERT_EQ(12, rxb_hist_bucket(4096));
	T_ASSERT_EQ(12, rxb_hist_bucket(8191));
	T_ASSERT_EQ(13, rxb_hist_bucket(8192));
	T_ASSERT_EQ(32, rxb_hist_bucket(UINT64_MAX));

	rxb_hist_init(&a);
	rxb_hist_init(&b);
	rxb_hist_add(&a, 4096);
	rxb_hist_add(&a, 4097);
	rxb_hist_add(&b, 100);
	rxb_hist_add(&b, 65536);
	rxb_hist_merge(&a, &b);
	T_ASSERT_EQ(4, a.n);
	T_ASSERT_EQ(2, a.count[12]);
	T_ASSERT_EQ(1, a.count[6]);
	T_ASSERT_EQ(1, a.count[16]);
	T_ASSERT_EQ(100, a.min);
	T_ASSERT_EQ(65536, a.max);
	T_ASSERT_EQ(4096 + 4097 + 100 + 65536, a.sum);

	/* Merging an empty histogram keeps min. */
	rxb_hist_init(&b);
	rxb_hist_merge(&a, &b);
	T_ASSERT_EQ(100, a.min);
}

static char *write_doc(void)
{
	struct bench_json j;
	struct rxb_hist h;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	T_ASSERT(f);
	rxb_hist_init(&h);
	rxb_hist_add(&h, 4096);
	rxb_hist_add(&h, 5000);
	rxb_hist_add(&h, 1);
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "s", "quote\" back\\ nl\n tab\t ctl\x01 end");
	bench_json_str(&j, "nul", NULL);
	bench_json_u64(&j, "big", UINT64_MAX);
	bench_json_int(&j, "neg", -42);
	bench_json_dbl(&j, "pi", 3.25);
	bench_json_dbl(&j, "nan", NAN);
	bench_json_dbl(&j, "inf", INFINITY);
	bench_json_bool(&j, "t", true);
	bench_json_arr_begin(&j, "empty");
	bench_json_arr_end(&j);
	bench_json_obj_begin(&j, "nested");
	bench_json_arr_begin(&j, "list");
	bench_json_u64(&j, "ignored-key", 1);
	bench_json_u64(&j, NULL, 2);
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	rxb_json_hist(&j, "hist", &h);
	bench_json_obj_end(&j);
	fclose(f);
	return buf;
}

static void test_json(void)
{
	char *doc = write_doc();
	char *nl = strchr(doc, '\n');

	t_log("json: %s", doc);
	/* One object, one line, newline-terminated. */
	T_ASSERT(nl && nl[1] == '\0');
	T_ASSERT(jg_valid(doc));
	T_ASSERT_STREQ("quote\\\" back\\\\ nl\\n tab\\t ctl\\u0001 end", jg_str(doc, "s"));
	T_ASSERT(jg_is_null(doc, "nul"));
	T_ASSERT_STREQ("18446744073709551615", jg_str(doc, "big"));
	T_ASSERT_EQ(-42, jg_num(doc, "neg"));
	T_ASSERT(jg_num(doc, "pi") == 3.25);
	T_ASSERT(jg_is_null(doc, "nan"));
	T_ASSERT(jg_is_null(doc, "inf"));
	T_ASSERT(jg_bool(doc, "t"));
	T_ASSERT_STREQ("[]", jg_str(doc, "empty"));
	T_ASSERT_EQ(1, jg_num(doc, "nested.list.0"));
	T_ASSERT_EQ(2, jg_num(doc, "nested.list.1"));
	/* Non-empty buckets only, in order: [0,1] then [4096,8191]. */
	T_ASSERT_EQ(0, jg_num(doc, "hist.0.min"));
	T_ASSERT_EQ(1, jg_num(doc, "hist.0.max"));
	T_ASSERT_EQ(1, jg_num(doc, "hist.0.count"));
	T_ASSERT_EQ(4096, jg_num(doc, "hist.1.min"));
	T_ASSERT_EQ(8191, jg_num(doc, "hist.1.max"));
	T_ASSERT_EQ(2, jg_num(doc, "hist.1.count"));
	T_ASSERT(!jg_get(doc, "hist.2", (char[8]){ 0 }, 8));
	/* The reader itself refuses broken documents. */
	T_ASSERT(!jg_valid("{\"a\":1,}"));
	T_ASSERT(!jg_valid("{\"a\":nan}"));
	T_ASSERT(!jg_valid("{\"a\":1} x"));
	free(doc);
}

static void test_pattern(void)
{
	struct rxb_pattern p, q;
	uint8_t buf[8192];
	uint64_t off = 3 * 1048573ull - 100;	/* straddles a period boundary */

	T_ASSERT_OK(rxb_pattern_init(&p, 7, sizeof(buf)));
	T_ASSERT_OK(rxb_pattern_init(&q, 8, sizeof(buf)));
	memcpy(buf, rxb_pattern_at(&p, off), sizeof(buf));
	T_ASSERT_EQ(-1, rxb_pattern_check(&p, off, buf, sizeof(buf)));
	/* A different flow's seed does not pass. */
	T_ASSERT(rxb_pattern_check(&q, off, buf, sizeof(buf)) >= 0);
	/* A shifted fragment does not pass. */
	T_ASSERT(rxb_pattern_check(&p, off + 4096, buf, sizeof(buf)) >= 0);
	/* The first bad byte is named. */
	buf[5000] ^= 0x40;
	T_ASSERT_EQ(5000, rxb_pattern_check(&p, off, buf, sizeof(buf)));
	rxb_pattern_free(&p);
	rxb_pattern_free(&q);
}

int main(void)
{
	test_hist();
	test_json();
	test_pattern();
	t_log("PASS");
	return T_EXIT_PASS;
}
