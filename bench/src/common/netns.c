// SPDX-License-Identifier: MIT
/*
 * The benches' own network (gpud-rxbench --demo, gpud-pluginbench): two
 * namespaces joined by a veth pair (stock kernel) or by two linked netdevsim
 * ports (patched-kernel VM). The tools may shell out to `ip`; the library
 * never does.
 *
 * Cleanup has to survive every way the tool can end (return from main, exit
 * on error, SIGINT/SIGTERM, even SIGKILL), so a guardian child does it: it
 * waits for EOF on a pipe whose only writer is us, and EOF comes when we are
 * gone, however that happened.
 */
#include "bench_netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		err = -errno;
	close(fd);
	return err;
}

bool bench_in_vm(void)
{
	const char *v = getenv("GPUD_IN_VM");

	return v && !strcmp(v, "1") && !access("/sys/bus/netdevsim", F_OK);
}

int bench_netns_enter(int nsfd)
{
	if (nsfd < 0)
		return 0;
	return setns(nsfd, CLONE_NEWNET) ? -errno : 0;
}

static void remove_all(const struct bench_netns *n)
{
	char buf[32];

	/* Deleting a namespace deletes the veth in it; netdevsim ports would
	 * fall back to init_net, so their devices are deleted explicitly. */
	for (int s = 0; s < 2; s++)
		run_cmd("ip netns del %s 2>/dev/null", n->ns[s]);
	if (n->link == BENCH_LINK_NSIM) {
		for (int s = 0; s < 2; s++) {
			snprintf(buf, sizeof(buf), "%u", n->nsim_id[s]);
			write_str("/sys/bus/netdevsim/del_device", buf);
		}
	}
}

static void guardian(int rfd, const struct bench_netns *n)
{
	char c;

	/* ^C reaches the whole process group: our parent's exit is what ends us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	while (read(rfd, &c, 1) < 0 && errno == EINTR)
		;
	remove_all(n);
	_exit(0);
}

static int start_guardian(struct bench_netns *n)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0) {
		close(pfd[1]);
		setpgid(0, 0);
		guardian(pfd[0], n);
	}
	close(pfd[0]);
	n->guardian_fd = pfd[1];
	n->guardian_pid = pid;
	return 0;
}

static int nsim_ifname(unsigned int id, char *out, size_t len)
{
	char path[128];
	struct dirent *de;
	DIR *d = NULL;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/sys/bus/netdevsim/devices/netdevsim%u/net", id);
	/* The port's netdev shows up shortly after new_device returns. */
	for (int tries = 0; tries < 100 && !d; tries++) {
		d = opendir(path);
		if (!d)
			usleep(20000);
	}
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= len)
			continue;
		snprintf(out, len, "%s", de->d_name);
		err = 0;
		break;
	}
	closedir(d);
	return err;
}

/* ifindex as seen inside namespace @s (ifindexes are per namespace). */
static int ifindex_in(const struct bench_netns *n, int s)
{
	int idx, err;

	err = bench_netns_enter(n->nsfd[s]);
	if (err)
		return err;
	idx = (int)if_nametoindex(n->ifname[s]);
	err = bench_netns_enter(n->orig_nsfd);
	if (err)
		return err;
	return idx > 0 ? idx : -ENODEV;
}

static int setup_nsim(struct bench_netns *n)
{
	char buf[96], dev[32];
	int idx[2];

	for (int s = 0; s < 2; s++) {
		/* one port, 4 queues: queue 0 keeps RSS, queue 1 is bound */
		snprintf(buf, sizeof(buf), "%u 1 4", n->nsim_id[s]);
		if (write_str("/sys/bus/netdevsim/new_device", buf)) {
			fprintf(stderr, "%s: netdevsim new_device '%s': %s\n", n->tool, buf,
				strerror(errno));
			return -EIO;
		}
		if (nsim_ifname(n->nsim_id[s], dev, sizeof(dev))) {
			fprintf(stderr, "%s: netdevsim%u has no netdev\n", n->tool, n->nsim_id[s]);
			return -ENODEV;
		}
		snprintf(n->ifname[s], sizeof(n->ifname[s]), "nsim%d", s);
		if (run_cmd("ip link set %s netns %s name %s", dev, n->ns[s], n->ifname[s]))
			return -EIO;
	}
	for (int s = 0; s < 2; s++) {
		idx[s] = ifindex_in(n, s);
		if (idx[s] < 0)
			return idx[s];
	}
	/* The fds are resolved in the writing process: ours. */
	snprintf(buf, sizeof(buf), "%d:%d %d:%d", n->nsfd[0], idx[0], n->nsfd[1], idx[1]);
	if (write_str("/sys/bus/netdevsim/link_device", buf)) {
		fprintf(stderr, "%s: netdevsim link_device '%s': %s\n", n->tool, buf,
			strerror(errno));
		return -EIO;
	}
	return 0;
}

static int setup_veth(struct bench_netns *n)
{
	snprintf(n->ifname[0], sizeof(n->ifname[0]), "rxb-tx");
	snprintf(n->ifname[1], sizeof(n->ifname[1]), "rxb-rx");
	if (run_cmd("ip link add %s netns %s type veth peer name %s netns %s", n->ifname[0],
		    n->ns[0], n->ifname[1], n->ns[1]))
		return -EIO;
	return 0;
}

int bench_netns_setup(struct bench_netns *n, const char *tool, enum bench_link link)
{
	char path[96];
	pid_t me = getpid();
	int err;

	memset(n, 0, sizeof(*n));
	n->link = link;
	n->tool = tool;
	n->nsfd[0] = n->nsfd[1] = n->orig_nsfd = n->guardian_fd = -1;
	snprintf(n->ns[0], sizeof(n->ns[0]), "%s-%d-tx", tool, (int)me);
	snprintf(n->ns[1], sizeof(n->ns[1]), "%s-%d-rx", tool, (int)me);
	for (int s = 0; s < 2; s++)
		n->nsim_id[s] = 900000u + (unsigned int)(me % 50000) * 2 + (unsigned int)s;

	n->orig_nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (n->orig_nsfd < 0)
		return -errno;
	/* The guardian exists before anything it has to remove. */
	err = start_guardian(n);
	if (err)
		return err;
	for (int s = 0; s < 2; s++) {
		if (run_cmd("ip netns add %s", n->ns[s])) {
			fprintf(stderr, "%s: ip netns add %s failed\n", tool, n->ns[s]);
			return -EIO;
		}
		snprintf(path, sizeof(path), "/var/run/netns/%s", n->ns[s]);
		n->nsfd[s] = open(path, O_RDONLY | O_CLOEXEC);
		if (n->nsfd[s] < 0)
			return -errno;
		run_cmd("ip -n %s link set lo up", n->ns[s]);
	}
	err = link == BENCH_LINK_VETH ? setup_veth(n) : setup_nsim(n);
	if (err) {
		fprintf(stderr, "%s: cannot create the %s link\n", tool,
			link == BENCH_LINK_VETH ? "veth" : "netdevsim");
		return err;
	}
	for (int s = 0; s < 2; s++) {
		/* RFC 2544 benchmarking range only. */
		snprintf(n->addr[s], sizeof(n->addr[s]), "198.18.%d.%d", 100, s + 1);
		if (run_cmd("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up", n->ns[s],
			    n->addr[s], n->ifname[s], n->ns[s], n->ifname[s]))
			return -EIO;
	}
	return 0;
}

void bench_netns_teardown(struct bench_netns *n)
{
	int st;

	for (int s = 0; s < 2; s++) {
		if (n->nsfd[s] >= 0)
			close(n->nsfd[s]);
		n->nsfd[s] = -1;
	}
	if (n->orig_nsfd >= 0) {
		bench_netns_enter(n->orig_nsfd);
		close(n->orig_nsfd);
		n->orig_nsfd = -1;
	}
	if (n->guardian_fd >= 0) {
		/* EOF makes the guardian clean up; wait so we exit with it done. */
		close(n->guardian_fd);
		n->guardian_fd = -1;
		while (waitpid(n->guardian_pid, &st, 0) < 0 && errno == EINTR)
			;
		n->guardian_pid = 0;
	}
}
