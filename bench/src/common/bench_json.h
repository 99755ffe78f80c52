/* SPDX-License-Identifier: MIT */
/*
 * Compact single-line JSON writer shared by the bench tools, so that `-j`
 * output can be appended to a file and read back line by line (plot.sh).
 * Keys are ignored inside arrays. Doubles that are not finite are written as
 * null (JSON has no NaN).
 */
#ifndef BENCH_JSON_H
#define BENCH_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct bench_json {
	FILE *f;
	int depth;
	bool need_comma[32];
	bool in_array[32];
};
void bench_json_init(struct bench_json *j, FILE *f);
void bench_json_obj_begin(struct bench_json *j, const char *key);
void bench_json_obj_end(struct bench_json *j);
void bench_json_arr_begin(struct bench_json *j, const char *key);
void bench_json_arr_end(struct bench_json *j);
void bench_json_str(struct bench_json *j, const char *key, const char *val);	/* NULL -> null */
void bench_json_u64(struct bench_json *j, const char *key, uint64_t val);
void bench_json_int(struct bench_json *j, const char *key, long long val);
void bench_json_dbl(struct bench_json *j, const char *key, double val);
void bench_json_bool(struct bench_json *j, const char *key, bool val);
void bench_json_null(struct bench_json *j, const char *key);

#endif /* BENCH_JSON_H */
