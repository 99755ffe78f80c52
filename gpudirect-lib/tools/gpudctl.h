/* SPDX-License-Identifier: MIT */
/* gpudctl internals shared by its source files (not installed). */
#ifndef GPUDCTL_H
#define GPUDCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define GPUDCTL_MAX_QUEUES 1024

/* Exit statuses: 0 success (doctor: devmem usable), 1 failure, 2 usage. */
#define GPUDCTL_EXIT_OK 0
#define GPUDCTL_EXIT_FAIL 1
#define GPUDCTL_EXIT_USAGE 2

struct gpudctl_opts {
	bool json;
	bool verbose;
};

/*
 * "1", "1-3", "1,3", "0-1,5": writes the queues in the order given (ranges
 * ascending) into @out, at most @max, and their number into *n. Rejects
 * empty items, reversed ranges, duplicates, numbers above 65535 and any
 * other character. Returns 0 or -EINVAL (-E2BIG: more than @max).
 */
int gpudctl_parse_queues(const char *s, unsigned int *out, size_t max, size_t *n);

/* "4096", "64K", "256M", "1G" (also KiB/MiB/GiB; powers of 1024). 0 is invalid. */
int gpudctl_parse_size(const char *s, size_t *out);

/* Writes @s as a JSON string literal (quotes and escapes included). */
void gpudctl_json_str(FILE *f, const char *s);

int gpudctl_doctor(const struct gpudctl_opts *o, int argc, char **argv);
int gpudctl_bind(const struct gpudctl_opts *o, int argc, char **argv);
int gpudctl_status(const struct gpudctl_opts *o, int argc, char **argv);
int gpudctl_agent(const struct gpudctl_opts *o, int argc, char **argv);
/* argv: "agent" "bench" IFNAME [options] */
int gpudctl_agent_bench(const struct gpudctl_opts *o, int argc, char **argv);
int gpudctl_cleanup(const struct gpudctl_opts *o, int argc, char **argv);
void gpudctl_usage(FILE *f);

#endif /* GPUDCTL_H */
