// SPDX-License-Identifier: MIT
/*
 * Results: a human table (default) or one JSON object on one line (-j).
 * The JSON keys are a documented, stable schema (docs/results.md): add keys,
 * never rename or drop them without bumping RXB_SCHEMA.
 */
#include "rxbench.h"

#include <math.h>
#include <string.h>

static double gbps(const struct rxb_run *r)
{
	return r->seconds > 0 ? (double)r->bytes * 8 / r->seconds / 1e9 : 0;
}

static double per_s(uint64_t n, const struct rxb_run *r)
{
	return r->seconds > 0 ? (double)n / r->seconds : 0;
}

static const char *run_mode(const struct rxb_run *r)
{
	switch (r->kind) {
	case RXB_KIND_GPUD:
		return rxb_mode_name(r->mode);
	case RXB_KIND_RDMA:
		return "rdma";
	default:
		return "plain";
	}
}

/* Every rdma result carries this: what its numbers can and cannot say. */
static const char *rdma_note(const struct rxb_rdma_info *ri)
{
	if (ri->soft)
		return "soft-RoCE: the kernel does the NIC's work (one CPU copy per byte, mostly "
		       "in kernel threads, not in the threads measured here); a functional check "
		       "of the RDMA path into this buffer, not a performance claim";
	return "RDMA WRITE by the peer's NIC straight into the buffer; receiver CPU is "
	       "completion handling and credits only";
}

static uint64_t frags(const struct rxb_run *r)
{
	/* plain runs have no gpud stats: a recv() is their fragment; rdma: a write */
	return r->kind == RXB_KIND_GPUD && r->st.frags ? r->st.frags : r->hist.n;
}

static double rx_cpu_per_gb(const struct rxb_run *r)
{
	return r->bytes ? (r->cpu.rx_user_s + r->cpu.rx_sys_s) / ((double)r->bytes / 1e9) : NAN;
}

/* Busy core-seconds on the whole machine per GB: softirq and sender included. */
static double busy_per_gb(const struct rxb_run *r)
{
	double busy = 0;

	if (!r->bytes)
		return NAN;
	for (int i = 0; i < r->cpu.ncpu; i++)
		busy += 100.0 - r->cpu.core[i].idle;
	return busy / 100.0 * r->seconds / ((double)r->bytes / 1e9);
}

static bool run_ok(const struct rxb_run *r)
{
	return !r->err && !r->bad && r->bytes > 0 && !r->interrupted;
}

const struct rxb_run *rxb_report_find(const struct rxb_report *r, enum rxb_kind kind)
{
	for (unsigned int i = 0; i < r->nruns; i++)
		if (r->run[i].kind == kind)
			return &r->run[i];
	return NULL;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/* ------------------------------------------------------------------ */

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
	if (b >= 1000000000ull)
		snprintf(buf, len, "%.2f GB", (double)b / 1e9);
	else if (b >= 1000000ull)
		snprintf(buf, len, "%.1f MB", (double)b / 1e6);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)b);
}

static void fmt_size(char *buf, size_t len, uint64_t b)
{
	if (b >= (1ull << 30))
		snprintf(buf, len, "%lluG", (unsigned long long)(b >> 30));
	else if (b >= (1ull << 20))
		snprintf(buf, len, "%lluM", (unsigned long long)(b >> 20));
	else if (b >= (1ull << 10))
		snprintf(buf, len, "%lluK", (unsigned long long)(b >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)b);
}

static void table_hist(FILE *f, const struct rxb_run *r)
{
	uint64_t top = 0;

	for (int i = 0; i < RXB_HIST_BUCKETS; i++)
		if (r->hist.count[i] > top)
			top = r->hist.count[i];
	fprintf(f, "\nfragment sizes, %s run (%s; powers of two):\n", rxb_kind_name(r->kind),
		r->kind == RXB_KIND_GPUD ? "gpud_frag lengths" :
		r->kind == RXB_KIND_RDMA ? "RDMA WRITE lengths" : "recv() return values");
	for (int i = 0; i < RXB_HIST_BUCKETS; i++) {
		char lo[16], hi[16];
		int bar;

		if (!r->hist.count[i])
			continue;
		fmt_size(lo, sizeof(lo), i ? 1ull << i : 0);
		fmt_size(hi, sizeof(hi), 2ull << i);
		bar = (int)(40.0 * (double)r->hist.count[i] / (double)top + 0.5);
		fprintf(f, "  [%5s, %5s) %12llu  %.*s\n", lo, hi,
			(unsigned long long)r->hist.count[i], bar,
			"########################################");
	}
}

/* Why a run has no per-core rows: /proc/stat's, or a run that never measured. */
static const char *cores_why(const struct rxb_run *r)
{
	return r->cpu.cores_why[0] ? r->cpu.cores_why : "the run did not reach its measured window";
}

static void table_cores(FILE *f, const struct rxb_run *r)
{
	if (!r->cpu.ncpu) {
		fprintf(f, "\nper-core CPU during the %s run: not available: %s\n",
			rxb_kind_name(r->kind), cores_why(r));
		return;
	}
	fprintf(f, "\nper-core CPU during the %s run, %% of each core "
		"(user / sys+irq / softirq / idle; whole machine, sender included):\n",
		rxb_kind_name(r->kind));
	for (int i = 0; i < r->cpu.ncpu; i++)
		fprintf(f, "  cpu%-3d %5.1f / %5.1f / %5.1f / %5.1f\n", r->cpu.core[i].cpu,
			r->cpu.core[i].user, r->cpu.core[i].sys, r->cpu.core[i].softirq,
			r->cpu.core[i].idle);
}

static void table_run(FILE *f, const struct rxb_run *r)
{
	char b[32];

	fmt_bytes(b, sizeof(b), r->bytes);
	fprintf(f, "%-10s %-7s %8.2f %10s %6.2f %6.2f/%-6.2f %6.2f/%-6.2f %6.2f %6.2f %9.0f %9.0f\n",
		rxb_kind_name(r->kind), r->kind == RXB_KIND_PLAIN || r->kind == RXB_KIND_PLAIN_H2D ?
		"-" : run_mode(r), gbps(r), b, r->seconds, r->cpu.rx_user_s, r->cpu.rx_sys_s, r->cpu.tx_user_s,
		r->cpu.tx_sys_s, rx_cpu_per_gb(r), r->copies_per_byte, per_s(frags(r), r),
		per_s(r->st.tokens_released, r));
}

static void table_rdma(FILE *f, const struct rxb_run *r)
{
	const struct rxb_rdma_info *ri = &r->rdma;

	fprintf(f, "rdma run: %s (%s%s%s), %s registration of %s; %u-byte writes into a ring "
		"of %u per flow, path MTU %u, GID index %d\nrdma note: %s\n", ri->device,
		ri->provider, ri->netdev[0] ? " on " : "", ri->netdev, ri->registration, ri->buffer,
		ri->slot_bytes, ri->slots, ri->path_mtu, ri->gid_index, rdma_note(ri));
}

void rxb_report_table(FILE *f, const struct rxb_report *rep)
{
	const struct rxb_opts *o = rep->o;
	const struct rxb_run *g = rxb_report_find(rep, RXB_KIND_GPUD);
	const struct rxb_run *p = rxb_report_find(rep, RXB_KIND_PLAIN);
	const struct rxb_run *h = rxb_report_find(rep, RXB_KIND_PLAIN_H2D);
	const struct rxb_run *d = rxb_report_find(rep, RXB_KIND_RDMA);

	fprintf(f, "gpud-rxbench (libgpudirect %s): %u flow(s) over %s, --mem %s\n", gpud_version(),
		o->flows, rep->env->path, rep->mem_desc);
	if (g)
		fprintf(f, "gpud_rx mode: %s -- %s\n", rxb_mode_name(g->mode), g->reason);
	if (d)
		table_rdma(f, d);
	if (rep->rdma_skip)
		fprintf(f, "rdma run SKIPPED: %s\n", rep->rdma_skip);
	for (unsigned int i = 0; i < rep->nruns; i++) {
		const struct rxb_run *r = &rep->run[i];

		if (r->bad)
			fprintf(f, "VALIDATION FAILED (%s run): flow %u, stream offset %llu: "
				"expected 0x%02x, got 0x%02x\n", rxb_kind_name(r->kind), r->bad_flow,
				(unsigned long long)r->bad_off, r->bad_expected, r->bad_actual);
		else if (r->validate && r->valid)
			fprintf(f, "validation (%s run): every byte matched, %llu bytes checked "
				"(the reads are in its CPU figures)\n", rxb_kind_name(r->kind),
				(unsigned long long)r->bytes_checked);
		if (r->err)
			fprintf(f, "ERROR (%s run): %s\n", rxb_kind_name(r->kind), r->errmsg);
		if (r->interrupted)
			fprintf(f, "(%s run interrupted: partial numbers)\n", rxb_kind_name(r->kind));
	}
	fprintf(f, "\n%-10s %-7s %8s %10s %6s %13s %13s %6s %6s %9s %9s\n", "run", "mode", "Gbit/s",
		"bytes", "secs", "rx CPU usr/sys", "tx CPU usr/sys", "rxs/GB", "copy/B",
		"frags/s", "tokens/s");
	for (unsigned int i = 0; i < rep->nruns; i++)
		table_run(f, &rep->run[i]);
	if (g && p)
		fprintf(f, "\nratio gpud/plain: throughput %.2f, receiver CPU per GB %.2f\n",
			ratio(gbps(g), gbps(p)), ratio(rx_cpu_per_gb(g), rx_cpu_per_gb(p)));
	if (g && h)
		fprintf(f, "ratio gpud/plain_h2d: throughput %.2f, receiver CPU per GB %.2f\n",
			ratio(gbps(g), gbps(h)), ratio(rx_cpu_per_gb(g), rx_cpu_per_gb(h)));
	if (g && d)
		fprintf(f, "ratio gpud/rdma: throughput %.2f, receiver CPU per GB %.2f%s\n",
			ratio(gbps(g), gbps(d)), ratio(rx_cpu_per_gb(g), rx_cpu_per_gb(d)),
			d->rdma.soft ? " (soft-RoCE: functional only)" : "");
	fprintf(f, "(rx/tx CPU: seconds charged to the receiving/sending threads; rxs/GB: "
		"receiver thread CPU seconds per GB;\n copy/B: bytes the CPU copied per payload "
		"byte)\n");
	for (unsigned int i = 0; i < rep->nruns; i++)
		table_cores(f, &rep->run[i]);
	if (g)
		table_hist(f, g);
	fflush(f);
}

/* ------------------------------------------------------------------ */

static void json_cpu(struct bench_json *j, const struct rxb_run *r)
{
	bench_json_obj_begin(j, "cpu");
	bench_json_dbl(j, "rx_user_s", r->cpu.rx_user_s);
	bench_json_dbl(j, "rx_sys_s", r->cpu.rx_sys_s);
	bench_json_dbl(j, "tx_user_s", r->cpu.tx_user_s);
	bench_json_dbl(j, "tx_sys_s", r->cpu.tx_sys_s);
	bench_json_dbl(j, "rx_cpu_s_per_gb", rx_cpu_per_gb(r));
	bench_json_dbl(j, "busy_core_s_per_gb", busy_per_gb(r));
	bench_json_arr_begin(j, "cores");
	for (int i = 0; i < r->cpu.ncpu; i++) {
		bench_json_obj_begin(j, NULL);
		bench_json_int(j, "cpu", r->cpu.core[i].cpu);
		bench_json_dbl(j, "user_pct", r->cpu.core[i].user);
		bench_json_dbl(j, "sys_pct", r->cpu.core[i].sys);
		bench_json_dbl(j, "softirq_pct", r->cpu.core[i].softirq);
		bench_json_dbl(j, "idle_pct", r->cpu.core[i].idle);
		bench_json_obj_end(j);
	}
	bench_json_arr_end(j);
	bench_json_str(j, "cores_unavailable", r->cpu.ncpu ? NULL : cores_why(r));
	bench_json_obj_end(j);
}

static void json_rdma(struct bench_json *j, const struct rxb_run *r)
{
	const struct rxb_rdma_info *ri = &r->rdma;

	if (r->kind != RXB_KIND_RDMA) {
		bench_json_null(j, "rdma");
		return;
	}
	bench_json_obj_begin(j, "rdma");
	bench_json_str(j, "device", ri->device);
	bench_json_str(j, "provider", ri->provider);
	bench_json_str(j, "netdev", ri->netdev[0] ? ri->netdev : NULL);
	bench_json_str(j, "registration", ri->registration);
	bench_json_str(j, "buffer", ri->buffer);
	bench_json_bool(j, "same_buffer_as_gpud", ri->same_buffer);
	bench_json_u64(j, "mem_bytes", ri->mem_bytes);
	bench_json_u64(j, "write_bytes", ri->slot_bytes);
	bench_json_u64(j, "ring_slots", ri->slots);
	bench_json_u64(j, "path_mtu", ri->path_mtu);
	bench_json_int(j, "gid_index", ri->gid_index);
	bench_json_u64(j, "writes", ri->writes);
	bench_json_u64(j, "cq_events", ri->cq_events);
	bench_json_u64(j, "credit_msgs", ri->credit_msgs);
	bench_json_bool(j, "soft", ri->soft);
	bench_json_str(j, "note", rdma_note(ri));
	bench_json_obj_end(j);
}

static void json_run(struct bench_json *j, const struct rxb_run *r)
{
	bench_json_obj_begin(j, NULL);
	bench_json_str(j, "name", rxb_kind_name(r->kind));
	bench_json_str(j, "mode", run_mode(r));
	bench_json_str(j, "mode_reason", r->reason);
	bench_json_u64(j, "flows", r->nflows);
	bench_json_u64(j, "bytes", r->bytes);
	bench_json_dbl(j, "seconds", r->seconds);
	bench_json_dbl(j, "gbps", gbps(r));
	bench_json_bool(j, "validate", r->validate);
	bench_json_bool(j, "validated", r->validate && r->valid);
	bench_json_u64(j, "bytes_checked", r->bytes_checked);
	if (r->bad) {
		bench_json_obj_begin(j, "mismatch");
		bench_json_u64(j, "flow", r->bad_flow);
		bench_json_u64(j, "offset", r->bad_off);
		bench_json_u64(j, "expected", r->bad_expected);
		bench_json_u64(j, "actual", r->bad_actual);
		bench_json_obj_end(j);
	} else {
		bench_json_null(j, "mismatch");
	}
	bench_json_str(j, "error", r->err ? r->errmsg : NULL);
	bench_json_bool(j, "interrupted", r->interrupted);
	bench_json_u64(j, "bytes_devmem", r->st.bytes_devmem);
	bench_json_u64(j, "bytes_copied", r->kind == RXB_KIND_GPUD ? r->st.bytes_copied :
			(uint64_t)(r->copies_per_byte * (double)r->bytes));
	bench_json_dbl(j, "cpu_copies_per_byte", r->copies_per_byte);
	bench_json_u64(j, "frags", frags(r));
	bench_json_dbl(j, "frags_per_s", per_s(frags(r), r));
	bench_json_u64(j, "tokens_released", r->st.tokens_released);
	bench_json_dbl(j, "tokens_per_s", per_s(r->st.tokens_released, r));
	bench_json_u64(j, "recv_calls", r->st.recv_calls);
	bench_json_u64(j, "dontneed_calls", r->st.dontneed_calls);
	bench_json_dbl(j, "syscalls_per_mb", r->bytes ? (double)(r->st.recv_calls +
			r->st.dontneed_calls) / ((double)r->bytes / 1e6) : NAN);
	bench_json_dbl(j, "avg_frag_bytes", r->hist.n ? (double)r->hist.sum / (double)r->hist.n : 0);
	rxb_json_hist(j, "frag_hist", &r->hist);
	json_cpu(j, r);
	json_rdma(j, r);
	bench_json_arr_begin(j, "per_flow");
	for (unsigned int i = 0; i < r->nflows; i++) {
		const struct rxb_flow_res *fl = &r->flow[i];

		bench_json_obj_begin(j, NULL);
		bench_json_u64(j, "flow", i);
		bench_json_u64(j, "bytes", fl->bytes);
		bench_json_dbl(j, "gbps", fl->seconds > 0 ? (double)fl->bytes * 8 / fl->seconds / 1e9 : 0);
		bench_json_obj_end(j);
	}
	bench_json_arr_end(j);
	bench_json_obj_end(j);
}

static void json_config(struct bench_json *j, const struct rxb_report *rep)
{
	const struct rxb_opts *o = rep->o;

	bench_json_obj_begin(j, "config");
	bench_json_str(j, "role", o->role == RXB_ROLE_DEMO ? "demo" : "recv");
	bench_json_str(j, "path", rep->env->path);
	bench_json_str(j, "mem", o->mem_spec);
	bench_json_str(j, "mem_desc", rep->mem_desc);
	bench_json_str(j, "ifname", o->ifname);
	bench_json_u64(j, "queues", o->ifname ? o->queues : 0);
	bench_json_u64(j, "flows", o->flows);
	if (o->duration > 0)
		bench_json_dbl(j, "duration_s", o->duration);
	else
		bench_json_null(j, "duration_s");
	if (o->bytes)
		bench_json_u64(j, "bytes_limit", o->bytes);
	else
		bench_json_null(j, "bytes_limit");
	bench_json_str(j, "mode_requested", rxb_mode_name(o->mode));
	bench_json_bool(j, "validate", o->validate);
	bench_json_bool(j, "compare", o->compare);
	bench_json_arr_begin(j, "compare_with");
	if (o->cmp_plain)
		bench_json_str(j, NULL, "plain");
	if (o->cmp_rdma)
		bench_json_str(j, NULL, "rdma");
	bench_json_arr_end(j);
	bench_json_bool(j, "only_rdma", o->only_rdma);
	bench_json_str(j, "rdma_dev", o->rdma_dev);
	bench_json_u64(j, "chunk", o->chunk);
	bench_json_u64(j, "port", o->port);
	bench_json_u64(j, "seed", o->seed);
	bench_json_obj_end(j);
}

static void json_ratio_to(struct bench_json *j, const struct rxb_run *g,
			  const struct rxb_run *b, const char *gbps_key, const char *cpu_key)
{
	if (!b) {
		bench_json_null(j, gbps_key);
		bench_json_null(j, cpu_key);
		return;
	}
	bench_json_dbl(j, gbps_key, ratio(gbps(g), gbps(b)));
	bench_json_dbl(j, cpu_key, ratio(rx_cpu_per_gb(g), rx_cpu_per_gb(b)));
}

static void json_ratio(struct bench_json *j, const struct rxb_report *rep)
{
	const struct rxb_run *g = rxb_report_find(rep, RXB_KIND_GPUD);
	const struct rxb_run *p = rxb_report_find(rep, RXB_KIND_PLAIN);
	const struct rxb_run *h = rxb_report_find(rep, RXB_KIND_PLAIN_H2D);
	const struct rxb_run *d = rxb_report_find(rep, RXB_KIND_RDMA);

	if (!g || (!p && !d)) {
		bench_json_null(j, "ratio");
		return;
	}
	bench_json_obj_begin(j, "ratio");
	json_ratio_to(j, g, p, "gbps_gpud_over_plain", "rx_cpu_per_gb_gpud_over_plain");
	json_ratio_to(j, g, h, "gbps_gpud_over_plain_h2d", "rx_cpu_per_gb_gpud_over_plain_h2d");
	json_ratio_to(j, g, d, "gbps_gpud_over_rdma", "rx_cpu_per_gb_gpud_over_rdma");
	bench_json_obj_end(j);
}

void rxb_report_json(FILE *f, const struct rxb_report *rep)
{
	const struct rxb_run *g = rxb_report_find(rep, RXB_KIND_GPUD);
	struct bench_json j;
	bool ok = rep->nruns > 0;

	for (unsigned int i = 0; i < rep->nruns; i++)
		ok = ok && run_ok(&rep->run[i]);
	bench_json_init(&j, f);
	bench_json_obj_begin(&j, NULL);
	bench_json_str(&j, "schema", RXB_SCHEMA);
	bench_json_str(&j, "lib_version", gpud_version());
	bench_json_bool(&j, "ok", ok);
	json_config(&j, rep);
	/* The gpud run's headline numbers, repeated at the top for scripts. */
	bench_json_str(&j, "mode", g ? rxb_mode_name(g->mode) : NULL);
	bench_json_str(&j, "mode_reason", g ? g->reason : NULL);
	bench_json_dbl(&j, "gbps", g ? gbps(g) : NAN);
	bench_json_u64(&j, "bytes", g ? g->bytes : 0);
	bench_json_bool(&j, "validated", g && g->validate && g->valid);
	/* Where the NIC wrote: "vram" only when checked after binding. */
	bench_json_str(&j, "placement", rep->placement);
	bench_json_str(&j, "placement_reason", rep->placement_why);
	bench_json_arr_begin(&j, "runs");
	for (unsigned int i = 0; i < rep->nruns; i++)
		json_run(&j, &rep->run[i]);
	bench_json_arr_end(&j);
	/* Runs asked for that could not run here, each with its reason. */
	bench_json_arr_begin(&j, "skipped");
	if (rep->rdma_skip) {
		bench_json_obj_begin(&j, NULL);
		bench_json_str(&j, "name", "rdma");
		bench_json_str(&j, "reason", rep->rdma_skip);
		bench_json_obj_end(&j);
	}
	bench_json_arr_end(&j);
	json_ratio(&j, rep);
	bench_json_obj_end(&j);
	fflush(f);
}
