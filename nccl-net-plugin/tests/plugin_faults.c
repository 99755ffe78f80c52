// SPDX-License-Identifier: MIT
/*
 * Faults end in an error with a WARN line, within a deadline, never a hang,
 * crash, overrun or silent corruption:
 *   bad_secret     connect with a wrong secret; garbage instead of a hello
 *   garbage_ctrl   a peer that passes the handshake, then sends junk frames
 *   truncated_ctrl half a frame, then EOF
 *   stalled_ctrl   half a frame, then silence (timeout)
 *   too_large      message larger than the posted receive
 *   tag_mismatch   message with a tag the receive does not expect
 *   peer_killed    sender process killed in the middle of a message
 *   idle_flood     200 connections to the listener that never say hello:
 *                  a real connect still completes within 1 s
 *   peer_vanish    the sender's link goes down with a receive posted and no
 *                  message on the way: no reset ever comes; keepalive must
 *                  fail the receive, naming the peer, and a new comm works
 *   reset          connection reset (RST) in the middle of a message
 *   close_inflight closeRecv with receives in flight; sender must fail
 *   exhaust        request slots run out: NULL request, then recovery
 *   pool_cuda      NCCL_DEVMEM_POOL_MEM=cuda where CUDA cannot work: with
 *                  NCCL_DEVMEM_MODE=devmem accept fails naming the fix; with
 *   pool_cuda_auto NCCL_DEVMEM_MODE=auto the comm copies and says why
 *   unpack_ll_hidden NCCL_DEVMEM_UNPACK=nccl with NCCL_NET_OPTIONAL_RECV_COMPLETION=0:
 *                  LL receives would be indistinguishable, so the plugin
 *                  keeps unpacking itself and says so
 * The receiver runs the plugin in namespace a; the sender is the plugin or a
 * raw socket peer speaking our wire format (src/engine/ctrl.h) in namespace b.
 */
#include "harness.h"
#include "conn/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEADLINE 10.0	/* every failure must surface within this */

static struct h_plugin P;
static struct h_pair HP;

/* ---- raw peer ---- */

struct raw {
	int ctrl;
	int data[DM_MAX_SOCKS];
	int n;
};

static int raw_sock(const struct dm_handle *h)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	T_ASSERT(fd >= 0);
	if (connect(fd, (const struct sockaddr *)&h->addr, sizeof(h->addr)))
		T_FAIL("raw connect: %s", strerror(errno));
	return fd;
}

static void raw_hello(int fd, const struct dm_handle *h, uint64_t secret, int kind, int idx)
{
	struct dm_hello he = { .version = DM_PROTO_VERSION, .kind = kind, .index = idx,
			       .nsocks = h->nsocks, .max_chunk = h->max_chunk, .secret = secret,
			       .conn_id = 0x5eed };
	uint8_t b[DM_HELLO_LEN];

	dm_hello_encode(&he, b);
	T_ASSERT_EQ(sizeof(b), write(fd, b, sizeof(b)));
}

static int raw_read(int fd, uint8_t *b, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, b + got, len - got);

		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

/*
 * Full connection; returns the ack status the listener answered. An
 * accepted control hello is answered first with the listener's member
 * addresses (one here, the handle's), a refused one with the ack alone.
 */
static int raw_connect(struct raw *r, const struct dm_handle *h, uint64_t secret)
{
	uint8_t b[DM_ADDRS_LEN];
	struct dm_addrs as;
	struct dm_ack a;

	r->n = h->nsocks;
	r->ctrl = raw_sock(h);
	raw_hello(r->ctrl, h, secret, DM_SOCK_CTRL, 0);
	if (raw_read(r->ctrl, b, DM_ACK_LEN))
		return -1;
	if (!dm_ack_decode(b, &a))
		return a.status;
	if (raw_read(r->ctrl, b + DM_ACK_LEN, DM_ADDRS_LEN - DM_ACK_LEN))
		return -1;
	T_ASSERT_OK(dm_addrs_decode(b, &as));
	T_ASSERT_EQ(1, as.count);
	T_ASSERT_EQ(ntohs(h->addr.in.sin_port), as.m[0].port);
	T_ASSERT_EQ(0, memcmp(as.m[0].addr, &h->addr.in.sin_addr, 4));
	for (int i = 0; i < r->n; i++) {
		r->data[i] = raw_sock(h);
		raw_hello(r->data[i], h, secret, DM_SOCK_DATA, i);
	}
	if (raw_read(r->ctrl, b, DM_ACK_LEN))
		return -1;
	T_ASSERT_OK(dm_ack_decode(b, &a));
	return a.status;
}

static void raw_write(int fd, const void *b, size_t len)
{
	T_ASSERT_EQ(len, write(fd, b, len));
}

/* ---- receiver side helpers ---- */

static void *rx_listen(void **lc)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };

	T_ASSERT_EQ(ncclSuccess, h_listen(&P, 0, handle, lc));
	h_send_handle(&HP, handle);
	return NULL;
}

static void *rx_post(void *comm, void *buf, size_t max, int tag, void *mh)
{
	void *req = NULL;

	while (!req)
		T_ASSERT_EQ(ncclSuccess, h_irecv(&P, comm, 1, &buf, &max, &tag, &mh, &req));
	return req;
}

/* The request must fail (not complete) within DEADLINE, with a WARN logged. */
static void expect_fail(void *req, const char *what, const char *needle)
{
	double t0 = t_now();
	ncclResult_t r;
	int done = 0, sz;

	for (;;) {
		r = h_test(&P, req, &done, &sz);
		if (r != ncclSuccess || done)
			break;
		if (t_now() - t0 > DEADLINE)
			T_FAIL("%s: no error after %.0f s", what, DEADLINE);
		usleep(200);
	}
	if (r == ncclSuccess)
		T_FAIL("%s: request completed instead of failing", what);
	T_ASSERT(r == ncclRemoteError || r == ncclSystemError);
	T_ASSERT(h_warns > 0);
	if (needle && !strstr(h_last_warn, needle))
		T_FAIL("%s: WARN does not mention \"%s\": %s", what, needle, h_last_warn);
	t_log("%s: failed as expected in %.2f s (result %d): %s", what, t_now() - t0, r,
	      h_last_warn);
}

static void rx_comm(void **lc, void **comm, void **mh, char *buf, size_t len)
{
	rx_listen(lc);
	*comm = h_accept_wait(&P, *lc, DEADLINE);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, *comm, buf, len, mh));
}

static void tx_comm(void **comm, void **mh, char *buf, size_t len)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];

	h_recv_handle(&HP, handle);
	*comm = h_connect_wait(&P, 0, handle, DEADLINE);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, *comm, buf, len, mh));
}

/* ---- scenarios: each returns in both processes; the child then exits 0 ---- */

static void bad_secret(bool rx)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	struct dm_handle *h = (struct dm_handle *)handle;
	void *lc, *comm = NULL;

	if (rx) {
		rx_listen(&lc);
		/* the listener refuses both strays, then accepts the real connection */
		comm = h_accept_wait(&P, lc, DEADLINE);
		T_ASSERT(h_warns >= 2);
		t_log("listener refused strays: %s", h_last_warn);
		h_close_recv(&P, comm);
		h_close_listen(&P, lc);
		return;
	}
	h_recv_handle(&HP, handle);
	{	/* a raw peer with the wrong secret is told why */
		struct raw r;
		int fd;

		T_ASSERT_EQ(DM_ACK_BAD_SECRET, raw_connect(&r, h, h->secret ^ 1));
		/* and one that does not speak our protocol is dropped */
		static const char http[DM_HELLO_LEN] = "GET / HTTP/1.0\r\n\r\n";

		fd = raw_sock(h);
		raw_write(fd, http, sizeof(http));
	}
	{	/* the plugin's own connect with a wrong secret fails, and says so */
		char bad[NCCL_NET_HANDLE_MAXSIZE];
		struct dm_handle *bh = (struct dm_handle *)bad;
		double t0 = t_now();
		ncclResult_t res;

		memcpy(bad, handle, sizeof(bad));
		bh->secret ^= 0xff;
		do {
			comm = NULL;
			res = h_connect(&P, 0, bad, &comm);
			T_ASSERT(t_now() - t0 < DEADLINE);
		} while (res == ncclSuccess && !comm);
		T_ASSERT_EQ(ncclRemoteError, res);
		T_ASSERT(strstr(h_last_warn, "wrong secret"));
		t_log("connect with a wrong secret: %s", h_last_warn);
	}
	comm = h_connect_wait(&P, 0, handle, DEADLINE);
	h_close_send(&P, comm);
}

/* A raw sender: handshake, then @frame on ctrl, then per @how. */
static void raw_sender(const void *frame, size_t len, const char *how)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	struct raw r;

	h_recv_handle(&HP, handle);
	T_ASSERT_EQ(DM_ACK_OK, raw_connect(&r, (struct dm_handle *)handle,
					    ((struct dm_handle *)handle)->secret));
	raw_write(r.ctrl, frame, len);
	if (!strcmp(how, "data_then_die")) {
		static char junk[100 << 10];

		raw_write(r.data[0], junk, sizeof(junk));
		kill(getpid(), SIGKILL);
	}
	if (!strcmp(how, "data_then_rst")) {
		static char junk[100 << 10];
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		raw_write(r.data[0], junk, sizeof(junk));
		for (int i = 0; i < r.n; i++)
			setsockopt(r.data[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		for (int i = 0; i < r.n; i++)
			close(r.data[i]);	/* RST: data sockets reset, ctrl stays open */
		h_sync_recv(&HP);
		return;
	}
	if (!strcmp(how, "stall")) {
		h_sync_recv(&HP);	/* keep every socket open until the receiver is done */
		return;
	}
	/* "close": EOF on everything */
	close(r.ctrl);
	for (int i = 0; i < r.n; i++)
		close(r.data[i]);
}

static void raw_receiver(const char *what, const char *needle, size_t max, bool wait_sync)
{
	static char buf[2 << 20];
	void *lc, *comm, *mh, *req;

	rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
	req = rx_post(comm, buf, max, 1, mh);
	expect_fail(req, what, needle);
	if (wait_sync)
		h_sync_send(&HP);
	T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
	h_deregmr(&P, NULL, mh);
	h_close_listen(&P, lc);
}

static void ctrl_case(bool rx, const char *name)
{
	uint8_t f[DM_FRAME_MAX_LEN];
	size_t len = dm_frame_encode_msg(f, 0, 1 << 20, 1);

	if (!strcmp(name, "garbage_ctrl")) {
		if (rx)
			return raw_receiver(name, "malformed control frame", 2 << 20, true);
		memcpy(f, "\x13\x37 garbage garbage garbage", 26);
		return raw_sender(f, 26, "stall");
	}
	if (!strcmp(name, "truncated_ctrl")) {
		if (rx)
			return raw_receiver(name, "truncated control frame", 2 << 20, false);
		return raw_sender(f, 5, "close");
	}
	if (!strcmp(name, "stalled_ctrl")) {
		if (rx)
			return raw_receiver(name, "incomplete control frame", 2 << 20, true);
		return raw_sender(f, len - 3, "stall");
	}
	if (!strcmp(name, "peer_killed")) {
		if (rx)
			return raw_receiver(name, "closed the connection in the middle", 2 << 20, false);
		return raw_sender(f, len, "data_then_die");
	}
	if (!strcmp(name, "reset")) {
		if (rx)
			return raw_receiver(name, "data socket", 2 << 20, true);
		return raw_sender(f, len, "data_then_rst");
	}
}

/* Plugin sender vs plugin receiver with mismatched expectations. */
static void mismatch(bool rx, const char *name)
{
	static char buf[1 << 20];
	bool large = !strcmp(name, "too_large");
	void *lc, *comm, *mh, *req;

	if (rx) {
		rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
		memset(buf, 0xee, sizeof(buf));
		req = rx_post(comm, buf, large ? 4096 : sizeof(buf), large ? 1 : 8, mh);
		expect_fail(req, name, large ? "larger than the posted receive" : "tag mismatch");
		/* never an overrun: nothing past the posted 4 KiB, nothing at all in fact */
		for (size_t i = 0; i < sizeof(buf); i++)
			if ((unsigned char)buf[i] != 0xee)
				T_FAIL("%s: byte %zu of the receive buffer was written", name, i);
		h_sync_recv(&HP);
		h_deregmr(&P, comm, mh);
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_close_listen(&P, lc);
		return;
	}
	tx_comm(&comm, &mh, buf, sizeof(buf));
	req = h_isend_wait(&P, comm, buf, large ? sizeof(buf) : 1000, large ? 1 : 7, mh);
	/*
	 * The receiver's reason comes back to the sender. A send may already
	 * have completed (its bytes fit in the socket buffers); then the next
	 * operation on the comm is the one that must fail.
	 */
	{
		double t0 = t_now();
		ncclResult_t r;
		int done = 0, sz;

		while ((r = h_test(&P, req, &done, &sz)) == ncclSuccess && !done)
			T_ASSERT(t_now() - t0 < DEADLINE);
		/* keep sending until the comm reports the receiver's error */
		while (r == ncclSuccess) {
			T_ASSERT(t_now() - t0 < DEADLINE);
			req = NULL;
			r = h_isend(&P, comm, buf, 1, 7, mh, &req);
			while (r == ncclSuccess && req && !(done = 0) &&
			       (r = h_test(&P, req, &done, &sz)) == ncclSuccess && !done)
				T_ASSERT(t_now() - t0 < DEADLINE);
			usleep(1000);
		}
		T_ASSERT(r == ncclRemoteError);
		T_ASSERT(strstr(h_last_warn, "receiver reported"));
		t_log("%s (sender): %s", name, h_last_warn);
	}
	h_sync_send(&HP);
	h_deregmr(&P, comm, mh);
	T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
}

static void close_inflight(bool rx)
{
	static char buf[64 << 20];
	void *lc, *comm, *mh, *req[4];

	if (rx) {
		rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
		for (int i = 0; i < 4; i++)
			req[i] = rx_post(comm, buf + i * (16 << 20), 16 << 20, 1, mh);
		h_sync_recv(&HP);	/* the sender has posted its sends */
		usleep(20000);		/* some bytes are moving */
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_deregmr(&P, NULL, mh);
		h_close_listen(&P, lc);
		return;
	}
	tx_comm(&comm, &mh, buf, sizeof(buf));
	for (int i = 0; i < 4; i++)
		req[i] = h_isend_wait(&P, comm, buf + i * (16 << 20), 16 << 20, 1, mh);
	h_sync_send(&HP);
	expect_fail(req[3], "close_inflight (sender)", NULL);
	T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
	h_deregmr(&P, NULL, mh);
}

static void link_set(const char *ifname, const char *state)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "ip link set dev %s %s", ifname, state);
	if (system(cmd))
		T_FAIL("'%s' failed", cmd);
}

static void peer_vanish(bool rx)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	static char buf[1 << 20];
	void *lc, *comm, *mh, *req;
	int got;

	if (rx) {
		rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
		req = rx_post(comm, buf, sizeof(buf), 1, mh);
		h_sync_recv(&HP);	/* the peer's link is down now */
		expect_fail(req, "peer_vanish", "stopped answering");
		T_ASSERT(strstr(h_last_warn, HP.net.addr[1]) != NULL);
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_deregmr(&P, NULL, mh);
		h_close_listen(&P, lc);
		/* the process is not poisoned: a new comm carries data (its handle tells
		 * the peer to come back) */
		h_warns = 0;
		rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
		req = rx_post(comm, buf, sizeof(buf), 2, mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
		T_ASSERT_EQ((int)sizeof(buf), got);
		T_ASSERT_EQ(-1, t_pattern_check(9, 0, buf, sizeof(buf)));
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_deregmr(&P, NULL, mh);
		h_close_listen(&P, lc);
		t_log("peer_vanish: a new comm after the failure moved 1 MiB byte-exact");
		return;
	}
	tx_comm(&comm, &mh, buf, sizeof(buf));
	link_set(HP.net.ifname[1], "down");
	h_sync_send(&HP);
	h_recv_handle(&HP, handle);	/* the receiver failed and listens again */
	link_set(HP.net.ifname[1], "up");
	h_close_send(&P, comm);	/* its own keepalive may have failed it too */
	h_deregmr(&P, NULL, mh);
	t_pattern_fill(9, 0, buf, sizeof(buf));
	comm = h_connect_wait(&P, 0, handle, DEADLINE);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, comm, buf, sizeof(buf), &mh));
	req = h_isend_wait(&P, comm, buf, sizeof(buf), 2, mh);
	T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
	T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
	h_deregmr(&P, NULL, mh);
}

static void idle_flood(bool rx)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	static char buf[1 << 20];
	const struct dm_handle *h = (const struct dm_handle *)handle;
	void *lc, *comm, *mh, *req;
	int idle[200], got;
	double t0;

	if (rx) {
		rx_listen(&lc);
		comm = h_accept_wait(&P, lc, DEADLINE);
		T_ASSERT_EQ(ncclSuccess, h_regmr(&P, comm, buf, sizeof(buf), &mh));
		req = rx_post(comm, buf, sizeof(buf), 3, mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
		T_ASSERT_EQ(-1, t_pattern_check(11, 0, buf, sizeof(buf)));
		/* the idle ones were dropped, said once */
		T_ASSERT_EQ(1, h_warns);
		T_ASSERT(strstr(h_last_warn, "idle handshakes") != NULL);
		h_warns = 0;
		h_sync_recv(&HP);
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_deregmr(&P, NULL, mh);
		h_close_listen(&P, lc);
		return;
	}
	h_recv_handle(&HP, handle);
	for (int i = 0; i < 200; i++) {
		idle[i] = socket(AF_INET, SOCK_STREAM, 0);
		T_ASSERT(idle[i] >= 0);
		if (connect(idle[i], (const struct sockaddr *)&h->addr, sizeof(h->addr)))
			T_FAIL("idle connection %d: connect: %s", i, strerror(errno));
	}
	t0 = t_now();
	comm = h_connect_wait(&P, 0, handle, DEADLINE);
	if (t_now() - t0 > 1.0)
		T_FAIL("connect took %.2f s behind 200 idle connections (limit 1 s)", t_now() - t0);
	t_log("idle_flood: connect done in %.3f s behind 200 idle connections", t_now() - t0);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, comm, buf, sizeof(buf), &mh));
	t_pattern_fill(11, 0, buf, sizeof(buf));
	req = h_isend_wait(&P, comm, buf, sizeof(buf), 3, mh);
	T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
	h_sync_send(&HP);
	for (int i = 0; i < 200; i++)
		close(idle[i]);
	T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
	h_deregmr(&P, NULL, mh);
}

static void exhaust(bool rx)
{
	static char buf[1 << 20];
	void *lc, *comm, *mh, *req[NCCL_NET_MAX_REQUESTS + 1];
	int got;

	if (rx) {
		void *data = buf, *extra = NULL;
		size_t max = 1024;
		int tag = 1;

		rx_comm(&lc, &comm, &mh, buf, sizeof(buf));
		for (int i = 0; i < NCCL_NET_MAX_REQUESTS; i++)
			req[i] = rx_post(comm, buf + i * 1024, 1024, 1, mh);
		/* no slot left: NULL request, not an error (NCCL retries) */
		T_ASSERT_EQ(ncclSuccess, h_irecv(&P, comm, 1, &data, &max, &tag, &mh, &extra));
		T_ASSERT(extra == NULL);
		h_sync_send(&HP);
		for (int i = 0; i < NCCL_NET_MAX_REQUESTS; i++) {
			T_ASSERT_EQ(ncclSuccess, h_wait(&P, req[i], &got, DEADLINE));
			T_ASSERT_EQ(100, got);
		}
		/* slots are back */
		req[0] = rx_post(comm, buf, 1024, 1, mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req[0], &got, DEADLINE));
		T_ASSERT_EQ(100, got);
		h_sync_recv(&HP);
		h_deregmr(&P, comm, mh);
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
		h_close_listen(&P, lc);
		return;
	}
	tx_comm(&comm, &mh, buf, sizeof(buf));
	h_sync_recv(&HP);
	for (int i = 0; i < NCCL_NET_MAX_REQUESTS + 1; i++) {
		req[0] = h_isend_wait(&P, comm, buf, 100, 1, mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req[0], &got, DEADLINE));
	}
	h_sync_send(&HP);
	h_deregmr(&P, comm, mh);
	T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
}

/*
 * A GPU pool demanded where there is no usable CUDA: the error names the
 * variable and the fix, and nothing half-configured is left behind (a
 * connection is refused, or works in copy mode).
 */
static void pool_cuda(bool rx, bool demanded)
{
	const char *needle = "NCCL_DEVMEM_POOL_MEM=cuda";
	char buf[4096];
	void *lc, *comm = NULL, *mh, *req;
	double t0 = t_now();
	ncclResult_t r = ncclSuccess;
	int got;

	if (!rx) {
		char handle[NCCL_NET_HANDLE_MAXSIZE];

		h_recv_handle(&HP, handle);
		while (!comm && r == ncclSuccess && t_now() - t0 < DEADLINE)
			r = h_connect(&P, 0, handle, &comm);
		if (demanded) {
			/* the receiver refused: the connection ends, the sender is told */
			T_ASSERT(!comm && r != ncclSuccess);
			return;
		}
		T_ASSERT(comm != NULL);
		T_ASSERT_EQ(ncclSuccess, h_regmr(&P, comm, buf, sizeof(buf), &mh));
		t_pattern_fill(9, 0, buf, sizeof(buf));
		req = h_isend_wait(&P, comm, buf, sizeof(buf), 1, mh);
		T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
		h_sync_recv(&HP);
		h_deregmr(&P, comm, mh);
		T_ASSERT_EQ(ncclSuccess, h_close_send(&P, comm));
		return;
	}
	snprintf(h_log_needle, sizeof(h_log_needle), "%s", needle);
	rx_listen(&lc);
	while (!comm && r == ncclSuccess && t_now() - t0 < DEADLINE)
		r = h_accept(&P, lc, &comm);
	if (demanded) {
		if (r == ncclSuccess)
			T_FAIL("accept %s with NCCL_DEVMEM_MODE=devmem and no usable GPU pool",
			       comm ? "succeeded" : "did not fail in time");
		T_ASSERT(strstr(h_last_warn, needle) != NULL);
		/* the fix is in the message: another pool, or make CUDA work */
		T_ASSERT(strstr(h_last_warn, "NCCL_DEVMEM_POOL_MEM=host") != NULL);
		t_log("pool_cuda: accept refused in %.2f s: %s", t_now() - t0, h_last_warn);
		T_ASSERT_EQ(ncclSuccess, h_close_listen(&P, lc));
		return;
	}
	T_ASSERT(comm != NULL);
	/* auto: copy mode, and the reason (with the fix) is on the comm's INFO line */
	T_ASSERT(h_log_hits > 0 && strstr(h_log_hit, "copy mode") != NULL);
	T_ASSERT(strstr(h_log_hit, "NCCL_DEVMEM_POOL_MEM=host") != NULL);
	t_log("pool_cuda_auto: %s", h_log_hit);
	T_ASSERT_EQ(ncclSuccess, h_regmr(&P, comm, buf, sizeof(buf), &mh));
	req = rx_post(comm, buf, sizeof(buf), 1, mh);
	T_ASSERT_EQ(ncclSuccess, h_wait(&P, req, &got, DEADLINE));
	T_ASSERT_EQ(-1, t_pattern_check(9, 0, buf, sizeof(buf)));
	h_sync_send(&HP);
	h_deregmr(&P, comm, mh);
	T_ASSERT_EQ(ncclSuccess, h_close_recv(&P, comm));
	T_ASSERT_EQ(ncclSuccess, h_close_listen(&P, lc));
}

static void unpack_ll_hidden(bool rx)
{
	int type, version, max_recvs;

	h_props_dev(&P, 0, &type, &version, &max_recvs);
	T_ASSERT_EQ(NCCL_NET_DEVICE_HOST, type);
	T_ASSERT(max_recvs > 1);
	if (!rx)
		return;
	T_ASSERT_EQ(1, h_warns);
	T_ASSERT(strstr(h_last_warn, "NCCL_NET_OPTIONAL_RECV_COMPLETION=0") != NULL);
	T_ASSERT(strstr(h_last_warn, "NCCL_PROTO=Simple") != NULL);
	t_log("unpack_ll_hidden: %s", h_last_warn);
	h_warns = 0;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";
	bool rx;

	if (!strncmp(name, "pool_cuda", 9)) {
		/* no libcuda.so.1 here, or none it can use: the GPU pool cannot be */
		if (!access("/dev/nvidiactl", F_OK))
			t_skip("a GPU driver is present: the missing-CUDA errors cannot be provoked");
		setenv("NCCL_DEVMEM_POOL_MEM", "cuda", 1);
		setenv("NCCL_DEVMEM_MODE", strcmp(name, "pool_cuda") ? "auto" : "devmem", 1);
	}
	if (!strcmp(name, "unpack_ll_hidden")) {
		setenv("NCCL_DEVMEM_UNPACK", "nccl", 1);
		setenv("NCCL_NET_OPTIONAL_RECV_COMPLETION", "0", 1);
		unsetenv("NCCL_PROTO");
	}
	setenv("NCCL_DEVMEM_MODE", "copy", 0);
	/* short enough that the stalled cases finish well inside DEADLINE */
	setenv("NCCL_DEVMEM_TIMEOUT_MS", "2000", 0);
	rx = h_pair_start(&HP) == 0;
	h_load(&P, 11);
	if (!strcmp(name, "bad_secret"))
		bad_secret(rx);
	else if (!strcmp(name, "too_large") || !strcmp(name, "tag_mismatch"))
		mismatch(rx, name);
	else if (!strcmp(name, "close_inflight"))
		close_inflight(rx);
	else if (!strcmp(name, "exhaust"))
		exhaust(rx);
	else if (!strcmp(name, "peer_vanish"))
		peer_vanish(rx);
	else if (!strcmp(name, "idle_flood"))
		idle_flood(rx);
	else if (!strcmp(name, "pool_cuda") || !strcmp(name, "pool_cuda_auto"))
		pool_cuda(rx, !strcmp(name, "pool_cuda"));
	else if (!strcmp(name, "unpack_ll_hidden"))
		unpack_ll_hidden(rx);
	else if (strstr(name, "_ctrl") || !strcmp(name, "peer_killed") || !strcmp(name, "reset"))
		ctrl_case(rx, name);
	else
		T_FAIL("unknown case %s", name);
	h_unload(&P);
	if (!rx)
		_exit(0);
	if (!strcmp(name, "peer_killed")) {
		int st;

		waitpid(HP.child, &st, 0);
		T_ASSERT(WIFSIGNALED(st));
	} else {
		h_pair_join(&HP, DEADLINE);
	}
	t_log("PASS %s", name);
	return T_EXIT_PASS;
}
