// SPDX-License-Identifier: MIT
/*
 * vm: NIC configuration and dma-buf binding on linked netdevsim ports of the
 * patched kernel (header split, n-tuple, RSS, queue management API), and
 * gpudctl doctor going green there. Skips (77) outside the VM.
 * argv[1] is the gpudctl binary.
 */
#define _GNU_SOURCE
#include "gpud_test.h"
#include "nic/nic_internal.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct t_netpair p;

static void log_cb(enum gpud_log_level level, const char *msg, void *ctx)
{
	if (level <= GPUD_LOG_INFO)
		t_log("lib: %s", msg);
}

static void expect_msg(const char *needle)
{
	if (!strstr(gpud_errmsg(), needle))
		T_FAIL("message \"%s\" lacks \"%s\"", gpud_errmsg(), needle);
}

static void test_header_split(void)
{
	enum gpud_hds orig, now;
	struct gpud_nic *nic;

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_OK(gpud_nic_get_header_split(nic, &orig));
	T_ASSERT(orig != GPUD_HDS_UNSUPPORTED);
	T_ASSERT_OK(gpud_nic_set_header_split(nic, true));
	T_ASSERT_OK(gpud_nic_get_header_split(nic, &now));
	T_ASSERT_EQ(GPUD_HDS_ENABLED, now);
	T_ASSERT_OK(gpud_nic_set_header_split(nic, false));
	T_ASSERT_OK(gpud_nic_get_header_split(nic, &now));
	T_ASSERT_EQ(GPUD_HDS_DISABLED, now);
	gpud_nic_free(nic);

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_OK(gpud_nic_get_header_split(nic, &now));
	T_ASSERT_EQ(orig, now);		/* restored by the free above */
	gpud_nic_free(nic);
}

static uint32_t rule_count(void)
{
	uint32_t rules = 0, table;
	bool loc_any;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	T_ASSERT(fd >= 0);
	T_ASSERT_OK(gpud_ntuple_count(fd, p.ifname[0], &rules, &table, &loc_any));
	close(fd);
	return rules;
}

static void test_ntuple_rss(void)
{
	struct gpud_flow f = { .sz = sizeof(f), .family = AF_INET, .dst_port = htons(5201) };
	uint32_t before = rule_count(), r1, r2, *t, size;
	struct gpud_nic *nic;
	int fd;

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_OK(gpud_nic_probe_flow_steering(nic));
	memcpy(f.dst_addr, (uint8_t[]){ 198, 18, 0, 1 }, 4);
	T_ASSERT_OK(gpud_nic_add_flow(nic, &f, 1, &r1));
	T_ASSERT_EQ(before + 1, rule_count());
	T_ASSERT_OK(gpud_nic_del_flow(nic, r1));
	T_ASSERT_EQ(before, rule_count());
	f.dst_port = htons(5202);
	T_ASSERT_OK(gpud_nic_add_flow(nic, &f, 2, &r2));	/* left for free() */

	T_ASSERT_OK(gpud_nic_rss_limit(nic, 1));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	T_ASSERT_OK(gpud_rss_get(fd, p.ifname[0], &t, &size));
	for (uint32_t i = 0; i < size; i++)
		T_ASSERT_EQ(0, t[i]);
	free(t);
	T_ASSERT_EQ(-ERANGE, gpud_nic_rss_limit(nic, 99));

	gpud_nic_free(nic);
	T_ASSERT_EQ(before, rule_count());
	T_ASSERT_OK(gpud_rss_get(fd, p.ifname[0], &t, &size));
	T_ASSERT(size > 0);
	for (uint32_t i = 0; i < size; i++)
		T_ASSERT_EQ(i % 4, t[i]);	/* default spread over 4 queues again */
	free(t);
	close(fd);
}

/* A full rule table answers -ENOSPC, and free() removes every rule it added. */
static void test_ntuple_full(void)
{
	struct gpud_flow f = { .sz = sizeof(f), .family = AF_INET };
	uint32_t before = rule_count(), id;
	struct gpud_nic *nic;
	int added = 0, err = 0;

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	memcpy(f.dst_addr, (uint8_t[]){ 198, 18, 0, 1 }, 4);
	for (int i = 0; i < 1024; i++) {
		f.dst_port = htons(20000 + i);
		err = gpud_nic_add_flow(nic, &f, 1, &id);
		if (err)
			break;
		added++;
	}
	t_log("rule table full after %d rules: %s", added, gpud_errmsg());
	T_ASSERT_EQ(-ENOSPC, err);
	T_ASSERT(added > 0);
	T_ASSERT_EQ(before + added, rule_count());
	gpud_nic_free(nic);
	T_ASSERT_EQ(before, rule_count());
}

/* An fd that is not a dma-buf reaches the kernel's dma-buf lookup here. */
static void test_bind_not_dmabuf(void)
{
	unsigned int q1[] = { 1 };
	struct gpud_binding *b = NULL;
	struct gpud_nic *nic;
	int fd = memfd_create("not-a-dmabuf", MFD_CLOEXEC), err;

	T_ASSERT(fd >= 0);
	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_OK(gpud_nic_set_header_split(nic, true));
	err = gpud_bind_rx_fd(p.ifindex[0], fd, q1, 1, &b);
	t_log("bind of a memfd: %s", gpud_errmsg());
	T_ASSERT(err == -EBADF || err == -EINVAL);
	T_ASSERT(!b);
	expect_msg("is not a dma-buf");
	close(fd);
	gpud_nic_free(nic);
}

static const struct gpud_queue_info *rxq(struct gpud_queue_info *q, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (q[i].type == 0 && q[i].id == id)
			return &q[i];
	T_FAIL("no rx queue %u", id);
}

/* The pool that served dma-buf @id: gone or detached once unbound. */
static int pool_state(uint32_t id, bool *detached)
{
	struct gpud_page_pool_info pp[64];
	int n = gpud_page_pools_get(0, pp, 64), found = 0;

	T_ASSERT(n >= 0);
	*detached = true;
	for (int i = 0; i < n && i < 64; i++) {
		if (pp[i].dmabuf_id != id)
			continue;
		found++;
		*detached &= pp[i].detach_time != 0;
	}
	return found;
}

static void test_bind(void)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	struct gpud_binding *b, *b2 = NULL;
	unsigned int q1[] = { 1 }, q99[] = { 99 };
	struct gpud_queue_info q[16];
	struct gpud_nic *nic;
	struct gpud_mem *mem;
	bool detached = false;
	uint32_t id;
	int n;

	T_ASSERT_OK(gpud_nic_open(p.ifname[0], &nic));
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, 1 << 20, &mo, &mem));
	/* Header split off: the driver refuses, and the message says why. */
	T_ASSERT_OK(gpud_nic_set_header_split(nic, false));
	T_ASSERT_EQ(-EINVAL, gpud_bind_rx(p.ifindex[0], mem, q1, 1, &b2));
	t_log("bind with header split off: %s", gpud_errmsg());
	expect_msg("header split is off on");
	T_ASSERT(!b2);
	T_ASSERT_OK(gpud_nic_set_header_split(nic, true));
	T_ASSERT_OK(gpud_bind_rx(p.ifindex[0], mem, q1, 1, &b));
	id = gpud_binding_id(b);
	T_ASSERT(id > 0);
	n = gpud_queues_get(p.ifindex[0], q, 16);
	T_ASSERT_EQ(8, n);
	T_ASSERT_EQ(id, rxq(q, n, 1)->dmabuf_id);
	T_ASSERT_EQ(0, rxq(q, n, 0)->dmabuf_id);
	T_ASSERT(pool_state(id, &detached) >= 1);
	T_ASSERT(!detached);

	T_ASSERT_EQ(-EEXIST, gpud_bind_rx(p.ifindex[0], mem, q1, 1, &b2));
	t_log("second bind: %s", gpud_errmsg());
	expect_msg("queue 1 of");
	expect_msg("is already bound");
	T_ASSERT(!b2);
	T_ASSERT_EQ(-ERANGE, gpud_bind_rx(p.ifindex[0], mem, q99, 1, &b2));
	t_log("queue 99: %s", gpud_errmsg());
	expect_msg("queue 99 out of range");
	expect_msg("has 4 RX queues");

	gpud_binding_free(b);
	n = gpud_queues_get(p.ifindex[0], q, 16);
	T_ASSERT_EQ(0, rxq(q, n, 1)->dmabuf_id);
	/* The old pool is destroyed or detached once its pages are back. */
	for (int i = 0; i < 100 && pool_state(id, &detached) && !detached; i++)
		usleep(20000);
	T_ASSERT(!pool_state(id, &detached) || detached);
	gpud_mem_free(mem);
	gpud_nic_free(nic);
}

static void test_doctor(const char *gpudctl)
{
	T_ASSERT_EQ(0, t_netpair_exec(&p, 0, "%s doctor %s", gpudctl, p.ifname[0]));
}

/* gpudctl bind holds the binding until SIGTERM, then unbinds and exits 0. */
static void test_gpudctl_bind(const char *gpudctl)
{
	struct gpud_queue_info q[16];
	unsigned int id = 0;
	char line[512];
	int pfd[2], st, n;
	FILE *f;
	pid_t pid;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(gpudctl, "gpudctl", "-j", "bind", p.ifname[0], "2-3", "--mem", "host",
		      "2M", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	T_ASSERT(f && fgets(line, sizeof(line), f));
	t_log("gpudctl bind: %s", line);
	T_ASSERT(sscanf(strstr(line, "\"dmabuf_id\":") ?: "", "\"dmabuf_id\":%u", &id) == 1);
	T_ASSERT(id > 0);
	n = gpud_queues_get(p.ifindex[0], q, 16);
	T_ASSERT_EQ(id, rxq(q, n, 2)->dmabuf_id);
	T_ASSERT_EQ(id, rxq(q, n, 3)->dmabuf_id);
	kill(pid, SIGTERM);
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	T_ASSERT(WIFEXITED(st));
	T_ASSERT_EQ(0, WEXITSTATUS(st));
	fclose(f);
	n = gpud_queues_get(p.ifindex[0], q, 16);
	T_ASSERT_EQ(0, rxq(q, n, 2)->dmabuf_id);
	T_ASSERT_EQ(0, rxq(q, n, 3)->dmabuf_id);
}

int main(int argc, char **argv)
{
	t_require_vm();
	t_require_root();
	if (argc < 2)
		T_FAIL("usage: %s PATH_TO_GPUDCTL", argv[0]);
	gpud_set_log(log_cb, NULL, GPUD_LOG_INFO);
	t_netpair_setup(&p, T_LINK_NSIM);
	T_ASSERT_OK(t_netpair_enter(&p, 0));
	test_header_split();
	test_ntuple_rss();
	test_ntuple_full();
	test_bind_not_dmabuf();
	test_bind();
	test_doctor(argv[1]);
	test_gpudctl_bind(argv[1]);
	t_netpair_teardown(&p);
	printf("nic_vm_nsim: all checks passed\n");
	return T_EXIT_PASS;
}
