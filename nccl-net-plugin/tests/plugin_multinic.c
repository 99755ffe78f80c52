// SPDX-License-Identifier: MIT
/*
 * Several NICs per node, two processes in two namespaces:
 *   plugin_multinic fused    two veth pairs; makeVDevice fuses both
 *                            interfaces, one comm on the fused device moves
 *                            every size byte-exact, and each link carries
 *                            more than 30 % of the comm's bytes (the
 *                            interfaces' own counters, /proc/net/dev)
 *   plugin_multinic select   three interfaces a side; NCCL_DEVMEM_IFNAME with
 *                            NCCL_SOCKET_IFNAME's rules (^, =, prefixes,
 *                            lists) picks exactly the expected ones
 *   plugin_multinic ipv6     an IPv6-only veth pair: the interface is found,
 *                            the handle is IPv6, every size byte-exact, the
 *                            traffic class is IPV6_TCLASS on every socket
 *   plugin_multinic ipv6-fused  both links IPv6-only, fused: the member
 *                            addresses travel in the handshake as 16 bytes
 *   plugin_multinic fused-unpack  the fused test with NCCL_DEVMEM_UNPACK=nccl:
 *                            the device handle NCCL gives accept is filled,
 *                            every receive consumed (copy mode: 0 entries)
 *   plugin_multinic fused-auto  the fused test with NCCL_DEVMEM_MODE=auto on
 *                            veth (no devmem): the comm copies, and the logged
 *                            reason names the member that cannot do devmem
 *   plugin_multinic devmem-two  (patched-kernel VM) two netdevsim pairs, the
 *                            second from nsim-pair.sh: both ports are devices,
 *                            each binds its own pool, a devmem comm on each,
 *                            every size byte-exact, each sending port's counter
 *                            grows by at least 1 MiB (netdevsim counts no
 *                            received bytes on a devmem port and its tx count
 *                            is not exact: evidence of traffic, not a share)
 *   plugin_multinic devmem-fused  (patched-kernel VM) the same two pairs,
 *                            fused by makeVDevice: one devmem comm over both
 *                            ports, one pool bound on each (both bindings
 *                            logged), every size byte-exact, each port's
 *                            half of the pool filled twice over (tokens come
 *                            back per socket), each sending port's counter
 *                            grows by at least 8 MiB of the ~38 MB it carries
 *   plugin_multinic devmem-fused-unpack  that with NCCL_DEVMEM_UNPACK=nccl:
 *                            the CPU stand-in for NCCL's kernel unpacks every
 *                            receive from the one pool (src_off inside it)
 *                            and gets most of each receive's bytes to copy
 *   plugin_multinic family-mismatch  a dual-stack link, the receiver on IPv6
 *                            (NCCL_DEVMEM_FAMILY=AF_INET6), the sender on
 *                            IPv4: connect fails at once naming the variable,
 *                            and the listener's accept keeps answering (no comm)
 *
 * Addresses: IPv4 in 198.18.0.0/15 as everywhere in the tests. IPv6 needs
 * an address that is neither link-local (the plugin skips those: a peer
 * would need our interface index) nor routable: fd00:198:18::/48, a unique
 * local prefix (RFC 4193), and only ever on links inside the two namespaces
 * this test creates, so nothing leaves them. 2001:db8::/32 would serve too,
 * but the project's test rules allow no documentation prefix.
 */
#include "harness.h"
#include "conn/conn.h"
#include "unpack_consumer.h"

#include <dirent.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TO 60.0
#define SLACK 4096

static struct h_plugin P;
static struct h_pair HP;
static bool rx;
static ncclNetDeviceHandle_v11_t *dh;	/* fused-unpack: NCCL's device handle */
static int want_family;	/* the listen handle's family, 0 = any */
static size_t devmem_pool;	/* devmem-fused-unpack: the pool NCCL's kernel reads */

/* ---- links ---- */

/* system() of a formatted command: its exit status (0 = it worked). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Link @a (namespace a) <-> @b (namespace b) up, with @v4 (198.18.N) and/or @v6 (fd00:198:18:N). */
static void addr_link(const char *a, const char *b, int net, bool v4, bool v6)
{
	const char *ns[2] = { HP.net.ns[0], HP.net.ns[1] };
	const char *ifn[2] = { a, b };

	for (int s = 0; s < 2; s++) {
		if (v4 && run("ip -n %s addr add 198.18.%d.%d/24 dev %s", ns[s], net, s + 1,
				       ifn[s]))
			T_FAIL("cannot add 198.18.%d.%d to %s", net, s + 1, ifn[s]);
		/* nodad: a tentative address cannot be bound for a second or more */
		if (v6 && run("ip -n %s addr add fd00:198:18:%d::%d/64 dev %s nodad", ns[s],
				       net, s + 1, ifn[s]))
			t_skip("cannot add an IPv6 address to %s (IPv6 disabled in this kernel?)",
			       ifn[s]);
		if (run("ip -n %s link set %s up", ns[s], ifn[s]))
			T_FAIL("cannot set %s up", ifn[s]);
	}
	/* veth runs about a second after "up"; a SYN sent before is lost for 1 s */
	for (int s = 0; s < 2; s++) {
		double end = t_now() + 10;

		while (run("ip -n %s link show %s | grep -q LOWER_UP", ns[s], ifn[s])) {
			if (t_now() > end)
				T_FAIL("%s never came up", ifn[s]);
			usleep(20000);
		}
	}
}

/* A new veth pair @a <-> @b, configured as addr_link() does. */
static void add_link(const char *a, const char *b, int net, bool v4, bool v6)
{
	if (run("ip link add %s netns %s type veth peer name %s netns %s", a, HP.net.ns[0], b,
		HP.net.ns[1]))
		T_FAIL("cannot create veth pair %s/%s", a, b);
	addr_link(a, b, net, v4, v6);
}

/* The interface's byte counter (this namespace: /proc/net follows setns, /sys does not). */
static unsigned long long if_bytes(const char *ifname, bool tx)
{
	unsigned long long v[16] = { 0 };
	char line[512], name[32];
	FILE *f = fopen("/proc/net/dev", "r");
	bool found = false;

	T_ASSERT(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!c)
			continue;
		*c = ' ';
		if (sscanf(line, " %31s %llu %llu %llu %llu %llu %llu %llu %llu %llu", name, &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) == 10 &&
		    !strcmp(name, ifname)) {
			found = true;
			break;
		}
	}
	fclose(f);
	if (!found)
		T_FAIL("%s not in /proc/net/dev", ifname);
	return tx ? v[8] : v[0];	/* tx_bytes is the 9th field, rx_bytes the 1st */
}

/* ---- the plugin ---- */

static int ndevs(void)
{
	int n = -1;

	T_ASSERT_EQ(ncclSuccess, P.v12->devices(&n));
	return n;
}

static void check_names(const char *want)
{
	char got[256] = "";
	int n = ndevs();

	for (int d = 0; d < n; d++) {
		ncclNetProperties_v12_t pr;

		T_ASSERT_EQ(ncclSuccess, P.v12->getProperties(d, &pr));
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", d ? "," : "",
			 pr.name);
	}
	T_ASSERT_STREQ(want, got);
}

struct conn {
	void *listen, *comm, *mh;
	char *buf;
	size_t len;
};

static void connect_dev(int dev, struct conn *c, size_t len)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	struct dm_handle *h = (struct dm_handle *)handle;

	if (rx) {
		T_ASSERT_EQ(ncclSuccess, h_listen(&P, dev, handle, &c->listen));
		char a[64];

		dm_addr_str(&h->addr, a, sizeof(a));
		t_log("listening on dev %d at %s", dev, a);
		if (want_family && h->addr.sa.sa_family != want_family)
			T_FAIL("the handle's address %s is not of family %d", a, want_family);
		h_send_handle(&HP, handle);
		if (getenv("NCCL_DEVMEM_UNPACK")) {
			/* as NCCL does for a plugin that offers its device unpack */
			dh = calloc(1, sizeof(*dh));
			T_ASSERT(dh != NULL);
			dh->netDeviceType = NCCL_NET_DEVICE_UNPACK;
			dh->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
			c->comm = h_accept_wait_dev(&P, c->listen, &dh, TO);
			T_ASSERT(dh->handle != NULL);
		} else {
			c->comm = h_accept_wait(&P, c->listen, TO);
		}
	} else {
		h_recv_handle(&HP, handle);
		c->comm = h_connect_wait(&P, dev, handle, TO);
	}
	c->len = len;
	c->buf = h_alloc(len);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, c->comm, c->buf, len, &c->mh));
}

static void close_conn(struct conn *c)
{
	T_ASSERT_EQ(ncclSuccess, h_deregmr(&P, c->comm, c->mh));
	if (rx) {
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, c->comm));
		T_ASSERT_EQ(ncclSuccess, h_close_listen(&P, c->listen));
	} else {
		T_ASSERT_EQ(ncclSuccess, h_close_send(&P, c->comm));
	}
}

/*
 * What NCCL's kernel does with a receive test() said is done (the CPU stand-in,
 * tests/unpack_consumer.c): copy mode publishes nothing, devmem leaves it most
 * of the bytes, every entry inside the pool.
 */
static void nccl_unpack(struct conn *c, size_t posted, size_t size)
{
	struct h_unpack_step st;
	int err = h_unpack_consume(dh->handle, c->buf, posted, devmem_pool, &st);

	if (err)
		T_FAIL("NCCL's kernel would have read bad metadata for a %zu-byte receive: %s", size,
		       strerror(-err));
	if (!devmem_pool)
		T_ASSERT_EQ(0, st.cnt);
	else if (size >= 4096 && size <= NCCL_NET_UNPACK_MAX_SLICE_SIZE && st.bytes < size / 2)
		T_FAIL("devmem: NCCL's kernel got only %llu of %zu bytes (%llu entries) to copy",
		       (unsigned long long)st.bytes, size, (unsigned long long)st.cnt);
}

/* One message of @size, every byte checked, nothing past it written. */
static void xfer(struct conn *c, size_t size, uint64_t seed)
{
	void *req = NULL;
	int got = -1;

	if (rx) {
		size_t max = size + SLACK;
		void *data = c->buf;
		int tag = 7;
		long bad;

		memset(c->buf, 0xee, max);
		while (!req)
			T_ASSERT_EQ(ncclSuccess, h_irecv(&P, c->comm, 1, &data, &max, &tag, &c->mh, &req));
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, TO));
		T_ASSERT_EQ(size, got);
		if (dh)
			nccl_unpack(c, max, size);
		bad = t_pattern_check(seed, 0, c->buf, size);
		if (bad >= 0)
			T_FAIL("%zu-byte message: byte %ld differs", size, bad);
		for (size_t i = size; i < max; i++)
			if ((unsigned char)c->buf[i] != 0xee)
				T_FAIL("byte %zu past a %zu-byte message was written", i, size);
		if (dh)	/* NCCL's kernel is done with it: the slot goes back */
			T_ASSERT_EQ(ncclSuccess, h_irecv_consumed(&P, c->comm, 1, req));
	} else {
		t_pattern_fill(seed, 0, c->buf, size);
		req = h_isend_wait(&P, c->comm, c->buf, size, 7, c->mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, TO));
		T_ASSERT_EQ(size, got);
	}
}

static const size_t sizes[] = { 0, 1, 4095, 4096, 65536, 65537, 1 << 20, (4 << 20) + 3, 64 << 20 };
#define NSIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))

static void all_sizes(struct conn *c)
{
	uint64_t seed = 1;

	for (int i = 0; i < NSIZES; i++)
		xfer(c, sizes[i], seed++);
	/* small messages one after another: each starts on the next socket */
	for (int i = 0; i < 64; i++)
		xfer(c, 60000 + (size_t)i, seed++);
}

/* Both sides: the other process may start once the links exist. */
static void links_ready(void)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };

	if (rx)
		h_send_handle(&HP, handle);
	else
		h_recv_handle(&HP, handle);
}

/* ---- scenarios ---- */

static void fused(bool v6)
{
	const char *mine[2] = { rx ? "gpud0" : "gpud1", rx ? "gpud2" : "gpud3" };
	ncclNetVDeviceProps_v12_t vp = { .ndevs = 2, .devs = { 0, 1 } };
	ncclNetProperties_v12_t pr, m0;
	unsigned long long before[2], bytes[2], total;
	struct conn c = { 0 };
	int d = -1, d2 = -1;

	want_family = v6 ? AF_INET6 : AF_INET;
	if (rx) {
		if (v6) {
			/* the fixture's pair IPv6-only too: members share one family */
			if (run("ip -n %s -4 addr flush dev gpud0 && ip -n %s -4 addr flush dev gpud1",
				HP.net.ns[0], HP.net.ns[1]))
				T_FAIL("cannot remove the IPv4 addresses of gpud0/gpud1");
			addr_link("gpud0", "gpud1", 0, false, true);
		}
		add_link("gpud2", "gpud3", 1, !v6, v6);
	}
	links_ready();
	setenv("NCCL_DEVMEM_IFNAME", "gpud", 1);
	h_load(&P, 12);
	/* device numbers follow the PCI (here: sysfs) path: gpud0 < gpud2 */
	check_names(rx ? "gpud0,gpud2" : "gpud1,gpud3");
	T_ASSERT_EQ(ncclSuccess, P.v12->makeVDevice(&d, &vp));
	T_ASSERT_EQ(2, d);
	T_ASSERT_EQ(3, ndevs());	/* NCCL asks devices() again after makeVDevice */
	T_ASSERT_EQ(ncclSuccess, P.v12->makeVDevice(&d2, &vp));
	T_ASSERT_EQ(d, d2);		/* the same set: the same device */
	T_ASSERT_EQ(ncclSuccess, P.v12->getProperties(d, &pr));
	T_ASSERT_EQ(ncclSuccess, P.v12->getProperties(0, &m0));
	T_ASSERT_EQ(2, pr.vProps.ndevs);
	T_ASSERT_EQ(0, pr.vProps.devs[0]);
	T_ASSERT_EQ(1, pr.vProps.devs[1]);
	T_ASSERT_EQ(2 * m0.speed, pr.speed);
	T_ASSERT_STREQ(m0.pciPath, pr.pciPath);
	{
		char want[40];

		snprintf(want, sizeof(want), "%s+%s", mine[0], mine[1]);
		T_ASSERT_STREQ(want, pr.name);
	}
	/* what makeVDevice refuses, each with a WARN */
	{
		ncclNetVDeviceProps_v12_t bad = { .ndevs = 2, .devs = { 0, 0 } };

		T_ASSERT_EQ(ncclInvalidArgument, P.v12->makeVDevice(&d2, &bad));
		bad = (ncclNetVDeviceProps_v12_t){ .ndevs = 2, .devs = { 0, d } };
		T_ASSERT_EQ(ncclInvalidArgument, P.v12->makeVDevice(&d2, &bad));
		bad = (ncclNetVDeviceProps_v12_t){ .ndevs = 9 };
		T_ASSERT_EQ(ncclInvalidArgument, P.v12->makeVDevice(&d2, &bad));
		T_ASSERT_EQ(3, ndevs());
		h_warns = 0;	/* those WARNs were asked for */
	}
	/* NCCL 2.28/2.29 (v11): the same fused device, at most 4 per NIC */
	{
		const ncclNet_v11_t *v11 = dlsym(P.so, "ncclNetPlugin_v11");
		ncclNetVDeviceProps_v11_t v = { .ndevs = 2, .devs = { 0, 1 } };
		ncclNetProperties_v11_t p11;

		T_ASSERT(v11 != NULL);
		T_ASSERT_EQ(ncclSuccess, v11->makeVDevice(&d2, &v));
		T_ASSERT_EQ(d, d2);
		T_ASSERT_EQ(ncclSuccess, v11->getProperties(d, &p11));
		T_ASSERT_EQ(2, p11.vProps.ndevs);
		v.ndevs = 5;
		T_ASSERT_EQ(ncclInvalidArgument, v11->makeVDevice(&d2, &v));
		h_warns = 0;
	}
	for (int i = 0; i < 2; i++)
		before[i] = if_bytes(mine[i], !rx);
	connect_dev(d, &c, (64 << 20) + SLACK);
	all_sizes(&c);
	total = 0;
	for (int i = 0; i < 2; i++) {
		bytes[i] = if_bytes(mine[i], !rx) - before[i];
		total += bytes[i];
	}
	for (int i = 0; i < 2; i++) {
		t_log("%s %s: %llu bytes, %.1f %% of the comm's", rx ? "received on" : "sent on",
		      mine[i], bytes[i], 100.0 * bytes[i] / total);
		if (bytes[i] * 10 <= total * 3)
			T_FAIL("%s carried %.1f %% of the fused comm's bytes, want > 30 %%", mine[i],
			       100.0 * bytes[i] / total);
	}
	/* the payload (about 72 MiB) went over the links, not around them */
	T_ASSERT(total > (68ull << 20));
	if (rx && h_log_needle[0]) {
		/* auto on veth: devmem set up on the members, refused by the first, copied */
		const char *why = strstr(h_log_hit, "unavailable: ");

		T_ASSERT_EQ(1, h_log_hits);
		t_log("%s", h_log_hit);
		if (!why || !strstr(why, mine[0]))
			T_FAIL("the copy reason does not name member %s: %s", mine[0], h_log_hit);
	}
	close_conn(&c);
}

/* Which interfaces NCCL_DEVMEM_IFNAME=@spec selects here, in a fresh process. */
static void select_one(const char *spec, const char *want)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		if (spec)
			setenv("NCCL_DEVMEM_IFNAME", spec, 1);
		else
			unsetenv("NCCL_DEVMEM_IFNAME");
		if (!want) {
			/* selects nothing: init fails and the WARN names the variable */
			void *so = dlopen(h_plugin_path(), RTLD_NOW | RTLD_LOCAL);
			const ncclNet_v12_t *t = so ? dlsym(so, "ncclNetPlugin_v12") : NULL;
			void *ctx = NULL;

			T_ASSERT(t != NULL);
			T_ASSERT(t->init(&ctx, 1, NULL, NULL, NULL) != ncclSuccess);
			_exit(0);
		}
		h_load(&P, 12);
		check_names(want);
		h_unload(&P);
		_exit(0);
	}
	T_ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		T_FAIL("NCCL_DEVMEM_IFNAME=%s: does not select exactly \"%s\"", spec ? spec : "(unset)",
		       want ? want : "nothing");
	t_log("NCCL_DEVMEM_IFNAME=%s selects %s", spec ? spec : "(unset)", want ? want : "nothing");
}

static void selection(void)
{
	if (rx) {
		add_link("gpud2", "gpud3", 1, true, false);
		add_link("gpud20", "gpud21", 2, true, false);
	}
	links_ready();
	if (!rx)
		return;
	/* default: every up interface with an address but loopback, by sysfs path */
	select_one(NULL, "gpud0,gpud2,gpud20");
	/* ^ excludes by prefix: gpud2 takes gpud20 with it */
	select_one("^gpud2", "gpud0");
	select_one("^=gpud2", "gpud0,gpud20");
	select_one("=gpud2", "gpud2");
	select_one("gpud2", "gpud2,gpud20");
	select_one("gpud20,gpud0", "gpud0,gpud20");
	select_one("=gpud20,=gpud0", "gpud20");	/* = only first: "=gpud0" is a prefix "=gpud0" */
	select_one("^lo,docker", "gpud0,gpud2,gpud20");
	/* a list that names loopback brings it in */
	select_one("=lo,gpud0", "gpud0,lo");
	select_one("=nope", NULL);
}

/* Every TCP socket of this process is IPv6 and carries @want as IPV6_TCLASS. */
static void tclass6_check(int want)
{
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	T_ASSERT(dir != NULL);
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name), type = 0, tc = -1;
		socklen_t l = sizeof(type);
		union dm_addr sa;
		socklen_t sl = sizeof(sa);

		if (de->d_name[0] == '.' || fd == dirfd(dir) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM ||
		    getpeername(fd, &sa.sa, &sl))
			continue;
		T_ASSERT_EQ(AF_INET6, sa.sa.sa_family);
		l = sizeof(tc);
		T_ASSERT_EQ(0, getsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tc, &l));
		if (tc != want)
			T_FAIL("socket fd %d: IPV6_TCLASS 0x%02x, NCCL asked for 0x%02x", fd, tc, want);
		n++;
	}
	closedir(dir);
	T_ASSERT_EQ(5, n);	/* control + NCCL_DEVMEM_NSOCKS (4) */
	t_log("IPV6_TCLASS 0x%02x on all %d sockets", want, n);
}

static void ipv6(void)
{
	struct conn c = { 0 };

	want_family = AF_INET6;
	if (rx)
		add_link("gpud2", "gpud3", 1, false, true);
	links_ready();
	/* an IPv6-only interface is a device without NCCL_DEVMEM_FAMILY */
	setenv("NCCL_DEVMEM_IFNAME", "=gpud2,gpud3", 1);
	setenv("H_TCLASS", "0x28", 1);
	h_load(&P, 12);
	check_names(rx ? "gpud2" : "gpud3");
	connect_dev(0, &c, (64 << 20) + SLACK);
	tclass6_check(0x28);
	all_sizes(&c);
	close_conn(&c);
}

static void family_mismatch(void)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	void *lc = NULL, *comm = NULL;

	if (rx)
		addr_link("gpud0", "gpud1", 0, false, true);	/* IPv6 next to the IPv4 address */
	links_ready();
	setenv("NCCL_DEVMEM_FAMILY", rx ? "AF_INET6" : "AF_INET", 1);
	h_load(&P, 12);
	check_names(rx ? "gpud0" : "gpud1");
	if (rx) {
		T_ASSERT_EQ(ncclSuccess, h_listen(&P, 0, handle, &lc));
		T_ASSERT_EQ(AF_INET6, ((struct dm_handle *)handle)->addr.sa.sa_family);
		h_send_handle(&HP, handle);
		/* nothing arrives; the sender reports back through its exit status */
		for (double end = t_now() + 2; t_now() < end; usleep(1000))
			T_ASSERT_EQ(ncclSuccess, h_accept(&P, lc, &comm));
		T_ASSERT(comm == NULL);
		T_ASSERT_EQ(ncclSuccess, h_close_listen(&P, lc));
		return;
	}
	h_recv_handle(&HP, handle);
	if (h_connect(&P, 0, handle, &comm) == ncclSuccess)
		T_FAIL("connect from IPv4 to an IPv6 listener did not fail (comm %p)", comm);
	if (!strstr(h_last_warn, "NCCL_DEVMEM_FAMILY"))
		T_FAIL("the WARN does not name NCCL_DEVMEM_FAMILY: %s", h_last_warn);
	t_log("refused as expected: %s", h_last_warn);
	h_warns = 0;
}

/* ---- two netdevsim pairs, devmem on both (VM) ---- */

static char pair2[32];	/* nsim-pair.sh's prefix for the second pair */

static void pair2_down(void)
{
	if (pair2[0])
		run("%s down %s >/dev/null 2>&1", DM_NSIM_PAIR, pair2);
}

/*
 * The second pair comes from nsim-pair.sh (one place creates netdevsim
 * devices), in namespaces of its own. Made before the fixture forks, from
 * the initial namespace: a new port is born in its creator's namespace, and
 * the script finds it through sysfs, which shows the initial one's.
 */
static void nsim_pair_up(void)
{
	snprintf(pair2, sizeof(pair2), "gpudm%d", (int)getpid());
	if (run("%s up %s --net 1 --queues 4 >/dev/null", DM_NSIM_PAIR, pair2)) {
		pair2[0] = '\0';
		T_FAIL("%s up gpudm%d failed", DM_NSIM_PAIR, (int)getpid());
	}
}

/* Its ports move into our namespaces, renamed first (ours hold nsim0/nsim1); a move drops addresses. */
static void add_nsim_pair(void)
{
	atexit(pair2_down);	/* devices first, before the guardian deletes our namespaces */
	for (int s = 0; s < 2; s++)
		if (run("ip -n %s%c link set nsim%d name nsim%d && ip -n %s%c link set nsim%d netns %s",
			pair2, 'a' + s, s, s + 2, pair2, 'a' + s, s + 2, HP.net.ns[s]))
			T_FAIL("cannot move nsim%d of %s into %s", s, pair2, HP.net.ns[s]);
	addr_link("nsim2", "nsim3", 1, true, false);
}

static int dev_named(const char *name)
{
	for (int d = 0; d < ndevs(); d++) {
		ncclNetProperties_v12_t pr;

		T_ASSERT_EQ(ncclSuccess, P.v12->getProperties(d, &pr));
		if (!strcmp(pr.name, name))
			return d;
	}
	T_FAIL("no device %s", name);
}

/*
 * The sender's side of a VM test over two netdevsim ports: each port's tx
 * counter, since @before, must show at least @min bytes. The receiver
 * checks nothing here (its rx counters see the same traffic).
 */
static void nsim_ports_sent(const char *const mine[2], const unsigned long long before[2],
			    unsigned long long min, const char *why)
{
	unsigned long long bytes[2], total = 0;

	if (rx)
		return;
	for (int i = 0; i < 2; i++) {
		bytes[i] = if_bytes(mine[i], true) - before[i];
		total += bytes[i];
	}
	for (int i = 0; i < 2; i++) {
		t_log("sent on %s: %llu bytes by its counter, %.1f %% of both", mine[i], bytes[i],
		      total ? 100.0 * bytes[i] / total : 0.0);
		if (bytes[i] < min)
			T_FAIL("%s sent only %llu bytes by its counter: %s", mine[i], bytes[i], why);
	}
}

static void devmem_two(void)
{
	const char *mine[2] = { rx ? "nsim0" : "nsim1", rx ? "nsim2" : "nsim3" };
	unsigned long long before[2];
	struct conn c[2] = { 0 };
	uint64_t seed = 100;

	if (rx)
		add_nsim_pair();
	links_ready();
	setenv("NCCL_DEVMEM_MODE", "devmem", 1);	/* no silent copy: accept fails instead */
	setenv("NCCL_DEVMEM_POOL_SIZE", "32M", 1);	/* per device; udmabuf caps at 64 MiB */
	setenv("NCCL_DEVMEM_IFNAME", "nsim", 1);
	snprintf(h_log_needle, sizeof(h_log_needle), "devmem pool of 32 MiB host memory bound");
	h_load(&P, 12);
	T_ASSERT_EQ(2, ndevs());
	for (int i = 0; i < 2; i++)
		before[i] = if_bytes(mine[i], !rx);
	/* one devmem comm per device: its own queues, binding and pool */
	for (int i = 0; i < 2; i++)
		connect_dev(dev_named(mine[i]), &c[i], (16 << 20) + SLACK);
	for (int k = 0; k < NSIZES; k++)
		for (int i = 0; i < 2; i++)
			if (sizes[k] <= (16u << 20))
				xfer(&c[i], sizes[k], seed++);
	if (rx) {
		/* one binding per device, each with its own pool */
		T_ASSERT_EQ(2, h_log_hits);
		t_log("both devices bound a pool: %s", h_log_hit);
	}
	/*
	 * Each port sent its comm's 5.3 MB: at least 1 MiB on its counter.
	 * Not a share: netdevsim's tx counter read 2.6 to 5.6 MB for the same
	 * 5.3 MB (every byte checked above) across runs, so it is evidence of
	 * traffic on the port, not an exact count.
	 */
	nsim_ports_sent(mine, before, 1ull << 20, "the comm did not use it");
	for (int i = 0; i < 2; i++)
		close_conn(&c[i]);
}

/*
 * One devmem comm on a device fusing both netdevsim ports. NCCL_DEVMEM_MODE=
 * devmem: if either member cannot bind or steer, accept fails (no skip, no
 * silent copy), and both members' bindings must be in the log.
 */
static void devmem_fused(void)
{
	const char *mine[2] = { rx ? "nsim0" : "nsim1", rx ? "nsim2" : "nsim3" };
	unsigned long long before[2];
	ncclNetVDeviceProps_v12_t vp = { .ndevs = 2 };
	struct conn c = { 0 };
	uint64_t seed = 200;
	char want[40];
	int d = -1;

	if (rx)
		add_nsim_pair();
	links_ready();
	setenv("NCCL_DEVMEM_MODE", "devmem", 1);
	setenv("NCCL_DEVMEM_POOL_SIZE", "32M", 1);	/* one pool for both; udmabuf caps at 64 MiB */
	setenv("NCCL_DEVMEM_IFNAME", "nsim", 1);
	snprintf(h_log_needle, sizeof(h_log_needle), "devmem pool of 32 MiB host memory bound");
	h_load(&P, 12);
	T_ASSERT_EQ(2, ndevs());
	for (int i = 0; i < 2; i++)
		vp.devs[i] = dev_named(mine[i]);
	T_ASSERT_EQ(ncclSuccess, P.v12->makeVDevice(&d, &vp));
	T_ASSERT_EQ(2, d);
	{
		ncclNetProperties_v12_t pr;

		T_ASSERT_EQ(ncclSuccess, P.v12->getProperties(d, &pr));
		snprintf(want, sizeof(want), "%s+%s", mine[0], mine[1]);
		T_ASSERT_STREQ(want, pr.name);
	}
	if (getenv("NCCL_DEVMEM_UNPACK"))
		devmem_pool = 32u << 20;
	for (int i = 0; i < 2; i++)
		before[i] = if_bytes(mine[i], !rx);
	connect_dev(d, &c, (16 << 20) + SLACK);
	for (int k = 0; k < NSIZES; k++)
		if (sizes[k] <= (16u << 20))
			xfer(&c, sizes[k], seed++);
	/*
	 * Each member binds half the 32 MiB pool: four 16 MiB messages put
	 * 32 MiB through each half, so its pages are only there again if every
	 * socket gave its tokens back.
	 */
	for (int i = 0; i < 4; i++)
		xfer(&c, 16u << 20, seed++);
	/* small messages one after another: each on the next socket, so the next member */
	for (int i = 0; i < 64; i++)
		xfer(&c, 60000 + (size_t)i, seed++);
	if (rx) {
		/* one pool, bound on each member NIC */
		T_ASSERT_EQ(2, h_log_hits);
		t_log("the fused device bound its pool twice, the last: %s", h_log_hit);
		if (!strstr(h_log_hit, want))
			T_FAIL("the binding was not the fused device's: %s", h_log_hit);
	}
	/*
	 * The comm's ~76 MB split over four sockets, two per port: each port
	 * sent ~38 MB. netdevsim's tx counter reads between about half and all
	 * of what a port sent (see devmem_two), so 8 MiB proves a real share
	 * without flaking on the counter.
	 */
	nsim_ports_sent(mine, before, 8ull << 20, "the fused comm did not stripe over it");
	close_conn(&c);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "fused";
	double t0 = t_now();

	if (!strncmp(what, "devmem-", 7)) {
		if (!t_in_vm())
			t_skip("two netdevsim pairs need the patched-kernel VM");
		nsim_pair_up();
	}
	setenv("NCCL_DEVMEM_MODE", "copy", 0);
	rx = h_pair_start(&HP) == 0;
	if (!strcmp(what, "fused"))
		fused(false);
	else if (!strcmp(what, "fused-unpack") && setenv("NCCL_DEVMEM_UNPACK", "nccl", 1) == 0)
		fused(false);
	else if (!strcmp(what, "ipv6-fused"))
		fused(true);
	else if (!strcmp(what, "fused-auto") && setenv("NCCL_DEVMEM_MODE", "auto", 1) == 0 &&
		 snprintf(h_log_needle, sizeof(h_log_needle), "copy mode (NCCL_DEVMEM_MODE=auto, devmem unavailable"))
		fused(false);
	else if (!strcmp(what, "select"))
		selection();
	else if (!strcmp(what, "ipv6"))
		ipv6();
	else if (!strcmp(what, "family-mismatch"))
		family_mismatch();
	else if (!strcmp(what, "devmem-two"))
		devmem_two();
	else if (!strcmp(what, "devmem-fused"))
		devmem_fused();
	else if (!strcmp(what, "devmem-fused-unpack") && setenv("NCCL_DEVMEM_UNPACK", "nccl", 1) == 0)
		devmem_fused();
	else
		T_FAIL("unknown scenario %s", what);
	if (P.so)
		h_unload(&P);
	if (!rx)
		_exit(0);
	h_pair_join(&HP, TO);
	free(dh);	/* NCCL frees the handle it allocated, after closeRecv */
	T_ASSERT_EQ(0, h_warns);
	t_log("PASS %s in %.2f s", what, t_now() - t0);
	return T_EXIT_PASS;
}
