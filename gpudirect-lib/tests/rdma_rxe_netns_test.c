// SPDX-License-Identifier: MIT
/*
 * RDMA writes over soft-RoCE from one network namespace into a gpud_mem
 * registered with gpud_rdma_reg() in another (issue 10), checked byte-exact.
 *
 * Two processes: the sender in namespace a, the receiver in namespace b of a
 * t_netpair veth (198.18.0.1 <-> .2). They exchange QPN, GID and PSN, then
 * the region's address and rkey, over TCP across the veth, and connect RC
 * queue pairs. For each receive buffer (host memory through udmabuf, then a
 * vgem buffer where the VM has one) the sender RDMA-writes a pattern six
 * times, 1 byte to 4 MiB at odd offsets, each from a registered gpud_mem of
 * its own; after each completion the receiver reads the whole 8 MiB region
 * back through gpud_mem_read() and compares it with a shadow copy, so a
 * write that lands short, long or in the wrong place fails.
 *
 * Where RoCE travels depends on the kernel, and the test says which it used:
 *   wire    an rxe device on each veth end, inside its namespace; the
 *           writes cross the veth as RoCEv2 packets. Needs an rxe that
 *           listens on UDP 4791 in every namespace with a device.
 *   shared  Linux 6.12's rxe opens its UDP 4791 socket and routes only in
 *           the initial namespace (rxe_net.c: rxe_setup_udp_tunnel(&init_net),
 *           ip_route_output_key(&init_net)): a device on a namespaced veth
 *           is created and has a GID but can neither send nor receive. Then
 *           both processes, still in namespaces a and b, open one rxe device
 *           on a veth in the initial namespace and rxe's loopback carries
 *           the writes between their two queue pairs; the veth pair carries
 *           only the out-of-band exchange.
 * The probe: after `rdma link add` in namespace b, does b have a UDP 4791
 * socket? Everything the test adds hangs off the t_netpair namespaces (rxe
 * links go with their netdev, the shared-mode veth with its peer in a), so
 * the fixture's guardian removes it all however the test ends.
 *
 * Outside the VM it skips: it adds RDMA links and namespaces.
 */
#define _GNU_SOURCE
#include "mem_util.h"
#include "rdma_verbs_util.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>

#define OOB_PORT 18515		/* ibv_rc_pingpong's */
#define REGION (8u << 20)	/* receive buffer */
#define SRC_LEN (4u << 20)	/* largest write */

enum mode { MODE_WIRE, MODE_SHARED };

struct cfg {
	struct t_netpair np;
	enum mode mode;
	char dev[2][64];	/* rxe device side 0 (sender) / 1 (receiver) opens */
	char gid_ip[2][16];	/* the IPv4 address behind that side's GID */
	char shared_if[16];	/* shared mode: veth end in the initial namespace */
};

/* Offsets and lengths of the writes into each receive buffer. */
static const struct {
	uint32_t off;
	uint32_t len;
} writes[] = {
	{ 0, 1 },
	{ 4095, 4097 },				/* straddles pages */
	{ 65536 + 3, 65536 },
	{ (1u << 20) + 5, (1u << 20) + 11 },
	{ 3u << 20, 4u << 20 },			/* 4096 packets at MTU 1024 */
	{ REGION - 100003, 100003 },		/* ends at the region's end */
};

/*
 * Out-of-band messages. Both ends are this same binary on one machine, so
 * the struct goes as it is.
 */
enum { MSG_HELLO = 1, MSG_REGION, MSG_NO_REGION, MSG_WROTE, MSG_CHECKED, MSG_REGION_DONE };

struct msg {
	uint32_t op;
	uint32_t qpn;		/* HELLO */
	uint32_t psn;		/* HELLO: first PSN of the sender's send queue */
	uint32_t mtu;		/* HELLO: enum ibv_mtu, the port's active MTU */
	uint32_t grh;		/* HELLO */
	uint32_t rkey;		/* REGION */
	uint64_t addr;		/* REGION: iova of byte 0; WROTE: offset written */
	uint64_t len;		/* REGION, WROTE */
	uint64_t seed;		/* WROTE */
	uint8_t gid[16];	/* HELLO */
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	t_log("$ %s -> %d", cmd, rc);
	return rc;
}

static void msg_send(int sk, const struct msg *m)
{
	ssize_t n = send(sk, m, sizeof(*m), MSG_NOSIGNAL);

	if (n != (ssize_t)sizeof(*m))
		T_FAIL("out-of-band send: %s", n < 0 ? strerror(errno) : "short");
}

static void msg_recv(int sk, struct msg *m)
{
	ssize_t n = recv(sk, m, sizeof(*m), MSG_WAITALL);

	if (n != (ssize_t)sizeof(*m))
		T_FAIL("out-of-band recv: %s", n < 0 ? strerror(errno) : "peer closed");
}

/* A hung peer must fail the test, not hold it until ctest's timeout. */
static void set_timeout(int sk)
{
	struct timeval tv = { .tv_sec = 30 };

	T_ASSERT_OK(setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ? -errno : 0);
}

static void sockaddr_of(struct sockaddr_in *sa, const char *ip)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(OOB_PORT);
	T_ASSERT_EQ(1, inet_pton(AF_INET, ip, &sa->sin_addr));
}

struct side {
	struct gpud_rdma_dev *dev;
	struct t_rc rc;
	union ibv_gid gid;
	int gid_idx;
	int sk;
	int fds;
};

/* Namespace, device, GID and a QP in INIT: the same on both sides. */
static void side_open(struct side *s, const struct cfg *c, int idx, uint32_t psn)
{
	T_ASSERT_OK(t_netpair_enter(&c->np, idx));
	s->fds = t_count_fds();
	T_ASSERT_OK(gpud_rdma_dev_open(c->dev[idx], &s->dev));
	s->gid_idx = t_rdma_gid_index(gpud_rdma_dev_context(s->dev), c->gid_ip[idx], &s->gid, 10);
	if (s->gid_idx < 0)
		T_FAIL("%s has no RoCEv2 GID for %s after 10 s", c->dev[idx], c->gid_ip[idx]);
	/* an explicit index here; rdma_rxe_test covers the library's choice */
	t_rc_create(&s->rc, s->dev, s->gid_idx, -1, psn);
}

/* HELLO both ways, then RTR/RTS towards the peer's QP. */
static void side_connect(struct side *s)
{
	struct msg me = { .op = MSG_HELLO }, peer;
	struct gpud_rdma_ep ep;

	gpud_rdma_qp_local(s->rc.q, &ep);
	T_ASSERT_EQ(0, memcmp(ep.gid, s->gid.raw, sizeof(ep.gid)));
	me.qpn = ep.qpn;
	me.psn = ep.psn;
	me.mtu = ep.mtu;
	me.grh = ep.grh;
	memcpy(me.gid, ep.gid, sizeof(me.gid));
	msg_send(s->sk, &me);
	msg_recv(s->sk, &peer);
	T_ASSERT_EQ(MSG_HELLO, peer.op);
	ep = (struct gpud_rdma_ep){ .qpn = peer.qpn, .psn = peer.psn, .mtu = peer.mtu,
				    .grh = peer.grh };
	memcpy(ep.gid, peer.gid, sizeof(ep.gid));
	t_rc_connect(&s->rc, &ep);
	t_log("pid %d: QP %u -> QP %u, path MTU %u", (int)getpid(), s->rc.qp->qp_num, peer.qpn,
	      gpud_rdma_qp_path_mtu(s->rc.q));
}

static void side_close(struct side *s)
{
	t_rc_destroy(&s->rc);
	gpud_rdma_dev_free(s->dev);
	close(s->sk);
	/* every MR, PD, QP, CQ and the uverbs fd are gone again */
	T_ASSERT_EQ(s->fds, t_count_fds());
}

/* ---- receiver: namespace b ------------------------------------------- */

/* Reads the whole region back and compares it with what it should hold. */
static void check_region(struct gpud_mem *m, const uint8_t *shadow, uint8_t *back,
			 const struct msg *w)
{
	T_ASSERT_OK(gpud_mem_read(m, 0, back, REGION));
	if (!memcmp(back, shadow, REGION))
		return;
	for (size_t i = 0; i < REGION; i++)
		if (back[i] != shadow[i])
			T_FAIL("after writing %llu bytes at %llu: byte %zu is 0x%02x, expected 0x%02x",
			       (unsigned long long)w->len, (unsigned long long)w->addr, i, back[i],
			       shadow[i]);
}

/*
 * Creates one receive buffer of @kind, registers it and answers each WROTE
 * with CHECKED until the sender is done with it. A vgem buffer may be
 * unregistrable on rxe: its CPU mapping is a driver mapping the kernel
 * cannot pin. That must fail with -EFAULT and say so; the sender is then
 * told there is no region.
 */
static void rx_region(struct side *s, enum gpud_mem_kind kind, const char *path)
{
	struct gpud_mem_opts o = { .sz = sizeof(o), .path = path };
	const char *name = kind == GPUD_MEM_HOST ? "host" : "vgem";
	struct msg r = { .op = MSG_NO_REGION }, w;
	struct gpud_rdma_mr *mr = NULL;
	uint8_t *shadow, *back;
	struct gpud_mem *m;
	int ret, n = 0;

	if (gpud_mem_create(kind, REGION, &o, &m)) {
		if (kind == GPUD_MEM_HOST)
			T_FAIL("host memory with a dma-buf: %s", gpud_errmsg());
		t_log("no vgem buffer: %s", gpud_errmsg());
		msg_send(s->sk, &r);
		return;
	}
	shadow = malloc(REGION);
	back = malloc(REGION);
	T_ASSERT(shadow && back);
	/* known contents first, so that bytes a write must not touch are checked too */
	t_pattern_fill(kind + 1000, 0, shadow, REGION);
	T_ASSERT_OK(gpud_mem_write(m, 0, shadow, REGION));

	ret = gpud_rdma_reg(s->dev, m, 0, 0, GPUD_RDMA_ACCESS_REMOTE_WRITE, &mr);
	if (ret && kind == GPUD_MEM_DRM) {
		t_log("vgem on %s: %s", gpud_rdma_dev_name(s->dev), gpud_errmsg());
		T_ASSERT_EQ(-EFAULT, ret);
		T_ASSERT_MSG("cannot be pinned");
		msg_send(s->sk, &r);
		goto out_free;
	}
	T_ASSERT_OK(ret);
	/* rxe cannot import a dma-buf: the CPU-mapping fallback must have run */
	T_ASSERT_EQ(GPUD_RDMA_MR_HOST_VA, gpud_rdma_mr_how(mr));
	r.op = MSG_REGION;
	r.addr = gpud_rdma_mr_addr(mr);
	r.len = gpud_rdma_mr_length(mr);
	r.rkey = gpud_rdma_mr_rkey(mr);
	msg_send(s->sk, &r);

	for (;;) {
		msg_recv(s->sk, &w);
		if (w.op == MSG_REGION_DONE)
			break;
		T_ASSERT_EQ(MSG_WROTE, w.op);
		T_ASSERT(w.addr + w.len <= REGION);
		t_pattern_fill(w.seed, w.addr, shadow + w.addr, w.len);
		check_region(m, shadow, back, &w);
		n++;
		msg_send(s->sk, &(struct msg){ .op = MSG_CHECKED });
	}
	T_ASSERT_EQ(sizeof(writes) / sizeof(writes[0]), n);
	t_log("%s region: %d RDMA writes received, all %u bytes byte-exact after each", name,
	      n, REGION);
	gpud_rdma_mr_free(mr);
out_free:
	free(back);
	free(shadow);
	gpud_mem_free(m);
}

static void receiver(const struct cfg *c)
{
	struct sockaddr_in sa;
	struct side s = { 0 };
	int one = 1, lsk;

	side_open(&s, c, 1, 0x200);
	lsk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	T_ASSERT(lsk >= 0);
	set_timeout(lsk);	/* accept() honours SO_RCVTIMEO too */
	T_ASSERT_OK(setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ? -errno : 0);
	sockaddr_of(&sa, c->np.addr[1]);
	T_ASSERT_OK(bind(lsk, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0);
	T_ASSERT_OK(listen(lsk, 1) ? -errno : 0);
	s.sk = accept4(lsk, NULL, NULL, SOCK_CLOEXEC);
	if (s.sk < 0)
		T_FAIL("accept on %s:%d: %s", c->np.addr[1], OOB_PORT, strerror(errno));
	close(lsk);
	set_timeout(s.sk);
	side_connect(&s);

	rx_region(&s, GPUD_MEM_HOST, NULL);
	rx_region(&s, GPUD_MEM_DRM, "/dev/dri/card0");
	side_close(&s);
}

/* ---- sender: namespace a --------------------------------------------- */

static int connect_retry(const char *ip)
{
	struct sockaddr_in sa;
	double t0 = t_now();
	int sk;

	sockaddr_of(&sa, ip);
	/* the receiver may not listen yet: it first waits for its GID */
	for (;;) {
		sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		T_ASSERT(sk >= 0);
		if (!connect(sk, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		close(sk);
		if (t_now() - t0 > 20)
			T_FAIL("connect to %s:%d: %s", ip, OOB_PORT, strerror(errno));
		usleep(50000);
	}
	set_timeout(sk);
	return sk;
}

/* Six writes into the region the receiver announced, each checked there. */
static void tx_region(struct side *s, struct gpud_mem *src, struct gpud_rdma_mr *smr,
		      uint8_t *stage, int round)
{
	struct msg r, w, ack;

	msg_recv(s->sk, &r);
	if (r.op == MSG_NO_REGION) {
		t_log("receiver has no region %d to write to", round);
		return;
	}
	T_ASSERT_EQ(MSG_REGION, r.op);
	T_ASSERT_EQ(REGION, r.len);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		uint64_t seed = (uint64_t)round << 8 | i;
		double t0 = t_now();

		t_pattern_fill(seed, writes[i].off, stage, writes[i].len);
		T_ASSERT_OK(gpud_mem_write(src, 0, stage, writes[i].len));
		/* both MRs' iovas are offsets in their gpud_mem */
		t_rc_write(&s->rc, gpud_rdma_mr_addr(smr), gpud_rdma_mr_lkey(smr),
			   r.addr + writes[i].off, r.rkey, writes[i].len, seed);
		t_log("RDMA write of %u bytes at %u: completed in %.3f s", writes[i].len,
		      writes[i].off, t_now() - t0);
		w = (struct msg){ .op = MSG_WROTE, .addr = writes[i].off,
				  .len = writes[i].len, .seed = seed };
		msg_send(s->sk, &w);
		msg_recv(s->sk, &ack);
		T_ASSERT_EQ(MSG_CHECKED, ack.op);
	}
	msg_send(s->sk, &(struct msg){ .op = MSG_REGION_DONE });
}

static void sender(const struct cfg *c)
{
	struct gpud_mem_opts o = { .sz = sizeof(o) };
	struct gpud_rdma_mr *smr = NULL;
	struct gpud_mem *src = NULL;
	struct side s = { 0 };
	uint8_t *stage;

	side_open(&s, c, 0, 0x100);
	/* the source is a registered gpud_mem too: its lkey and iova get used */
	T_ASSERT_OK(gpud_mem_create(GPUD_MEM_HOST, SRC_LEN, &o, &src));
	T_ASSERT_OK(gpud_rdma_reg(s.dev, src, 0, 0, GPUD_RDMA_ACCESS_LOCAL_WRITE, &smr));
	stage = malloc(SRC_LEN);
	T_ASSERT(stage);
	s.sk = connect_retry(c->np.addr[1]);
	side_connect(&s);

	tx_region(&s, src, smr, stage, 1);
	tx_region(&s, src, smr, stage, 2);

	free(stage);
	gpud_rdma_mr_free(smr);
	gpud_mem_free(src);
	side_close(&s);
}

/* ---- parent: devices, mode, children, teardown ------------------------ */

static pid_t spawn(void (*fn)(const struct cfg *), const struct cfg *c)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (!pid) {
		fn(c);
		/* exit(), not _exit(): LeakSanitizer checks each side at exit */
		exit(T_EXIT_PASS);
	}
	return pid;
}

/* rxe unregisters its device from a work queue: wait until it is gone. */
static void wait_ibdev_gone(const char *name)
{
	char path[128];
	double t0 = t_now();

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s", name);
	while (!access(path, F_OK)) {
		if (t_now() - t0 > 10)
			T_FAIL("%s still present 10 s after its removal", path);
		usleep(50000);
	}
}

static void setup_wire(struct cfg *c)
{
	for (int i = 0; i < 2; i++) {
		snprintf(c->dev[i], sizeof(c->dev[i]), "gpud_rxe%d%c", (int)getpid(), 'a' + i);
		if (t_netpair_exec(&c->np, i, "rdma link add %s type rxe netdev %s", c->dev[i],
				   c->np.ifname[i]))
			t_skip("rdma link add failed: kernel without CONFIG_RDMA_RXE?");
		snprintf(c->gid_ip[i], sizeof(c->gid_ip[i]), "%s", c->np.addr[i]);
	}
}

/* Does namespace b answer RoCEv2, i.e. have a UDP 4791 (0x12B7) socket? */
static bool rxe_listens_in_b(const struct cfg *c)
{
	return !t_netpair_exec(&c->np, 1,
			       "grep -q \":12B7 \" /proc/net/udp /proc/net/udp6 2>/dev/null");
}

static void setup_shared(struct cfg *c)
{
	/* The wire devices cannot carry traffic here; don't leave them around. */
	for (int i = 0; i < 2; i++) {
		T_ASSERT_EQ(0, sh("rdma link delete %s", c->dev[i]));
		wait_ibdev_gone(c->dev[i]);
	}
	/* Peer in namespace a: deleting a (the fixture's guardian) removes both. */
	snprintf(c->shared_if, sizeof(c->shared_if), "gpr%dr", (int)getpid());
	if (sh("ip link add %s type veth peer name gpr%dp netns %s", c->shared_if,
	       (int)getpid(), c->np.ns[0]) ||
	    sh("ip addr add 198.18.1.1/24 dev %s && ip link set %s up", c->shared_if,
	       c->shared_if) ||
	    t_netpair_exec(&c->np, 0, "ip link set gpr%dp up", (int)getpid()))
		T_FAIL("cannot set up the shared-mode veth");
	snprintf(c->dev[0], sizeof(c->dev[0]), "gpud_rxe%ds", (int)getpid());
	snprintf(c->dev[1], sizeof(c->dev[1]), "%s", c->dev[0]);
	if (sh("rdma link add %s type rxe netdev %s", c->dev[0], c->shared_if))
		T_FAIL("rdma link add on %s in the initial namespace failed", c->shared_if);
	for (int i = 0; i < 2; i++)
		snprintf(c->gid_ip[i], sizeof(c->gid_ip[i]), "198.18.1.1");
}

static void teardown(struct cfg *c)
{
	int n = c->mode == MODE_WIRE ? 2 : 1;
	char path[64];

	for (int i = 0; i < n; i++)
		T_ASSERT_EQ(0, sh("rdma link delete %s", c->dev[i]));
	if (c->mode == MODE_SHARED)
		T_ASSERT_EQ(0, sh("ip link del %s", c->shared_if));
	t_netpair_teardown(&c->np);
	for (int i = 0; i < n; i++)
		wait_ibdev_gone(c->dev[i]);
	if (c->mode == MODE_SHARED) {
		snprintf(path, sizeof(path), "/sys/class/net/%s", c->shared_if);
		T_ASSERT(access(path, F_OK));
	}
	snprintf(path, sizeof(path), "/var/run/netns/%s", c->np.ns[0]);
	T_ASSERT(access(path, F_OK));
}

int main(void)
{
	static struct cfg c;
	pid_t pid[2];
	int st;

	if (!t_in_vm())
		t_skip("adds soft-RoCE links and namespaces: runs in the test VM (ctest -L vm, rdma_rxe_netns_vm)");
	t_require_root();
	if (sh("command -v rdma >/dev/null"))
		t_skip("no rdma tool (iproute2)");
	t_netpair_setup(&c.np, T_LINK_VETH);
	setup_wire(&c);
	if (rxe_listens_in_b(&c)) {
		c.mode = MODE_WIRE;
		t_log("mode wire: %s in %s and %s in %s, RoCEv2 across the veth", c.dev[0],
		      c.np.ns[0], c.dev[1], c.np.ns[1]);
	} else {
		c.mode = MODE_SHARED;
		t_log("mode shared: this kernel's rxe has no UDP 4791 socket in %s after "
		      "`rdma link add` there (6.12 listens and routes in the initial namespace "
		      "only), so a namespaced rxe device cannot be reached", c.np.ns[1]);
		setup_shared(&c);
		t_log("both sides open %s on %s (initial namespace); rxe loopback carries the "
		      "writes, the veth carries the out-of-band exchange", c.dev[0], c.shared_if);
	}

	pid[1] = spawn(receiver, &c);
	pid[0] = spawn(sender, &c);
	for (int i = 0; i < 2; i++) {
		T_ASSERT_EQ(pid[i], waitpid(pid[i], &st, 0));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != T_EXIT_PASS)
			T_FAIL("%s (in %s) failed: status 0x%x", i ? "receiver" : "sender",
			       c.np.ns[i], st);
	}
	teardown(&c);
	t_log("rdma_rxe_netns_test: pass (mode %s%s)", c.mode == MODE_WIRE ? "wire" : "shared",
	      c.mode == MODE_WIRE ? "" : ": RoCE did not cross the veth, see above");
	return T_EXIT_PASS;
}
