// SPDX-License-Identifier: MIT
/*
 * netns: without gpudd, one process at a time changes a NIC (nic_lock.c).
 * A process holding a change on a 4-queue veth; a second process's change
 * is refused with -EBUSY naming the holder's pid and gpudd, reads still
 * work, and the same interface name in another namespace is not affected.
 * After kill -9 of the holder the kernel has dropped its lock: gpudctl's
 * cleanup puts the NIC back and a new process changes it. Two objects of
 * one process share the lock; the last free removes the lock file.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "nic/nic_internal.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct t_netpair p;
static char state[64];

static const struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };

static int rxq(const char *ifname)
{
	struct gpud_nic *nic;
	int n;

	T_ASSERT_OK(gpud_nic_open_opts(ifname, &off, &nic));
	n = gpud_nic_rx_queues(nic);
	gpud_nic_free(nic);
	return n;
}

static int lock_files(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(state);

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".lock") != NULL;
	closedir(d);
	return n;
}

/* Child: changes mq0 (2 RX channels), says so, then waits to be killed. */
static pid_t holder(void)
{
	int pfd[2];
	pid_t pid;
	char c;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_nic *nic;

		close(pfd[0]);
		if (gpud_nic_open_opts("mq0", &off, &nic) || gpud_nic_set_rx_channels(nic, 2))
			_exit(3);
		if (write(pfd[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1)
		T_FAIL("the holder could not change mq0: %s", gpud_errmsg());
	close(pfd[0]);
	return pid;
}

/* A process in namespace b changes its own mq0 while a's is held: allowed. */
static void other_netns(void)
{
	pid_t pid = fork();
	int st;

	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_nic *nic;

		if (t_netpair_enter(&p, 1) || gpud_nic_open_opts("mq0", &off, &nic))
			_exit(3);
		if (gpud_nic_set_rx_channels(nic, 3)) {
			printf("namespace b: %s\n", gpud_errmsg());
			_exit(4);
		}
		gpud_nic_free(nic);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("mq0 of another namespace was refused too (status 0x%x)", st);
}

int main(void)
{
	struct gpud_cleanup_stats cs = { .sz = sizeof(cs) };
	struct gpud_nic *a, *b;
	enum gpud_hds hds;
	char want[32];
	pid_t pid;
	int st;

	t_require_root();
	snprintf(state, sizeof(state), "/tmp/gpud-lock-%d", (int)getpid());
	setenv("GPUD_STATE_DIR", state, 1);
	t_netpair_setup(&p, T_LINK_VETH);
	for (int side = 0; side < 2; side++)
		if (t_netpair_exec(&p, side, "ip link add mq0 numrxqueues 4 numtxqueues 4 "
				   "type veth peer name mq1 numrxqueues 4 numtxqueues 4 && "
				   "ip link set mq0 up && ip link set mq1 up"))
			T_FAIL("cannot create the 4-queue veth pair in namespace %d", side);
	T_ASSERT_OK(t_netpair_enter(&p, 0));
	T_ASSERT_EQ(4, rxq("mq0"));

	pid = holder();
	T_ASSERT_EQ(2, rxq("mq0"));
	T_ASSERT_EQ(1, lock_files());
	T_ASSERT_OK(gpud_nic_open_opts("mq0", &off, &a));
	/* reading is no change: allowed */
	T_ASSERT_OK(gpud_nic_get_header_split(a, &hds));
	T_ASSERT_EQ(-EBUSY, gpud_nic_set_rx_channels(a, 3));
	t_log("second process refused: %s", gpud_errmsg());
	snprintf(want, sizeof(want), "pid %d (", (int)pid);
	T_ASSERT(strstr(gpud_errmsg(), want) != NULL);
	T_ASSERT(strstr(gpud_errmsg(), "systemctl start gpudd.socket, or gpudd -f") != NULL);
	T_ASSERT_EQ(2, rxq("mq0"));	/* untouched */
	T_ASSERT_EQ(-EBUSY, gpud_nic_set_header_split(a, true));
	T_ASSERT_EQ(-EBUSY, gpud_nic_rss_limit(a, 1));
	other_netns();

	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	/* its change stays behind until cleanup, which the journal allows */
	T_ASSERT_EQ(2, rxq("mq0"));
	T_ASSERT_OK(gpud_nic_cleanup("mq0", &cs));
	T_ASSERT_EQ(1, cs.journals);
	T_ASSERT_EQ(4, rxq("mq0"));

	/* the lock went with the killed holder: a new process gets it */
	T_ASSERT_OK(gpud_nic_set_rx_channels(a, 3));
	T_ASSERT_EQ(3, rxq("mq0"));
	/* a second object of the same process shares it */
	T_ASSERT_OK(gpud_nic_open_opts("mq0", &off, &b));
	T_ASSERT_OK(gpud_nic_set_rx_channels(b, 2));
	T_ASSERT_EQ(1, lock_files());
	gpud_nic_free(b);	/* puts back 3: what b found */
	T_ASSERT_EQ(3, rxq("mq0"));
	T_ASSERT_EQ(1, lock_files());
	gpud_nic_free(a);
	T_ASSERT_EQ(4, rxq("mq0"));
	T_ASSERT_EQ(0, lock_files());

	/* a failed change leaves nothing held */
	T_ASSERT_OK(gpud_nic_open_opts("mq0", &off, &a));
	T_ASSERT(gpud_nic_set_header_split(a, true) < 0);	/* veth: no ring parameters */
	T_ASSERT_EQ(0, lock_files());
	gpud_nic_free(a);

	t_netpair_teardown(&p);
	rmdir(state);
	printf("nic_lock_netns: all checks passed\n");
	return T_EXIT_PASS;
}
