// SPDX-License-Identifier: MIT
/*
 * listen / connect / accept, non-blocking as NCCL wants: each call does what
 * it can without waiting and returns a NULL comm until the connection is
 * ready. A connection is one control socket plus nsocks data sockets; each
 * starts with a hello carrying the listener's secret from the handle, so a
 * stray or stale connection is refused before it becomes a comm.
 *
 * Fused devices: the listener listens on every member NIC's address and
 * answers the control hello with those addresses (struct dm_addrs); the
 * connector then opens data socket i from its member i % n to the
 * listener's member i % m, each bound to the member's address so it leaves
 * through that NIC. IPv4 and IPv6 alike (union dm_addr).
 */
#include "conn/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DM_MAX_PENDING 64
#define DM_MAX_GROUPS 16
/*
 * Connections that have not sent their hello are the listener's weak spot:
 * anyone who can reach the port can open them and send nothing. A real peer
 * sends its hello the moment its connect completes, so: a short deadline for
 * it (DM_HELLO_MS, at most NCCL_DEVMEM_TIMEOUT_MS), at most
 * DM_MAX_PENDING_PER_SRC waiting per source address, and when the table is
 * full the oldest waiter makes room for the newcomer. Idle connections then
 * only ever cost the real peer one accept pass, never a place in the queue.
 */
#define DM_HELLO_MS 5000
#define DM_LISTEN_BACKLOG 1024	/* the kernel caps it at net.core.somaxconn */
#define DM_MAX_PENDING_PER_SRC 32

struct dm_pending {
	int fd;
	size_t got;
	uint64_t since_ms;
	uint64_t seq;		/* accept order: eviction takes the longest waiter */
	union dm_addr src;
	uint8_t buf[DM_HELLO_LEN];
};

struct dm_group {
	uint64_t conn_id;
	uint64_t since_ms;
	int ctrl_fd;
	int data_fd[DM_MAX_SOCKS];
	int have;
};

struct dm_listen {
	int fd[DM_MAX_MEMBERS];	/* one per member NIC; [0] is the handle's */
	int nfd;
	uint8_t addrs[DM_ADDRS_LEN];	/* encoded struct dm_addrs: the reply to a control hello */
	int dev;
	uint64_t secret;
	int nsocks;
	uint32_t max_chunk;
	struct dm_pending pend[DM_MAX_PENDING];
	int npend;
	struct dm_group grp[DM_MAX_GROUPS];
	int ngrp;
	int tclass;		/* NCCL's traffic class for accepted comms */
	uint64_t dropped;	/* idle handshakes evicted or expired */
	uint64_t accepted;
};

void dm_listen_set_tclass(struct dm_listen *l, int tclass)
{
	l->tclass = tclass;
}

int dm_listen_tclass(const struct dm_listen *l)
{
	return l->tclass;
}

struct dm_connect_state {
	int fd[1 + DM_MAX_SOCKS];	/* [0] = control */
	size_t sent[1 + DM_MAX_SOCKS];
	uint8_t hello[1 + DM_MAX_SOCKS][DM_HELLO_LEN];
	uint8_t addrs[DM_ADDRS_LEN];	/* the listener's members, before any data socket */
	size_t addrs_got;
	uint8_t ack[DM_ACK_LEN];
	size_t ack_got;
	int nfd;		/* sockets opened so far: 1 until the addresses came */
	int nsocks;		/* data sockets to open */
	int dev;
	struct dm_hello tmpl;
	uint64_t since_ms;
	char peer[64];
};

static void peer_str(int fd, char *buf, size_t len)
{
	union dm_addr sa;
	socklen_t sl = sizeof(sa);

	if (getpeername(fd, &sa.sa, &sl))
		snprintf(buf, len, "?");
	else
		dm_addr_str(&sa, buf, len);
}

/* Data sockets per comm: a multiple of the members, so each link carries as many. */
static int fused_nsocks(int want, int members)
{
	int n = want < members ? members : want;

	n = DM_DIV_ROUND_UP(n, members) * members;
	while (n > DM_MAX_SOCKS)
		n -= members;
	return n;
}

static int listen_one(const struct dm_dev *m, union dm_addr *bound)
{
	union dm_addr sa = m->addr;
	socklen_t sl = sizeof(*bound);
	int one = 1, fd, err;

	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	dm_addr_set_port(&sa, 0);
	/*
	 * A deep backlog: idle connections that fill it make the kernel drop
	 * a real peer's SYN, which then waits a second for its retransmit
	 * (plugin_fault_idle_flood: 200 of them, connect 1.01 s with 128).
	 */
	if (bind(fd, &sa.sa, dm_addr_len(&sa)) || listen(fd, DM_LISTEN_BACKLOG) ||
	    getsockname(fd, &bound->sa, &sl)) {
		err = -errno;
		DM_WARN("listen on %s failed: %s", m->name, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static int random64(uint64_t *v)
{
	if (getrandom(v, sizeof(*v), 0) != sizeof(*v))
		return -errno ? -errno : -EIO;
	return 0;
}

int dm_listen(int dev, struct dm_handle *h, struct dm_listen **out)
{
	const struct dm_dev *d = dm_dev_get(dev);
	struct dm_addrs as = { .count = (uint8_t)d->nmembers };
	union dm_addr first;
	struct dm_listen *l;
	int err, i;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->dev = dev;
	l->tclass = NCCL_NET_TRAFFIC_CLASS_UNDEF;
	l->nsocks = fused_nsocks(dm_cfg.nsocks, d->nmembers);
	l->max_chunk = dm_cfg.chunk;
	err = random64(&l->secret);
	if (err)
		goto err_free;
	as.family = d->addr.sa.sa_family == AF_INET6 ? 6 : 4;
	for (i = 0; i < d->nmembers; i++) {
		union dm_addr bound;
		const void *b;
		size_t bl;

		err = listen_one(dm_dev_member(dev, i), &bound);
		if (err < 0)
			goto err_close;
		l->fd[l->nfd++] = err;
		if (!i)
			first = bound;
		b = dm_addr_bytes(&bound, &bl);
		memcpy(as.m[i].addr, b, bl);
		as.m[i].port = dm_addr_port(&bound);
	}
	dm_addrs_encode(&as, l->addrs);
	memset(h, 0, sizeof(*h));
	h->magic = DM_HANDLE_MAGIC;
	h->version = DM_PROTO_VERSION;
	h->nsocks = (uint16_t)l->nsocks;
	h->addr = first;
	h->max_chunk = l->max_chunk;
	h->secret = l->secret;
	*out = l;
	return 0;

err_close:
	while (l->nfd)
		close(l->fd[--l->nfd]);
err_free:
	free(l);
	return err;
}

static void group_close(struct dm_group *g)
{
	if (g->ctrl_fd >= 0)
		close(g->ctrl_fd);
	g->ctrl_fd = -1;
	for (int i = 0; i < DM_MAX_SOCKS; i++) {
		if (g->data_fd[i] >= 0)
			close(g->data_fd[i]);
		g->data_fd[i] = -1;
	}
}

void dm_listen_close(struct dm_listen *l)
{
	if (!l)
		return;
	for (int i = 0; i < l->npend; i++)
		close(l->pend[i].fd);
	for (int i = 0; i < l->ngrp; i++)
		group_close(&l->grp[i]);
	for (int i = 0; i < l->nfd; i++)
		close(l->fd[i]);
	free(l);
}

static void reject(int fd, unsigned status, const char *peer)
{
	struct dm_ack a = { .version = DM_PROTO_VERSION, .status = (uint16_t)status };
	uint8_t b[DM_ACK_LEN];

	DM_WARN("refused connection from %s: %s", peer, dm_ack_status_str(status));
	dm_ack_encode(&a, b);
	if (send(fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the peer then sees a reset instead of our reason */
	}
	close(fd);
}

/* Validates a complete hello and files the socket into its group. Consumes fd. */
static void hello_done(struct dm_listen *l, int fd, const uint8_t *buf)
{
	struct dm_group *g = NULL;
	struct dm_hello h;
	char peer[64];
	int i;

	peer_str(fd, peer, sizeof(peer));
	if (dm_hello_decode(buf, &h)) {
		DM_WARN("refused connection from %s: not a " DM_NAME " plugin handshake", peer);
		close(fd);
		return;
	}
	if (h.version != DM_PROTO_VERSION)
		return reject(fd, DM_ACK_BAD_VERSION, peer);
	if (h.secret != l->secret)
		return reject(fd, DM_ACK_BAD_SECRET, peer);
	if (h.nsocks != l->nsocks || h.max_chunk != l->max_chunk || h.kind > DM_SOCK_DATA ||
	    (h.kind == DM_SOCK_DATA && h.index >= l->nsocks))
		return reject(fd, DM_ACK_BAD_PARAMS, peer);
	for (i = 0; i < l->ngrp; i++)
		if (l->grp[i].conn_id == h.conn_id)
			g = &l->grp[i];
	if (!g) {
		if (l->ngrp == DM_MAX_GROUPS) {
			DM_WARN("refused connection from %s: too many half-open connections", peer);
			close(fd);
			return;
		}
		g = &l->grp[l->ngrp++];
		g->conn_id = h.conn_id;
		g->since_ms = dm_now_ms();
		g->ctrl_fd = -1;
		for (i = 0; i < DM_MAX_SOCKS; i++)
			g->data_fd[i] = -1;
	}
	if (h.kind == DM_SOCK_CTRL ? g->ctrl_fd >= 0 : g->data_fd[h.index] >= 0) {
		DM_WARN("refused connection from %s: duplicate socket in one connection", peer);
		close(fd);
		return;
	}
	/* where the data sockets go; DM_ADDRS_LEN into a fresh socket's empty buffer cannot block */
	if (h.kind == DM_SOCK_CTRL &&
	    send(fd, l->addrs, DM_ADDRS_LEN, MSG_DONTWAIT | MSG_NOSIGNAL) != DM_ADDRS_LEN) {
		DM_WARN("connection from %s: cannot send the member addresses: %s", peer,
			strerror(errno));
		close(fd);
		return;
	}
	if (h.kind == DM_SOCK_CTRL)
		g->ctrl_fd = fd;
	else
		g->data_fd[h.index] = fd;
	g->have++;
}

static uint64_t hello_ms(void)
{
	return (uint64_t)(dm_cfg.timeout_ms < DM_HELLO_MS ? dm_cfg.timeout_ms : DM_HELLO_MS);
}

/* Said once per listener (a flood must not flood the log), then counted. */
static void idle_dropped(struct dm_listen *l, const char *peer, const char *why)
{
	if (!l->dropped++)
		DM_WARN("listener on dev %d: connection from %s %s (%llu ms for a hello); dropped, as are further idle handshakes (counted, not logged)",
			l->dev, peer, why, (unsigned long long)hello_ms());
}

/* Closes the longest-waiting handshake (of @src only, when given). */
static void pending_evict(struct dm_listen *l, const union dm_addr *src)
{
	int oldest = -1;
	char peer[64];

	for (int i = 0; i < l->npend; i++)
		if ((!src || dm_addr_same_host(&l->pend[i].src, src)) &&
		    (oldest < 0 || l->pend[i].seq < l->pend[oldest].seq))
			oldest = i;
	if (oldest < 0)
		return;
	peer_str(l->pend[oldest].fd, peer, sizeof(peer));
	idle_dropped(l, peer, src ? "holds too many waiting handshakes" :
				    "was the oldest of a full handshake table");
	close(l->pend[oldest].fd);
	l->pend[oldest] = l->pend[--l->npend];
}

static void pending_add(struct dm_listen *l, int fd, uint64_t now)
{
	union dm_addr sa = { 0 };
	socklen_t sl = sizeof(sa);
	uint8_t hello[DM_HELLO_LEN];
	int from_src = 0;

	/* a real peer's hello is usually there already: it needs no slot */
	if (recv(fd, hello, sizeof(hello), MSG_PEEK | MSG_DONTWAIT) == (ssize_t)sizeof(hello) &&
	    recv(fd, hello, sizeof(hello), MSG_DONTWAIT) == (ssize_t)sizeof(hello)) {
		hello_done(l, fd, hello);
		return;
	}
	getpeername(fd, &sa.sa, &sl);
	for (int i = 0; i < l->npend; i++)
		from_src += dm_addr_same_host(&l->pend[i].src, &sa);
	if (from_src >= DM_MAX_PENDING_PER_SRC)
		pending_evict(l, &sa);
	if (l->npend == DM_MAX_PENDING)
		pending_evict(l, NULL);
	l->pend[l->npend++] = (struct dm_pending){ .fd = fd, .since_ms = now,
						   .seq = l->accepted++, .src = sa };
}

static void pending_progress(struct dm_listen *l, uint64_t now)
{
	for (int i = 0; i < l->npend;) {
		struct dm_pending *p = &l->pend[i];
		ssize_t n = recv(p->fd, p->buf + p->got, DM_HELLO_LEN - p->got, MSG_DONTWAIT);
		bool drop = false;
		char peer[64];

		if (n > 0)
			p->got += n;
		if (p->got == DM_HELLO_LEN) {
			hello_done(l, p->fd, p->buf);
		} else if (n < 0 && errno == EFAULT) {
			peer_str(p->fd, peer, sizeof(peer));
			DM_WARN("handshake from %s unreadable: %s", peer,
				DM_EFAULT_WHY("the connection"));
			drop = true;
		} else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			peer_str(p->fd, peer, sizeof(peer));
			DM_WARN("connection from %s closed during the handshake (%zu of %d bytes)",
				peer, p->got, DM_HELLO_LEN);
			drop = true;
		} else if (now > p->since_ms && now - p->since_ms > hello_ms()) {
			peer_str(p->fd, peer, sizeof(peer));
			idle_dropped(l, peer, "sent no complete handshake in time");
			drop = true;
		} else {
			i++;
			continue;
		}
		if (drop)
			close(p->fd);
		l->pend[i] = l->pend[--l->npend];
	}
}

int dm_accept(struct dm_listen *l, struct dm_comm **out)
{
	uint64_t now = dm_now_ms();
	int fd, err;

	*out = NULL;
	for (int k = 0; k < l->nfd; k++) {
		while ((fd = accept4(l->fd[k], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			pending_add(l, fd, now);
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
		    errno != EINTR) {
			DM_WARN("accept failed: %s", strerror(errno));
			return -errno;
		}
	}
	pending_progress(l, now);
	for (int i = 0; i < l->ngrp; i++) {
		struct dm_group *g = &l->grp[i];
		struct dm_ack a = { .version = DM_PROTO_VERSION, .status = DM_ACK_OK };
		uint8_t b[DM_ACK_LEN];
		struct dm_comm *c;

		if (g->have < 1 + l->nsocks) {
			if (now > g->since_ms && now - g->since_ms > (uint64_t)dm_cfg.timeout_ms) {
				DM_WARN("connection %llx got %d of %d sockets in %d ms; dropped",
					(unsigned long long)g->conn_id, g->have, 1 + l->nsocks,
					dm_cfg.timeout_ms);
				group_close(g);
				l->grp[i--] = l->grp[--l->ngrp];
			}
			continue;
		}
		err = dm_comm_create(true, l->dev, g->ctrl_fd, g->data_fd, l->nsocks, l->max_chunk,
				     &c);
		if (err) {
			group_close(g);
			l->grp[i] = l->grp[--l->ngrp];
			return err;
		}
		a.mode = c->mode;
		dm_ack_encode(&a, b);
		/* 12 bytes into a fresh socket's empty send buffer cannot block */
		if (send(c->ctrl_fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(b)) {
			err = -errno ? -errno : -EIO;
			DM_WARN("handshake reply failed: %s", strerror(-err));
			dm_comm_destroy(c);	/* closes the group's fds */
			l->grp[i] = l->grp[--l->ngrp];
			return err;
		}
		l->grp[i] = l->grp[--l->ngrp];
		*out = c;
		return 0;
	}
	return 0;
}

/* ---- connect ---- */

static void stage_free(struct dm_connect_state *st)
{
	for (int i = 0; i < st->nfd; i++)
		if (st->fd[i] >= 0)
			close(st->fd[i]);
	free(st);
}

/* Socket @i of the connection, from @src to @dst, hello ready to send. */
static int stage_open(struct dm_connect_state *st, int i, const struct dm_dev *src_dev,
		      const union dm_addr *dst)
{
	union dm_addr src = src_dev->addr;
	struct dm_hello hello = st->tmpl;
	char to[64];
	int fd;

	dm_addr_str(dst, to, sizeof(to));
	if (src.sa.sa_family != dst->sa.sa_family) {
		DM_WARN("connect to %s: %s is %s, the peer listens on %s (set NCCL_DEVMEM_FAMILY alike on every rank)",
			to, src_dev->name, dm_family_name(src.sa.sa_family),
			dm_family_name(dst->sa.sa_family));
		return -EAFNOSUPPORT;
	}
	fd = socket(src.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	st->fd[i] = fd;
	st->nfd = i + 1;
	dm_addr_set_port(&src, 0);
	/* leave through the NIC NCCL picked (a fused device: this member), not what the route says */
	if (bind(fd, &src.sa, dm_addr_len(&src)) ||
	    (connect(fd, &dst->sa, dm_addr_len(dst)) && errno != EINPROGRESS)) {
		int err = -errno;

		DM_WARN("connect from %s to %s failed: %s", src_dev->name, to, strerror(errno));
		return err;
	}
	hello.kind = i == 0 ? DM_SOCK_CTRL : DM_SOCK_DATA;
	hello.index = (uint8_t)(i == 0 ? 0 : i - 1);
	dm_hello_encode(&hello, st->hello[i]);
	return 0;
}

static int stage_start(int dev, struct dm_handle *h, struct dm_connect_state **out)
{
	struct dm_connect_state *st;
	int err;

	if (h->magic != DM_HANDLE_MAGIC || h->version != DM_PROTO_VERSION) {
		DM_WARN("connect: handle is not from this plugin version (magic %08x version %u, expected %08x %u)",
			h->magic, h->version, DM_HANDLE_MAGIC, DM_PROTO_VERSION);
		return -EINVAL;
	}
	if (h->nsocks < 1 || h->nsocks > DM_MAX_SOCKS || h->max_chunk < 4096 ||
	    h->max_chunk > (64u << 20) || h->max_chunk % 4096 ||
	    (h->addr.sa.sa_family != AF_INET && h->addr.sa.sa_family != AF_INET6)) {
		DM_WARN("connect: handle has invalid parameters (nsocks %u, chunk %u, family %d)",
			h->nsocks, h->max_chunk, h->addr.sa.sa_family);
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->tmpl = (struct dm_hello){ .version = DM_PROTO_VERSION, .nsocks = h->nsocks,
				      .max_chunk = h->max_chunk, .secret = h->secret };
	err = random64(&st->tmpl.conn_id);
	if (err)
		goto err_free;
	st->dev = dev;
	st->nsocks = h->nsocks;
	st->since_ms = dm_now_ms();
	dm_addr_str(&h->addr, st->peer, sizeof(st->peer));
	for (int i = 0; i < 1 + DM_MAX_SOCKS; i++)
		st->fd[i] = -1;
	/* the control socket first: its reply says where the data sockets go */
	err = stage_open(st, 0, dm_dev_member(dev, 0), &h->addr);
	if (err)
		goto err_free;
	*out = st;
	return 0;

err_free:
	stage_free(st);
	return err;
}

/* The member addresses came: data socket i from our member i % n to theirs i % m. */
static int stage_data(struct dm_connect_state *st, const struct dm_handle *h)
{
	const struct dm_dev *d = dm_dev_get(st->dev);
	struct dm_addrs as;
	int err;

	if (dm_addrs_decode(st->addrs, &as) ||
	    as.family != (h->addr.sa.sa_family == AF_INET6 ? 6 : 4)) {
		DM_WARN("%s answered the handshake with garbage instead of its addresses", st->peer);
		return -EPROTO;
	}
	for (int i = 0; i < st->nsocks; i++) {
		union dm_addr dst;
		int m = i % as.count;

		dm_addr_set(&dst, as.family == 6 ? AF_INET6 : AF_INET, as.m[m].addr, as.m[m].port);
		err = stage_open(st, 1 + i, dm_dev_member(st->dev, i % d->nmembers), &dst);
		if (err)
			return err;
	}
	if (d->nmembers > 1 || as.count > 1)
		DM_INFO("connect to %s: %d data sockets over our %d and the peer's %d links",
			st->peer, st->nsocks, d->nmembers, as.count);
	return 0;
}

/* 1 = all hellos written, 0 = not yet, <0 = failed */
static int stage_send(struct dm_connect_state *st)
{
	int all = 1;

	for (int i = 0; i < st->nfd; i++) {
		struct pollfd pfd = { .fd = st->fd[i], .events = POLLOUT };
		socklen_t sl = sizeof(int);
		int soerr = 0;
		ssize_t n;

		if (st->sent[i] == DM_HELLO_LEN)
			continue;
		all = 0;
		if (poll(&pfd, 1, 0) <= 0)
			continue;
		getsockopt(st->fd[i], SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			DM_WARN("connect to %s failed: %s", st->peer, strerror(soerr));
			return -soerr;
		}
		n = send(st->fd[i], st->hello[i] + st->sent[i], DM_HELLO_LEN - st->sent[i],
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			DM_WARN("handshake to %s failed: %s", st->peer, strerror(errno));
			return -errno;
		}
		if (n > 0)
			st->sent[i] += n;
	}
	return all;
}

/* Reads into @buf up to @want bytes on the control socket: 1 = complete, 0 = not yet, <0 = failed. */
static int stage_read(struct dm_connect_state *st, uint8_t *buf, size_t *got, size_t want)
{
	ssize_t n = recv(st->fd[0], buf + *got, want - *got, MSG_DONTWAIT);

	if (n == 0) {
		DM_WARN("%s closed the connection during the handshake", st->peer);
		return -ECONNRESET;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		int err = -errno;

		DM_WARN("handshake with %s failed: %s%s%s", st->peer, strerror(errno),
			errno == EFAULT ? ": " : "",
			errno == EFAULT ? DM_EFAULT_WHY("the control connection") : "");
		return err;
	}
	if (n > 0)
		*got += n;
	return *got == want;
}

/* The listener's answer: 0 when it accepted, else why not. */
static int stage_ack(struct dm_connect_state *st, const uint8_t *b, enum dm_mode *mode)
{
	struct dm_ack a;

	if (dm_ack_decode(b, &a)) {
		DM_WARN("%s answered the handshake with garbage", st->peer);
		return -EPROTO;
	}
	if (a.status != DM_ACK_OK) {
		DM_WARN("%s refused the connection: %s", st->peer, dm_ack_status_str(a.status));
		return -DM_EREMOTE;
	}
	*mode = (enum dm_mode)a.mode;
	return 0;
}

/* Until the member addresses are in: 1 = data sockets opened, 0 = not yet, <0 = failed. */
static int stage_addrs(struct dm_connect_state *st, const struct dm_handle *h)
{
	enum dm_mode mode;
	int err;

	if (st->nfd > 1)
		return 1;
	/* a refusal (an ack) comes instead of the addresses: read only its length first */
	err = stage_read(st, st->addrs, &st->addrs_got,
			 st->addrs_got < DM_ACK_LEN ? DM_ACK_LEN : DM_ADDRS_LEN);
	if (err < 0 || st->addrs_got < DM_ACK_LEN)
		return err;
	if (!dm_ack_decode(st->addrs, &(struct dm_ack){ 0 })) {
		err = stage_ack(st, st->addrs, &mode);
		return err ? err : -EPROTO;	/* an OK before the addresses is not our protocol */
	}
	if (st->addrs_got < DM_ADDRS_LEN)
		return 0;
	err = stage_data(st, h);
	return err ? err : 1;
}

int dm_connect(int dev, struct dm_handle *h, struct dm_comm **out)
{
	struct dm_connect_state *st = h->stage;
	int data_fd[DM_MAX_SOCKS];
	enum dm_mode mode;
	int err;

	*out = NULL;
	if (!st) {
		err = stage_start(dev, h, &st);
		if (err)
			return err;
		h->stage = st;
	}
	err = stage_send(st);
	if (err < 0)
		goto err_free;
	err = stage_addrs(st, h);
	if (err <= 0)
		goto check;
	err = stage_send(st);
	if (err <= 0)
		goto check;
	err = stage_read(st, st->ack, &st->ack_got, DM_ACK_LEN);
	if (err <= 0)
		goto check;
	err = stage_ack(st, st->ack, &mode);
	if (err)
		goto err_free;
	for (int i = 1; i < st->nfd; i++)
		data_fd[i - 1] = st->fd[i];
	err = dm_comm_create(false, dev, st->fd[0], data_fd, st->nfd - 1, h->max_chunk, out);
	if (err)
		goto err_free;
	DM_INFO("send comm %p to %s: %d data sockets, receiver uses %s mode", (void *)*out,
		st->peer, st->nfd - 1, dm_mode_name(mode));
	st->nfd = 0;	/* fds now belong to the comm */
	stage_free(st);
	h->stage = NULL;
	return 0;

check:
	if (err < 0)
		goto err_free;
	if (dm_now_ms() - st->since_ms > (uint64_t)dm_cfg.timeout_ms) {
		DM_WARN("connection to %s not established in %d ms", st->peer, dm_cfg.timeout_ms);
		err = -ETIMEDOUT;
		goto err_free;
	}
	return 0;

err_free:
	stage_free(st);
	h->stage = NULL;
	return err;
}
