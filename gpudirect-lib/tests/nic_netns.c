// SPDX-License-Identifier: MIT
/*
 * netns: the netdev and ethtool clients against the host kernel on a veth
 * pair in namespaces of our own. veth has no queue management API, no header
 * split and no n-tuple rules, so this checks that each says so clearly; it
 * does have settable channels, which prove save/restore (also on SIGTERM).
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "nic/nic_internal.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct t_netpair p;

static void log_cb(enum gpud_log_level level, const char *msg, void *ctx)
{
	if (level <= GPUD_LOG_WARN)
		t_log("lib: %s", msg);
}

static void expect_msg(const char *needle)
{
	if (!strstr(gpud_errmsg(), needle))
		T_FAIL("message \"%s\" lacks \"%s\"", gpud_errmsg(), needle);
}

static void test_family_and_dumps(void)
{
	struct gpud_queue_info q[64];
	struct gpud_page_pool_info pp[64];
	int n, rx = 0;

	T_ASSERT_OK(gpud_devmem_probe());
	n = gpud_queues_get(p.ifindex[0], q, 64);
	T_ASSERT(n >= 2);
	for (int i = 0; i < n; i++) {
		T_ASSERT_EQ(p.ifindex[0], q[i].ifindex);
		T_ASSERT_EQ(0, q[i].dmabuf_id);
		rx += q[i].type == 0;
	}
	T_ASSERT_EQ(1, rx);	/* a default veth: one RX, one TX queue */
	/* Counting only (max 0) gives the same number. */
	T_ASSERT_EQ(n, gpud_queues_get(p.ifindex[0], NULL, 0));
	/* All devices of the namespace: lo too. */
	T_ASSERT(gpud_queues_get(0, q, 64) > n);
	/* veth's page pools have no netdev, so the kernel lists none. */
	n = gpud_page_pools_get(p.ifindex[0], pp, 64);
	T_ASSERT_EQ(0, n);
	T_ASSERT(gpud_page_pools_get(0, pp, 64) >= 0);
	T_ASSERT_EQ(-EINVAL, gpud_queues_get(-1, q, 64));
}

static void test_bind_errors(void)
{
	struct gpud_binding *b = (void *)0x1;
	unsigned int queues[] = { 0 };
	int fd = memfd_create("not-a-dmabuf", MFD_CLOEXEC);

	T_ASSERT(fd >= 0);
	/* 6.18 checks the device before the fd: the veth error, with any fd. */
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_bind_rx_fd(p.ifindex[0], fd, queues, 1, &b));
	t_log("veth bind: %s", gpud_errmsg());
	expect_msg("-EOPNOTSUPP");
	expect_msg(p.ifname[0]);
	expect_msg("has no queue management API: devmem needs a NIC driver that supports it");
	expect_msg("bad-attr: .ifindex");
	T_ASSERT(b == (void *)0x1);	/* out-param untouched on failure */

	T_ASSERT_EQ(-ENODEV, gpud_bind_rx_fd(999999, fd, queues, 1, &b));
	expect_msg("-ENODEV");
	T_ASSERT_EQ(-EINVAL, gpud_bind_rx_fd(p.ifindex[0], fd, queues, 0, &b));
	T_ASSERT_EQ(-EINVAL, gpud_bind_rx(p.ifindex[0], NULL, queues, 1, &b));
	close(fd);
}

static void test_veth_unsupported(void)
{
	struct gpud_flow f = { .sz = sizeof(f), .family = AF_INET, .dst_port = htons(5201) };
	enum gpud_hds hds = GPUD_HDS_ENABLED;
	struct gpud_nic *nic;
	uint32_t rule = 77;

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_STREQ(p.ifname[0], gpud_nic_name(nic));
	T_ASSERT_EQ(p.ifindex[0], gpud_nic_ifindex(nic));
	T_ASSERT_EQ(1, gpud_nic_rx_queues(nic));

	T_ASSERT_OK(gpud_nic_get_header_split(nic, &hds));
	T_ASSERT_EQ(GPUD_HDS_UNSUPPORTED, hds);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_nic_set_header_split(nic, true));
	expect_msg("no TCP header split");

	memcpy(f.dst_addr, (uint8_t[]){ 198, 18, 0, 1 }, 4);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_nic_add_flow(nic, &f, 0, &rule));
	t_log("veth n-tuple: %s", gpud_errmsg());
	expect_msg("-EOPNOTSUPP: the driver does not support it");
	T_ASSERT_EQ(77, rule);
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_nic_probe_flow_steering(nic));
	T_ASSERT_EQ(-EOPNOTSUPP, gpud_nic_rss_limit(nic, 1));
	T_ASSERT_EQ(-ENOENT, gpud_nic_del_flow(nic, 5));
	f.family = AF_UNIX;
	T_ASSERT_EQ(-EAFNOSUPPORT, gpud_nic_add_flow(nic, &f, 0, &rule));
	gpud_nic_free(nic);

	T_ASSERT_EQ(-ENODEV, gpud_nic_open("nosuchif0", &nic));
	gpud_nic_free(NULL);
}

static int rxq(const char *ifname)
{
	struct gpud_queue_info q[64];
	int n = gpud_queues_get((int)if_nametoindex(ifname), q, 64), rx = 0;

	T_ASSERT(n > 0);
	for (int i = 0; i < n; i++)
		rx += q[i].type == 0;
	return rx;
}

static void test_channels_restore(void)
{
	struct gpud_nic *nic;

	T_ASSERT_EQ(4, rxq("mq0"));
	T_ASSERT_OK(gpud_nic_open("mq0", &nic));
	T_ASSERT_OK(gpud_nic_set_rx_channels(nic, 2));
	T_ASSERT_EQ(2, rxq("mq0"));
	T_ASSERT_OK(gpud_nic_set_rx_channels(nic, 3));	/* original recorded once */
	T_ASSERT_EQ(3, rxq("mq0"));
	T_ASSERT_EQ(-EINVAL, gpud_nic_set_rx_channels(nic, 0));
	T_ASSERT(gpud_nic_set_rx_channels(nic, 9) < 0);	/* above max_rx */
	t_log("9 channels: %s", gpud_errmsg());
	gpud_nic_free(nic);
	T_ASSERT_EQ(4, rxq("mq0"));
}

/* Child: changes mq0 then waits for a signal; exits 42 from its own handler. */
static volatile sig_atomic_t got_own;
static void own_handler(int sig)
{
	got_own = sig;
}

static void child_hold(int wfd, bool own)
{
	struct gpud_nic *nic;

	if (own)
		signal(SIGTERM, own_handler);
	if (gpud_nic_restore_on_signal(true) || gpud_nic_open("mq0", &nic) ||
	    gpud_nic_set_rx_channels(nic, 1))
		_exit(3);
	if (write(wfd, "r", 1) != 1)
		_exit(4);
	while (!got_own)
		pause();
	/* Our handler ran after the library restored: mq0 is back already. */
	_exit(rxq("mq0") == 4 ? 42 : 5);
}

static void test_restore_on_signal(bool own)
{
	int pfd[2], st;
	pid_t pid;
	char c;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child_hold(pfd[1], own);
	}
	close(pfd[1]);
	T_ASSERT_EQ(1, read(pfd[0], &c, 1));
	close(pfd[0]);
	T_ASSERT_EQ(1, rxq("mq0"));
	kill(pid, SIGTERM);
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (own) {
		T_ASSERT(WIFEXITED(st));
		T_ASSERT_EQ(42, WEXITSTATUS(st));
	} else {
		/* Still dies of SIGTERM, as without the library. */
		T_ASSERT(WIFSIGNALED(st));
		T_ASSERT_EQ(SIGTERM, WTERMSIG(st));
	}
	T_ASSERT_EQ(4, rxq("mq0"));
}

static void test_eperm(void)
{
	unsigned int queues[] = { 0 };
	struct gpud_binding *b;
	struct gpud_nic *nic;
	int st, fd;
	pid_t pid;

	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		/* Dropping root drops CAP_NET_ADMIN; the namespace stays. */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		fd = memfd_create("x", 0);
		if (gpud_bind_rx_fd(p.ifindex[0], fd, queues, 1, &b) != -EPERM ||
		    !strstr(gpud_errmsg(), "CAP_NET_ADMIN"))
			_exit(3);
		printf("unprivileged bind: %s\n", gpud_errmsg());
		/* Reading needs no privilege, changing does. */
		if (gpud_nic_open("mq0", &nic) || gpud_nic_rx_queues(nic) != 4)
			_exit(4);
		if (gpud_nic_set_rx_channels(nic, 2) != -EPERM ||
		    !strstr(gpud_errmsg(), "CAP_NET_ADMIN"))
			_exit(5);
		printf("unprivileged channels: %s\n", gpud_errmsg());
		gpud_nic_free(nic);
		fflush(stdout);
		_exit(0);
	}
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	T_ASSERT(WIFEXITED(st));
	T_ASSERT_EQ(0, WEXITSTATUS(st));
}

int main(void)
{
	char path[128];

	t_require_root();
	gpud_set_log(log_cb, NULL, GPUD_LOG_WARN);
	t_netpair_setup(&p, T_LINK_VETH);
	T_ASSERT_OK(t_netpair_enter(&p, 0));
	if (t_netpair_exec(&p, 0, "ip link add mq0 numrxqueues 4 numtxqueues 4 type veth "
			   "peer name mq1 numrxqueues 4 numtxqueues 4 && ip link set mq0 up "
			   "&& ip link set mq1 up"))
		T_FAIL("cannot create the 4-queue veth pair");

	test_family_and_dumps();
	test_bind_errors();
	test_veth_unsupported();
	test_channels_restore();
	test_restore_on_signal(false);
	test_restore_on_signal(true);
	test_eperm();

	snprintf(path, sizeof(path), "/var/run/netns/%s", p.ns[0]);
	t_netpair_teardown(&p);
	T_ASSERT(access(path, F_OK) != 0);
	printf("nic_netns: all checks passed\n");
	return T_EXIT_PASS;
}
