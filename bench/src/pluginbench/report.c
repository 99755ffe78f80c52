// SPDX-License-Identifier: MIT
/*
 * The report: nccl-tests' columns (size, count, time, algbw) per transport,
 * side by side, and the plugin's algbw over each raw baseline's. For
 * sendrecv nccl-tests' busbw equals algbw, so it is not repeated. A second
 * table gives each mean's spread: large sizes run only a few iterations,
 * and one disturbed iteration moves their mean a lot.
 */
#include "pluginbench.h"
#include "bench_json.h"

#include <math.h>

static const struct pb_point *point(const struct pb_result *res, int k, int i)
{
	const struct pb_series *s = &res->s[k];

	if (!s->ran || !s->pt[i].iters || s->pt[i].algbw <= 0)
		return NULL;
	return &s->pt[i];
}

static double ratio(const struct pb_result *res, int k, int i)
{
	const struct pb_point *p = point(res, PB_XPORT_PLUGIN, i), *q = point(res, k, i);

	return p && q ? p->algbw / q->algbw : NAN;
}

static bool all_ok(const struct pb_result *res)
{
	for (int k = 0; k < PB_NXPORTS; k++)
		if (res->s[k].ran && res->s[k].err)
			return false;
	return !res->exit_code && !res->interrupted;
}

static void cell(FILE *f, const struct pb_point *p)
{
	if (p)
		fprintf(f, " %11.1f %8.3f", p->time_us, p->algbw);
	else
		fprintf(f, " %11s %8s", "-", "-");
}

static void spread_cell(FILE *f, const struct pb_point *p)
{
	if (p)
		fprintf(f, " %6u %11.1f %11.1f %6.1f%%", p->iters, p->min_us, p->max_us,
			p->time_us > 0 ? 100.0 * p->stddev_us / p->time_us : 0);
	else
		fprintf(f, " %6s %11s %11s %7s", "-", "-", "-", "-");
}

static void table_spread(FILE *f, const struct pb_result *res, int nx)
{
	fprintf(f, "#\n# per-iteration time: iterations, min and max (us), stddev as %% of the mean\n");
	fprintf(f, "#%11s |", "size");
	for (int k = 0; k < nx; k++)
		fprintf(f, " %-39s |", k == PB_XPORT_PLUGIN ? "plugin" : k == PB_XPORT_RAW1 ?
			"raw TCP, 1 conn" : "raw TCP, N conns");
	fprintf(f, "\n#%11s |", "(B)");
	for (int k = 0; k < nx; k++)
		fprintf(f, " %6s %11s %11s %7s |", "iters", "min", "max", "stddev");
	fprintf(f, "\n");
	for (int i = 0; i < res->nsizes; i++) {
		fprintf(f, " %11llu |", (unsigned long long)res->sizes[i]);
		for (int k = 0; k < nx; k++) {
			spread_cell(f, point(res, k, i));
			fprintf(f, " |");
		}
		fprintf(f, "\n");
	}
}

void pb_report_table(FILE *f, const struct pb_result *res)
{
	const struct pb_opts *o = res->o;
	const struct pb_series *pl = &res->s[PB_XPORT_PLUGIN];
	bool has_n = res->s[PB_XPORT_RAWN].ran;

	fprintf(f, "# " PB_TOOL ": %s, 2 ranks over %s\n",
		o->oneway ? "one way (rank 1 -> rank 0)" : "sendrecv (both ways at once)", res->link);
	fprintf(f, "# plugin: %s\n", pl->desc[0] ? pl->desc : res->plugin_path);
	if (pl->mode[0])
		fprintf(f, "# plugin receive mode: %s\n", pl->mode);
	for (int k = 1; k < PB_NXPORTS; k++)
		if (res->s[k].ran)
			fprintf(f, "# %s: %s\n", res->s[k].name, res->s[k].desc);
	fprintf(f, "# first exchange (untimed: completes any lazy connection set-up), us:");
	for (int k = 0; k < PB_NXPORTS; k++)
		if (res->s[k].ran)
			fprintf(f, " %s %.1f", res->s[k].name, res->s[k].first_us);
	fprintf(f, "\n");
	fprintf(f, "# load average at start: %.2f %.2f %.2f; time budget %.0f s, took %.1f s\n",
		res->loadavg[0], res->loadavg[1], res->loadavg[2], o->budget_s, res->wall_s);
	fprintf(f, "#\n#%11s %11s | %20s | %20s |", "size", "count", "plugin", "raw TCP, 1 conn");
	if (has_n)
		fprintf(f, " %13s %-6u |", "raw TCP, conns:", res->s[PB_XPORT_RAWN].conns);
	fprintf(f, " plugin/raw\n#%11s %11s |", "(B)", "(elements)");
	for (int k = 0; k < (has_n ? 3 : 2); k++)
		fprintf(f, " %11s %8s |", "time(us)", "algbw");
	fprintf(f, " %6s%s\n", "1conn", has_n ? "   Nconn" : "");
	for (int i = 0; i < res->nsizes; i++) {
		fprintf(f, " %11llu %11llu |", (unsigned long long)res->sizes[i],
			(unsigned long long)(res->sizes[i] / 4));
		for (int k = 0; k < (has_n ? 3 : 2); k++) {
			cell(f, point(res, k, i));
			fprintf(f, " |");
		}
		fprintf(f, " %6.2f", ratio(res, PB_XPORT_RAW1, i));
		if (has_n)
			fprintf(f, "  %6.2f", ratio(res, PB_XPORT_RAWN, i));
		fprintf(f, "\n");
	}
	fprintf(f, "# algbw in GB/s (1e9 bytes/s) = size / time; count = size / 4 (float, as nccl-tests)\n");
	table_spread(f, res, has_n ? 3 : 2);
	for (int k = 0; k < PB_NXPORTS; k++)
		if (res->s[k].ran && res->s[k].err)
			fprintf(f, "# %s FAILED: %s\n", res->s[k].name, res->s[k].errmsg);
	if (res->interrupted)
		fprintf(f, "# interrupted\n");
	fprintf(f, "# %s\n", all_ok(res) ? "ok" : "FAILED");
}

static void json_point(struct bench_json *j, const char *key, const struct pb_point *p)
{
	if (!p) {
		bench_json_null(j, key);
		return;
	}
	bench_json_obj_begin(j, key);
	bench_json_dbl(j, "time_us", p->time_us);
	bench_json_dbl(j, "algbw_gbs", p->algbw);
	bench_json_u64(j, "iters", p->iters);
	bench_json_u64(j, "warmup", p->warmup);
	bench_json_dbl(j, "min_us", p->min_us);
	bench_json_dbl(j, "max_us", p->max_us);
	bench_json_dbl(j, "stddev_us", p->stddev_us);
	bench_json_bool(j, "checked", p->checked);
	bench_json_bool(j, "ok", p->ok);
	bench_json_obj_end(j);
}

static void json_ratio(struct bench_json *j, const char *key, double r)
{
	if (isfinite(r))
		bench_json_dbl(j, key, r);
	else
		bench_json_null(j, key);
}

void pb_json_sweep_config(struct bench_json *j, const struct pb_opts *o)
{
	bench_json_u64(j, "min_bytes", o->min_bytes);
	bench_json_u64(j, "max_bytes", o->max_bytes);
	bench_json_u64(j, "factor", o->factor);
	bench_json_dbl(j, "budget_s", o->budget_s);
	bench_json_u64(j, "warmup", o->warmup);
	bench_json_u64(j, "min_iters", o->min_iters);
	bench_json_u64(j, "max_iters", o->max_iters);
	bench_json_u64(j, "nsocks", o->nsocks);
	bench_json_bool(j, "check", o->check);
}

static void json_config(struct bench_json *j, const struct pb_result *res)
{
	const struct pb_opts *o = res->o;

	bench_json_obj_begin(j, "config");
	pb_json_sweep_config(j, o);
	bench_json_u64(j, "chunk", o->chunk);
	bench_json_u64(j, "depth", o->depth);
	bench_json_str(j, "mem", o->mem == PB_MEM_CUDA ? "cuda" : "host");
	bench_json_obj_end(j);
}

void pb_report_json(FILE *f, const struct pb_result *res)
{
	struct bench_json j;

	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "schema", PB_SCHEMA);
	bench_json_bool(&j, "ok", all_ok(res));
	bench_json_int(&j, "exit_code", res->exit_code);
	bench_json_bool(&j, "interrupted", res->interrupted);
	bench_json_str(&j, "op", res->o->oneway ? "oneway" : "sendrecv");
	bench_json_str(&j, "link", res->link);
	bench_json_str(&j, "plugin_path", res->plugin_path);
	bench_json_str(&j, "plugin_mode", res->s[PB_XPORT_PLUGIN].mode);
	json_config(&j, res);
	bench_json_arr_begin(&j, "loadavg");
	for (int i = 0; i < 3; i++)
		bench_json_dbl(&j, NULL, res->loadavg[i]);
	bench_json_arr_end(&j);
	bench_json_dbl(&j, "wall_s", res->wall_s);
	bench_json_arr_begin(&j, "transports");
	for (int k = 0; k < PB_NXPORTS; k++) {
		const struct pb_series *s = &res->s[k];

		if (!s->ran)
			continue;
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "name", s->name);
		bench_json_u64(&j, "conns", s->conns);
		bench_json_str(&j, "desc", s->desc);
		bench_json_bool(&j, "ok", !s->err);
		bench_json_str(&j, "error", s->err ? s->errmsg : NULL);
		bench_json_dbl(&j, "first_exchange_us", s->first_us);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_arr_begin(&j, "sizes");
	for (int i = 0; i < res->nsizes; i++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_u64(&j, "bytes", res->sizes[i]);
		bench_json_u64(&j, "count", res->sizes[i] / 4);
		json_point(&j, "plugin", point(res, PB_XPORT_PLUGIN, i));
		json_point(&j, "raw_1", point(res, PB_XPORT_RAW1, i));
		json_point(&j, "raw_n", point(res, PB_XPORT_RAWN, i));
		json_ratio(&j, "ratio_raw_1", ratio(res, PB_XPORT_RAW1, i));
		json_ratio(&j, "ratio_raw_n", ratio(res, PB_XPORT_RAWN, i));
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	fputc('\n', f);
}
