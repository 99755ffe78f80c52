// SPDX-License-Identifier: MIT
/*
 * NCCL_DEVMEM_UNPACK=nccl: the receive comm's side of NCCL's device-side
 * unpack (protocol in ncclnet/net_device_unpack.h).
 *
 * At accept NCCL hands us its device handle; we give it a metadata queue
 * (devq.c) in host memory the GPU maps, and the device address of the pool
 * the NIC writes into. Receives then publish their devmem pieces instead of
 * copying them (devmem_place.c), and irecvConsumed, which NCCL calls once the
 * GPU has copied a receive out, returns that receive's tokens and frees its
 * slot. A comm in copy mode keeps the same protocol with empty receives: the
 * plugin has already written every byte when test() says done.
 *
 * Without CUDA (the tests) the metadata is plain host memory and the "device
 * address" of the pool is its CPU address, read by a CPU stand-in for NCCL's
 * kernel (tests/unpack_consumer.c).
 */
#include "placement/devmem.h"
#include "gpu/gpu.h"
#include "placement/devq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int mapped_alloc(void *ctx, size_t size, void **host, uint64_t *dev)
{
	return dm_cuda_host_alloc_mapped(ctx, size, host, dev);
}

static void mapped_free(void *ctx, void *host)
{
	dm_cuda_host_free_mapped(ctx, host);
}

/* Where NCCL's kernel reads the pool: its device address. Caller holds dm_devmem_lock. */
static int bounce_get(struct dm_devmem_dev *d, uint64_t *out)
{
	int err;

	if (!d->bounce && d->pool_dev) {
		d->bounce = d->pool_dev;
	} else if (!d->bounce && dm_cuda_available()) {
		/* a host pool read by the GPU over PCIe: correct, slower than GPU memory */
		err = dm_cuda_host_register(d->pool_ctx, d->pool_host, d->pool_size, &d->bounce);
		if (err)
			return err;
		d->registered = true;
	} else if (!d->bounce) {
		d->bounce = (uint64_t)(uintptr_t)d->pool_host;	/* the CPU consumer */
	}
	*out = d->bounce;
	return 0;
}

int dm_devmem_unpack_attach(struct dm_comm *c, ncclNetDeviceHandle_v12_t *dh)
{
	struct dm_devmem_dev *d = dm_devmem_dev(c->dev);
	struct dm_devq_alloc mapped = { .alloc = mapped_alloc, .free = mapped_free };
	const bool cuda = dm_cuda_available();
	uint64_t bounce = 0;
	int err;

	if (dh->netDeviceVersion != NCCL_NET_DEVICE_UNPACK_VERSION) {
		DM_WARN("recv comm %p: NCCL asks for device unpack version 0x%x, this plugin speaks 0x%x: use the NCCL it was built for, or NCCL_DEVMEM_UNPACK=plugin",
			(void *)c, dh->netDeviceVersion, NCCL_NET_DEVICE_UNPACK_VERSION);
		return -EPROTO;
	}
	if (c->mode == DM_MODE_DEVMEM) {
		pthread_mutex_lock(&dm_devmem_lock);
		err = bounce_get(d, &bounce);
		pthread_mutex_unlock(&dm_devmem_lock);
		if (err) {
			DM_WARN("recv comm %p: cannot map the devmem pool into the GPU for NCCL's unpack",
				(void *)c);
			return err;
		}
		mapped.ctx = d->pool_ctx;
	} else if (dm_cfg.test_emulate && cuda && dm_emu_attach(c, &bounce)) {
		bounce = 0;	/* said why; the comm stays a plain copy-mode comm */
	}
	err = dm_devq_create(bounce, cuda ? &mapped : NULL, &c->devq);
	if (err) {
		DM_WARN("recv comm %p: cannot allocate NCCL's unpack metadata (%zu KiB of %s): %s",
			(void *)c, sizeof(ncclNetUnpackMeta_t) >> 10,
			cuda ? "GPU-mapped host memory" : "host memory", strerror(-err));
		return err;
	}
	dh->handle = dm_devq_dev_handle(c->devq);
	dh->size = sizeof(ncclNetUnpackHandle_t);
	dh->needsProxyProgress = 1;	/* irecv/test still run on NCCL's proxy */
	if (c->mode == DM_MODE_DEVMEM)
		DM_INFO("recv comm %p: NCCL unpacks on the %s: device handle %p, metadata in %s, %s pool at device address 0x%llx",
			(void *)c, cuda ? "GPU" : "CPU (no CUDA: test emulation)", dh->handle,
			cuda ? "GPU-mapped host memory" : "host memory",
			gpud_mem_kind_name(d->pool_kind), (unsigned long long)bounce);
	else
		DM_INFO("recv comm %p: NCCL's device unpack on a copy-mode comm: every receive publishes 0 entries, the plugin writes the data; device handle %p, metadata in %s (%s)",
			(void *)c, dh->handle, cuda ? "GPU-mapped host memory" : "host memory",
			c->mode_reason);
	return 0;
}

void dm_devmem_unpack_detach(struct dm_comm *c)
{
	dm_devq_free(c->devq);
	c->devq = NULL;
}

void dm_devmem_consumed(struct dm_comm *c, int64_t seq)
{
	struct dm_devmem_dev *d = dm_devmem_dev(c->dev);
	uint32_t n;
	const uint64_t *refs = dm_devq_refs(c->devq, seq, &n);

	for (int i = 0; i < c->nsocks && n; i++) {
		struct dm_sock *s = &c->socks[i];
		struct dm_devmem_rx *r = s->dmrx;
		bool any = false;
		int err;

		if (!r)
			continue;
		dm_sock_io_lock(s);
		for (uint32_t j = 0; j < n; j++) {
			uint64_t fseq = DM_REF_SEQ(refs[j]);
			struct dm_held *h;

			if (DM_REF_SOCK(refs[j]) != i || fseq < r->head || fseq >= r->tail)
				continue;
			h = dm_held_at(r, fseq);
			if (h->refs) {
				if (!--h->refs)
					atomic_fetch_sub(&d->held, 1);
				any = true;
			}
		}
		err = any ? dm_held_release(r, r->head) : 0;
		dm_sock_io_unlock(s);
		if (err < 0)
			dm_comm_fail(c, err, "returning devmem tokens after irecvConsumed failed: %s",
				     gpud_errmsg());
	}
	dm_devq_release(c->devq, seq);
}
