// SPDX-License-Identifier: MIT
/*
 * Rules go with their connections. gpudd keeps no copy of a client's socket
 * (the fd passed with FLOW_ADD is closed once the 4-tuple is read), so it
 * cannot see a close; instead it asks the kernel, over sock_diag, whether
 * the connection still exists and is held by the same socket: an exact
 * lookup of the 4-tuple (inet_diag_find_one_icsk), compared with the socket
 * inode recorded at FLOW_ADD. A closed socket is gone from the lookup, or
 * lingers as an orphan (FIN_WAIT, inode 0) or in TIME_WAIT: either way no
 * process can read from it any more, and its rule would only steer a reused
 * 4-tuple into the client's memory. Checked once a second and before each
 * FLOW_ADD of the client, so a full rule table is reclaimed first.
 */
#include "gpudd.h"

#include "nic/nic_internal.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* One request, its reply: >0 the message type, or -errno (NLMSG_ERROR's included). */
static int diag_call(struct gpudd *d, struct inet_diag_req_v2 *r, uint16_t flags,
		     struct inet_diag_msg *out)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = { .nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			   .nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = ++d->diag_seq },
		  .r = *r };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	union {
		char buf[8192];
		struct nlmsghdr align;
	} rep;

	if (sendto(d->diag_fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(d->diag_fd, rep.buf, sizeof(rep.buf), 0);
		struct nlmsghdr *h = &rep.align;
		size_t left;

		if (n < 0)
			return -errno;
		left = (size_t)n;
		for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != d->diag_seq)
				continue;	/* a late answer to a timed-out request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EPROTO;
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return NLMSG_DONE;
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && out &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(*out))) {
				memcpy(out, NLMSG_DATA(h), sizeof(*out));
				return SOCK_DIAG_BY_FAMILY;
			}
		}
	}
}

void gpudd_conns_open(struct gpudd *d)
{
	struct inet_diag_req_v2 r = { .sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP,
				      .idiag_states = 0 };
	struct timeval tv = { .tv_sec = 1 };
	int err;

	d->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (d->diag_fd < 0) {
		gpudd_log("no sock_diag (%s): rules stay until their client goes or deletes "
			  "them", strerror(errno));
		return;
	}
	setsockopt(d->diag_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/*
	 * A dump of no state lists nothing but proves TCP's handler is there;
	 * without it (no CONFIG_INET_TCP_DIAG) every lookup would answer
	 * -ENOENT, which must not read as "closed".
	 */
	err = diag_call(d, &r, NLM_F_DUMP, NULL);
	if (err != NLMSG_DONE) {
		gpudd_log("sock_diag cannot look up TCP sockets (%s; CONFIG_INET_TCP_DIAG?): rules "
			  "stay until their client goes or deletes them", strerror(-err));
		close(d->diag_fd);
		d->diag_fd = -1;
	}
}

/* 1: @rule's connection is open in the socket it was made for; 0: closed; -errno: unknown. */
static int conn_alive(struct gpudd *d, const struct gpudd_rule *rule)
{
	const struct gpud_flow *f = &rule->f;
	struct inet_diag_req_v2 r = { .sdiag_family = (uint8_t)f->family,
				      .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u };
	struct inet_diag_msg m;
	size_t alen = f->family == AF_INET ? 4 : 16;
	int err;

	/* The socket's view: source = local (the flow's destination). */
	r.id.idiag_sport = f->dst_port;
	r.id.idiag_dport = f->src_port;
	memcpy(r.id.idiag_src, f->dst_addr, alen);
	memcpy(r.id.idiag_dst, f->src_addr, alen);
	r.id.idiag_cookie[0] = r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	err = diag_call(d, &r, 0, &m);
	if (err == -ENOENT)
		return 0;
	if (err != SOCK_DIAG_BY_FAMILY)
		return err < 0 ? err : -EPROTO;
	if (m.idiag_state == TCP_TIME_WAIT || m.idiag_state == TCP_CLOSE)
		return 0;
	return m.idiag_inode == (uint32_t)rule->ino;
}

unsigned int gpudd_conns_sweep_client(struct gpudd *d, struct gpudd_client *c)
{
	unsigned int n = 0;

	if (d->diag_fd < 0)
		return 0;
	for (struct gpudd_rule **p = &c->rules; *p;) {
		struct gpudd_rule *rule = *p;

		if (conn_alive(d, rule) != 0) {
			p = &rule->next;	/* open, or cannot tell: keep */
			continue;
		}
		if (gpud_nic_del_flow(rule->nic->nic, rule->loc)) {
			gpudd_log("client %llu: cannot remove rule %u: %s",
				  (unsigned long long)c->id, rule->loc, gpud_errmsg());
			p = &rule->next;
			continue;
		}
		gpudd_log("client %llu: rule %u on %s removed: its connection %s is closed",
			  (unsigned long long)c->id, rule->loc, rule->nic->ifname, rule->flow);
		*p = rule->next;
		free(rule);
		n++;
	}
	return n;
}

void gpudd_conns_sweep(struct gpudd *d)
{
	double now = gpudd_now();

	if (d->diag_fd < 0 || now - d->last_sweep < GPUDD_SWEEP_S)
		return;
	d->last_sweep = now;
	for (int i = 0; i < d->nclients; i++)
		gpudd_conns_sweep_client(d, d->clients[i]);
}
