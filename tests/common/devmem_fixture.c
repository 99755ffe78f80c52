// SPDX-License-Identifier: MIT
/* Devmem TCP test fixture (see gpud_devmem_test.h). */
#define _GNU_SOURCE
#include "gpud_devmem_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_POOLS 64

void t_devmem_setup(struct t_devmem *d, unsigned int rxq, uint16_t port)
{
	memset(d, 0, sizeof(*d));
	d->rxq = rxq;
	d->port = port;
	t_require_vm();
	t_netpair_setup(&d->np, T_LINK_NSIM);
}

void t_devmem_nic_setup(struct t_devmem *d)
{
	struct gpud_flow fl = { .sz = sizeof(fl), .family = AF_INET };
	const char *ifname = d->np.ifname[0];
	uint32_t rule;

	T_ASSERT_OK(gpud_nic_open(ifname, &d->nic));
	d->ifindex = gpud_nic_ifindex(d->nic);
	if (gpud_nic_rx_queues(d->nic) <= (int)d->rxq)
		T_FAIL("%s has %d RX queues; queue %u is needed", ifname,
		       gpud_nic_rx_queues(d->nic), d->rxq);
	if (gpud_nic_set_header_split(d->nic, true)) {
		/*
		 * A VM kernel without kernel-patches/ applied: netdevsim cannot
		 * carry devmem at all. Skip saying so, unless told to insist.
		 */
		const char *req = getenv("GPUD_REQUIRE_DEVMEM");

		if (!(req && !strcmp(req, "1")))
			t_skip("this kernel's netdevsim has no header split (%s): boot a kernel built with kernel-patches/patches applied; GPUD_REQUIRE_DEVMEM=1 makes this a failure",
			       gpud_errmsg());
		T_FAIL("header split on %s: %s", ifname, gpud_errmsg());
	}
	if (gpud_nic_rss_limit(d->nic, d->rxq))
		T_FAIL("RSS limit on %s: %s", ifname, gpud_errmsg());
	fl.dst_port = htons(d->port);
	inet_pton(AF_INET, d->np.addr[0], fl.dst_addr);
	if (gpud_nic_add_flow(d->nic, &fl, d->rxq, &rule))
		T_FAIL("flow rule to queue %u on %s: %s", d->rxq, ifname, gpud_errmsg());
}

void t_devmem_mem_create(struct t_devmem *d, size_t size)
{
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	const char *spec = getenv("GPUD_E2E_MEM");
	enum gpud_mem_kind kind;

	/* GPUD_E2E_MEM: another exporter, e.g. drm:/dev/dri/card0 (vgem). */
	if (!spec || !*spec)
		spec = "host";
	T_ASSERT_OK(gpud_mem_parse_spec(spec, &kind, &mo));
	if (gpud_mem_create(kind, size, &mo, &d->mem))
		T_FAIL("%s memory: %s", spec, gpud_errmsg());
	t_log("memory: %s (%s), %zu bytes", spec, gpud_mem_kind_name(kind),
	      gpud_mem_size(d->mem));
}

static void check_queue_bound(const struct t_devmem *d, uint32_t id)
{
	struct gpud_queue_info q[64];
	int n = gpud_queues_get(d->ifindex, q, 64);

	T_ASSERT_OK(n);
	for (int i = 0; i < n && i < 64; i++)
		if (q[i].type == 0 && q[i].id == d->rxq) {
			T_ASSERT_EQ(id, q[i].dmabuf_id);
			return;
		}
	T_FAIL("RX queue %u not found on ifindex %d", d->rxq, d->ifindex);
}

struct gpud_binding *t_devmem_bind(struct t_devmem *d)
{
	struct gpud_binding *b = NULL;
	uint64_t inflight;

	if (gpud_bind_rx(d->ifindex, d->mem, &d->rxq, 1, &b))
		T_FAIL("binding the dma-buf to %s queue %u: %s", d->np.ifname[0], d->rxq,
		       gpud_errmsg());
	d->dmabuf_id = gpud_binding_id(b);
	check_queue_bound(d, d->dmabuf_id);
	T_ASSERT(t_devmem_pools(d->ifindex, d->dmabuf_id, &inflight) > 0);
	return b;
}

int t_devmem_listen(const struct t_devmem *d)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(d->port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	T_ASSERT(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, d->np.addr[0], &a.sin_addr);
	T_ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0);
	T_ASSERT_OK(listen(fd, 1) ? -errno : 0);
	return fd;
}

static void __attribute__((noreturn))
sender(struct t_devmem *d, uint64_t seed, uint64_t total)
{
	int fd;

	close(d->np.guardian_fd);
	t_pin_cpu(1);
	if (t_netpair_enter(&d->np, 1))
		_exit(2);
	/*
	 * Keep nothing of the test's: a binding's netlink socket inherited
	 * here would keep the binding alive after the test frees it, and a
	 * namespace fd would keep namespace a alive.
	 */
	close_range(3, ~0u, 0);
	fd = t_tcp_connect(d->np.addr[0], d->port, 500);
	if (fd < 0)
		_exit(3);
	/* 0 bytes is a connection and an orderly close, not "until killed" */
	if (total && t_send_pattern(fd, seed, total))
		_exit(4);
	close(fd);
	_exit(0);
}

pid_t t_devmem_sender(struct t_devmem *d, uint64_t seed, uint64_t total)
{
	pid_t pid = fork();

	T_ASSERT(pid >= 0);
	if (pid == 0)
		sender(d, seed, total);
	return pid;
}

void t_devmem_check_frag(struct gpud_rx *rx, struct gpud_mem *bound,
			 const struct gpud_frag *f, uint64_t seed, uint64_t off)
{
	static uint8_t buf[4 << 20];
	struct gpud_mem *m = f->flags & GPUD_FRAG_COPY ? gpud_rx_copy_mem(rx) : bound;
	long bad;

	T_ASSERT(f->len <= sizeof(buf));
	T_ASSERT_OK(gpud_mem_read(m, f->offset, buf, f->len));
	bad = t_pattern_check(seed, off, buf, f->len);
	if (bad >= 0)
		T_FAIL("stream byte %llu differs (%s fragment at offset %llu, len %u)",
		       (unsigned long long)(off + (uint64_t)bad),
		       f->flags & GPUD_FRAG_COPY ? "copied" : "devmem",
		       (unsigned long long)f->offset, f->len);
}

int t_devmem_recv(struct gpud_rx *rx, struct gpud_mem *bound, struct gpud_frag *f,
		  size_t max, int flags, uint64_t seed, uint64_t *off)
{
	int n = gpud_rx_recv(rx, f, max, flags);

	for (int i = 0; i < n; i++) {
		t_devmem_check_frag(rx, bound, &f[i], seed, *off);
		*off += f[i].len;
	}
	return n;
}

uint64_t t_devmem_recv_to_eof(struct gpud_rx *rx, struct gpud_mem *bound, uint64_t seed,
			      uint64_t off)
{
	static struct gpud_frag f[256];
	int n;

	while ((n = t_devmem_recv(rx, bound, f, 256, 0, seed, &off)) > 0)
		T_ASSERT_OK(gpud_rx_release(rx, f, (size_t)n));
	if (n < 0)
		T_FAIL("gpud_rx_recv after %llu bytes: %d: %s", (unsigned long long)off, n,
		       gpud_errmsg());
	return off;
}

int t_devmem_pools(int ifindex, uint32_t id, uint64_t *inflight)
{
	struct gpud_page_pool_info pp[MAX_POOLS];
	int n = gpud_page_pools_get(ifindex, pp, MAX_POOLS), found = 0;

	T_ASSERT_OK(n);
	*inflight = 0;
	for (int i = 0; i < n && i < MAX_POOLS; i++) {
		if (pp[i].dmabuf_id != id)
			continue;
		found++;
		*inflight += pp[i].inflight;
	}
	return found;
}

int t_dmabuf_attachments(int fd)
{
	unsigned long ino, flags, mode;
	char line[512], name[128];
	bool ours = false;
	struct stat st;
	long count;
	size_t size;
	FILE *f;
	int n;

	if (fstat(fd, &st))
		return -errno;
	f = fopen("/sys/kernel/debug/dma_buf/bufinfo", "re");
	if (!f)
		return -errno;
	/* Per dma-buf: "size flags mode count exp_name ino name", its
	 * attachments, "Total N devices attached" (drivers/dma-buf/dma-buf.c,
	 * dma_buf_debug_show()).
	 */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%zu %lx %lx %ld %127s %lu", &size, &flags, &mode, &count, name,
			   &ino) == 6)
			ours = ino == (unsigned long)st.st_ino;
		else if (ours && sscanf(line, "Total %d devices attached", &n) == 1)
			break;
	}
	fclose(f);
	return ours ? n : -ENOENT;
}

void t_devmem_wait_released(const struct t_devmem *d, uint32_t id, double timeout_s)
{
	int fd = gpud_mem_dmabuf_fd(d->mem), found, att = -ENOENT;
	double t0 = t_now();
	uint64_t inflight;

	for (;;) {
		/* Deferred skbs hold net_iovs until their CPU's next NET_RX
		 * softirq; see tests/common/softnet.c. Namespace b is alive
		 * and has lo up in every test.
		 */
		T_ASSERT(t_skb_defer_flush_in(d->np.nsfd[1]) > 0);
		found = t_devmem_pools(0, id, &inflight);
		if (fd >= 0)
			att = t_dmabuf_attachments(fd);
		if ((!found || !inflight) && att <= 0)
			break;
		if (t_now() - t0 > timeout_s)
			T_FAIL("%.0f s after the binding went: %d page pool(s) of dma-buf %u with %llu net_iovs in flight, %d device(s) still attached to it",
			       timeout_s, found, id, (unsigned long long)inflight, att);
		usleep(50000);
	}
	t_log("released after %.2f s: %s, %s", t_now() - t0,
	      found ? "pool present, inflight 0" : "no page pool of the dma-buf left",
	      att == 0 ? "dma-buf detached" :
	      att == -ENOENT ? "dma-buf attachments not visible (no debugfs)" : "?");
}

void t_devmem_close(struct t_devmem *d, struct gpud_rx *rx, int cfd, int lfd,
		    struct gpud_binding *b, double timeout_s)
{
	gpud_rx_free(rx);
	close(cfd);
	close(lfd);
	gpud_binding_free(b);
	t_devmem_wait_released(d, d->dmabuf_id, timeout_s);
	gpud_nic_free(d->nic);
	d->nic = NULL;
}

long long t_devmem_rx_dropped(const struct t_devmem *d)
{
	char cmd[160], out[8192];
	long long v = -1;
	const char *p;
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip -n %s -j -s link show dev %s", d->np.ns[0],
		 d->np.ifname[0]);
	f = popen(cmd, "re");
	T_ASSERT(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	pclose(f);
	out[n] = 0;
	p = strstr(out, "\"rx\":{");
	if (p)
		p = strstr(p, "\"dropped\":");
	if (!p || sscanf(p, "\"dropped\":%lld", &v) != 1)
		T_FAIL("no rx dropped counter in: %s", out);
	return v;
}
