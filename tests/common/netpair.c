// SPDX-License-Identifier: MIT
/*
 * Network fixture: two namespaces joined by a veth pair (host kernel) or by
 * two linked netdevsim ports (patched-kernel VM). Test code may shell out to
 * `ip`; library code never does.
 *
 * Cleanup must survive any way a test can end (assertion exit, ASan abort,
 * ctest's SIGKILL on timeout), so it is done by a guardian process that
 * waits for EOF on a pipe whose only writer is the test: when the test is
 * gone, for whatever reason, the guardian removes the namespaces and devices.
 */
#define _GNU_SOURCE
#include "gpud_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

/* netdevsim ids derived from the pid keep parallel tests apart. */
static unsigned int nsim_id(const struct t_netpair *p, int side)
{
	return 10000 + (unsigned int)(p->owner_pid % 400000) * 2 + side;
}

unsigned int t_netpair_nsim_id(const struct t_netpair *p, int side)
{
	return nsim_id(p, side);
}

static void cleanup_cmds(const char *ns0, const char *ns1, unsigned int id0,
			 unsigned int id1, enum t_link_kind kind)
{
	char buf[32];

	run("ip netns del %s 2>/dev/null", ns0);
	run("ip netns del %s 2>/dev/null", ns1);
	if (kind == T_LINK_NSIM) {
		snprintf(buf, sizeof(buf), "%u", id0);
		write_file("/sys/bus/netdevsim/del_device", buf);
		snprintf(buf, sizeof(buf), "%u", id1);
		write_file("/sys/bus/netdevsim/del_device", buf);
	}
}

static void guardian(int rfd, struct t_netpair *p)
{
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	bool owner_gone = false;
	char c;

	/* Ignore the terminal's ^C: the test's exit is what ends us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	/*
	 * EOF on the pipe means every holder of its write end is gone. A
	 * forked peer of the test holds it too and may hang after the test
	 * was killed, so also watch the owner itself: once it is gone we are
	 * reparented.
	 */
	for (;;) {
		int n = poll(&pfd, 1, 200);

		if (getppid() != p->owner_pid) {
			owner_gone = true;
			break;
		}
		if (n > 0 && read(rfd, &c, 1) <= 0)
			break;
	}
	/*
	 * A killed test may leave peers (hung senders) that keep the
	 * namespaces alive; on an orderly teardown the test itself may still
	 * sit in one of them, so only the first case kills.
	 */
	for (int s = 0; owner_gone && s < 2; s++)
		run("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", p->ns[s]);
	cleanup_cmds(p->ns[0], p->ns[1], nsim_id(p, 0), nsim_id(p, 1), p->kind);
	_exit(0);
}

static void start_guardian(struct t_netpair *p)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		T_FAIL("pipe2: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		T_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[1]);
		/* Own process group: ctest kills the test's group on timeout. */
		setpgid(0, 0);
		guardian(pfd[0], p);
	}
	close(pfd[0]);
	p->guardian_fd = pfd[1];
	p->guardian_pid = pid;
}

/* Reads the single netdev name under a netdevsim device's sysfs dir. */
static int nsim_ifname(unsigned int id, char *out, size_t len)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/sys/bus/netdevsim/devices/netdevsim%u/net", id);
	for (int tries = 0; tries < 50; tries++) {
		d = opendir(path);
		if (d)
			break;
		usleep(20000);
	}
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (strlen(de->d_name) >= len)
			continue;
		memcpy(out, de->d_name, strlen(de->d_name) + 1);
		err = 0;
		break;
	}
	closedir(d);
	return err;
}

static int read_ifindex(const struct t_netpair *p, int side)
{
	char cmd[256];
	FILE *f;
	int idx = -1;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/%s/ifindex",
		 p->ns[side], p->ifname[side]);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &idx) != 1)
		idx = -1;
	pclose(f);
	return idx;
}

static void setup_veth(struct t_netpair *p)
{
	snprintf(p->ifname[0], sizeof(p->ifname[0]), "gpud0");
	snprintf(p->ifname[1], sizeof(p->ifname[1]), "gpud1");
	if (run("ip link add %s netns %s type veth peer name %s netns %s",
		p->ifname[0], p->ns[0], p->ifname[1], p->ns[1]))
		T_FAIL("cannot create veth pair between %s and %s", p->ns[0], p->ns[1]);
}

static void setup_nsim(struct t_netpair *p)
{
	char buf[64], link[64];
	int fd0, fd1;

	if (access("/sys/bus/netdevsim/new_device", W_OK))
		t_skip("netdevsim is not available (CONFIG_NETDEVSIM): run inside the patched-kernel VM");
	for (int s = 0; s < 2; s++) {
		/* one port, 4 queue pairs: queue 0 for RSS, others for devmem */
		snprintf(buf, sizeof(buf), "%u 1 4", nsim_id(p, s));
		if (write_file("/sys/bus/netdevsim/new_device", buf))
			T_FAIL("netdevsim new_device %s: %s", buf, strerror(errno));
		if (nsim_ifname(nsim_id(p, s), link, sizeof(link)))
			T_FAIL("netdevsim%u has no netdev", nsim_id(p, s));
		snprintf(p->ifname[s], sizeof(p->ifname[s]), "nsim%d", s);
		if (run("ip link set %s netns %s name %s", link, p->ns[s], p->ifname[s]))
			T_FAIL("cannot move %s into %s", link, p->ns[s]);
	}
	for (int s = 0; s < 2; s++) {
		p->ifindex[s] = read_ifindex(p, s);
		if (p->ifindex[s] <= 0)
			T_FAIL("cannot read ifindex of %s in %s", p->ifname[s], p->ns[s]);
	}
	/* The fds are resolved in the writing process: ours. */
	fd0 = p->nsfd[0];
	fd1 = p->nsfd[1];
	snprintf(buf, sizeof(buf), "%d:%d %d:%d", fd0, p->ifindex[0], fd1, p->ifindex[1]);
	if (write_file("/sys/bus/netdevsim/link_device", buf))
		T_FAIL("netdevsim link_device '%s': %s", buf, strerror(errno));
}

void t_netpair_setup(struct t_netpair *p, enum t_link_kind kind)
{
	char path[96];
	pid_t me = getpid();

	t_require_root();
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->nsfd[0] = p->nsfd[1] = -1;
	p->owner_pid = (int)me;
	if (kind == T_LINK_NSIM)
		t_require_vm();
	if (run("command -v ip >/dev/null 2>&1"))
		t_skip("iproute2 is not installed: apt-get install iproute2");
	for (int s = 0; s < 2; s++)
		snprintf(p->ns[s], sizeof(p->ns[s]), "gpudt-%d-%c", (int)me, 'a' + s);
	start_guardian(p);
	for (int s = 0; s < 2; s++) {
		if (run("ip netns add %s", p->ns[s]))
			T_FAIL("ip netns add %s failed", p->ns[s]);
		snprintf(path, sizeof(path), "/var/run/netns/%s", p->ns[s]);
		p->nsfd[s] = open(path, O_RDONLY | O_CLOEXEC);
		if (p->nsfd[s] < 0)
			T_FAIL("open %s: %s", path, strerror(errno));
		run("ip -n %s link set lo up", p->ns[s]);
	}
	if (kind == T_LINK_VETH)
		setup_veth(p);
	else
		setup_nsim(p);
	for (int s = 0; s < 2; s++) {
		snprintf(p->addr[s], sizeof(p->addr[s]), "198.18.0.%d", s + 1);
		if (run("ip -n %s addr add %s/24 dev %s && ip -n %s link set %s up",
			p->ns[s], p->addr[s], p->ifname[s], p->ns[s], p->ifname[s]))
			T_FAIL("cannot configure %s in %s", p->ifname[s], p->ns[s]);
		if (kind == T_LINK_VETH)
			p->ifindex[s] = read_ifindex(p, s);
	}
}

void t_netpair_teardown(struct t_netpair *p)
{
	int st;

	for (int s = 0; s < 2; s++) {
		if (p->nsfd[s] >= 0)
			close(p->nsfd[s]);
		p->nsfd[s] = -1;
	}
	if (p->guardian_fd >= 0 && p->guardian_pid > 0) {
		/* EOF on the pipe makes the guardian clean up; wait for it. */
		close(p->guardian_fd);
		p->guardian_fd = -1;
		waitpid(p->guardian_pid, &st, 0);
		p->guardian_pid = 0;
	}
}

int t_netpair_enter(const struct t_netpair *p, int side)
{
	if (setns(p->nsfd[side], CLONE_NEWNET))
		return -errno;
	return 0;
}

int t_netpair_exec(const struct t_netpair *p, int side, const char *fmt, ...)
{
	char cmd[1024], full[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "ip netns exec %s sh -c '%s'", p->ns[side], cmd);
	return run("%s", full);
}
