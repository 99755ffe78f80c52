/* SPDX-License-Identifier: MIT */
/*
 * Two network namespaces joined by one link, the plumbing both the bench
 * tools (bench/src/common/netns.c: gpud-rxbench --demo, gpud-pluginbench)
 * and the test fixture (tests/common/netpair.c: t_netpair) build on. Not
 * installed, not part of libgpudirect (library code never shells out).
 *
 * Product-grade: every call returns 0 or -errno and leaves printing and
 * exiting to its caller, so a tool can report and clean up, and a test can
 * turn a failure into T_FAIL or a skip. Names, addresses and device ids are
 * the caller's: the tools and the tests keep theirs apart.
 */
#ifndef GPUD_COMMON_NETNS_H
#define GPUD_COMMON_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* system() of a formatted command: its exit status, 128+signal, or -errno. */
int netns_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes @s to @path (sysfs); 0 or -errno. */
int netns_write_file(const char *path, const char *s);

/*
 * The guardian: a child that removes the namespaces (and netdevsim
 * devices) when its owner is gone, however that happened - return, exit,
 * a signal, SIGKILL, an ASan abort. It waits for EOF on a pipe whose only
 * writer is the owner (and the owner's forks), and also watches the owner
 * itself, since a forked peer holding the pipe may hang after the owner was
 * killed.
 */
struct netns_guard_cfg {
	char ns[2][48];			/* namespaces to delete */
	bool nsim;			/* and these netdevsim devices: */
	unsigned int nsim_id[2];
	/*
	 * Owner killed: SIGKILL whatever still runs in the namespaces first
	 * (a test's hung peers keep a namespace alive). Not on an orderly
	 * stop, where the owner itself may still sit in one of them.
	 */
	bool kill_stragglers;
};

struct netns_guard {
	int fd;				/* our end of the pipe; -1 = none */
	pid_t pid;
};

/* Starts the guardian (before creating what it must remove). 0 or -errno. */
int netns_guard_start(struct netns_guard *g, const struct netns_guard_cfg *cfg);
/* Makes it clean up now and waits until it has. Safe on a stopped guard. */
void netns_guard_stop(struct netns_guard *g);

/*
 * netdevsim device @id with one port of @queues queue pairs; its netdev is
 * moved into namespace @ns and renamed @name. 0, or -errno with @why.
 */
int netns_nsim_add(unsigned int id, unsigned int queues, const char *ns, const char *name,
		   char *why, size_t len);
/*
 * Links two netdevsim ports, given each one's namespace fd (resolved in the
 * calling process) and its ifindex inside that namespace. 0 or -errno.
 */
int netns_nsim_link(const int nsfd[2], const int ifindex[2], char *why, size_t len);

/* ifindex of @ifname in namespace @nsfd (the calling thread goes and comes back). */
int netns_ifindex(int nsfd, const char *ifname);
/* Moves the calling thread into namespace @nsfd (-1: stay). 0 or -errno. */
int netns_enter(int nsfd);

#endif /* GPUD_COMMON_NETNS_H */
