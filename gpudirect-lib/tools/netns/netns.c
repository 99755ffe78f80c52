// SPDX-License-Identifier: MIT
/*
 * Namespace pair plumbing: shelling out to `ip`, the guardian that removes
 * what a tool or test created, netdevsim ports and their link. See netns.h.
 */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int netns_run(const char *fmt, ...)
{
	char cmd[1024];
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

int netns_write_file(const char *path, const char *s)
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

int netns_enter(int nsfd)
{
	if (nsfd < 0)
		return 0;
	return setns(nsfd, CLONE_NEWNET) ? -errno : 0;
}

/* ---- the guardian ---- */

static void remove_all(const struct netns_guard_cfg *c)
{
	char buf[32];

	/* Deleting a namespace deletes the veth in it; netdevsim ports would
	 * fall back to init_net, so their devices are deleted explicitly. */
	for (int s = 0; s < 2; s++)
		netns_run("ip netns del %s 2>/dev/null", c->ns[s]);
	for (int s = 0; c->nsim && s < 2; s++) {
		snprintf(buf, sizeof(buf), "%u", c->nsim_id[s]);
		netns_write_file("/sys/bus/netdevsim/del_device", buf);
	}
}

static void guardian(int rfd, pid_t owner, const struct netns_guard_cfg *c)
{
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	bool owner_gone = false;
	char ch;

	/* ^C reaches the whole process group: the owner's end is what ends us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (;;) {
		int n = poll(&pfd, 1, 200);

		/* Reparented: the owner is gone, whoever still holds the pipe. */
		if (getppid() != owner) {
			owner_gone = true;
			break;
		}
		if (n > 0 && read(rfd, &ch, 1) <= 0)
			break;
	}
	for (int s = 0; owner_gone && c->kill_stragglers && s < 2; s++)
		netns_run("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", c->ns[s]);
	remove_all(c);
	_exit(0);
}

int netns_guard_start(struct netns_guard *g, const struct netns_guard_cfg *cfg)
{
	pid_t owner = getpid();
	int pfd[2];
	pid_t pid;

	g->fd = -1;
	g->pid = 0;
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
		/* Own process group: ctest kills a timed-out test's group. */
		setpgid(0, 0);
		guardian(pfd[0], owner, cfg);
	}
	close(pfd[0]);
	g->fd = pfd[1];
	g->pid = pid;
	return 0;
}

void netns_guard_stop(struct netns_guard *g)
{
	int st;

	if (g->fd < 0 || g->pid <= 0)
		return;
	/* EOF makes the guardian clean up; wait so that it is done when we return. */
	close(g->fd);
	g->fd = -1;
	while (waitpid(g->pid, &st, 0) < 0 && errno == EINTR)
		;
	g->pid = 0;
}

/* ---- netdevsim ---- */

/* The single netdev under netdevsim device @id; it shows up shortly after new_device. */
static int nsim_netdev(unsigned int id, char *out, size_t len)
{
	char path[128];
	struct dirent *de;
	DIR *d = NULL;
	int err = -ENODEV;

	snprintf(path, sizeof(path), "/sys/bus/netdevsim/devices/netdevsim%u/net", id);
	for (int tries = 0; tries < 100 && !d; tries++) {
		d = opendir(path);
		if (!d)
			usleep(20000);
	}
	if (!d)
		return -ENODEV;
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

int netns_nsim_add(unsigned int id, unsigned int queues, const char *ns, const char *name,
		   char *why, size_t len)
{
	char buf[64], knob[128], dev[IF_NAMESIZE];
	int err;

	snprintf(buf, sizeof(buf), "%u 1 %u", id, queues);
	err = netns_write_file("/sys/bus/netdevsim/new_device", buf);
	if (err) {
		snprintf(why, len, "netdevsim new_device '%s': %s", buf, strerror(-err));
		return err;
	}
	err = nsim_netdev(id, dev, sizeof(dev));
	if (err) {
		snprintf(why, len, "netdevsim%u has no netdev", id);
		return err;
	}
	/* The series' NIC behaviour (RSS/n-tuple steering, wire-sized frames,
	 * GRO, header split for devmem) is off by default; on while down.
	 */
	snprintf(knob, sizeof(knob), "/sys/kernel/debug/netdevsim/netdevsim%u/ports/0/emulate_nic", id);
	err = netns_write_file(knob, "1");
	if (err) {
		snprintf(why, len, "%s: %s (a kernel without kernel-patches/patches? rebuild with kernel-patches/scripts/build-kernel.sh)",
			 knob, strerror(-err));
		return err;
	}
	if (netns_run("ip link set %s netns %s name %s", dev, ns, name)) {
		snprintf(why, len, "cannot move %s into %s as %s", dev, ns, name);
		return -EIO;
	}
	return 0;
}

int netns_nsim_link(const int nsfd[2], const int ifindex[2], char *why, size_t len)
{
	char buf[64];
	int err;

	/* The fds are resolved in the writing process: ours. */
	snprintf(buf, sizeof(buf), "%d:%d %d:%d", nsfd[0], ifindex[0], nsfd[1], ifindex[1]);
	err = netns_write_file("/sys/bus/netdevsim/link_device", buf);
	if (err)
		snprintf(why, len, "netdevsim link_device '%s': %s", buf, strerror(-err));
	return err;
}

int netns_ifindex(int nsfd, const char *ifname)
{
	int orig, idx, err;

	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return -errno;
	err = netns_enter(nsfd);
	if (err)
		goto out_close;
	idx = (int)if_nametoindex(ifname);
	err = netns_enter(orig);
	if (!err)
		err = idx > 0 ? idx : -ENODEV;
out_close:
	close(orig);
	return err;
}
