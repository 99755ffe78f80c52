// SPDX-License-Identifier: MIT
/*
 * vm: what an emulate_nic netdevsim port puts on the skbs it receives
 * (series patch 0013), inside the patched-kernel VM. Side a of a netdevsim
 * pair (tests/common/gpud_devmem_test.h; emulate_nic on) steers two TCP
 * flows with n-tuple rules, port FLOW0_PORT to queue 1 and FLOW1_PORT to
 * queue 2 (RSS kept on queue 0), and receives each flow on a plain socket,
 * nothing bound, once with tcp-data-split off and once with it on:
 *
 *  (a) skb_record_rx_queue(): AF_PACKET sockets on side a's port with a
 *      classic BPF filter that loads skb->queue_mapping (SKF_AD_QUEUE) see
 *      queue + 1 on every data frame of each flow;
 *  (b) the RSS hash: the same kind of filter loading skb->hash
 *      (SKF_AD_RXHASH) sees, on every data frame, the Toeplitz hash this
 *      test computes over source and destination address and port with the
 *      port's RSS key (ETHTOOL_GRSSH), and it is not 0;
 *  (c) header split without a memory provider: while the receiver leaves
 *      data unread, the flow's queue's page pool (netdev genetlink
 *      page-pool-get) has pages in flight with tcp-data-split on, none with
 *      it off; the bytes arrive exact either way.
 *
 * A cBPF filter can only return a snap length. Each filter accepts the data
 * frames (length >= MIN_FRAME) of one flow and returns 64 + one byte of the
 * value: the frame is cut to that length, which recv() returns. One socket
 * per byte of the hash, one for the queue.
 *
 * Every check runs and says what it saw; the test fails at the end if any
 * failed. Outside the VM: skip.
 */
#define _GNU_SOURCE
#include "gpud_devmem_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOW0_PORT 5421
#define FLOW1_PORT 5422
#define NFLOWS 2
#define TOTAL (4ull << 20)
/* Data frames only: TCP/IPv4 headers plus at least ~330 payload bytes. */
#define MIN_FRAME 400
#define SNAP_BASE 64
/* Sockets per flow: the queue, then the hash bytes, low byte first. */
#define TAP_QUEUE 0
#define TAP_HASH0 1
#define NTAPS 5
#define MAX_FRAMES 65536
#define RSS_KEY_MAX 256
/* ETH_RSS_HASH_TOP (bit 0 of hfunc): include/linux/ethtool.h, not uapi */
#define RSS_HASH_TOP 1u

static struct t_devmem d;
static int failures;

#define CHECK(cond, ...)                                     \
	do {                                                 \
		if (!(cond)) {                               \
			t_log("FAIL: " __VA_ARGS__);         \
			failures++;                          \
		}                                            \
	} while (0)

struct flow {
	uint16_t port;		/* destination port, host order */
	unsigned int queue;	/* where its n-tuple rule steers it */
	uint64_t seed;
	int tap[NTAPS];
	uint16_t sport;		/* the sender's port, host order */
};

static struct flow flows[NFLOWS] = {
	{ .port = FLOW0_PORT, .queue = 1, .seed = 0x5eed0 },
	{ .port = FLOW1_PORT, .queue = 2, .seed = 0x5eed1 },
};

/* Toeplitz hash of @len bytes of @data with @key (at least len + 4 bytes). */
static uint32_t toeplitz(const uint8_t *key, const uint8_t *data, size_t len)
{
	uint32_t window = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 |
			  (uint32_t)key[2] << 8 | key[3];
	uint32_t hash = 0;

	for (size_t i = 0; i < len; i++) {
		for (int bit = 7; bit >= 0; bit--) {
			if (data[i] & (1u << bit))
				hash ^= window;
			window = window << 1 | ((key[i + 4] >> bit) & 1u);
		}
	}
	return hash;
}

/* The RSS input of a TCP/IPv4 flow: addresses, then ports, wire order. */
static uint32_t flow_hash(const uint8_t *key, const char *saddr, uint16_t sport,
			  const char *daddr, uint16_t dport)
{
	uint8_t in[12];
	uint16_t p;

	T_ASSERT(inet_pton(AF_INET, saddr, in) == 1);
	T_ASSERT(inet_pton(AF_INET, daddr, in + 4) == 1);
	p = htons(sport);
	memcpy(in + 8, &p, 2);
	p = htons(dport);
	memcpy(in + 10, &p, 2);
	return toeplitz(key, in, sizeof(in));
}

/*
 * The test's own Toeplitz against the published RSS verification vector
 * (Microsoft's "Verifying the RSS Hash Calculation", first IPv4 row), so
 * that a mismatch below is the driver's, not ours.
 */
static void toeplitz_selftest(void)
{
	static const uint8_t key[40] = {
		0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
		0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
		0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
		0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
	};
	uint32_t h = flow_hash(key, "66.9.149.187", 2794, "161.142.100.80", 1766);

	if (h != 0x51ccc178)
		T_FAIL("the test's Toeplitz gives %#x for the reference vector, want 0x51ccc178",
		       h);
}

/* The RSS key of @ifname (ETHTOOL_GRSSH); its length. */
static size_t rss_key_get(const char *ifname, uint8_t *key, size_t max)
{
	struct ethtool_rxfh head = { .cmd = ETHTOOL_GRSSH };
	struct ethtool_rxfh *rxfh;
	struct ifreq ifr = {};
	size_t len, klen;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	T_ASSERT(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&head;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		T_FAIL("ETHTOOL_GRSSH on %s: %s", ifname, strerror(errno));
	klen = head.key_size;
	if (!klen || klen > max)
		T_FAIL("%s: RSS key of %zu bytes (want 1..%zu)", ifname, klen, max);
	if (head.hfunc != RSS_HASH_TOP)
		T_FAIL("%s: RSS hash function %#x, want Toeplitz (%#x)", ifname, head.hfunc,
		       RSS_HASH_TOP);

	len = sizeof(*rxfh) + head.indir_size * sizeof(uint32_t) + klen;
	rxfh = calloc(1, len);
	T_ASSERT(rxfh != NULL);
	rxfh->cmd = ETHTOOL_GRSSH;
	rxfh->indir_size = head.indir_size;
	rxfh->key_size = head.key_size;
	ifr.ifr_data = (void *)rxfh;
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		T_FAIL("ETHTOOL_GRSSH on %s: %s", ifname, strerror(errno));
	memcpy(key, (uint8_t *)rxfh->rss_config + head.indir_size * sizeof(uint32_t), klen);
	free(rxfh);
	close(fd);
	return klen;
}

/*
 * AF_PACKET socket on @ifindex whose filter accepts the incoming TCP/IPv4
 * frames to @port of at least MIN_FRAME bytes and cuts each to SNAP_BASE +
 * a byte of an skb field: @tap TAP_QUEUE: queue_mapping; TAP_HASH0 + i:
 * byte i of the hash.
 */
static int tap_open(int ifindex, uint16_t port, int tap)
{
	uint32_t ad = tap == TAP_QUEUE ? SKF_AD_QUEUE : SKF_AD_RXHASH;
	uint32_t shift = tap == TAP_QUEUE ? 0 : 8u * (uint32_t)(tap - TAP_HASH0);
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),			/* ethertype */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 14),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),			/* IP protocol */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, 12),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),			/* fragment? */
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 10, 0),
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),		/* X = IP hlen */
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14 + 2),		/* TCP dport */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 7),
		BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, MIN_FRAME, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + (int)ad)),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, shift),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
		BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, SNAP_BASE),
		BPF_STMT(BPF_RET | BPF_A, 0),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog fp = { .len = sizeof(prog) / sizeof(prog[0]), .filter = prog };
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = ifindex,
	};
	int fd, one = 1, rcvbuf = 16 << 20;

	/* Protocol 0 until bound: no frame is queued before the filter is on. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	T_ASSERT(fd >= 0);
	T_ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) ? -errno
										   : 0);
	T_ASSERT_OK(setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) ?
			    -errno : 0);
	T_ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) ?
			    -errno : 0);
	T_ASSERT_OK(bind(fd, (struct sockaddr *)&sll, sizeof(sll)) ? -errno : 0);
	return fd;
}

/*
 * Reads what tap @fd queued: how many frames, and the one value (recv
 * length - SNAP_BASE) they all had; -1 in *val if they differ (logged).
 */
static unsigned int tap_drain(int fd, const char *what, int *val)
{
	static char buf[2048];
	unsigned int n = 0;
	int v, other = -1;
	ssize_t r;

	*val = -2;
	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		v = (int)r - SNAP_BASE;
		if (!n)
			*val = v;
		else if (v != *val)
			other = v;
		n++;
	}
	T_ASSERT(errno == EAGAIN);
	if (other >= 0) {
		t_log("%s: frames differ, first %d, also %d", what, *val, other);
		*val = -1;
	}
	return n;
}

/* RX queue @q of side a: its NAPI id. */
static uint32_t queue_napi(unsigned int q)
{
	struct gpud_queue_info qi[64];
	int n = gpud_queues_get(d.ifindex, qi, 64);

	T_ASSERT_OK(n);
	for (int i = 0; i < n && i < 64; i++)
		if (qi[i].type == 0 && qi[i].id == q)
			return qi[i].napi_id;
	T_FAIL("RX queue %u not found on ifindex %d", q, d.ifindex);
}

/* The attached page pool of RX queue @q: its inflight pages and bytes. */
static void queue_pool(unsigned int q, uint64_t *inflight, uint64_t *mem)
{
	struct gpud_page_pool_info pp[64];
	uint32_t napi = queue_napi(q);
	int n = gpud_page_pools_get(d.ifindex, pp, 64);

	T_ASSERT_OK(n);
	for (int i = 0; i < n && i < 64; i++)
		if (pp[i].napi_id == napi && !pp[i].detach_time) {
			*inflight = pp[i].inflight;
			*mem = pp[i].inflight_mem;
			return;
		}
	T_FAIL("no page pool for RX queue %u (NAPI %u)", q, napi);
}

static int socket_inq(int fd)
{
	int inq = -1;

	ioctl(fd, SIOCINQ, &inq);
	return inq;
}

/* Receives pattern @seed on @cfd to EOF, byte for byte; 60 s at most. */
static uint64_t recv_plain(int cfd, uint64_t seed)
{
	static char buf[64 << 10];
	double t0 = t_now();
	uint64_t off = 0;
	ssize_t r;
	long bad;

	for (;;) {
		struct pollfd p = { .fd = cfd, .events = POLLIN };

		if (t_now() - t0 > 60)
			T_FAIL("flow stalled at %llu bytes", (unsigned long long)off);
		if (poll(&p, 1, 1000) <= 0)
			continue;
		r = read(cfd, buf, sizeof(buf));
		if (r == 0)
			return off;
		if (r < 0)
			T_FAIL("read after %llu bytes: %s", (unsigned long long)off,
			       strerror(errno));
		bad = t_pattern_check(seed, off, buf, (size_t)r);
		if (bad >= 0)
			T_FAIL("stream byte %llu differs", (unsigned long long)(off + bad));
		off += (uint64_t)r;
	}
}

/* One flow with tcp-data-split @split: (c) while it waits unread. */
static void run_flow(struct flow *f, bool split)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	uint64_t inflight, mem, got;
	int lfd, cfd, inq, st;
	pid_t spid;

	d.port = f->port;
	lfd = t_devmem_listen(&d);
	spid = t_devmem_sender(&d, f->seed, TOTAL);
	cfd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	T_ASSERT(cfd >= 0);
	f->sport = ntohs(peer.sin_port);

	/* Let the flow fill the socket queue, unread (up to 2 s). */
	for (int i = 0; i < 100 && socket_inq(cfd) < (256 << 10); i++)
		usleep(20000);
	inq = socket_inq(cfd);
	queue_pool(f->queue, &inflight, &mem);
	t_log("tcp-data-split %s, port %u -> queue %u: %d bytes unread; queue %u's page pool: %llu pages (%llu bytes) in flight",
	      split ? "on" : "off", f->port, f->queue, inq, f->queue,
	      (unsigned long long)inflight, (unsigned long long)mem);
	CHECK(inq > 0, "nothing arrived unread on port %u", f->port);
	if (split)
		CHECK(inflight > 0 && mem > 0,
		      "(c) tcp-data-split on, %d bytes unread, yet queue %u's page pool has %llu pages in flight: no header split without a provider",
		      inq, f->queue, (unsigned long long)inflight);
	else
		CHECK(inflight == 0 && mem == 0,
		      "(c) tcp-data-split off, yet queue %u's page pool has %llu pages in flight",
		      f->queue, (unsigned long long)inflight);

	got = recv_plain(cfd, f->seed);
	T_ASSERT_EQ(spid, waitpid(spid, &st, 0));
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	T_ASSERT_EQ(TOTAL, got);
	t_log("port %u: %llu bytes byte-exact", f->port, (unsigned long long)got);
	close(cfd);
	close(lfd);
}

/* (a) and (b) from the taps of flow @f. */
static void check_taps(const struct flow *f, const uint8_t *key, bool split)
{
	uint32_t want = flow_hash(key, d.np.addr[1], f->sport, d.np.addr[0], f->port);
	unsigned int n[NTAPS];
	uint32_t hash = 0;
	bool hash_ok = true;
	char what[64];
	int v[NTAPS];

	for (int t = 0; t < NTAPS; t++) {
		snprintf(what, sizeof(what), "port %u tap %d", f->port, t);
		n[t] = tap_drain(f->tap[t], what, &v[t]);
		if (t >= TAP_HASH0 && v[t] >= 0)
			hash |= (uint32_t)v[t] << (8 * (t - TAP_HASH0));
		if (t >= TAP_HASH0 && (v[t] < 0 || v[t] > 0xff))
			hash_ok = false;
	}
	t_log("tcp-data-split %s, port %u: %u data frames; queue_mapping %d (queue %u + 1 wanted); hash %#010x, Toeplitz of %s:%u -> %s:%u %#010x",
	      split ? "on" : "off", f->port, n[TAP_QUEUE], v[TAP_QUEUE], f->queue, hash,
	      d.np.addr[1], f->sport, d.np.addr[0], f->port, want);
	CHECK(n[TAP_QUEUE] > 0, "no data frame of port %u reached the tap", f->port);
	for (int t = 1; t < NTAPS; t++)
		CHECK(n[t] == n[TAP_QUEUE], "port %u: tap %d saw %u frames, tap 0 %u", f->port,
		      t, n[t], n[TAP_QUEUE]);
	CHECK(v[TAP_QUEUE] == (int)f->queue + 1,
	      "(a) port %u steered to queue %u: skb queue_mapping %d, want %u (skb_record_rx_queue)",
	      f->port, f->queue, v[TAP_QUEUE], f->queue + 1);
	CHECK(hash_ok && hash == want,
	      "(b) port %u: skb hash %#x (per-frame bytes %s), want the Toeplitz hash %#x",
	      f->port, hash, hash_ok ? "constant" : "varied", want);
	CHECK(hash != 0, "(b) port %u: skb hash 0", f->port);
}

static void phase(bool split, const uint8_t *key)
{
	T_ASSERT_OK(gpud_nic_set_header_split(d.nic, split));
	for (int i = 0; i < NFLOWS; i++)
		for (int t = 0; t < NTAPS; t++)
			flows[i].tap[t] = tap_open(d.ifindex, flows[i].port, t);
	for (int i = 0; i < NFLOWS; i++)
		run_flow(&flows[i], split);
	for (int i = 0; i < NFLOWS; i++) {
		check_taps(&flows[i], key, split);
		for (int t = 0; t < NTAPS; t++)
			close(flows[i].tap[t]);
	}
}

int main(void)
{
	struct gpud_flow fl = { .sz = sizeof(fl), .family = AF_INET };
	uint8_t key[RSS_KEY_MAX];
	double t0 = t_now();
	uint32_t rule;

	toeplitz_selftest();
	t_devmem_setup(&d, 1, FLOW0_PORT);
	T_ASSERT_OK(t_netpair_enter(&d.np, 0));
	T_ASSERT_OK(gpud_nic_open(d.np.ifname[0], &d.nic));
	d.ifindex = gpud_nic_ifindex(d.nic);
	if (gpud_nic_rx_queues(d.nic) < 3)
		T_FAIL("%s has %d RX queues, want 3", d.np.ifname[0],
		       gpud_nic_rx_queues(d.nic));
	if (gpud_nic_set_header_split(d.nic, false))
		t_skip("this kernel's netdevsim has no tcp-data-split (%s): boot a kernel built with kernel-patches/patches",
		       gpud_errmsg());
	if (gpud_nic_rss_limit(d.nic, 1))
		T_FAIL("RSS limit on %s: %s", d.np.ifname[0], gpud_errmsg());
	inet_pton(AF_INET, d.np.addr[0], fl.dst_addr);
	for (int i = 0; i < NFLOWS; i++) {
		fl.dst_port = htons(flows[i].port);
		if (gpud_nic_add_flow(d.nic, &fl, flows[i].queue, &rule))
			T_FAIL("flow rule to queue %u on %s: %s", flows[i].queue,
			       d.np.ifname[0], gpud_errmsg());
	}
	rss_key_get(d.np.ifname[0], key, sizeof(key));

	/* Off first: the pools have never handed out a page before. */
	phase(false, key);
	phase(true, key);

	gpud_nic_free(d.nic);
	t_netpair_teardown(&d.np);
	if (failures)
		T_FAIL("%d check(s) failed (above)", failures);
	t_log("nsim_nic_rx: pass (%.1f s)", t_now() - t0);
	return T_EXIT_PASS;
}
