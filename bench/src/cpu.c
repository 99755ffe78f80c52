// SPDX-License-Identifier: MIT
/*
 * CPU accounting. Two views, because they answer different questions:
 * getrusage(RUSAGE_THREAD) per receiving thread is the cost our code and the
 * syscalls it makes (the kernel's copy to user included); /proc/stat deltas
 * per core add what no thread is charged for: softirq receive processing,
 * which on veth is most of the TCP stack's work. Where /proc/stat cannot be
 * read or has no per-core lines, the per-core view says so rather than
 * coming out empty.
 */
#include "rxbench.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double rxb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rxb_thread_cpu(double *user_s, double *sys_s)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru)) {
		*user_s = *sys_s = 0;
		return;
	}
	*user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
	*sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int rxb_cpustat_read(struct rxb_cpustat *s)
{
	char line[512];
	FILE *f;

	memset(s, 0, sizeof(*s));
	f = fopen(RXB_PROC_STAT, "re");
	if (!f) {
		s->err = -errno;
		return s->err;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };
		int cpu;

		/* "cpu " is the sum; we want "cpuN" lines only. */
		if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9')
			continue;
		if (sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
			continue;
		if (cpu < 0 || cpu >= RXB_MAX_CPUS)
			continue;
		s->core[cpu] = (struct rxb_core_ticks){ v[0], v[1], v[2], v[3],
							v[4], v[5], v[6], v[7] };
		if (cpu + 1 > s->ncpu)
			s->ncpu = cpu + 1;
	}
	fclose(f);
	if (!s->ncpu)
		s->err = -ENODATA;
	return s->err;
}

static void cores_why(const struct rxb_cpustat *a, const struct rxb_cpustat *b,
		      struct rxb_cpu_use *u)
{
	int err = a->err ? a->err : b->err;

	if (err == -ENODATA)
		snprintf(u->cores_why, sizeof(u->cores_why),
			 "%s has no per-core \"cpuN\" lines", RXB_PROC_STAT);
	else if (err)
		snprintf(u->cores_why, sizeof(u->cores_why), "cannot read %s: %s",
			 RXB_PROC_STAT, strerror(-err));
	else
		snprintf(u->cores_why, sizeof(u->cores_why),
			 "%s listed no core in both samples", RXB_PROC_STAT);
}

void rxb_cpustat_delta(const struct rxb_cpustat *a, const struct rxb_cpustat *b,
		       struct rxb_cpu_use *u)
{
	u->ncpu = b->ncpu < a->ncpu ? b->ncpu : a->ncpu;
	u->cores_why[0] = '\0';
	if (!u->ncpu)
		cores_why(a, b, u);
	for (int i = 0; i < u->ncpu; i++) {
		const struct rxb_core_ticks *x = &a->core[i], *y = &b->core[i];
		double user = (double)(y->user + y->nice - x->user - x->nice);
		double sys = (double)(y->sys + y->irq - x->sys - x->irq);
		double soft = (double)(y->softirq - x->softirq);
		double idle = (double)(y->idle + y->iowait - x->idle - x->iowait);
		double steal = (double)(y->steal - x->steal);
		double tot = user + sys + soft + idle + steal;

		u->core[i].cpu = i;
		if (tot <= 0) {
			u->core[i].user = u->core[i].sys = u->core[i].softirq = 0;
			u->core[i].idle = 100;
			continue;
		}
		u->core[i].user = 100.0 * user / tot;
		u->core[i].sys = 100.0 * sys / tot;
		u->core[i].softirq = 100.0 * soft / tot;
		u->core[i].idle = 100.0 * idle / tot;
	}
}
