// SPDX-License-Identifier: MIT
/*
 * Receive-mode choice and the devmem data path.
 *
 * devmem: per device, while any devmem recv comm lives, the plugin binds a
 * pool it owns (dma-buf, NCCL_DEVMEM_POOL_SIZE) to NCCL_DEVMEM_QUEUES and
 * keeps RSS off those queues; per recv comm it steers each data socket's
 * flow (full 4-tuple) to one of them and reads fragments with
 * gpud_rx_recv(). Everything else (control sockets, handshakes, send comms'
 * ACKs, other applications) must stay on ordinary queues: a plain recv() of
 * a flow that lands on a bound queue fails with EFAULT, since its payload
 * sits in memory the CPU cannot read. The last comm's close frees the
 * binding and the NIC object, which puts RSS, rules and header split back.
 *
 * Fragments are unpacked into the NCCL buffer (unpack_host.c, or unpack.cu
 * for GPU pools) and their tokens returned only after the copy has finished,
 * so the NIC never overwrites bytes still being copied.
 */
#include "plugin.h"
#include "unpack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gpudirect/gpudirect.h>

#define DM_MAX_QUEUES 16
#define DM_FRAG_BATCH 64

struct dm_devmem_dev {
	bool failed;		/* setup failed once: not retried, the reason is kept */
	int err;
	int users;		/* devmem recv comms holding nic/pool/binding */
	char why[200];
	struct gpud_nic *nic;
	struct gpud_mem *pool;
	struct gpud_binding *binding;
	unsigned int queues[DM_MAX_QUEUES];
	int nqueues;
	unsigned int next_queue;
};

struct dm_devmem_rx {
	struct gpud_rx *rx;
	uint32_t rule;
	bool has_rule;
	struct gpud_frag frags[DM_FRAG_BATCH];
	int nfrags;		/* fragments received, not yet fully consumed */
	int first;		/* first unconsumed fragment */
	uint32_t first_off;	/* bytes of frags[first] already consumed */
};

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dm_devmem_dev ddev[DM_MAX_DEVS];

/* "15" or "12-15" or "12,14"; empty = the NIC's last RX queue. */
static int parse_queues(const char *s, int nrx, unsigned int *q, int max)
{
	int n = 0;

	if (!s || !*s) {
		if (nrx < 2)
			return -ERANGE;	/* queue 0 must keep carrying ordinary traffic */
		q[0] = nrx - 1;
		return 1;
	}
	while (*s && n < max) {
		char *end;
		long a = strtol(s, &end, 10), b = a;

		if (end == s)
			return -EINVAL;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long i = a; i <= b && n < max; i++) {
			if (i < 0 || i >= nrx)
				return -ERANGE;
			q[n++] = (unsigned int)i;
		}
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -EINVAL;
	}
	return n ? n : -EINVAL;
}

static int dev_setup(int dev, struct dm_devmem_dev *d)
{
	const struct dm_dev *nd = dm_dev_get(dev);
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	unsigned int minq;
	int err, nrx;

	err = gpud_nic_open(nd->name, &d->nic);
	if (err)
		goto err_msg;
	nrx = gpud_nic_rx_queues(d->nic);
	err = nrx < 0 ? nrx : parse_queues(dm_cfg.queues, nrx, d->queues, DM_MAX_QUEUES);
	if (err < 0) {
		snprintf(d->why, sizeof(d->why), "NCCL_DEVMEM_QUEUES=%s does not fit %s's %d RX queues",
			 dm_cfg.queues[0] ? dm_cfg.queues : "(default: last)", nd->name, nrx);
		goto err_nic;
	}
	d->nqueues = err;
	minq = d->queues[0];
	for (int i = 1; i < d->nqueues; i++)
		minq = d->queues[i] < minq ? d->queues[i] : minq;
	if (minq == 0) {
		/* RSS needs somewhere to put flows that are not steered */
		err = -ERANGE;
		snprintf(d->why, sizeof(d->why),
			 "NCCL_DEVMEM_QUEUES=%s includes queue 0 of %s, which must carry ordinary (control) traffic",
			 dm_cfg.queues, nd->name);
		goto err_nic;
	}
	err = gpud_nic_set_header_split(d->nic, true);
	if (err)
		goto err_msg_nic;
	/*
	 * Before the bind: from the moment a queue is bound, any unsteered flow
	 * hashed to it (our own control sockets first of all) would receive
	 * unreadable payload. Queues between minq and the bound ones simply
	 * idle.
	 */
	err = gpud_nic_rss_limit(d->nic, minq);
	if (err)
		goto err_msg_nic;
	err = gpud_mem_create(GPUD_MEM_HOST, dm_cfg.pool_size, &mo, &d->pool);
	if (err)
		goto err_msg_nic;
	err = gpud_bind_rx(nd->ifindex, d->pool, d->queues, d->nqueues, &d->binding);
	if (err)
		goto err_msg_mem;
	return 0;

err_msg_mem:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
	gpud_mem_free(d->pool);
	d->pool = NULL;
	goto err_nic;
err_msg_nic:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
err_nic:
	gpud_nic_free(d->nic);	/* puts header split and RSS back */
	d->nic = NULL;
	return err;
err_msg:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
	return err;
}

/* Last devmem comm gone: unbind, then restore the NIC (rules, RSS, header split). */
static void dev_release(struct dm_devmem_dev *d)
{
	gpud_binding_free(d->binding);
	d->binding = NULL;
	gpud_mem_free(d->pool);
	d->pool = NULL;
	gpud_nic_free(d->nic);
	d->nic = NULL;
	d->next_queue = 0;
}

static int sock_setup(struct dm_devmem_dev *d, struct dm_sock *s, char *why, size_t wlen)
{
	/* devmem demanded: the library fails rather than silently copying */
	struct gpud_rx_opts ro = { .sz = sizeof(ro), .binding = d->binding,
				   .mode = dm_cfg.mode == DM_MODE_DEVMEM ? GPUD_RX_DEVMEM
									 : GPUD_RX_AUTO };
	struct gpud_flow fl = { .sz = sizeof(fl), .family = AF_INET };
	struct sockaddr_in me, peer;
	socklen_t sl = sizeof(me);
	struct dm_devmem_rx *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	getsockname(s->fd, (struct sockaddr *)&me, &sl);
	sl = sizeof(peer);
	getpeername(s->fd, (struct sockaddr *)&peer, &sl);
	memcpy(fl.dst_addr, &me.sin_addr, 4);
	memcpy(fl.src_addr, &peer.sin_addr, 4);
	fl.dst_port = me.sin_port;
	fl.src_port = peer.sin_port;
	/* steer before the handshake reply: no payload can arrive earlier */
	err = gpud_nic_add_flow(d->nic, &fl, d->queues[d->next_queue++ % d->nqueues], &r->rule);
	if (err)
		goto err_msg;
	r->has_rule = true;
	err = gpud_rx_open(s->fd, &ro, &r->rx);
	if (err)
		goto err_msg;
	/* AUTO: the library settles devmem vs copy on the first data it sees */
	s->dmrx = r;
	return 0;

err_msg:
	snprintf(why, wlen, "%s", gpud_errmsg());
	if (r->rx)
		gpud_rx_free(r->rx);
	if (r->has_rule)
		gpud_nic_del_flow(d->nic, r->rule);
	free(r);
	return err;
}

/* Caller holds dev_lock. */
static void socks_teardown(struct dm_devmem_dev *d, struct dm_comm *c)
{
	for (int i = 0; i < c->nsocks; i++) {
		struct dm_devmem_rx *r = c->socks[i].dmrx;

		if (!r)
			continue;
		gpud_rx_free(r->rx);	/* returns outstanding tokens */
		if (r->has_rule)
			gpud_nic_del_flow(d->nic, r->rule);
		free(r);
		c->socks[i].dmrx = NULL;
	}
}

void dm_devmem_teardown_comm(struct dm_comm *c)
{
	struct dm_devmem_dev *d = &ddev[c->dev];

	if (c->mode != DM_MODE_DEVMEM)
		return;
	pthread_mutex_lock(&dev_lock);
	socks_teardown(d, c);
	if (--d->users == 0)
		dev_release(d);
	pthread_mutex_unlock(&dev_lock);
	c->mode = DM_MODE_COPY;
}

int dm_devmem_setup_comm(struct dm_comm *c)
{
	const char *ifname = dm_dev_get(c->dev)->name;
	struct dm_devmem_dev *d = &ddev[c->dev];
	char why[200] = "";
	int err = 0;

	if (dm_cfg.mode == DM_MODE_COPY) {
		c->mode = DM_MODE_COPY;
		snprintf(c->mode_reason, sizeof(c->mode_reason), "NCCL_DEVMEM_MODE=copy");
		goto out;
	}
	pthread_mutex_lock(&dev_lock);
	if (!d->failed && !d->nic) {
		d->err = dev_setup(c->dev, d);
		d->failed = d->err != 0;
	}
	err = d->failed ? d->err : 0;
	snprintf(why, sizeof(why), "%s", d->why);
	for (int i = 0; !err && i < c->nsocks; i++)
		err = sock_setup(d, &c->socks[i], why, sizeof(why));
	if (err && !d->failed) {
		socks_teardown(d, c);
		if (!d->users)
			dev_release(d);
	} else if (!err) {
		d->users++;
	}
	pthread_mutex_unlock(&dev_lock);
	if (err) {
		if (dm_cfg.mode == DM_MODE_DEVMEM) {
			DM_WARN("recv comm on %s: NCCL_DEVMEM_MODE=devmem but devmem is unavailable: %s",
				ifname, why);
			return -EOPNOTSUPP;
		}
		c->mode = DM_MODE_COPY;
		snprintf(c->mode_reason, sizeof(c->mode_reason),
			 "NCCL_DEVMEM_MODE=auto, devmem unavailable: %s", why);
		err = 0;
		goto out;
	}
	c->mode = DM_MODE_DEVMEM;
	snprintf(c->mode_reason, sizeof(c->mode_reason), "NCCL_DEVMEM_MODE=%s, pool %llu MiB",
		 dm_mode_name(dm_cfg.mode), (unsigned long long)(dm_cfg.pool_size >> 20));
out:
	DM_INFO("recv comm %p on %s: %s mode (%s)", (void *)c, ifname, dm_mode_name(c->mode),
		c->mode_reason);
	return err;
}

/*
 * Moves fragment bytes into the head task's current chunk. A fragment may
 * straddle chunks or messages: the part not used stays for the next call, and
 * its token goes back only once all of it has been copied.
 */
int dm_devmem_step(struct dm_sock *s, struct dm_task *t)
{
	struct dm_devmem_rx *r = s->dmrx;
	struct dm_devmem_dev *d = &ddev[s->comm->dev];
	struct dm_unpack_entry e[DM_FRAG_BATCH];
	uint64_t off = t->k * t->chunk, len;
	int ne = 0, done = 0, n, err;
	const char *pool, *copy;

	if (off >= t->size)
		return DM_STEP_DONE;
	len = t->size - off < t->chunk ? t->size - off : t->chunk;
	if (r->first == r->nfrags) {
		n = gpud_rx_recv(r->rx, r->frags, DM_FRAG_BATCH, MSG_DONTWAIT);
		if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
			return 0;
		if (n == 0)
			return dm_comm_fail(s->comm, -ECONNRESET,
					    "data socket %d: peer closed the connection in the middle of a message",
					    s->idx);
		if (n < 0)
			return dm_comm_fail(s->comm, n, "data socket %d: devmem receive failed: %s%s",
					    s->idx, gpud_errmsg(),
					    n == -ENOBUFS ? " (pool exhausted: raise NCCL_DEVMEM_POOL_SIZE)" : "");
		r->nfrags = n;
		r->first = 0;
		r->first_off = 0;
	}
	while (r->first + done < r->nfrags && t->pos < len) {
		struct gpud_frag *f = &r->frags[r->first + done];
		uint32_t skip = done ? 0 : r->first_off;
		uint64_t take = f->len - skip;

		if (take > len - t->pos)
			take = len - t->pos;
		e[ne++] = (struct dm_unpack_entry){ .src_off = (uint32_t)(f->offset + skip),
						    .len = (uint32_t)take, .dst_off = off + t->pos };
		t->pos += take;
		if (skip + take < f->len) {
			r->first_off = skip + (uint32_t)take;	/* rest belongs to the next chunk */
			break;
		}
		done++;
		r->first_off = 0;
	}
	/* Host pool for now; a GPU pool will hand e[] to dm_unpack_cuda() in one launch. */
	pool = gpud_mem_host_ptr(d->pool);
	copy = gpud_mem_host_ptr(gpud_rx_copy_mem(r->rx));
	for (int i = 0; i < ne; i++) {
		const char *src = r->frags[r->first + i].flags & GPUD_FRAG_COPY ? copy : pool;

		if (!src)
			return dm_comm_fail(s->comm, -EFAULT, "fragment memory not CPU-visible");
		if (t->mr && t->mr->type == NCCL_PTR_CUDA)
			err = dm_cuda_htod(t->mr->cuctx, t->base + e[i].dst_off,
					   src + e[i].src_off, e[i].len);
		else
			dm_unpack_host(&e[i], 1, src, t->base), err = 0;
		if (err)
			return dm_comm_fail(s->comm, err, "unpack to GPU buffer failed");
	}
	/* only now may the NIC reuse those pages */
	err = gpud_rx_release(r->rx, &r->frags[r->first], done);
	if (err < 0)
		return dm_comm_fail(s->comm, err, "returning devmem tokens failed: %s", gpud_errmsg());
	r->first += done;
	if (t->pos < len)
		return DM_STEP_MORE;
	t->pos = 0;
	t->k += t->step;
	return t->k * t->chunk >= t->size ? DM_STEP_DONE : DM_STEP_MORE;
}
