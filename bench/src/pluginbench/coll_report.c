// SPDX-License-Identifier: MIT
/*
 * The collectives' report: nccl-tests' columns (size, count, time, algbw,
 * busbw) for the plugin and for raw TCP running the same ring, their busbw
 * ratio, and each round's time so the spread behind a median is visible.
 */
#include "coll.h"
#include "bench_json.h"

#include <math.h>

static bool all_ok(const struct pb_cresult *res)
{
	return !res->exit_code && !res->interrupted && !res->err[0];
}

static double ratio(const struct pb_cpoint *pt)
{
	return pt->s[PB_L_PLUGIN].ran && pt->s[PB_L_RAW].ran && pt->s[PB_L_RAW].busbw > 0 ?
		pt->s[PB_L_PLUGIN].busbw / pt->s[PB_L_RAW].busbw : NAN;
}

static void head(FILE *f, const struct pb_cresult *res)
{
	const struct pb_opts *o = res->o;

	fprintf(f, "# " PB_TOOL ": %s, %u ranks over %s, %u channel%s per peer\n",
		pb_op_name(o->op), o->ranks, res->net, o->channels, o->channels > 1 ? "s" : "");
	for (int x = 0; x < PB_NLINKS; x++)
		fprintf(f, "# %s: %s (%u connections per direction)\n", res->name[x], res->desc[x],
			res->conns[x]);
	if (res->mode[0])
		fprintf(f, "# plugin receive mode: %s\n", res->mode);
	fprintf(f, "# ring: %u-slot FIFO per channel and direction, %u KiB slices, CPU reduce (float sum)\n",
		PB_FIFO_STEPS, (o->op == PB_OP_SENDRECV ? PB_P2P_CHUNK : PB_SLICE) >> 10);
	fprintf(f, "# first collective (untimed: completes any lazy set-up), us: plugin %.1f raw %.1f\n",
		res->first_us[PB_L_PLUGIN], res->first_us[PB_L_RAW]);
	fprintf(f, "# load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f; %u alternating rounds, medians; took %.1f s\n",
		res->loadavg[0], res->loadavg[1], res->loadavg[2], res->loadavg_end[0],
		res->loadavg_end[1], res->loadavg_end[2], o->rounds, res->wall_s);
}

void pb_coll_report_table(FILE *f, const struct pb_cresult *res)
{
	const struct pb_opts *o = res->o;

	head(f, res);
	fprintf(f, "#\n#%11s %11s | %28s | %28s | %6s | %s\n", "size", "count", "plugin",
		"raw TCP ring", "busbw", "round times (us): plugin / raw");
	fprintf(f, "#%11s %11s |", "(B)", "(elements)");
	for (int x = 0; x < PB_NLINKS; x++)
		fprintf(f, " %10s %8s %8s |", "time(us)", "algbw", "busbw");
	fprintf(f, " %6s |\n", "pl/raw");
	for (int i = 0; i < res->nsizes; i++) {
		const struct pb_cpoint *pt = &res->pt[i];

		if (!pt->ran) {
			if (pt->bytes && !pt->count)
				fprintf(f, " %11llu %11s | (under one float per rank: skipped)\n",
					(unsigned long long)pt->bytes, "0");
			continue;
		}
		fprintf(f, " %11llu %11llu |", (unsigned long long)pt->bytes,
			(unsigned long long)pt->count);
		for (int x = 0; x < PB_NLINKS; x++) {
			if (pt->s[x].ran)
				fprintf(f, " %10.1f %8.3f %8.3f |", pt->s[x].time_us,
					pt->s[x].algbw, pt->s[x].busbw);
			else
				fprintf(f, " %10s %8s %8s |", "-", "-", "-");
		}
		fprintf(f, " %6.2f |", ratio(pt));
		for (int x = 0; x < PB_NLINKS; x++) {
			for (unsigned int r = 0; pt->s[x].ran && r < o->rounds; r++)
				fprintf(f, " %.0f", pt->s[x].round_us[r]);
			fprintf(f, "%s", x == 0 ? " /" : "");
		}
		fprintf(f, "\n");
	}
	fprintf(f, "# algbw in GB/s (1e9 bytes/s) = size / time; busbw = algbw x %.3f (nccl-tests, %s, %u ranks)\n",
		pb_busbw_factor(o->op, (int)o->ranks), pb_op_name(o->op), o->ranks);
	fprintf(f, "# every output element %s\n", o->check ? "checked on every rank after each timed loop" :
		"NOT checked (--no-check)");
	if (res->err[0])
		fprintf(f, "# FAILED: %s\n", res->err);
	if (res->interrupted)
		fprintf(f, "# interrupted\n");
	fprintf(f, "# %s\n", all_ok(res) ? "ok" : "FAILED");
}

static void json_series(struct bench_json *j, const char *key, const struct pb_cpoint *pt,
			const struct pb_cseries *s, unsigned int rounds)
{
	if (!pt->ran || !s->ran) {
		bench_json_null(j, key);
		return;
	}
	bench_json_obj_begin(j, key);
	bench_json_dbl(j, "time_us", s->time_us);
	bench_json_dbl(j, "algbw_gbs", s->algbw);
	bench_json_dbl(j, "busbw_gbs", s->busbw);
	bench_json_u64(j, "iters", s->iters);
	bench_json_u64(j, "warmup", pt->warmup);
	bench_json_arr_begin(j, "rounds_us");
	for (unsigned int r = 0; r < rounds; r++)
		bench_json_dbl(j, NULL, s->round_us[r]);
	bench_json_arr_end(j);
	bench_json_bool(j, "checked", pt->checked);
	bench_json_bool(j, "ok", s->ok);
	bench_json_obj_end(j);
}

static void json_config(struct bench_json *j, const struct pb_opts *o)
{
	bench_json_obj_begin(j, "config");
	pb_json_sweep_config(j, o);
	bench_json_u64(j, "rounds", o->rounds);
	bench_json_u64(j, "fifo_steps", PB_FIFO_STEPS);
	bench_json_u64(j, "slice", o->op == PB_OP_SENDRECV ? PB_P2P_CHUNK : PB_SLICE);
	bench_json_obj_end(j);
}

static void json_loads(struct bench_json *j, const char *key, const double *l)
{
	bench_json_arr_begin(j, key);
	for (int i = 0; i < 3; i++)
		bench_json_dbl(j, NULL, l[i]);
	bench_json_arr_end(j);
}

void pb_coll_report_json(FILE *f, const struct pb_cresult *res)
{
	const struct pb_opts *o = res->o;
	struct bench_json j;

	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "schema", PB_COLL_SCHEMA);
	bench_json_bool(&j, "ok", all_ok(res));
	bench_json_int(&j, "exit_code", res->exit_code);
	bench_json_bool(&j, "interrupted", res->interrupted);
	bench_json_str(&j, "error", res->err[0] ? res->err : NULL);
	bench_json_str(&j, "op", pb_op_name(o->op));
	bench_json_u64(&j, "ranks", o->ranks);
	bench_json_u64(&j, "channels", o->channels);
	bench_json_dbl(&j, "busbw_factor", pb_busbw_factor(o->op, (int)o->ranks));
	bench_json_str(&j, "net", res->net);
	bench_json_str(&j, "plugin_path", res->plugin_path);
	bench_json_str(&j, "plugin_mode", res->mode);
	json_config(&j, o);
	json_loads(&j, "loadavg", res->loadavg);
	json_loads(&j, "loadavg_end", res->loadavg_end);
	bench_json_dbl(&j, "wall_s", res->wall_s);
	bench_json_arr_begin(&j, "transports");
	for (int x = 0; x < PB_NLINKS; x++) {
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "name", res->name[x]);
		bench_json_u64(&j, "conns", res->conns[x]);
		bench_json_bool(&j, "ok", res->up[x]);
		bench_json_str(&j, "desc", res->desc[x]);
		bench_json_dbl(&j, "first_us", res->first_us[x]);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_arr_begin(&j, "sizes");
	for (int i = 0; i < res->nsizes; i++) {
		const struct pb_cpoint *pt = &res->pt[i];
		double r = ratio(pt);

		if (!pt->ran && !pt->bad[0])
			continue;
		bench_json_obj_begin(&j, NULL);
		bench_json_u64(&j, "bytes", pt->bytes);
		bench_json_u64(&j, "count", pt->count);
		json_series(&j, "plugin", pt, &pt->s[PB_L_PLUGIN], o->rounds);
		json_series(&j, "raw", pt, &pt->s[PB_L_RAW], o->rounds);
		if (isfinite(r))
			bench_json_dbl(&j, "ratio_busbw", r);
		else
			bench_json_null(&j, "ratio_busbw");
		bench_json_str(&j, "error", pt->bad[0] ? pt->bad : NULL);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	bench_json_obj_end(&j);
	fputc('\n', f);
}
