// SPDX-License-Identifier: MIT
/*
 * gpudctl agent bench IFNAME [-n ROUNDS] [--size SIZE]... [--mem SPEC]:
 * what a rank waits for at start-up through gpudd, step by step, ROUNDS
 * times per size: connect (and hello), a queue, header split, the bind of a
 * SIZE dma-buf (made once beforehand: the allocation is the job's own cost,
 * not the agent's). The target for connect + bind is 50 ms (issue 16).
 *
 * Beside each step's time as the rank sees it, the time gpudd spent serving
 * its request (the agent's status counts every request type's service
 * time), measured in the same rounds: the difference is what going through
 * the agent costs (socket round trips, fd passing), the rest is NIC work a
 * process doing it directly pays as well. Two sizes (default 64 KiB and
 * 4 MiB) tell the bind's fixed cost from the part that grows with the
 * dma-buf's pages (the kernel sets up one chunk per scatterlist entry).
 */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TARGET_MS 50.0
#define MAX_ROUNDS 1000
#define MAX_SIZES 4

enum { S_CONNECT, S_QUEUE, S_HDS, S_BIND, S_TOTAL, NSTEPS };
static const char *const step_name[NSTEPS] = { "connect", "queue", "header_split", "bind",
					       "total" };
/* The request each step makes of gpudd (the bind opens its own connection: a hello too). */
enum { R_HELLO, R_ALLOC, R_HDS, R_BIND, NREQ };
static const char *const req_name[NREQ] = { "hello", "alloc", "header-split", "bind" };

struct req_totals {
	uint64_t n[NREQ];
	double ms[NREQ];
};

struct size_run {
	size_t size;
	struct gpud_mem *mem;
	double ms[MAX_ROUNDS][NSTEPS];
	bool have_agent;		/* gpudd's service times could be read */
	bool others;			/* another client was served meanwhile */
	double agent_ms[NSTEPS];	/* mean per step; S_TOTAL: their sum */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Every request type's count and total service time from gpudd's status.
 * false: no status, or an agent too old to count them.
 */
static bool read_totals(struct req_totals *t)
{
	struct gpud_agent_opts ao = { .sz = sizeof(ao), .mode = GPUD_AGENT_REQUIRE };
	char *js = NULL;
	const char *req, *end;
	bool ok = false;

	memset(t, 0, sizeof(*t));
	if (gpud_agent_status(&ao, &js))
		return false;
	req = strstr(js, "\"requests\":{");
	end = req ? strstr(req, "},\"nics\"") : NULL;
	for (int i = 0; req && end && i < NREQ; i++) {
		char key[48];
		const char *p;
		unsigned long long n = 0;
		int k;

		ok = true;
		snprintf(key, sizeof(key), "\"%s\":{\"n\":", req_name[i]);
		p = strstr(req, key);
		if (!p || p > end)
			continue;	/* none of that type served yet */
		/* a type only ever refused has "serve_ms":null: n is 0 */
		k = sscanf(p + strlen(key), "%llu,\"errors\":%*u,\"serve_ms\":{\"mean\":%*f,"
			   "\"max\":%*f,\"total\":%lf", &n, &t->ms[i]);
		if (k < 1 || (n && k != 2)) {
			ok = false;
			break;
		}
		t->n[i] = n;
	}
	free(js);
	return ok;
}

/* One rank's start-up; @ms[step] filled. Everything is given back afterwards. */
static int round_once(const char *ifname, struct gpud_mem *mem, double *ms)
{
	struct gpud_agent_opts ao = { .sz = sizeof(ao), .mode = GPUD_AGENT_REQUIRE };
	struct gpud_binding *b = NULL;
	struct gpud_nic *nic = NULL;
	double t0 = now_ms(), t;
	unsigned int q;
	int err;

	err = gpud_nic_open_opts(ifname, &ao, &nic);
	if (err)
		return err;
	t = now_ms();
	ms[S_CONNECT] = t - t0;
	err = gpud_nic_alloc_queues(nic, 1, -1, &q);
	if (err)
		goto out;
	ms[S_QUEUE] = now_ms() - t;
	t = now_ms();
	err = gpud_nic_set_header_split(nic, true);
	if (err)
		goto out;
	ms[S_HDS] = now_ms() - t;
	t = now_ms();
	err = gpud_bind_rx_opts(gpud_nic_ifindex(nic), mem, &q, 1, &ao, &b);
	if (err)
		goto out;
	ms[S_BIND] = now_ms() - t;
	ms[S_TOTAL] = now_ms() - t0;
out:
	gpud_binding_free(b);
	gpud_nic_free(nic);
	return err;
}

/*
 * @rounds rounds of one size, and gpudd's service time per step over them:
 * the status read before and after counts exactly this run's requests when
 * nobody else talked to the agent meanwhile (one alloc per round), plus the
 * hello of the second status read's own connection.
 */
static int run_size(const char *ifname, int rounds, struct size_run *sr)
{
	struct req_totals a, b;
	bool before = read_totals(&a);
	double mean[NREQ];
	int err = 0;

	for (int r = 0; !err && r < rounds; r++)
		err = round_once(ifname, sr->mem, sr->ms[r]);
	if (err || !before || !read_totals(&b))
		return err;
	for (int i = 0; i < NREQ; i++) {
		uint64_t n = b.n[i] - a.n[i];

		mean[i] = n ? (b.ms[i] - a.ms[i]) / (double)n : 0;
	}
	sr->have_agent = true;
	sr->others = b.n[R_ALLOC] - a.n[R_ALLOC] != (uint64_t)rounds ||
		     b.n[R_BIND] - a.n[R_BIND] != (uint64_t)rounds ||
		     b.n[R_HELLO] - a.n[R_HELLO] != 2 * (uint64_t)rounds + 1;
	sr->agent_ms[S_CONNECT] = mean[R_HELLO];
	sr->agent_ms[S_QUEUE] = mean[R_ALLOC];
	sr->agent_ms[S_HDS] = mean[R_HDS];
	sr->agent_ms[S_BIND] = mean[R_BIND] + mean[R_HELLO];
	sr->agent_ms[S_TOTAL] = 0;
	for (int s = 0; s < S_TOTAL; s++)
		sr->agent_ms[S_TOTAL] += sr->agent_ms[s];
	return 0;
}

static int parse_args(int argc, char **argv, int *rounds, size_t *sizes, int *nsizes,
		      const char **spec)
{
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v < 1 || v > MAX_ROUNDS)
				return -EINVAL;
			*rounds = (int)v;
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (*nsizes == MAX_SIZES || gpudctl_parse_size(argv[++i], &sizes[*nsizes]))
				return -EINVAL;
			(*nsizes)++;
		} else if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
			*spec = argv[++i];
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static void stats(const struct size_run *sr, int rounds, double *med, double *max, double *mean)
{
	double col[MAX_ROUNDS];

	for (int s = 0; s < NSTEPS; s++) {
		mean[s] = 0;
		for (int r = 0; r < rounds; r++) {
			col[r] = sr->ms[r][s];
			mean[s] += col[r] / rounds;
		}
		qsort(col, (size_t)rounds, sizeof(col[0]), cmp_double);
		med[s] = col[rounds / 2];
		max[s] = col[rounds - 1];
	}
}

static void json_steps(const char *name, const double *v)
{
	printf(",\"%s\":{", name);
	for (int s = 0; s < NSTEPS; s++)
		printf("%s\"%s\":%.3f", s ? "," : "", step_name[s], v[s]);
	printf("}");
}

static void report_json(const char *ifname, int rounds, const char *kind,
			const struct size_run *runs, int nsizes)
{
	printf("{\"ifname\":");
	gpudctl_json_str(stdout, ifname);
	printf(",\"rounds\":%d,\"mem\":\"%s\",\"target_ms\":%.0f,\"sizes\":[", rounds, kind,
	       TARGET_MS);
	for (int i = 0; i < nsizes; i++) {
		const struct size_run *sr = &runs[i];
		double med[NSTEPS], max[NSTEPS], mean[NSTEPS];

		stats(sr, rounds, med, max, mean);
		printf("%s{\"size\":%zu", i ? "," : "", sr->size);
		json_steps("median_ms", med);
		json_steps("max_ms", max);
		json_steps("mean_ms", mean);
		/* gpudd's side of the same rounds; null when it cannot be told apart */
		if (sr->have_agent && !sr->others) {
			json_steps("agent_ms", sr->agent_ms);
			printf(",\"agent_share\":%.3f", mean[S_TOTAL] > 0 ?
			       sr->agent_ms[S_TOTAL] / mean[S_TOTAL] : 0);
		} else {
			printf(",\"agent_ms\":null,\"agent_share\":null");
		}
		printf(",\"within_target\":%s}", med[S_TOTAL] <= TARGET_MS ? "true" : "false");
	}
	printf("]}\n");
}

static void report_text(const char *ifname, int rounds, const char *kind,
			const struct size_run *runs, int nsizes)
{
	for (int i = 0; i < nsizes; i++) {
		const struct size_run *sr = &runs[i];
		double med[NSTEPS], max[NSTEPS], mean[NSTEPS];
		bool agent = sr->have_agent && !sr->others;

		stats(sr, rounds, med, max, mean);
		printf("%s through gpudd, %d round(s), %zu-byte %s dma-buf, ms:\n", ifname, rounds,
		       sr->size, kind);
		printf("  %-13s %9s %9s %9s %14s\n", "step", "median", "max", "mean",
		       "gpudd (mean)");
		for (int s = 0; s < NSTEPS; s++) {
			printf("  %-13s %9.3f %9.3f %9.3f ", step_name[s], med[s], max[s], mean[s]);
			if (agent)
				printf("%14.3f\n", sr->agent_ms[s]);
			else
				printf("%14s\n", "-");
		}
		printf("connect + bind %.1f ms: %s the %.0f ms target", med[S_TOTAL],
		       med[S_TOTAL] <= TARGET_MS ? "within" : "over", TARGET_MS);
		if (agent)
			printf("; gpudd's own service (the NIC and kernel work a direct process "
			       "does too) is %.0f%% of it, the rest is the round trips",
			       mean[S_TOTAL] > 0 ? 100 * sr->agent_ms[S_TOTAL] / mean[S_TOTAL] : 0);
		else if (sr->have_agent)
			printf("; gpudd served other clients meanwhile: its share is not told apart");
		else
			printf("; gpudd reports no service times (an older agent)");
		printf("\n");
	}
}

int gpudctl_agent_bench(const struct gpudctl_opts *o, int argc, char **argv)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	static struct size_run runs[MAX_SIZES];
	size_t sizes[MAX_SIZES];
	enum gpud_mem_kind kind;
	const char *spec = "host";
	char why[512];
	int rounds = 10, nsizes = 0, err = 0;

	if (argc < 3 || parse_args(argc, argv, &rounds, sizes, &nsizes, &spec) ||
	    gpud_mem_parse_spec(spec, &kind, &mo)) {
		fprintf(stderr, "gpudctl: agent bench IFNAME [-n ROUNDS (1..%d)] "
			"[--size SIZE]... (up to %d; default 64K and 4M) [--mem host|cuda:N|hip:N]\n",
			MAX_ROUNDS, MAX_SIZES);
		return GPUDCTL_EXIT_USAGE;
	}
	if (!nsizes) {
		sizes[nsizes++] = 64u << 10;
		sizes[nsizes++] = 4u << 20;
	}
	for (int i = 0; i < nsizes; i++)
		runs[i] = (struct size_run){ .size = sizes[i] };
	for (int i = 0; !err && i < nsizes; i++)
		err = gpud_mem_create(kind, sizes[i], &mo, &runs[i].mem);
	for (int i = 0; !err && i < nsizes; i++)
		err = run_size(argv[2], rounds, &runs[i]);
	if (err)
		snprintf(why, sizeof(why), "%s", gpud_errmsg());
	for (int i = 0; i < nsizes; i++)
		gpud_mem_free(runs[i].mem);
	if (err) {
		if (o->json) {
			printf("{\"ifname\":");
			gpudctl_json_str(stdout, argv[2]);
			printf(",\"error\":");
			gpudctl_json_str(stdout, why);
			printf("}\n");
		} else {
			fprintf(stderr, "gpudctl: agent bench %s: %s\n", argv[2], why);
		}
		return GPUDCTL_EXIT_FAIL;
	}
	if (o->json)
		report_json(argv[2], rounds, gpud_mem_kind_name(kind), runs, nsizes);
	else
		report_text(argv[2], rounds, gpud_mem_kind_name(kind), runs, nsizes);
	return GPUDCTL_EXIT_OK;
}
