// SPDX-License-Identifier: MIT
/*
 * Receive-mode choice and devmem setup.
 *
 * devmem: per device, while any devmem recv comm lives, the plugin binds a
 * pool it owns (dma-buf, NCCL_DEVMEM_POOL_SIZE of NCCL_DEVMEM_POOL_MEM
 * memory) to NCCL_DEVMEM_QUEUES and keeps RSS off those queues; per recv
 * comm it steers each data socket's flow (full 4-tuple) to one of them and
 * reads fragments with gpud_rx_recv() (devmem_place.c). Everything else
 * (control sockets, handshakes, send comms' ACKs, other applications) must
 * stay on ordinary queues: a plain recv() of a flow that lands on a bound
 * queue fails with EFAULT, since its payload sits in memory the CPU cannot
 * read. The last comm's close frees the binding and the NIC object, which
 * puts RSS, rules and header split back.
 *
 * A fused device (makeVDevice) does this on every member NIC: each member
 * its own NCCL_DEVMEM_QUEUES, header split, RSS limit and binding of its
 * slice of the device's one pool (pool_slice says why), and each data socket's rule
 * on the member its flow arrives on. A member's queues serve one device: an
 * interface used in devmem mode both alone and inside a fused device at
 * once finds its queues bound already (EEXIST; auto mode then copies).
 */
#include "placement/devmem.h"
#include "gpu/gpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

pthread_mutex_t dm_devmem_lock = PTHREAD_MUTEX_INITIALIZER;
/* by device number: interfaces, then the fused devices (each its own pool over its members) */
static struct dm_devmem_dev ddev[DM_MAX_DEVS + DM_MAX_VDEVS];

struct dm_devmem_dev *dm_devmem_dev(int dev)
{
	return &ddev[dev];
}

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

/* NCCL_DEVMEM_POOL_MEM against what this machine has (pool.c decides). */
static int pool_pick(struct dm_pool_choice *pc)
{
	struct dm_pool_facts f = { .cuda_ok = dm_cuda_available(), .cuda_why = dm_cuda_why(),
				   .cur_device = dm_cuda_current_device(), .probe = -ENODEV };
	char probe_why[200] = "";

	/* the probe loads the GPU driver: only when the pool may be GPU memory */
	if (f.cuda_ok && strcmp(dm_cfg.pool_mem, "host"))
		f.probe = gpud_mem_probe(GPUD_MEM_CUDA, dm_pool_device(dm_cfg.pool_mem, f.cur_device),
					 probe_why, sizeof(probe_why));
	f.probe_why = probe_why;
	return dm_pool_choose(dm_cfg.pool_mem, &f, pc);
}

/* Where the data path finds the pool's bytes. */
static int pool_view(struct dm_devmem_dev *d)
{
	d->pool_kind = gpud_mem_kind(d->pool);
	d->pool_host = gpud_mem_host_ptr(d->pool);
	d->pool_dev = gpud_mem_device_ptr(d->pool);
	d->pool_size = gpud_mem_size(d->pool);
	d->pool_ctx = NULL;
	if (d->pool_kind == GPUD_MEM_CUDA)
		return dm_cuda_ptr_ctx((void *)(uintptr_t)d->pool_dev, &d->pool_ctx);
	return d->pool_host ? 0 : -EFAULT;
}

/*
 * With gpudd the ranks of a node get distinct queues: the queue of our local
 * rank as NCCL's launchers publish it, else any free one the agent picks.
 * Returns the queue count (1) or -errno with the agent's message in d->why.
 */
static int agent_queue(struct dm_devmem_dev *d, struct dm_devmem_nic *n, const char *ifname)
{
	static const char *const vars[] = { "LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK",
					    "SLURM_LOCALID", "MPI_LOCALRANKID" };
	int rank = -1, err;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]) && rank < 0; i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			rank = atoi(v);
	}
	err = gpud_nic_alloc_queues(n->nic, 1, rank, n->queues);
	if (err) {
		snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
		return err;
	}
	DM_INFO("%s: gpudd gave local rank %d queue %u", ifname, rank, n->queues[0]);
	return 1;
}

/*
 * One NIC made ready for a binding: its queues chosen, header split on and
 * RSS kept off them. 0, or -errno with the reason in d->why and the NIC as
 * it was.
 */
static int nic_setup(struct dm_devmem_dev *d, struct dm_devmem_nic *n, const struct dm_dev *nd)
{
	unsigned int minq;
	int err, nrx;

	err = gpud_nic_open(nd->name, &n->nic);
	if (err)
		goto err_msg;
	nrx = gpud_nic_rx_queues(n->nic);
	if (gpud_nic_via_agent(n->nic) && !dm_cfg.queues[0])
		err = agent_queue(d, n, nd->name);	/* gpudd: this rank's own queue */
	else
		err = nrx < 0 ? nrx : parse_queues(dm_cfg.queues, nrx, n->queues, DM_MAX_QUEUES);
	if (err < 0) {
		snprintf(d->why, sizeof(d->why), "NCCL_DEVMEM_QUEUES=%s does not fit %s's %d RX queues",
			 dm_cfg.queues[0] ? dm_cfg.queues : "(default: last)", nd->name, nrx);
		goto err_nic;
	}
	n->nqueues = err;
	minq = n->queues[0];
	for (int i = 1; i < n->nqueues; i++)
		minq = n->queues[i] < minq ? n->queues[i] : minq;
	if (minq == 0) {
		/* RSS needs somewhere to put flows that are not steered */
		err = -ERANGE;
		snprintf(d->why, sizeof(d->why),
			 "NCCL_DEVMEM_QUEUES=%s includes queue 0 of %s, which must carry ordinary (control) traffic",
			 dm_cfg.queues, nd->name);
		goto err_nic;
	}
	err = gpud_nic_set_header_split(n->nic, true);
	if (err)
		goto err_msg_nic;
	/*
	 * Before the bind: from the moment a queue is bound, any unsteered flow
	 * hashed to it (our own control sockets first of all) would receive
	 * unreadable payload. Queues between minq and the bound ones simply
	 * idle.
	 */
	err = gpud_nic_rss_limit(n->nic, minq);
	if (err)
		goto err_msg_nic;
	return 0;

err_msg_nic:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
err_nic:
	gpud_nic_free(n->nic);	/* puts header split and RSS back */
	n->nic = NULL;
	return err;
err_msg:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
	return err;
}

/* Unbinds, then restores the NICs, the last opened first (gpud_nic_free's rule). */
static void nics_release(struct dm_devmem_dev *d)
{
	for (int i = d->nnics - 1; i >= 0; i--) {
		struct dm_devmem_nic *n = &d->nics[i];

		gpud_binding_free(n->binding);
		gpud_mem_free(n->slice);	/* after its binding, before the pool */
		gpud_nic_free(n->nic);	/* rules, RSS, header split */
		*n = (struct dm_devmem_nic){ 0 };
	}
	d->nnics = 0;
}

/*
 * A fused device has ONE pool, cut into a disjoint slice per member NIC,
 * each slice its own dma-buf (gpud_mem_slice) bound on that member's queues.
 * One memory keeps NCCL's device unpack right: its handle has a single
 * bounce_buf that every src_off counts from, and a comm on a fused device is
 * one NCCL connection; it also keeps one NCCL_DEVMEM_POOL_SIZE, hold limit
 * and GPU context per device. Slices, not the whole pool bound on every
 * member: the kernel gives each binding a chunk allocator over all pages of
 * its dma-buf (net_devmem_bind_dmabuf(), net/core/devmem.c in 6.12), so two
 * bindings of one dma-buf hand the same pages to both NICs, which then
 * overwrite each other's payload (seen in the VM: the first 1-byte message
 * arrived wrong). The kernel's frag_offset is an offset in the binding's
 * dma-buf, i.e. in the slice: a socket adds its member's slice_off
 * (devmem_place.c) and the rest of the data path sees pool offsets. The price:
 * each member NIC has 1/n of the pool to fill.
 */
static int pool_slice(struct dm_devmem_dev *d, const struct dm_dev *nd)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = d->pool_size / (size_t)d->nnics / page * page;
	int err;

	if (d->nnics == 1)
		return 0;
	for (int i = 0; i < d->nnics; i++) {
		d->nics[i].slice_off = (uint64_t)i * len;
		err = gpud_mem_slice(d->pool, (size_t)d->nics[i].slice_off, len, &d->nics[i].slice);
		if (err) {
			snprintf(d->why, sizeof(d->why), "%s: one pool for %d NICs: %s", nd->name,
				 d->nnics, gpud_errmsg());
			return err;
		}
	}
	return 0;
}

static int dev_setup(int dev, struct dm_devmem_dev *d)
{
	const struct dm_dev *nd = dm_dev_get(dev);
	struct gpud_mem_opts mo = { .sz = sizeof(mo) };
	struct dm_pool_choice pc;
	int err, i = 0;

	/* first, before the NIC is touched: a demanded GPU pool that cannot be is the answer */
	err = pool_pick(&pc);
	if (err) {
		snprintf(d->why, sizeof(d->why), "%s", pc.why);
		return err;
	}
	mo.device = pc.device;
	DM_INFO("dev %d (%s): devmem pool: %s", dev, nd->name, pc.why);
	for (d->nnics = 0; d->nnics < nd->nmembers; d->nnics++) {
		err = nic_setup(d, &d->nics[d->nnics], dm_dev_member(dev, d->nnics));
		if (err)
			goto err_nics;
	}
	err = gpud_mem_create(pc.kind, dm_cfg.pool_size, &mo, &d->pool);
	if (err)
		goto err_msg_nics;
	err = pool_view(d);
	if (err) {
		snprintf(d->why, sizeof(d->why), "the %s pool has no address the plugin can copy from",
			 gpud_mem_kind_name(pc.kind));
		goto err_mem;
	}
	err = pool_slice(d, nd);
	if (err)
		goto err_mem;	/* nics_release() frees the slices made */
	for (i = 0; i < d->nnics; i++) {
		struct dm_devmem_nic *n = &d->nics[i];
		const struct dm_dev *m = dm_dev_member(dev, i);
		struct gpud_mem *mem = n->slice ? n->slice : d->pool;

		err = gpud_bind_rx(m->ifindex, mem, n->queues, n->nqueues, &n->binding);
		if (err)
			goto err_msg_mem;	/* nics_release() frees the bindings made */
		DM_INFO("dev %d (%s): devmem pool of %zu MiB %s memory bound to %d RX queue(s) of %s (%zu MiB from %llu MiB)",
			dev, nd->name, d->pool_size >> 20, gpud_mem_kind_name(pc.kind), n->nqueues,
			m->name, gpud_mem_size(mem) >> 20, (unsigned long long)(n->slice_off >> 20));
	}
	atomic_store(&d->held, 0);
	d->held_max = (unsigned int)(d->pool_size / 4096 * (unsigned int)dm_cfg.unpack_hold / 100);
	return 0;

err_msg_mem:
	snprintf(d->why, sizeof(d->why), "%s%s%s", nd->nmembers > 1 ? dm_dev_member(dev, i)->name : "",
		 nd->nmembers > 1 ? ": " : "", gpud_errmsg());
err_mem:
	nics_release(d);	/* unbinds before the pool goes */
	gpud_mem_free(d->pool);
	d->pool = NULL;
	return err;
err_msg_nics:
	snprintf(d->why, sizeof(d->why), "%s", gpud_errmsg());
err_nics:
	nics_release(d);
	return err;
}

/* Last devmem comm gone: unbind, then restore the NICs (rules, RSS, header split). */
static void dev_release(struct dm_devmem_dev *d)
{
	nics_release(d);
	if (d->registered)
		dm_cuda_host_unregister(NULL, d->pool_host);
	d->registered = false;
	d->bounce = 0;
	gpud_mem_free(d->pool);
	d->pool = NULL;
}

/*
 * The member whose NIC @s's flow arrives on: the one whose address the
 * socket is bound to. The listener listens on each member's address and the
 * connector sends socket i to member i % m through its own member i % n
 * (conn.c), so on rails (a member's address reached over its own link, as
 * NCCL's fused NICs are) that NIC receives it. Where it does not, the flow
 * reaches an unsteered queue and devmem mode says so at the first data
 * (gpud_rx: the stream arrived in host memory), never silently.
 */
static int sock_member(int dev, const struct dm_sock *s, char *why, size_t wlen)
{
	const struct dm_dev *nd = dm_dev_get(dev);
	union dm_addr local;
	socklen_t sl = sizeof(local);

	if (nd->nmembers == 1)
		return 0;
	if (getsockname(s->fd, &local.sa, &sl)) {
		int err = -errno;

		snprintf(why, wlen, "data socket %d: getsockname: %s", s->idx, strerror(-err));
		return err;
	}
	for (int i = 0; i < nd->nmembers; i++)
		if (dm_addr_same_host(&local, &dm_dev_member(dev, i)->addr))
			return i;
	dm_addr_str(&local, why, wlen);
	snprintf(why + strlen(why), wlen - strlen(why),
		 ": data socket %d's address belongs to no member of %s", s->idx, nd->name);
	return -EADDRNOTAVAIL;
}

static int sock_setup(int dev, struct dm_devmem_dev *d, struct dm_sock *s, char *why, size_t wlen)
{
	/* devmem demanded: the library fails rather than silently copying */
	struct gpud_rx_opts ro = { .sz = sizeof(ro),
				   .mode = dm_cfg.mode == DM_MODE_DEVMEM ? GPUD_RX_DEVMEM
									 : GPUD_RX_AUTO };
	struct dm_devmem_nic *n;
	struct dm_devmem_rx *r;
	int err, m;

	m = sock_member(dev, s, why, wlen);
	if (m < 0)
		return m;
	n = &d->nics[m];
	ro.binding = n->binding;	/* its fragments carry this binding's dma-buf id */
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->nic = m;
	r->pool_off = n->slice_off;
	/*
	 * Steer before the handshake reply: no payload can arrive earlier. By
	 * the socket, not its addresses: gpudd steers only connections a
	 * process proves it holds. On the member NIC the flow arrives on.
	 */
	err = gpud_nic_add_flow_sock(n->nic, s->fd, n->queues[n->next_queue++ % n->nqueues],
				     &r->rule);
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
	snprintf(why, wlen, "%s%s%s", d->nnics > 1 ? gpud_nic_name(n->nic) : "",
		 d->nnics > 1 ? ": " : "", gpud_errmsg());
	if (r->rx)
		gpud_rx_free(r->rx);
	if (r->has_rule)
		gpud_nic_del_flow(n->nic, r->rule);
	free(r);
	return err;
}

/* Caller holds dm_devmem_lock. */
static void socks_teardown(struct dm_devmem_dev *d, struct dm_comm *c)
{
	for (int i = 0; i < c->nsocks; i++) {
		struct dm_devmem_rx *r = c->socks[i].dmrx;

		if (!r)
			continue;
		gpud_rx_free(r->rx);	/* returns outstanding tokens, held ones too */
		dm_held_free(d, r);
		if (r->has_rule)
			gpud_nic_del_flow(d->nics[r->nic].nic, r->rule);
		free(r);
		c->socks[i].dmrx = NULL;
	}
}

void dm_devmem_teardown_comm(struct dm_comm *c)
{
	struct dm_devmem_dev *d;

	if (c->mode != DM_MODE_DEVMEM)
		return;
	d = &ddev[c->dev];
	pthread_mutex_lock(&dm_devmem_lock);
	socks_teardown(d, c);
	if (--d->users == 0)
		dev_release(d);
	pthread_mutex_unlock(&dm_devmem_lock);
	c->mode = DM_MODE_COPY;
}

int dm_devmem_setup_comm(struct dm_comm *c)
{
	const char *ifname = dm_dev_get(c->dev)->name;
	struct dm_devmem_dev *d;
	char why[320] = "";
	int err = 0;

	if (dm_cfg.mode == DM_MODE_COPY) {
		c->mode = DM_MODE_COPY;
		snprintf(c->mode_reason, sizeof(c->mode_reason), "NCCL_DEVMEM_MODE=copy");
		goto out;
	}
	d = &ddev[c->dev];
	/* every failure below is reported once, below, with its reason */
	dm_lib_errors_own(true);
	pthread_mutex_lock(&dm_devmem_lock);
	if (!d->failed && !d->pool) {
		d->err = dev_setup(c->dev, d);
		d->failed = d->err != 0;
	}
	err = d->failed ? d->err : 0;
	snprintf(why, sizeof(why), "%s", d->why);
	for (int i = 0; !err && i < c->nsocks; i++)
		err = sock_setup(c->dev, d, &c->socks[i], why, sizeof(why));
	if (err && !d->failed) {
		socks_teardown(d, c);
		if (!d->users)
			dev_release(d);
	} else if (!err) {
		d->users++;
	}
	pthread_mutex_unlock(&dm_devmem_lock);
	dm_lib_errors_own(false);
	if (err) {
		if (dm_cfg.mode == DM_MODE_DEVMEM) {
			DM_WARN("recv comm on %s: NCCL_DEVMEM_MODE=devmem but devmem is unavailable: %s",
				ifname, why);
			return -EOPNOTSUPP;
		}
		c->mode = DM_MODE_COPY;
		snprintf(c->mode_reason, sizeof(c->mode_reason),
			 "NCCL_DEVMEM_MODE=auto, devmem unavailable: %s", why);
		/*
		 * Another process holds the NIC (no gpudd) or our queue (gpudd):
		 * a job that should have devmem loses it, so not an INFO line.
		 */
		if (err == -EBUSY || err == -EEXIST)
			DM_WARN("recv comm on %s: NCCL_DEVMEM_MODE=auto: copying, not devmem: %s",
				ifname, why);
		err = 0;
		goto out;
	}
	c->mode = DM_MODE_DEVMEM;
	/* a GPU pool is read by the GPU engine whatever the buffers are */
	if (d->pool_dev) {
		err = dm_comm_gpu_attach(c, d->pool_ctx);
		c->gpu_pool = !err;
		if (err) {
			dm_devmem_teardown_comm(c);
			DM_WARN("recv comm on %s: no GPU engine for the GPU pool: %s", ifname,
				strerror(-err));
			return err;
		}
	}
	snprintf(c->mode_reason, sizeof(c->mode_reason), "NCCL_DEVMEM_MODE=%s, %s pool %zu MiB on %d NIC(s)",
		 dm_mode_name(dm_cfg.mode), gpud_mem_kind_name(d->pool_kind), d->pool_size >> 20,
		 d->nnics);
out:
	DM_INFO("recv comm %p on %s: %s mode (%s)", (void *)c, ifname, dm_mode_name(c->mode),
		c->mode_reason);
	return err;
}
