// SPDX-License-Identifier: MIT
/*
 * Data integrity through the plugin, two processes over a veth pair:
 *   plugin_transfer full [version]   sizes 0 .. 256 MiB, multi-receive with
 *                                    tags, pipelined requests tested out of order
 *   plugin_transfer smoke <version>  v8/v9/v10: small sizes and multi-receive
 *   plugin_transfer many             16 comms at once
 * Every received byte is checked against t_pattern; the posted size is larger
 * than the message so that test() must report the real size.
 */
#include "harness.h"

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

static bool devmem_run;

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
		if (devmem_run) {	/* devmem demanded: accept fails with the reason if it cannot */
			double end = t_now() + TO;

			while (!c[i].comm && t_now() < end)
				if (h_accept(p, c[i].listen, &c[i].comm) != ncclSuccess)
					t_skip("devmem receive not available here: %s", h_last_warn);
		}
		if (!c[i].comm)
			c[i].comm = h_accept_wait(p, c[i].listen, TO);
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

static void props_check(struct h_plugin *p)
{
	int ndev = 0;

	T_ASSERT_EQ(ncclSuccess, p->version == 11 ? p->v11->devices(&ndev)
				 : p->version == 10 ? p->v10->devices(&ndev)
				 : p->version == 9 ? p->v9->devices(&ndev)
						   : p->v8->devices(&ndev));
	T_ASSERT_EQ(1, ndev);	/* the veth end; loopback is never picked by default */
	if (p->version == 11) {
		ncclNetProperties_v11_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v11->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.name[0]);
		T_ASSERT(pr.pciPath && pr.pciPath[0] == '/');
		T_ASSERT(pr.ptrSupport & NCCL_PTR_HOST);
		T_ASSERT(pr.speed > 0);
		T_ASSERT(pr.maxRecvs >= 4);
		T_ASSERT_EQ(NCCL_NET_DEVICE_HOST, pr.netDeviceType);
		T_ASSERT_EQ(1, pr.vProps.ndevs);
		T_ASSERT(pr.maxP2pBytes >= (256u << 20));
		T_ASSERT_EQ(ncclInvalidArgument, p->v11->getProperties(5, &pr));
		h_warns = 0;	/* that WARN was asked for */
		t_log("dev 0: %s %s speed %d maxRecvs %d ptrSupport %#x", pr.name, pr.pciPath,
		      pr.speed, pr.maxRecvs, pr.ptrSupport);
	} else if (p->version == 8) {
		ncclNetProperties_v8_t pr;

		T_ASSERT_EQ(ncclSuccess, p->v8->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.pciPath && pr.speed > 0 && pr.maxRecvs >= 4);
	} else {
		ncclNetProperties_v9_t pr;

		T_ASSERT_EQ(ncclSuccess, p->version == 9 ? p->v9->getProperties(0, &pr)
							 : p->v10->getProperties(0, &pr));
		T_ASSERT(pr.name && pr.pciPath && pr.speed > 0 && pr.maxRecvs >= 4);
		T_ASSERT(pr.maxCollBytes > 0 && pr.vProps.ndevs == 1);
	}
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "full";
	int version = argc > 2 ? atoi(argv[2]) : 11;
	struct conn c[16];
	struct h_plugin p;
	struct h_pair hp;
	bool rx;
	int n = !strcmp(what, "many") ? 16 : 1;

	memset(c, 0, sizeof(c));
	if (!strcmp(what, "devmem")) {
		if (!t_in_vm())
			t_skip("devmem mode needs the patched-kernel VM (veth has no queue management API)");
		devmem_run = true;
		setenv("NCCL_DEVMEM_MODE", "devmem", 1);
		/* udmabuf caps a buffer at 64 MiB by default */
		setenv("NCCL_DEVMEM_POOL_SIZE", "32M", 0);
	}
	setenv("NCCL_DEVMEM_MODE", "copy", 0);
	rx = h_pair_start(&hp) == 0;
	pair = &hp;
	h_load(&p, version);
	props_check(&p);
	if (!strcmp(what, "full")) {
		setup(&p, &hp, rx, c, 1, (256 << 20) + 2 * SLACK);
		run_sizes(&p, rx, c, full_sizes, DM_ARRAY_LEN(full_sizes));
		multi(&p, rx, c);
		pipelined(&p, rx, c);
	} else if (!strcmp(what, "devmem")) {
		static const size_t dsizes[] = { 0, 1, 4096, 1 << 20, 16 << 20 };

		if (rx)
			rss_skew_to_devmem_queue(hp.net.ifname[0]);
		setup(&p, &hp, rx, c, 1, (16 << 20) + 2 * SLACK);
		if (rx)
			rss_check(hp.net.ifname[0], true);
		run_sizes(&p, rx, c, dsizes, DM_ARRAY_LEN(dsizes));
		multi(&p, rx, c);
		pipelined(&p, rx, c);
	} else if (!strcmp(what, "smoke")) {
		setup(&p, &hp, rx, c, 1, 16 << 20);
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
