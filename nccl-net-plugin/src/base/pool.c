// SPDX-License-Identifier: MIT
/*
 * NCCL_DEVMEM_POOL_MEM: what memory the devmem pool (the dma-buf bound to the
 * RX queues) is made of. The product is GPU memory, so that the NIC writes
 * payload straight into it; host (udmabuf) memory is what works everywhere
 * and what the tests run on.
 *
 *   auto     cuda when the plugin can drive CUDA and the GPU exports dma-bufs,
 *            else host; the reason is logged either way
 *   host     always host memory
 *   cuda     GPU memory of the calling thread's current CUDA device (NCCL's
 *            proxy thread has its rank's device current), else GPU 0
 *   cuda:N   GPU memory of device N
 * A demanded GPU pool that cannot work is an error naming the cause and the
 * fix, never a silent host pool.
 *
 * Pure: the caller gathers the facts (dm_pool_facts) and logs the result.
 */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpudirect/gpudirect.h>

enum spec_kind { SPEC_AUTO, SPEC_HOST, SPEC_CUDA };

static int parse(const char *spec, enum spec_kind *kind, int *device)
{
	char *end;
	long n;

	*device = -1;
	if (!spec || !*spec || !strcmp(spec, "auto")) {
		*kind = SPEC_AUTO;
		return 0;
	}
	if (!strcmp(spec, "host")) {
		*kind = SPEC_HOST;
		return 0;
	}
	if (strncmp(spec, "cuda", 4))
		return -EINVAL;
	*kind = SPEC_CUDA;
	if (!spec[4])
		return 0;
	if (spec[4] != ':' || !spec[5])
		return -EINVAL;
	n = strtol(spec + 5, &end, 10);
	if (*end || n < 0 || n > 1023)
		return -EINVAL;
	*device = (int)n;
	return 0;
}

int dm_pool_device(const char *spec, int cur_device)
{
	enum spec_kind k;
	int dev;

	if (parse(spec, &k, &dev) || dev < 0)
		return cur_device >= 0 ? cur_device : 0;
	return dev;
}

int dm_pool_choose(const char *spec, const struct dm_pool_facts *f, struct dm_pool_choice *out)
{
	enum spec_kind k;
	int dev, err;

	memset(out, 0, sizeof(*out));
	out->kind = GPUD_MEM_HOST;
	err = parse(spec, &k, &dev);
	if (err) {
		snprintf(out->why, sizeof(out->why),
			 "NCCL_DEVMEM_POOL_MEM=%.32s: expected auto, host, cuda or cuda:N", spec);
		return err;
	}
	out->device = dev >= 0 ? dev : dm_pool_device(spec, f->cur_device);
	switch (k) {
	case SPEC_HOST:
		snprintf(out->why, sizeof(out->why), "host memory (NCCL_DEVMEM_POOL_MEM=host)");
		return 0;
	case SPEC_AUTO:
		if (f->cuda_ok && !f->probe) {
			out->kind = GPUD_MEM_CUDA;
			snprintf(out->why, sizeof(out->why),
				 "GPU memory of CUDA device %d (NCCL_DEVMEM_POOL_MEM=auto: %.160s)",
				 out->device, f->probe_why ? f->probe_why : "it exports dma-bufs");
		} else {
			snprintf(out->why, sizeof(out->why),
				 "host memory (NCCL_DEVMEM_POOL_MEM=auto, no GPU pool: %.170s)",
				 !f->cuda_ok ? f->cuda_why : f->probe_why);
		}
		return 0;
	case SPEC_CUDA:
		break;
	}
	if (!f->cuda_ok) {
		snprintf(out->why, sizeof(out->why),
			 "NCCL_DEVMEM_POOL_MEM=%.32s, but the plugin cannot use CUDA (%.100s); "
			 "fix: make the NVIDIA driver's libcuda.so.1 loadable, or set NCCL_DEVMEM_POOL_MEM=host",
			 spec, f->cuda_why);
		return -ENODEV;
	}
	if (f->probe) {
		snprintf(out->why, sizeof(out->why),
			 "NCCL_DEVMEM_POOL_MEM=%.32s, but CUDA device %d cannot give the NIC a dma-buf "
			 "(%.110s); fix that, or set NCCL_DEVMEM_POOL_MEM=host",
			 spec, out->device, f->probe_why);
		return f->probe;
	}
	out->kind = GPUD_MEM_CUDA;
	snprintf(out->why, sizeof(out->why), "GPU memory of CUDA device %d (NCCL_DEVMEM_POOL_MEM=%.32s)",
		 out->device, spec);
	return 0;
}
