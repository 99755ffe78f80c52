// SPDX-License-Identifier: MIT
/*
 * Data integrity through the plugin, two processes over a veth pair:
 *   plugin_transfer full [version]   (v8..v12) sizes 0 .. 256 MiB, multi-receive with
 *                                    tags, pipelined requests tested out of order
 *   plugin_transfer smoke <version>  v8/v9/v10: small sizes and multi-receive
 *   plugin_transfer many             16 comms at once
 *   plugin_transfer devmem [version] the harness in devmem mode (patched-kernel VM)
 *   plugin_transfer devmem6 [version] the same over IPv6 (tcp6 steering rules)
 *   plugin_transfer unpack [version] NCCL_DEVMEM_UNPACK=nccl: NCCL's device
 *                                    unpack with a CPU stand-in for its
 *                                    kernel (copy mode here: empty metadata)
 *   plugin_transfer devmem-unpack    the same in devmem mode in the VM:
 *                                    metadata entries, the hold cap
 *   plugin_transfer devmem-unpack-hold  tokens held until irecvConsumed run
 *                                    the pool dry
 *   plugin_transfer unpack-fakecuda  unpack over veth with libgpudirect's fake
 *                                    libcuda: the pool choice picks the GPU,
 *                                    metadata in (fake) GPU-mapped memory
 * Every received byte is checked against t_pattern; the posted size is larger
 * than the message so that test() must report the real size.
 */
#include "harness.h"
#include "unpack_consumer.h"

#include <dirent.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>


#define SLACK 4096
#define TO 60.0
#define DM_ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const size_t full_sizes[] = { 0, 1, 4096, 1 << 20, 64 << 20, 256 << 20 };
static const size_t smoke_sizes[] = { 0, 1, 4096, 1 << 20 };

struct conn {
	void *listen, *comm, *mh;
	char *buf;
	size_t buflen;
};

static void check(const char *what, uint64_t seed, const char *buf, size_t len)
{
	long bad = t_pattern_check(seed, 0, buf, len);

	if (bad >= 0)
		T_FAIL("%s: byte %ld of %zu differs (seed %llu)", what, bad, len,
		       (unsigned long long)seed);
}

static struct h_pair *pair;

static bool devmem_run;
static bool devmem6_run;	/* devmem over IPv6: where devmem runs, it must run */
static bool unpack_run;
static int (*fake_host_allocs)(void);	/* unpack-fakecuda: mapped host allocations live */

/* NCCL's side of device unpack for the (single) receive comm of an unpack run. */
static struct {
	ncclNetDeviceHandle_v11_t *dh;	/* allocated as NCCL does, filled by the plugin */
	ncclNetUnpackHandle_t *uh;
	size_t bounce_len;		/* the pool's size: entries must lie inside */
	uint64_t steps, entries, nccl_bytes;	/* what the stand-in kernel did */
	bool check_share;	/* devmem: NCCL's kernel must get most bytes to copy */
} U = { .check_share = true };

/*
 * After test() said done: what NCCL's kernel then does with the receive
 * (tests/unpack_consumer.c), and the proxy's irecvConsumed. Copy mode
 * publishes nothing (the plugin wrote every byte); devmem mode leaves most
 * bytes to the kernel.
 */
static void gpu_consume(struct h_plugin *p, struct conn *c, void *req, void *buf, size_t posted,
			size_t size, struct h_unpack_step *st)
{
	int err = h_unpack_consume(U.uh, buf, posted, U.bounce_len, st);

	if (err)
		T_FAIL("NCCL's kernel would have read bad metadata for a %zu-byte receive: %s", size,
		       strerror(-err));
	T_ASSERT_EQ(ncclSuccess, h_irecv_consumed(p, c->comm, 1, req));
	U.steps++;
	U.entries += st->cnt;
	U.nccl_bytes += st->bytes;
	T_ASSERT(st->bytes <= size);
	if (!devmem_run)
		T_ASSERT_EQ(0, st->cnt);
	else if (U.check_share && size >= 4096 && size <= NCCL_NET_UNPACK_MAX_SLICE_SIZE &&
		 st->bytes < size / 2)
		T_FAIL("devmem: NCCL's kernel got only %llu of %zu bytes (%llu entries) to copy",
		       (unsigned long long)st->bytes, size, (unsigned long long)st->cnt);
}


static void one_size(struct h_plugin *p, bool rx, struct conn *c, size_t size, uint64_t seed)
{
	void *req = NULL;
	double t0;
	int got = -1;

	if (rx) {
		size_t max = size + SLACK;
		int tag = 1;
		void *data = c->buf;

		memset(c->buf, 0xee, max);
		h_sync_recv(pair);	/* the sender has filled its buffer: time the wire only */
		t0 = t_now();
		while (!req)
			T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 1, &data, &max, &tag, &c->mh, &req));
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req, &got, TO));
		T_ASSERT_EQ(size, got);
		if (unpack_run) {
			struct h_unpack_step st;

			gpu_consume(p, c, req, c->buf, max, size, &st);
			t_log("unpack: %zu-byte receive, slot %llu: %llu entries, %llu bytes by NCCL's kernel",
			      size, (unsigned long long)st.slot, (unsigned long long)st.cnt,
			      (unsigned long long)st.bytes);
			if (devmem_run && size > (8u << 20))	/* more pieces than one slot holds */
				T_ASSERT_EQ(NCCL_NET_UNPACK_MAX_SLICE_PAGES, st.cnt);
		}
		check("message", seed, c->buf, size);
		/* not a byte past the message */
		for (size_t i = size; i < size + SLACK; i++)
			if ((unsigned char)c->buf[i] != 0xee)
				T_FAIL("byte %zu past a %zu-byte message was written", i, size);
		if (size >= (64 << 20))
			t_log("recv %zu MiB in %.3f s: %.2f Gbit/s", size >> 20, t_now() - t0,
			      size * 8 / (t_now() - t0) / 1e9);
	} else {
		t_pattern_fill(seed, 0, c->buf, size);
		h_sync_send(pair);
		req = h_isend_wait(p, c->comm, c->buf, size, 1, c->mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req, &got, TO));
		T_ASSERT_EQ(size, got);
	}
}

/* Four messages into one multi-receive, sent in a different tag order. */
static void multi(struct h_plugin *p, bool rx, struct conn *c)
{
	static const int tags[4] = { 10, 11, 12, 13 };
	static const size_t sizes[4] = { 64 << 10, 1 << 20, 0, 3000 };
	static const int order[4] = { 2, 0, 3, 1 };
	size_t off[4] = { 0, 2 << 20, 4 << 20, 6 << 20 };
	void *data[4], *mh[4], *req = NULL;
	int got[4];

	if (rx) {
		size_t max[4];
		int tg[4];

		for (int i = 0; i < 4; i++) {
			data[i] = c->buf + off[i];
			max[i] = sizes[i] + SLACK;
			tg[i] = tags[i];
			mh[i] = c->mh;
		}
		while (!req)
			T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 4, data, max, tg, mh, &req));
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req, got, TO));
		for (int i = 0; i < 4; i++) {
			T_ASSERT_EQ(sizes[i], got[i]);
			check("multi-receive", 100 + i, c->buf + off[i], sizes[i]);
		}
	} else {
		void *r[4];

		for (int k = 0; k < 4; k++) {
			int i = order[k];

			t_pattern_fill(100 + i, 0, c->buf + off[i], sizes[i]);
			r[k] = h_isend_wait(p, c->comm, c->buf + off[i], sizes[i], tags[i], c->mh);
		}
		for (int k = 3; k >= 0; k--)
			T_ASSERT_EQ(ncclSuccess, h_wait(p, r[k], got, TO));
	}
}

/* Eight requests in flight, tested newest first (NCCL tests in any order). */
static void pipelined(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t sz = 1 << 20, stride = sz + SLACK;
	void *req[8];
	int got;

	for (int i = 0; i < 8; i++) {
		char *b = c->buf + i * stride;

		req[i] = NULL;
		if (rx) {
			size_t max = sz;
			int tag = 5;
			void *data = b;

			while (!req[i])
				T_ASSERT_EQ(ncclSuccess,
					    h_irecv(p, c->comm, 1, &data, &max, &tag, &c->mh, &req[i]));
		} else {
			t_pattern_fill(200 + i, 0, b, sz);
			req[i] = h_isend_wait(p, c->comm, b, sz, 5, c->mh);
		}
	}
	for (int i = 7; i >= 0; i--) {
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
		T_ASSERT_EQ(sz, got);
		if (rx)
			check("pipelined", 200 + i, c->buf + i * stride, sz);
	}
	if (rx) {	/* a flush after receives completes, and honours their order */
		void *f = NULL;

		T_ASSERT_EQ(ncclSuccess, h_iflush(p, c->comm, c->buf, (int)sz, c->mh, &f));
		if (f)
			T_ASSERT_EQ(ncclSuccess, h_wait(p, f, &got, TO));
	}
}

/*
 * devmem: the netdevsim pair has 4 queues and the plugin binds the last.
 * Before the run every RSS bucket is pointed at that queue, so any flow the
 * plugin does not steer itself (the control connection above all) would land
 * on it once bound and its recv() fail with EFAULT: the run passes only if
 * the plugin keeps RSS off its bound queues, whatever the hash of the ports.
 */
#define NSIM_QUEUES 4
#define DEVMEM_QUEUE (NSIM_QUEUES - 1)

static void rss_skew_to_devmem_queue(const char *ifname)
{
	char cmd[160];

	if (system("command -v ethtool >/dev/null 2>&1"))
		t_skip("ethtool is needed to set the RSS table: apt-get install ethtool");
	snprintf(cmd, sizeof(cmd), "ethtool -X %s weight 0 0 0 1", ifname);
	if (system(cmd))
		T_FAIL("'%s' failed", cmd);
}

/* RSS buckets of @ifname that point at @queue, of *total. */
static int rss_buckets_on(const char *ifname, int queue, int *total)
{
	char cmd[96], line[512];
	int n = 0;
	FILE *f;

	*total = 0;
	snprintf(cmd, sizeof(cmd), "ethtool -x %s", ifname);
	f = popen(cmd, "r");
	T_ASSERT(f != NULL);
	/* "    0:      3     3     3 ..." lines: row offset, then entries */
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		if (strstr(line, "hash key"))
			break;	/* the key's hex bytes follow: not table rows */

		strtol(p, &end, 10);
		if (end == p || *end != ':')
			continue;
		for (p = end + 1;; p = end) {
			long q = strtol(p, &end, 10);

			if (end == p)
				break;
			(*total)++;
			n += q == queue;
		}
	}
	pclose(f);
	return n;
}

static void rss_check(const char *ifname, bool comm_open)
{
	int total, on = rss_buckets_on(ifname, DEVMEM_QUEUE, &total);

	if (!total)
		T_FAIL("ethtool -x %s listed no RSS indirection table", ifname);
	if (comm_open && on)
		T_FAIL("devmem comm open, yet %d of %d RSS buckets of %s still hash to bound queue %d",
		       on, total, ifname, DEVMEM_QUEUE);
	if (!comm_open && on != total)
		T_FAIL("after close, %d of %d RSS buckets of %s point at queue %d, expected all (the test's table, restored)",
		       on, total, ifname, DEVMEM_QUEUE);
}

static ncclResult_t accept_once(struct h_plugin *p, struct conn *c)
{
	if (!unpack_run)
		return h_accept(p, c->listen, &c->comm);
	if (!U.dh) {
		U.dh = calloc(1, sizeof(*U.dh));
		T_ASSERT(U.dh != NULL);
		U.dh->netDeviceType = NCCL_NET_DEVICE_UNPACK;
		U.dh->netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION;
	}
	return h_accept_dev(p, c->listen, &c->comm, &U.dh);
}

static void setup(struct h_plugin *p, struct h_pair *hp, bool rx, struct conn *c, int n,
		  size_t buflen)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];

	for (int i = 0; i < n; i++) {
		memset(handle, 0, sizeof(handle));
		if (rx) {
			T_ASSERT_EQ(ncclSuccess, h_listen(p, 0, handle, &c[i].listen));
			h_send_handle(hp, handle);
		} else {
			h_recv_handle(hp, handle);
			c[i].comm = h_connect_wait(p, 0, handle, TO);
		}
	}
	for (int i = 0; rx && i < n; i++) {
		double end = t_now() + TO;

		while (!c[i].comm) {
			ncclResult_t r = accept_once(p, &c[i]);

			/* devmem demanded: accept fails with the reason if it cannot */
			if (r != ncclSuccess && devmem6_run)
				T_FAIL("devmem over IPv6 refused: %s", h_last_warn);
			if (r != ncclSuccess && devmem_run)
				t_skip("devmem receive not available here: %s", h_last_warn);
			if (r != ncclSuccess)
				T_FAIL("accept returned %d (last WARN: %s)", r, h_last_warn);
			if (t_now() > end)
				T_FAIL("accept not done in %.0f s", TO);
			if (!c[i].comm)
				usleep(100);
		}
	}
	if (rx && unpack_run) {
		/* the plugin filled the handle NCCL gave it */
		T_ASSERT(U.dh->handle != NULL);
		T_ASSERT_EQ(sizeof(ncclNetUnpackHandle_t), U.dh->size);
		T_ASSERT_EQ(1, U.dh->needsProxyProgress);
		U.uh = U.dh->handle;	/* no CUDA: the device address is the host address */
		T_ASSERT_EQ(UINT64_MAX, U.uh->head);
		T_ASSERT(U.uh->meta != NULL);
	}
	for (int i = 0; i < n; i++) {
		c[i].buflen = buflen;
		c[i].buf = h_alloc(buflen);
		T_ASSERT_EQ(ncclSuccess, h_regmr(p, c[i].comm, c[i].buf, buflen, &c[i].mh));
	}
}

static void teardown(struct h_plugin *p, bool rx, struct conn *c, int n)
{
	for (int i = 0; i < n; i++) {
		T_ASSERT_EQ(ncclSuccess, h_deregmr(p, c[i].comm, c[i].mh));
		if (rx) {
			T_ASSERT_EQ(ncclSuccess, h_close_recv(p, c[i].comm));
			T_ASSERT_EQ(ncclSuccess, h_close_listen(p, c[i].listen));
		} else {
			T_ASSERT_EQ(ncclSuccess, h_close_send(p, c[i].comm));
		}
	}
}

/*
 * H_TCLASS set: every connected TCP socket of this process (the plugin's
 * control and data sockets) carries it as IP_TOS. v10 hands the class to
 * connect() alone, so a v10 receiver has none to apply.
 */
static void tos_check(bool rx, int version)
{
	int want = h_tclass(), n = 0;
	struct dirent *de;
	DIR *d;

	if (want == NCCL_NET_TRAFFIC_CLASS_UNDEF)
		return;
	if (rx && version == 10)
		want = 0;
	d = opendir("/proc/self/fd");
	T_ASSERT(d != NULL);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), type = 0, tos = -1;
		socklen_t l = sizeof(type);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM ||
		    getpeername(fd, (struct sockaddr *)&ss, &sl) || ss.ss_family != AF_INET)
			continue;
		l = sizeof(tos);
		T_ASSERT_EQ(0, getsockopt(fd, IPPROTO_IP, IP_TOS, &tos, &l));
		if (tos != (want & 0xff))
			T_FAIL("socket fd %d: IP_TOS 0x%02x, NCCL asked for traffic class %d", fd, tos,
			       want);
		n++;
	}
	closedir(d);
	/* control + NCCL_DEVMEM_NSOCKS data sockets (4) */
	T_ASSERT_EQ(5, n);
	t_log("traffic class %d: IP_TOS 0x%02x on all %d sockets", want, want & 0xff, n);
}

/*
 * devmem6: the netdevsim link also gets an IPv6 address and every device is
 * IPv6 (NCCL_DEVMEM_FAMILY). fd00:198:18::/48 is a unique local prefix, only
 * ever on this link inside the test's own namespaces (plugin_multinic.c
 * says why not a documentation prefix). nodad: usable at once.
 */
static void ipv6_only(const struct h_pair *hp, bool rx)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "ip addr add fd00:198:18::%d/64 dev %s nodad", rx ? 1 : 2,
		 hp->net.ifname[rx ? 0 : 1]);
	if (system(cmd))
		T_FAIL("%s failed", cmd);
	setenv("NCCL_DEVMEM_FAMILY", "AF_INET6", 1);
}

/* Every connected TCP socket of this process (the plugin's) is of @family. */
static void family_check(int family)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	T_ASSERT(d != NULL);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), type = 0;
		socklen_t l = sizeof(type);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM ||
		    getpeername(fd, (struct sockaddr *)&ss, &sl))
			continue;
		if (ss.ss_family != family)
			T_FAIL("socket fd %d is of family %d, not %d", fd, ss.ss_family, family);
		n++;
	}
	closedir(d);
	T_ASSERT(n >= 2);
}

static void run_sizes(struct h_plugin *p, bool rx, struct conn *c, const size_t *sizes, int n)
{
	for (int i = 0; i < n; i++)
		one_size(p, rx, c, sizes[i], 1 + i);
}

static void many(struct h_plugin *p, bool rx, struct conn *c, int n)
{
	const size_t sz = 256 << 10;
	void *req[16][3];
	int got;

	/* interleave posts across comms so the progress threads juggle all of them */
	for (int m = 0; m < 3; m++) {
		for (int i = 0; i < n; i++) {
			char *b = c[i].buf + m * sz;

			req[i][m] = NULL;
			if (rx) {
				size_t max = sz;
				int tag = m;
				void *data = b;

				while (!req[i][m])
					T_ASSERT_EQ(ncclSuccess, h_irecv(p, c[i].comm, 1, &data, &max,
									 &tag, &c[i].mh, &req[i][m]));
			} else {
				t_pattern_fill(1000 + i * 3 + m, 0, b, sz);
				req[i][m] = h_isend_wait(p, c[i].comm, b, sz, m, c[i].mh);
			}
		}
	}
	for (int i = n - 1; i >= 0; i--) {
		for (int m = 0; m < 3; m++) {
			T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i][m], &got, TO));
			T_ASSERT_EQ(sz, got);
			if (rx)
				check("many comms", 1000 + i * 3 + m, c[i].buf + m * sz, sz);
		}
	}
}

/* ---- NCCL_DEVMEM_UNPACK=nccl ---- */

static void *post_recv(struct h_plugin *p, struct conn *c, void *buf, size_t max, int tag)
{
	double end = t_now() + TO;
	void *req = NULL;

	while (!req) {
		T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 1, &buf, &max, &tag, &c->mh, &req));
		if (t_now() > end)
			T_FAIL("irecv got no request in %.0f s", TO);
	}
	return req;
}

/*
 * Three rounds of 8 receives in flight (NCCL's NCCL_STEPS), completed in
 * order, then consumed in order as the GPU would, behind by up to 8: 24
 * receives walk the 16 slots one and a half times.
 */
static void unpack_pipeline(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t stride = (512 << 10) + SLACK;
	void *req[8];
	int got;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 8; i++) {
			size_t sz = (256 << 10) + (size_t)i * 4097 + (size_t)round;
			char *b = c->buf + i * stride;

			if (rx) {
				req[i] = post_recv(p, c, b, sz + SLACK, 5);
			} else {
				t_pattern_fill(300 + round * 8 + i, 0, b, sz);
				req[i] = h_isend_wait(p, c->comm, b, sz, 5, c->mh);
			}
		}
		for (int i = 0; i < 8; i++) {
			size_t sz = (256 << 10) + (size_t)i * 4097 + (size_t)round;

			T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
			T_ASSERT_EQ(sz, got);
		}
		for (int i = 0; rx && i < 8; i++) {
			size_t sz = (256 << 10) + (size_t)i * 4097 + (size_t)round;
			struct h_unpack_step st;

			gpu_consume(p, c, req[i], c->buf + i * stride, sz + SLACK, sz, &st);
			check("pipelined unpack", 300 + round * 8 + i, c->buf + i * stride, sz);
		}
	}
}

/*
 * A slot is not reused before its receive was consumed: 16 receives done
 * and not consumed, the 17th irecv gets no request (NCCL retries), and gets
 * one as soon as the oldest is consumed.
 */
static void unpack_slots(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t sz = 4096, stride = 2 * sz;
	uint64_t head = U.uh ? U.uh->head : 0;
	void *req[17];
	int got;

	if (!rx) {
		for (int i = 0; i < 17; i++) {
			t_pattern_fill(400 + i, 0, c->buf + i * stride, sz);
			req[i] = h_isend_wait(p, c->comm, c->buf + i * stride, sz, 6, c->mh);
		}
		for (int i = 0; i < 17; i++)
			T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
		return;
	}
	for (int i = 0; i < 16; i++)
		req[i] = post_recv(p, c, c->buf + i * stride, sz, 6);
	for (int i = 0; i < 16; i++)
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
	for (int k = 0; k < 50; k++) {
		void *data = c->buf + 16 * stride, *r = NULL;
		size_t max = sz;
		int tag = 6;

		T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 1, &data, &max, &tag, &c->mh, &r));
		if (r)
			T_FAIL("irecv %d handed out slot %llu while its previous receive was not consumed",
			       k, (unsigned long long)(head + 17) % 16);
		usleep(1000);
	}
	for (int i = 0; i < 17; i++) {
		struct h_unpack_step st;

		if (i == 16) {
			req[16] = post_recv(p, c, c->buf + 16 * stride, sz, 6);
			T_ASSERT_EQ(ncclSuccess, h_wait(p, req[16], &got, TO));
		}
		gpu_consume(p, c, req[i], c->buf + i * stride, sz, sz, &st);
		T_ASSERT_EQ(head + 1 + (uint64_t)i, st.head);
		check("slot reuse", 400 + i, c->buf + i * stride, sz);
	}
	/* a request that was consumed once is not a request any more */
	h_warns = 0;
	T_ASSERT(h_irecv_consumed(p, c->comm, 1, req[0]) != ncclSuccess);
	T_ASSERT_EQ(1, h_warns);
	h_warns = 0;
	t_log("unpack: the 17th receive waited for the 1st to be consumed");
}

/*
 * An LL/LL128 receive (NCCL presets *request to
 * NCCL_NET_OPTIONAL_RECV_COMPLETION) is not unpacked by NCCL's kernel and
 * takes no slot: the plugin places every byte, and the next receive still
 * gets the next slot. One buffer per receive: a multi-receive is refused.
 */
static void unpack_ll(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t sz = 200 << 10;
	struct h_unpack_step st;
	void *req, *data[2];
	size_t max[2] = { sz, sz };
	int tags[2] = { 7, 7 }, got;
	uint64_t head;

	if (!rx) {
		for (int i = 0; i < 2; i++) {
			t_pattern_fill(500 + i, 0, c->buf + i * (sz + SLACK), sz);
			req = h_isend_wait(p, c->comm, c->buf + i * (sz + SLACK), sz, 7, c->mh);
			T_ASSERT_EQ(ncclSuccess, h_wait(p, req, &got, TO));
		}
		return;
	}
	data[0] = c->buf;
	data[1] = c->buf + sz + SLACK;
	h_warns = 0;
	req = NULL;
	T_ASSERT_EQ(ncclInvalidArgument, h_irecv(p, c->comm, 2, data, max, tags, &c->mh, &req));
	T_ASSERT(req == NULL && h_warns == 1);
	h_warns = 0;

	head = U.uh->head;
	req = (void *)NCCL_NET_OPTIONAL_RECV_COMPLETION;
	T_ASSERT_EQ(ncclSuccess, h_irecv(p, c->comm, 1, data, max, tags, &c->mh, &req));
	T_ASSERT(req != NULL && req != (void *)NCCL_NET_OPTIONAL_RECV_COMPLETION);
	T_ASSERT_EQ(ncclSuccess, h_wait(p, req, &got, TO));
	/* no kernel step for it: the bytes are already in place */
	check("LL receive", 500, c->buf, sz);
	T_ASSERT_EQ(ncclSuccess, h_irecv_consumed(p, c->comm, 1, req));
	T_ASSERT_EQ(head, U.uh->head);

	req = post_recv(p, c, data[1], sz, 7);
	T_ASSERT_EQ(ncclSuccess, h_wait(p, req, &got, TO));
	gpu_consume(p, c, req, data[1], sz, sz, &st);
	T_ASSERT_EQ(head + 1, st.head);
	check("after an LL receive", 501, data[1], sz);
}

/* rx_dropped of @ifname in this namespace (AF_PACKET entries carry the link stats). */
static long long rx_dropped(const char *ifname)
{
	struct ifaddrs *ifa, *i;
	long long v = -1;

	T_ASSERT_EQ(0, getifaddrs(&ifa));
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_data &&
		    !strcmp(i->ifa_name, ifname))
			v = ((struct rtnl_link_stats *)i->ifa_data)->rx_dropped;
	freeifaddrs(ifa);
	T_ASSERT(v >= 0);
	return v;
}

#define HOLD_MAX 8

static void hold_send(struct h_plugin *p, struct conn *c, int n, bool paced)
{
	const size_t sz = 4 << 20, stride = sz + SLACK;
	void *req[HOLD_MAX];
	int got;

	for (int i = 0; i < n; i++) {
		if (paced)
			h_sync_recv(pair);
		t_pattern_fill(600 + i, 0, c->buf + i * stride, sz);
		req[i] = h_isend_wait(p, c->comm, c->buf + i * stride, sz, 8, c->mh);
	}
	for (int i = 0; i < n; i++)
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
}

/*
 * Never more than NCCL_DEVMEM_UNPACK_HOLD (default half) of the pool waits
 * for NCCL's kernel: eight 4 MiB receives posted at once, none consumed
 * until all are done, is more than the 48 MiB pool holds; all complete, the
 * later ones with the plugin copying what did not fit under the cap.
 */
static void unpack_hold_cap(struct h_plugin *p, bool rx, struct conn *c)
{
	const size_t sz = 4 << 20, stride = sz + SLACK;
	uint64_t cnt[HOLD_MAX], sum = 0;
	void *req[HOLD_MAX];
	double t0 = t_now();
	int got;

	if (!rx)
		return hold_send(p, c, HOLD_MAX, false);
	/* more than the cap lets wait for the GPU, whatever the fragment size */
	T_ASSERT((uint64_t)HOLD_MAX * sz > U.bounce_len / 2);
	for (int i = 0; i < HOLD_MAX; i++)
		req[i] = post_recv(p, c, c->buf + i * stride, sz, 8);
	for (int i = 0; i < HOLD_MAX; i++)
		T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
	U.check_share = false;	/* under the cap the plugin copies much of the later ones */
	for (int i = 0; i < HOLD_MAX; i++) {
		struct h_unpack_step st;

		gpu_consume(p, c, req[i], c->buf + i * stride, sz, sz, &st);
		check("capped hold", 600 + i, c->buf + i * stride, sz);
		cnt[i] = st.cnt;
		sum += st.cnt;
	}
	U.check_share = true;
	t_log("unpack: %d x 4 MiB done unconsumed in a %zu MiB pool in %.2f s; entries %llu %llu %llu .. %llu, the rest copied by the plugin",
	      HOLD_MAX, U.bounce_len >> 20, t_now() - t0, (unsigned long long)cnt[0],
	      (unsigned long long)cnt[1], (unsigned long long)cnt[2],
	      (unsigned long long)cnt[HOLD_MAX - 1]);
	/* at most half the pool's 4 KiB pages held, a fragment in at most two entries */
	T_ASSERT(sum <= 2 * (U.bounce_len / 4096 / 2));
	T_ASSERT(cnt[HOLD_MAX - 1] < cnt[0] / 2);
}

/*
 * Tokens really wait for irecvConsumed (NCCL_DEVMEM_UNPACK_HOLD=100, 16 MiB
 * pool): 4 MiB receives posted one at a time, each message sent only once
 * its receive is posted, none consumed: the pool runs dry (rx_dropped
 * rises) and a receive stalls before all five are done. Consuming the done
 * ones lets it through; the rest follow, byte-exact.
 */
static void unpack_hold_dry(struct h_plugin *p, bool rx, struct conn *c, const char *ifname)
{
	const size_t sz = 4 << 20, stride = sz + SLACK;
	const int n = 5;
	long long drops0, drops1 = 0;
	void *req[HOLD_MAX];
	int got, done = 0, stalled = -1;
	double t0 = t_now();

	if (!rx)
		return hold_send(p, c, n, true);
	T_ASSERT((uint64_t)n * sz > U.bounce_len);
	drops0 = rx_dropped(ifname);
	for (int i = 0; i < n && stalled < 0; i++) {
		double last;
		int d = 0;

		req[i] = post_recv(p, c, c->buf + i * stride, sz, 8);
		h_sync_send(pair);	/* now the sender may send message i */
		last = t_now();
		while (!d && t_now() - last < 5.0)
			T_ASSERT_EQ(ncclSuccess, h_test(p, req[i], &d, &got));
		if (d)
			done++;
		else
			stalled = i;
	}
	drops1 = rx_dropped(ifname);
	if (stalled < 0)
		T_FAIL("%d x 4 MiB received into a %zu MiB pool with no receive consumed: tokens went back before irecvConsumed",
		       n, U.bounce_len >> 20);
	if (drops1 <= drops0)
		T_FAIL("receive %d stalled, but rx_dropped did not rise (%lld)", stalled, drops1);
	T_ASSERT(done >= 1);
	t_log("unpack: tokens held: %d x 4 MiB receives done unconsumed in a %zu MiB pool, then receive %d stalled: the NIC ran dry (rx_dropped +%lld)",
	      done, U.bounce_len >> 20, stalled, drops1 - drops0);
	for (int i = 0; i < n; i++) {
		struct h_unpack_step st;

		if (i > stalled) {
			req[i] = post_recv(p, c, c->buf + i * stride, sz, 8);
			h_sync_send(pair);
		}
		if (i >= stalled)
			T_ASSERT_EQ(ncclSuccess, h_wait(p, req[i], &got, TO));
		/* consuming the done ones first is what lets the stalled one through */
		if (i == stalled)
			t_log("unpack: receive %d completed once %d were consumed", i, i);
		gpu_consume(p, c, req[i], c->buf + i * stride, sz, sz, &st);
		check("held tokens", 600 + i, c->buf + i * stride, sz);
	}
	t_log("unpack: all %d byte-exact %.2f s after the first post", n, t_now() - t0);
}

static void props_check(struct h_plugin *p)
{
	int ndev = 0;

	T_ASSERT_EQ(ncclSuccess, p->version == 12 ? p->v12->devices(&ndev)
				 : p->version == 11 ? p->v11->devices(&ndev)
				 : p->version == 10 ? p->v10->devices(&ndev)
				 : p->version == 9 ? p->v9->devices(&ndev)
						   : p->v8->devices(&ndev));
	T_ASSERT_EQ(1, ndev);	/* the veth end; loopback is never picked by default */
	if (p->version == 12) {
		ncclNetProperties_v12_t pr;
		int d = -1;

		/* v12 adds the rail: NCCL_DEVMEM_RAILS names it, else undefined */
		T_ASSERT_EQ(ncclSuccess, p->v12->getProperties(0, &pr));
		T_ASSERT(pr.ptrSupport & NCCL_PTR_HOST);
		T_ASSERT_EQ(1, pr.vProps.ndevs);
		T_ASSERT_EQ(0, pr.vProps.devs[0]);
		if (getenv("H_EXPECT_RAIL")) {
			T_ASSERT_EQ(atoi(getenv("H_EXPECT_RAIL")), pr.railId);
			T_ASSERT_EQ(atoi(getenv("H_EXPECT_PLANE")), pr.planeId);
		} else {
			T_ASSERT_EQ(NCCL_NET_ID_UNDEF, pr.railId);
			T_ASSERT_EQ(NCCL_NET_ID_UNDEF, pr.planeId);
		}
		T_ASSERT_EQ(ncclSuccess, p->v12->makeVDevice(&d, &pr.vProps));
		T_ASSERT_EQ(0, d);
		T_ASSERT_EQ(ncclInvalidArgument, p->v12->getProperties(5, &pr));
		h_warns = 0;	/* that WARN was asked for */
		t_log("v12 dev 0: %s %s rail %d plane %d ptrSupport %#x", pr.name, pr.pciPath,
		      pr.railId, pr.planeId, pr.ptrSupport);
	} else if (p->version == 11) {
		ncclNetProperties_v11_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v11->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.name[0]);
		T_ASSERT(pr.pciPath && pr.pciPath[0] == '/');
		T_ASSERT(pr.ptrSupport & NCCL_PTR_HOST);
		T_ASSERT(pr.speed > 0);
		if (unpack_run) {
			T_ASSERT_EQ(1, pr.maxRecvs);
			T_ASSERT_EQ(NCCL_NET_DEVICE_UNPACK, pr.netDeviceType);
			T_ASSERT_EQ(NCCL_NET_DEVICE_UNPACK_VERSION, pr.netDeviceVersion);
			T_ASSERT_EQ(NCCL_NET_UNPACK_MAX_SLICE_SIZE, pr.maxP2pBytes);
		} else {
			T_ASSERT(pr.maxRecvs >= 4);
			T_ASSERT_EQ(NCCL_NET_DEVICE_HOST, pr.netDeviceType);
			T_ASSERT(pr.maxP2pBytes >= (256u << 20));
		}
		T_ASSERT_EQ(1, pr.vProps.ndevs);
		T_ASSERT_EQ(ncclInvalidArgument, p->v11->getProperties(5, &pr));
		h_warns = 0;	/* that WARN was asked for */
		t_log("dev 0: %s %s speed %d maxRecvs %d ptrSupport %#x", pr.name, pr.pciPath,
		      pr.speed, pr.maxRecvs, pr.ptrSupport);
	} else if (p->version == 8) {
		ncclNetProperties_v8_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v8->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.pciPath && pr.speed > 0 && pr.maxRecvs >= (unpack_run ? 1 : 4));
	} else {
		ncclNetProperties_v9_t pr;

		T_ASSERT_EQ(ncclSuccess, p->version == 9 ? p->v9->getProperties(0, &pr)
							 : p->v10->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.pciPath && pr.speed > 0 && pr.maxRecvs >= (unpack_run ? 1 : 4));
		T_ASSERT(pr.maxCollBytes > 0 && pr.vProps.ndevs == 1);
	}
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "full";
	int version = argc > 2 ? atoi(argv[2]) : 12;
	struct conn c[16];
	struct h_plugin p;
	struct h_pair hp;
	bool rx;
	int n = !strcmp(what, "many") ? 16 : 1;

	memset(c, 0, sizeof(c));
	if (!strcmp(what, "devmem-unpack-hold")) {
		/* every token held for NCCL's kernel: the pool can run dry */
		setenv("NCCL_DEVMEM_UNPACK_HOLD", "100", 1);
	}
	if (!strncmp(what, "devmem", 6)) {
		if (!t_in_vm())
			t_skip("devmem mode needs the patched-kernel VM (veth has no queue management API)");
		devmem_run = true;
		setenv("NCCL_DEVMEM_MODE", "devmem", 1);
		/* udmabuf caps a buffer at 64 MiB by default */
		setenv("NCCL_DEVMEM_POOL_SIZE", "32M", 0);
	}
	if (!strcmp(what, "unpack-fakecuda")) {
#ifdef DM_FAKE_CUDA
		/* the plugin's CUDA loader and libgpudirect's both take the fake */
		setenv("GPUD_LIBCUDA", DM_FAKE_CUDA, 1);
		/* libgpudirect's probe keeps the driver table it loaded: no dlclose */
		h_keep_loaded = true;
		snprintf(h_log_needle, sizeof(h_log_needle),
			 "devmem pool: GPU memory of CUDA device 0 (NCCL_DEVMEM_POOL_MEM=auto");
#else
		t_skip("built without libgpudirect's fake libcuda (GPUD_BUILD_TESTS)");
#endif
	}
	if (strstr(what, "unpack")) {
		unpack_run = true;
		setenv("NCCL_DEVMEM_UNPACK", "nccl", 1);
		/* veth: auto tries devmem, falls back to copy, and says why */
		setenv("NCCL_DEVMEM_MODE", "auto", 0);
		/*
		 * Room for half the pool held for the stand-in kernel plus what the
		 * sender gets ahead into the sockets' receive queues (a 1448-byte
		 * segment takes a 4 KiB page when GRO does not merge, as under
		 * ASan); small enough for unpack_hold's receives to exceed it.
		 */
		U.bounce_len = strcmp(what, "devmem-unpack-hold") ? 48u << 20 : 16u << 20;
		setenv("NCCL_DEVMEM_POOL_SIZE", U.bounce_len == 16u << 20 ? "16M" : "48M", 1);
	}
	setenv("NCCL_DEVMEM_MODE", "copy", 0);
	rx = h_pair_start(&hp) == 0;
	pair = &hp;
	if (!strcmp(what, "devmem6")) {
		devmem6_run = true;
		ipv6_only(&hp, rx);
	}
	h_load(&p, version);
	props_check(&p);
	if (!strcmp(what, "full")) {
		setup(&p, &hp, rx, c, 1, (256 << 20) + 2 * SLACK);
		run_sizes(&p, rx, c, full_sizes, DM_ARRAY_LEN(full_sizes));
		multi(&p, rx, c);
		pipelined(&p, rx, c);
	} else if (!strcmp(what, "devmem") || !strcmp(what, "devmem6")) {
		static const size_t dsizes[] = { 0, 1, 4096, 1 << 20, 16 << 20 };

		if (rx)
			rss_skew_to_devmem_queue(hp.net.ifname[0]);
		setup(&p, &hp, rx, c, 1, (16 << 20) + 2 * SLACK);
		if (rx)
			rss_check(hp.net.ifname[0], true);
		if (!strcmp(what, "devmem6"))
			family_check(AF_INET6);
		run_sizes(&p, rx, c, dsizes, DM_ARRAY_LEN(dsizes));
		multi(&p, rx, c);
		pipelined(&p, rx, c);
	} else if (!strcmp(what, "unpack") || !strcmp(what, "devmem-unpack")) {
		static const size_t usizes[] = { 0, 1, 4096, 1 << 20, 4 << 20, 16 << 20 };

		if (rx && devmem_run)
			rss_skew_to_devmem_queue(hp.net.ifname[0]);
		setup(&p, &hp, rx, c, 1, HOLD_MAX * ((4 << 20) + SLACK));
		if (rx && devmem_run)
			rss_check(hp.net.ifname[0], true);
		run_sizes(&p, rx, c, usizes, DM_ARRAY_LEN(usizes));
		unpack_pipeline(&p, rx, c);
		unpack_slots(&p, rx, c);
		unpack_ll(&p, rx, c);
		if (devmem_run) {
			unpack_hold_cap(&p, rx, c);
			/* consumed, the cap is free again: full share for the next one */
			run_sizes(&p, rx, c, usizes + 4, 1);
		}
		if (rx)
			t_log("unpack: %llu receives consumed, %llu entries, %llu bytes copied by the stand-in kernel",
			      (unsigned long long)U.steps, (unsigned long long)U.entries,
			      (unsigned long long)U.nccl_bytes);
	} else if (!strcmp(what, "unpack-fakecuda")) {
		static const size_t fsizes[] = { 0, 1, 4096, 1 << 20 };
		int (*host_allocs)(void);
		void *fake;

		setup(&p, &hp, rx, c, 1, 5 * ((4 << 20) + SLACK));
		fake = dlopen(getenv("GPUD_LIBCUDA"), RTLD_NOW | RTLD_NOLOAD);
		T_ASSERT(fake != NULL);
		host_allocs = (int (*)(void))dlsym(fake, "fake_cuda_host_allocs");
		T_ASSERT(host_allocs != NULL);
		if (rx) {
			/* auto chose the GPU before the veth NIC refused devmem */
			if (!h_log_hits)
				T_FAIL("no log line \"%s\"", h_log_needle);
			t_log("fake CUDA: %s", h_log_hit);
			/* the metadata came from cuMemHostAlloc(DEVICEMAP) */
			T_ASSERT_EQ(1, host_allocs());
		}
		run_sizes(&p, rx, c, fsizes, DM_ARRAY_LEN(fsizes));
		unpack_pipeline(&p, rx, c);
		fake_host_allocs = host_allocs;
	} else if (!strcmp(what, "devmem-unpack-hold")) {
		if (rx)
			rss_skew_to_devmem_queue(hp.net.ifname[0]);
		setup(&p, &hp, rx, c, 1, 5 * ((4 << 20) + SLACK));
		unpack_hold_dry(&p, rx, c, hp.net.ifname[0]);
	} else if (!strcmp(what, "smoke")) {
		setup(&p, &hp, rx, c, 1, 16 << 20);
		tos_check(rx, version);
		run_sizes(&p, rx, c, smoke_sizes, DM_ARRAY_LEN(smoke_sizes));
		multi(&p, rx, c);
		pipelined(&p, rx, c);
	} else if (!strcmp(what, "many")) {
		setup(&p, &hp, rx, c, n, 1 << 20);
		many(&p, rx, c, n);
	} else {
		T_FAIL("unknown scenario %s", what);
	}
	/* both sides finish their checks before either closes */
	if (rx)
		h_sync_recv(&hp);
	else
		h_sync_send(&hp);
	teardown(&p, rx, c, n);
	free(U.dh);	/* NCCL frees the device handle it allocated, after closeRecv */
	if (fake_host_allocs)	/* closeRecv gave the GPU-mapped metadata back */
		T_ASSERT_EQ(0, fake_host_allocs());
	if (devmem_run && rx)	/* the last devmem comm's close restores the NIC */
		rss_check(hp.net.ifname[0], false);
	h_unload(&p);
	if (!rx)
		_exit(0);
	h_pair_join(&hp, TO);
	T_ASSERT_EQ(0, h_warns);
	t_log("PASS %s v%d", what, version);
	return T_EXIT_PASS;
}
