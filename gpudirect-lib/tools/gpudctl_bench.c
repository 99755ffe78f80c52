// SPDX-License-Identifier: MIT
/*
 * gpudctl agent bench IFNAME [-n ROUNDS] [--size SIZE]: what a rank waits
 * for at start-up through gpudd, step by step, ROUNDS times: connect (and
 * hello), a queue, header split, the bind of a SIZE dma-buf (host memory,
 * made once beforehand: the allocation is the job's own cost, not the
 * agent's). The target for connect + bind is 50 ms (issue 16).
 */
#include "gpudctl.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TARGET_MS 50.0
#define MAX_ROUNDS 1000

enum { S_CONNECT, S_QUEUE, S_HDS, S_BIND, S_TOTAL, NSTEPS };
static const char *const step_name[NSTEPS] = { "connect", "queue", "header_split", "bind",
					       "total" };

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

static int parse_args(int argc, char **argv, int *rounds, size_t *size)
{
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v < 1 || v > MAX_ROUNDS)
				return -EINVAL;
			*rounds = (int)v;
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (gpudctl_parse_size(argv[++i], size))
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static void report(const struct gpudctl_opts *o, const char *ifname, int rounds, size_t size,
		   double (*ms)[NSTEPS])
{
	double med[NSTEPS], max[NSTEPS], col[MAX_ROUNDS];

	for (int s = 0; s < NSTEPS; s++) {
		for (int r = 0; r < rounds; r++)
			col[r] = ms[r][s];
		qsort(col, (size_t)rounds, sizeof(col[0]), cmp_double);
		med[s] = col[rounds / 2];
		max[s] = col[rounds - 1];
	}
	if (o->json) {
		printf("{\"ifname\":");
		gpudctl_json_str(stdout, ifname);
		printf(",\"rounds\":%d,\"size\":%zu,\"target_ms\":%.0f,\"median_ms\":{", rounds,
		       size, TARGET_MS);
		for (int s = 0; s < NSTEPS; s++)
			printf("%s\"%s\":%.3f", s ? "," : "", step_name[s], med[s]);
		printf("},\"max_ms\":{");
		for (int s = 0; s < NSTEPS; s++)
			printf("%s\"%s\":%.3f", s ? "," : "", step_name[s], max[s]);
		printf("},\"within_target\":%s}\n", med[S_TOTAL] <= TARGET_MS ? "true" : "false");
		return;
	}
	printf("%s through gpudd, %d round(s), %zu-byte dma-buf: median (max) ms\n", ifname,
	       rounds, size);
	for (int s = 0; s < NSTEPS; s++)
		printf("  %-13s %9.3f (%9.3f)\n", step_name[s], med[s], max[s]);
	printf("connect + bind %.1f ms: %s the %.0f ms target\n", med[S_TOTAL],
	       med[S_TOTAL] <= TARGET_MS ? "within" : "over", TARGET_MS);
}

int gpudctl_agent_bench(const struct gpudctl_opts *o, int argc, char **argv)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	static double ms[MAX_ROUNDS][NSTEPS];
	struct gpud_mem *mem = NULL;
	size_t size = 4u << 20;
	int rounds = 10, err;

	if (argc < 3 || parse_args(argc, argv, &rounds, &size)) {
		fprintf(stderr, "gpudctl: agent bench IFNAME [-n ROUNDS (1..%d)] [--size SIZE]\n",
			MAX_ROUNDS);
		return GPUDCTL_EXIT_USAGE;
	}
	err = gpud_mem_create(GPUD_MEM_HOST, size, &mo, &mem);
	for (int r = 0; !err && r < rounds; r++)
		err = round_once(argv[2], mem, ms[r]);
	gpud_mem_free(mem);
	if (err) {
		if (o->json) {
			printf("{\"ifname\":");
			gpudctl_json_str(stdout, argv[2]);
			printf(",\"error\":");
			gpudctl_json_str(stdout, gpud_errmsg());
			printf("}\n");
		} else {
			fprintf(stderr, "gpudctl: agent bench %s: %s\n", argv[2], gpud_errmsg());
		}
		return GPUDCTL_EXIT_FAIL;
	}
	report(o, argv[2], rounds, size, ms);
	return GPUDCTL_EXIT_OK;
}
