// SPDX-License-Identifier: MIT
/*
 * One gpudd connection: who it is (SO_PEERCRED, checked against the group
 * at hello), its requests, and the release of everything it got when the
 * socket closes, however the process ended.
 *
 * A request is one datagram of at most GPUD_PROTO_REQ_MAX bytes with at most
 * one fd; anything else is answered with an error naming what was wrong and
 * the connection goes on. Replies are sent without blocking: a client that
 * does not read its replies is dropped, never waited for.
 */
#include "gpudd.h"

#include "nic/nic_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define WHY_MAX 768

struct req {
	const struct gpud_proto_msg *m;
	int fd;			/* the one passed fd, or -1 */
	struct gpud_proto_buf *rep;
	char why[WHY_MAX];
};

static int failf(struct req *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failf(struct req *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return err;
}

bool gpudd_client_allowed(const struct gpudd *d, int fd, const struct ucred *cred, char *why,
			  size_t len)
{
	gid_t groups[256];
	socklen_t gl = sizeof(groups);

	if (cred->uid == 0)
		return true;
	if (d->cfg.have_gid) {
		if (cred->gid == d->cfg.gid)
			return true;
		if (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl))
			for (size_t i = 0; i < gl / sizeof(gid_t); i++)
				if (groups[i] == d->cfg.gid)
					return true;
		snprintf(why, len, "uid %u is neither root nor in group %s: add the user "
			 "to it (usermod -aG %s USER, then log in again), or start gpudd with "
			 "--group GROUP", cred->uid, d->cfg.group, d->cfg.group);
	} else {
		snprintf(why, len, "only root may use this agent: group %s does not exist "
			 "on this node (groupadd -r %s, add the job's users to it, restart gpudd)",
			 d->cfg.group, d->cfg.group);
	}
	return false;
}

static bool same_netns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &a) || stat("/proc/self/ns/net", &b))
		return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int gpudd_client_accept(struct gpudd *d)
{
	struct gpudd_client *c;
	socklen_t cl;
	int fd;

	fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (d->nclients == GPUDD_MAX_CLIENTS) {
		gpudd_log("refusing a connection: %d clients already", GPUDD_MAX_CLIENTS);
		close(fd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	cl = sizeof(c->cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &cl)) {
		close(fd);
		free(c);
		return 0;
	}
	/* Each request's receive time, to tell its wait behind others from its service. */
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 }, sizeof(int));
	c->fd = fd;
	c->id = ++d->next_id;
	c->since = gpudd_now();
	c->same_netns = same_netns(c->cred.pid);
	if (!gpudd_client_allowed(d, fd, &c->cred, c->refused, sizeof(c->refused)))
		gpudd_log("pid %d uid %u refused: %s", (int)c->cred.pid, c->cred.uid, c->refused);
	d->clients[d->nclients++] = c;
	return 0;
}

/* ---- requests ---- */

static int nic_for(struct gpudd *d, struct gpudd_client *c, struct req *r,
		   struct gpudd_nic **n)
{
	if (!c->same_netns)
		return failf(r, -EXDEV, "gpudd serves the network namespace it runs in, and pid "
			     "%d is in another: run a gpudd in that namespace (gpudd -f -s PATH) "
			     "and set GPUD_AGENT=PATH", (int)c->cred.pid);
	return gpudd_nic_get(d, r->m->ifname, n, r->why, sizeof(r->why));
}

static int do_hello(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	uint32_t v = gpud_proto_pick_version(r->m->vmin, r->m->vmax, GPUD_PROTO_VERSION_MIN,
					     GPUD_PROTO_VERSION_MAX);

	(void)d;
	if (!v)
		return failf(r, -EPROTONOSUPPORT, "gpudd speaks protocol versions %d..%d, the "
			     "client %u..%u: install matching libgpudirect and gpudd versions",
			     GPUD_PROTO_VERSION_MIN, GPUD_PROTO_VERSION_MAX, r->m->vmin,
			     r->m->vmax);
	c->hello = true;
	c->version = v;
	c->features = r->m->features & GPUD_F_ALL;
	gpud_proto_put_u32(r->rep, GPUD_A_VMAX, v);
	gpud_proto_put_u64(r->rep, GPUD_A_FEATURES, c->features);
	gpudd_log("client %llu: pid %d uid %u, protocol %u, features 0x%llx",
		  (unsigned long long)c->id, (int)c->cred.pid, c->cred.uid, v,
		  (unsigned long long)c->features);
	return 0;
}

static int held_by_other(const struct gpudd_nic *n, unsigned int q, struct req *r)
{
	return failf(r, -EEXIST, "queue %u of %s is held by another client (pid %d)", q,
		     n->ifname, (int)n->pool.pid[q]);
}

static int do_alloc(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	const struct gpud_proto_msg *m = r->m;
	unsigned int got[GPUD_PROTO_MAX_QUEUES], ngot = 0, bad = 0;
	struct gpudd_pool before;
	struct gpudd_nic *n;
	int err;

	err = nic_for(d, c, r, &n);
	if (err)
		return err;
	before = n->pool;
	if (gpud_proto_has(m, GPUD_A_NQUEUES)) {
		err = gpudd_pool_alloc_n(&n->pool, c->id, c->cred.pid, m->nqueues, got);
		ngot = m->nqueues;
		if (err)
			return failf(r, err, "%s: %u queue(s) asked, only %u of pool %u-%u free",
				     n->ifname, m->nqueues,
				     n->pool.last - n->pool.first + 1 - gpudd_pool_nheld(&n->pool),
				     n->pool.first, n->pool.last);
	} else if (gpud_proto_has(m, GPUD_A_RANK)) {
		err = gpudd_pool_alloc_rank(&n->pool, c->id, c->cred.pid, m->rank, got);
		ngot = 1;
		if (err == -ERANGE)
			return failf(r, err, "%s: no queue for local rank %u, the pool %u-%u has %u",
				     n->ifname, m->rank, n->pool.first, n->pool.last,
				     n->pool.last - n->pool.first + 1);
		if (err == -EEXIST)
			return held_by_other(n, n->pool.last - m->rank, r);
	} else {
		err = gpudd_pool_alloc_list(&n->pool, c->id, c->cred.pid, m->queues, m->nq, &bad);
		memcpy(got, m->queues, m->nq * sizeof(got[0]));
		ngot = m->nq;
		if (err == -ERANGE)
			return failf(r, err, "queue %u of %s is not in the pool %u-%u", bad,
				     n->ifname, n->pool.first, n->pool.last);
		if (err == -EEXIST)
			return held_by_other(n, bad, r);
		if (err)
			return failf(r, err, "queue %u listed twice", bad);
	}
	err = gpudd_nic_rss_update(n, r->why, sizeof(r->why));
	if (err) {
		n->pool = before;	/* nothing taken */
		gpudd_nic_rss_update(n, r->why + strlen(r->why), 0);
		return err;
	}
	for (unsigned int i = 0; i < ngot; i++)
		gpud_proto_put_u32(r->rep, GPUD_A_QUEUE, got[i]);
	gpud_proto_put_u32(r->rep, GPUD_A_IFINDEX, (uint32_t)n->ifindex);
	return 0;
}

static bool bound_queue(const struct gpudd_client *c, const struct gpudd_nic *n, unsigned int q)
{
	for (const struct gpudd_bind *b = c->binds; b; b = b->next)
		for (unsigned int i = 0; b->nic == n && i < b->nq; i++)
			if (b->queues[i] == q)
				return true;
	return false;
}

static int do_free(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	struct gpudd_nic *n;
	int err;

	err = nic_for(d, c, r, &n);
	if (err)
		return err;
	for (unsigned int i = 0; i < r->m->nq; i++) {
		unsigned int q = r->m->queues[i];

		if (q >= n->pool.nrxq || n->pool.conn[q] != c->id)
			return failf(r, -ENOENT, "queue %u of %s is not held by this connection", q,
				     n->ifname);
		if (bound_queue(c, n, q))
			return failf(r, -EBUSY, "queue %u of %s is still bound: unbind first", q,
				     n->ifname);
	}
	for (unsigned int i = 0; i < r->m->nq; i++)
		gpudd_pool_free(&n->pool, c->id, r->m->queues[i]);
	return gpudd_nic_rss_update(n, r->why, sizeof(r->why));
}

static int do_bind(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	const struct gpud_proto_msg *m = r->m;
	struct gpudd_pool before;
	struct gpudd_bind *b;
	struct gpudd_nic *n;
	unsigned int bad = 0;
	char hds_why[256] = "";
	int err;

	err = nic_for(d, c, r, &n);
	if (err)
		return err;
	if (gpud_proto_has(m, GPUD_A_IFINDEX) && m->ifindex != (uint32_t)n->ifindex)
		return failf(r, -ENODEV, "%s is ifindex %d here, the client said %u: is the "
			     "client in another network namespace?", n->ifname, n->ifindex,
			     m->ifindex);
	b = calloc(1, sizeof(*b));
	if (!b)
		return failf(r, -ENOMEM, "out of memory");
	before = n->pool;
	/* Queues not asked for before are taken now, as ALLOC would. */
	err = gpudd_pool_alloc_list(&n->pool, c->id, c->cred.pid, m->queues, m->nq, &bad);
	if (err == -ERANGE)
		err = failf(r, err, "queue %u of %s is not in the pool %u-%u", bad, n->ifname,
			    n->pool.first, n->pool.last);
	else if (err == -EEXIST)
		err = held_by_other(n, bad, r);
	else if (err)
		err = failf(r, err, "queue %u listed twice", bad);
	if (err)
		goto err_free;
	err = gpudd_nic_rss_update(n, r->why, sizeof(r->why));
	if (err)
		goto err_restore;
	/* A driver without header split answers the bind itself, in its words. */
	gpudd_nic_hds_on(n, hds_why, sizeof(hds_why));
	err = gpud_bind_rx_fd(n->ifindex, r->fd, m->queues, m->nq, &b->b);
	if (err) {
		/* The library's text carries the kernel's extack verbatim. */
		failf(r, err, "%s%s%s", gpud_errmsg(), hds_why[0] ? "; header split: " : "",
		      hds_why);
		goto err_restore;
	}
	b->nic = n;
	b->id = gpud_binding_id(b->b);
	b->nq = m->nq;
	memcpy(b->queues, m->queues, m->nq * sizeof(b->queues[0]));
	b->next = c->binds;
	c->binds = b;
	gpud_proto_put_u32(r->rep, GPUD_A_BINDING, b->id);
	gpudd_log("client %llu: dma-buf bound to %u queue(s) of %s: id %u",
		  (unsigned long long)c->id, b->nq, n->ifname, b->id);
	return 0;

err_restore:
	n->pool = before;
	gpudd_nic_rss_update(n, hds_why, sizeof(hds_why));
err_free:
	free(b);
	return err;
}

static int do_unbind(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	(void)d;
	for (struct gpudd_bind **p = &c->binds; *p; p = &(*p)->next) {
		struct gpudd_bind *b = *p;

		if (b->id != r->m->binding)
			continue;
		*p = b->next;
		gpud_binding_free(b->b);
		free(b);
		return 0;
	}
	return failf(r, -ENOENT, "binding %u was not made by this connection", r->m->binding);
}

/* Reads the 4-tuple of the connected TCP socket @fd into @f; proves it is ours. */
static int sock_flow(const struct gpudd *d, int fd, struct gpud_flow *f, char *desc,
		     size_t dlen, struct req *r)
{
	int type = 0, proto = 0, err;
	uint64_t cookie = 0;
	socklen_t ol;

	ol = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol))
		return failf(r, -ENOTSOCK, "flow-add: the fd passed is not a socket");
	ol = sizeof(proto);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &ol);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return failf(r, -EPROTOTYPE, "flow-add: the socket passed is not TCP");
	ol = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &ol) ||
	    cookie != d->netns_cookie)
		return failf(r, -EXDEV, "flow-add: the socket belongs to another network "
			     "namespace than gpudd's");
	err = gpud_flow_of_sock(fd, f);
	if (err == -ENOTCONN)
		return failf(r, err, "flow-add: the socket passed is not connected: rules are "
			     "made only for an established connection");
	if (err == -EAFNOSUPPORT)
		return failf(r, err, "flow-add: not an IP socket");
	if (err)
		return failf(r, err, "flow-add: getsockname: %s", strerror(-err));
	gpud_flow_str(f, desc, dlen);
	return 0;
}

static int do_flow_add(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	unsigned int q = r->m->queues[0];
	struct gpudd_rule *rule;
	struct gpudd_nic *n;
	struct gpud_flow f;
	struct stat st;
	uint32_t loc;
	int err;

	/* closed connections' rules first: their slots may be the ones needed */
	gpudd_conns_sweep_client(d, c);
	rule = calloc(1, sizeof(*rule));
	if (!rule)
		return failf(r, -ENOMEM, "out of memory");
	err = sock_flow(d, r->fd, &f, rule->flow, sizeof(rule->flow), r);
	if (err)
		goto err_free;
	if (fstat(r->fd, &st)) {
		err = failf(r, -errno, "flow-add: fstat of the socket: %s", strerror(errno));
		goto err_free;
	}
	err = nic_for(d, c, r, &n);
	if (err)
		goto err_free;
	if (!gpudd_pool_held_by(&n->pool, c->cred.pid, q)) {
		err = failf(r, -EPERM, "queue %u of %s is not held by this process: allocate "
			    "it first", q, n->ifname);
		goto err_free;
	}
	err = gpud_nic_add_flow(n->nic, &f, q, &loc);
	if (err) {
		failf(r, err, "%s", gpud_errmsg());
		goto err_free;
	}
	rule->nic = n;
	rule->loc = loc;
	rule->queue = q;
	rule->f = f;
	rule->ino = (uint64_t)st.st_ino;
	rule->next = c->rules;
	c->rules = rule;
	gpud_proto_put_u32(r->rep, GPUD_A_RULE, loc);
	gpudd_log("client %llu: rule %u on %s: %s -> queue %u", (unsigned long long)c->id, loc,
		  n->ifname, rule->flow, q);
	return 0;

err_free:
	free(rule);
	return err;
}

static int do_flow_del(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	(void)d;
	for (struct gpudd_rule **p = &c->rules; *p; p = &(*p)->next) {
		struct gpudd_rule *rule = *p;
		int err;

		if (rule->loc != r->m->rule || strcmp(rule->nic->ifname, r->m->ifname))
			continue;
		err = gpud_nic_del_flow(rule->nic->nic, rule->loc);
		if (err)
			return failf(r, err, "%s", gpud_errmsg());
		*p = rule->next;
		free(rule);
		return 0;
	}
	return failf(r, -ENOENT, "rule %u on %s was not made by this connection", r->m->rule,
		     r->m->ifname);
}

static int do_status(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	size_t cap = GPUD_PROTO_REPLY_MAX - 256;
	char *text = malloc(cap);

	(void)c;
	if (!text)
		return failf(r, -ENOMEM, "out of memory");
	gpudd_status_json(d, text, cap);
	gpud_proto_put_str(r->rep, GPUD_A_TEXT, text, cap);
	free(text);
	return 0;
}

static int do_hds(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	struct gpudd_nic *n;
	int err;

	err = nic_for(d, c, r, &n);
	return err ? err : gpudd_nic_hds_on(n, r->why, sizeof(r->why));
}

static int dispatch(struct gpudd *d, struct gpudd_client *c, struct req *r)
{
	static const uint64_t need[GPUD_MSG_TYPE_MAX + 1] = {
		[GPUD_MSG_ALLOC] = GPUD_F_QUEUES, [GPUD_MSG_FREE] = GPUD_F_QUEUES,
		[GPUD_MSG_BIND] = GPUD_F_BIND, [GPUD_MSG_UNBIND] = GPUD_F_BIND,
		[GPUD_MSG_FLOW_ADD] = GPUD_F_FLOW, [GPUD_MSG_FLOW_DEL] = GPUD_F_FLOW,
		[GPUD_MSG_STATUS] = GPUD_F_STATUS, [GPUD_MSG_HDS] = GPUD_F_HDS,
	};
	uint16_t t = r->m->type;

	if (t == GPUD_MSG_HELLO)
		return do_hello(d, c, r);
	if (!c->hello)
		return failf(r, -EPROTO, "%s before hello: say hello first",
			     gpud_proto_type_name(t));
	if (r->m->version != c->version)
		return failf(r, -EPROTO, "message of protocol version %u on a connection that "
			     "agreed on %u", r->m->version, c->version);
	if (!(c->features & need[t]))
		return failf(r, -EOPNOTSUPP, "%s was not agreed at hello (feature 0x%llx)",
			     gpud_proto_type_name(t), (unsigned long long)need[t]);
	switch (t) {
	case GPUD_MSG_ALLOC: return do_alloc(d, c, r);
	case GPUD_MSG_FREE: return do_free(d, c, r);
	case GPUD_MSG_BIND: return do_bind(d, c, r);
	case GPUD_MSG_UNBIND: return do_unbind(d, c, r);
	case GPUD_MSG_FLOW_ADD: return do_flow_add(d, c, r);
	case GPUD_MSG_FLOW_DEL: return do_flow_del(d, c, r);
	case GPUD_MSG_STATUS: return do_status(d, c, r);
	case GPUD_MSG_HDS: return do_hds(d, c, r);
	default: return failf(r, -EPROTO, "unknown request type %u", t);
	}
}

/*
 * Collects the passed fds (at most 4 arrive; any beyond the first is an
 * error) and the kernel's receive time (*queued, CLOCK_REALTIME; 0: none).
 */
static int take_fds(struct msghdr *mh, int *fds, int max, double *queued)
{
	int n = 0;

	*queued = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			*queued = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
			continue;
		}
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

static bool send_reply(struct gpudd_client *c, struct gpud_proto_buf *rep, int err,
		       const char *why)
{
	int len;

	gpud_proto_put_u32(rep, GPUD_A_ERRNO, (uint32_t)err);
	if (err)
		gpud_proto_put_str(rep, GPUD_A_MSG, why, GPUD_PROTO_MSG_MAX);
	len = gpud_proto_finish(rep);
	if (len < 0)
		return false;
	return send(c->fd, rep->p, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) == len;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Counts one request: a refused one as an error (it was logged with its
 * reason), a served one with its times; a slow one (waited or served) is
 * logged with both.
 */
static void account(struct gpudd *d, const struct gpudd_client *c, uint16_t type, int err,
		    double queued, double picked, double serve)
{
	double wait = queued > 0 ? picked - queued : 0;
	struct gpudd_req_stat *st;

	if (type < 1 || type > GPUD_MSG_TYPE_MAX)
		return;	/* unparsable: nothing to count it under */
	st = &d->req[type];
	if (err) {
		st->nerr++;
		return;
	}
	if (wait < 0)
		wait = 0;	/* a realtime clock step: never a negative wait */
	st->n++;
	st->serve_s += serve;
	if (serve > st->serve_max_s)
		st->serve_max_s = serve;
	if (queued > 0) {
		st->nwait++;
		st->wait_s += wait;
		if (wait > st->wait_max_s)
			st->wait_max_s = wait;
	}
	if (serve > GPUDD_SLOW_S || wait > GPUDD_SLOW_S)
		gpudd_log("client %llu (pid %d): %s waited %.1f ms, served in %.1f ms",
			  (unsigned long long)c->id, (int)c->cred.pid, gpud_proto_type_name(type),
			  wait * 1e3, serve * 1e3);
}

bool gpudd_client_bind_next(const struct gpudd_client *c)
{
	uint8_t hdr[GPUD_PROTO_HDR_LEN];
	ssize_t n;

	if (!c->hello || c->refused[0])
		return false;
	/* No control buffer: a peek installs none of the fds that came with it. */
	n = recv(c->fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
	return n > 0 && gpud_proto_peek_type(hdr, (size_t)n) == GPUD_MSG_BIND;
}

bool gpudd_client_serve(struct gpudd *d, struct gpudd_client *c)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int)) + CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	static uint8_t in[GPUD_PROTO_REQ_MAX], out[GPUD_PROTO_REPLY_MAX];
	struct iovec iov = { in, sizeof(in) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct gpud_proto_buf rep;
	struct gpud_proto_msg m;
	struct req r = { .m = &m, .fd = -1, .rep = &rep };
	double queued, picked, served, t0 = gpudd_now();
	int fds[4], nfds, err;
	ssize_t n;
	bool ok;

	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;	/* closed: exit, crash or SIGKILL alike */
	picked = now_real();
	nfds = take_fds(&mh, fds, 4, &queued);
	err = gpud_proto_parse(in, (size_t)n, sizeof(in), &m, r.why, sizeof(r.why));
	gpud_proto_start(&rep, out, sizeof(out), c->hello ? (uint16_t)c->version :
			 GPUD_PROTO_VERSION_MAX, GPUD_MSG_REPLY, err ? 0 : m.seq);
	if (mh.msg_flags & MSG_TRUNC)
		err = failf(&r, -EMSGSIZE, "request over %d bytes refused", GPUD_PROTO_REQ_MAX);
	if (!err && (mh.msg_flags & MSG_CTRUNC))
		err = failf(&r, -EBADF, "request with more fds than one");
	if (!err)
		err = gpud_proto_check_request(&m, nfds, r.why, sizeof(r.why));
	if (c->refused[0]) {
		/* Whatever it asked: the answer names the group, then we hang up. */
		snprintf(r.why, sizeof(r.why), "%s", c->refused);
		err = -EACCES;
	}
	if (!err) {
		r.fd = nfds ? fds[0] : -1;
		err = dispatch(d, c, &r);
	}
	if (err)
		gpudd_log("client %llu (pid %d): %s: %s", (unsigned long long)c->id,
			  (int)c->cred.pid, gpud_proto_type_name(m.type), r.why);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);	/* the kernel holds its own references */
	if (err) {
		/* A failed request leaves only the ERRNO/MSG pair in the reply. */
		gpud_proto_start(&rep, out, sizeof(out), c->hello ? (uint16_t)c->version :
				 GPUD_PROTO_VERSION_MAX, GPUD_MSG_REPLY, m.seq);
	}
	/* Served: the reply is ready (its send is the client's round trip, not ours). */
	served = gpudd_now() - t0;
	ok = send_reply(c, &rep, err, r.why);
	account(d, c, m.type, err, queued, picked, served);
	/* Refused at hello: the answer is sent, the conversation is over. */
	return ok && !c->refused[0];
}

/*
 * A queue this connection took but another connection of the same process
 * has bound (a gpud_nic freed before its gpud_binding) goes to that one:
 * freeing it would put a bound queue back into RSS.
 */
static void hand_over_bound(struct gpudd *d, const struct gpudd_client *c, struct gpudd_nic *n)
{
	for (unsigned int q = 0; q < n->pool.nrxq; q++) {
		if (n->pool.conn[q] != c->id)
			continue;
		for (int i = 0; i < d->nclients; i++) {
			const struct gpudd_client *o = d->clients[i];

			if (o != c && o->cred.pid == c->cred.pid && bound_queue(o, n, q)) {
				n->pool.conn[q] = o->id;
				break;
			}
		}
	}
}

void gpudd_client_release(struct gpudd *d, struct gpudd_client *c)
{
	unsigned int nb = 0, nr = 0, nq = 0;

	while (c->rules) {
		struct gpudd_rule *rule = c->rules;

		c->rules = rule->next;
		if (gpud_nic_del_flow(rule->nic->nic, rule->loc))
			gpudd_log("client %llu: cannot remove rule %u: %s",
				  (unsigned long long)c->id, rule->loc, gpud_errmsg());
		free(rule);
		nr++;
	}
	while (c->binds) {
		struct gpudd_bind *b = c->binds;

		c->binds = b->next;
		gpud_binding_free(b->b);	/* closes the binding's netlink socket */
		free(b);
		nb++;
	}
	for (struct gpudd_nic *n = d->nics; n; n = n->next) {
		unsigned int k;
		char why[256];

		hand_over_bound(d, c, n);
		k = gpudd_pool_release(&n->pool, c->id);

		nq += k;
		if (k && gpudd_nic_rss_update(n, why, sizeof(why)))
			gpudd_log("%s", why);
	}
	if (c->hello)
		gpudd_log("client %llu (pid %d) gone: %u binding(s), %u rule(s), %u queue(s) "
			  "released", (unsigned long long)c->id, (int)c->cred.pid, nb, nr, nq);
	close(c->fd);
	free(c);
}
