// SPDX-License-Identifier: MIT
/*
 * Memory registration. TCP needs no pinning, so a registration only records
 * what kind of memory a buffer is and, for CUDA, which context owns it (the
 * progress thread makes it current before copying).
 */
#include "api/api.h"
#include "gpu/gpu.h"

#include <errno.h>
#include <stdlib.h>

int dm_mr_reg(void *data, size_t size, int type, int fd, struct dm_mr **out)
{
	struct dm_mr *mr;
	int err;

	if (type != NCCL_PTR_HOST && type != NCCL_PTR_CUDA) {
		DM_WARN("regMr: unsupported pointer type %d", type);
		return -EINVAL;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	mr->type = type;
	mr->base = data;
	mr->size = size;
	mr->dmabuf_fd = fd;
	if (type == NCCL_PTR_CUDA) {
		err = dm_cuda_ptr_ctx(data, &mr->cuctx);
		if (err)
			goto err_free;
	}
	*out = mr;
	return 0;

err_free:
	free(mr);
	return err;
}

void dm_mr_dereg(struct dm_mr *mr)
{
	free(mr);
}
