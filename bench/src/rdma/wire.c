// SPDX-License-Identifier: MIT
/*
 * The RDMA run's side channel: fixed-size messages over the flow's TCP
 * connection. Little-endian fields, a magic and a version, so that the two
 * ends may be different builds on different hosts, and so that a TCP sender
 * pointed at an RDMA run's port is recognised instead of misread.
 */
#include "rdma_bench.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#define WIRE_LEN	256
#define WIRE_HDR	8
#define WIRE_IO_WAIT_S	10.0	/* a message started is finished promptly */

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void encode(uint8_t *b, const struct rxb_msg *m)
{
	uint8_t *p = b + WIRE_HDR;

	memset(b, 0, WIRE_LEN);
	put32(b, RXB_WIRE_MAGIC);
	put32(b + 4, (uint32_t)m->type | RXB_WIRE_VERSION << 16);
	switch (m->type) {
	case RXB_MSG_HELLO:
		put32(p, m->u.hello.qpn);
		put32(p + 4, m->u.hello.psn);
		put32(p + 8, m->u.hello.lid);
		put32(p + 12, m->u.hello.mtu);
		put32(p + 16, m->u.hello.grh);
		memcpy(p + 20, m->u.hello.gid, 16);
		break;
	case RXB_MSG_REGION:
		put64(p, m->u.region.addr);
		put32(p + 8, m->u.region.rkey);
		put32(p + 12, m->u.region.slot);
		put32(p + 16, m->u.region.nslots);
		break;
	case RXB_MSG_CREDIT:
		put32(p, m->u.credits);
		break;
	case RXB_MSG_DONE:
		put64(p, m->u.done.bytes);
		put64(p + 8, m->u.done.writes);
		break;
	case RXB_MSG_ERROR:
		memcpy(p, m->u.error, strnlen(m->u.error, sizeof(m->u.error) - 1));
		break;
	case RXB_MSG_STOP:
		break;
	}
}

static int decode(const uint8_t *b, struct rxb_msg *m)
{
	const uint8_t *p = b + WIRE_HDR;
	uint32_t tv = get32(b + 4);

	memset(m, 0, sizeof(*m));
	if (get32(b) != RXB_WIRE_MAGIC || tv >> 16 != RXB_WIRE_VERSION)
		return -EPROTO;
	m->type = (enum rxb_wire_type)(tv & 0xffff);
	switch (m->type) {
	case RXB_MSG_HELLO:
		m->u.hello.qpn = get32(p);
		m->u.hello.psn = get32(p + 4);
		m->u.hello.lid = get32(p + 8);
		m->u.hello.mtu = get32(p + 12);
		m->u.hello.grh = get32(p + 16);
		memcpy(m->u.hello.gid, p + 20, 16);
		return 0;
	case RXB_MSG_REGION:
		m->u.region.addr = get64(p);
		m->u.region.rkey = get32(p + 8);
		m->u.region.slot = get32(p + 12);
		m->u.region.nslots = get32(p + 16);
		return 0;
	case RXB_MSG_CREDIT:
		m->u.credits = get32(p);
		return 0;
	case RXB_MSG_DONE:
		m->u.done.bytes = get64(p);
		m->u.done.writes = get64(p + 8);
		return 0;
	case RXB_MSG_ERROR:
		memcpy(m->u.error, p, sizeof(m->u.error) - 1);
		return 0;
	case RXB_MSG_STOP:
		return 0;
	}
	return -EPROTO;
}

/* Waits for @events on @sk up to @wait_s; 0 when ready, -EAGAIN, -EINTR. */
static int wait_sock(int sk, short events, double wait_s)
{
	double end = rxb_now() + wait_s;
	struct pollfd pfd = { .fd = sk, .events = events };

	for (;;) {
		double left = end - rxb_now();
		int r;

		if (rxb_interrupted)
			return -EINTR;
		r = poll(&pfd, 1, left > 0.2 ? 200 : left > 0 ? (int)(left * 1000) : 0);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (left <= 0)
			return -EAGAIN;
	}
}

int rxb_wire_send(int sk, const struct rxb_msg *m)
{
	uint8_t b[WIRE_LEN];
	size_t done = 0;

	encode(b, m);
	while (done < WIRE_LEN) {
		ssize_t n = send(sk, b + done, WIRE_LEN - done, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		n = wait_sock(sk, POLLOUT, WIRE_IO_WAIT_S);
		if (n)
			return n == -EAGAIN ? -ETIMEDOUT : (int)n;
	}
	return 0;
}

int rxb_wire_recv(int sk, struct rxb_msg *m, double wait_s)
{
	uint8_t b[WIRE_LEN];
	size_t done = 0;
	int err;

	err = wait_sock(sk, POLLIN, wait_s);
	if (err)
		return err;
	while (done < WIRE_LEN) {
		ssize_t n = recv(sk, b + done, WIRE_LEN - done, MSG_DONTWAIT);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_sock(sk, POLLIN, WIRE_IO_WAIT_S);
		if (err)
			return err == -EAGAIN ? -ETIMEDOUT : err;
	}
	return decode(b, m);
}

void rxb_wire_error(int sk, const char *text)
{
	struct rxb_msg m = { .type = RXB_MSG_ERROR };

	snprintf(m.u.error, sizeof(m.u.error), "%s", text);
	rxb_wire_send(sk, &m);
}
