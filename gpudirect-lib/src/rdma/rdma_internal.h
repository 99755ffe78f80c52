/* SPDX-License-Identifier: MIT */
/* Private to src/rdma: test hooks. */
#ifndef GPUD_RDMA_INTERNAL_H
#define GPUD_RDMA_INTERNAL_H

#include "internal.h"

/*
 * White-box test hook (not exported): read provider facts from @dir instead
 * of /sys/class/infiniband (NULL: the default), so tests with a fake
 * libibverbs can give a device a soft-RoCE "parent". Not thread-safe; set
 * before any rdma call.
 */
void gpud_rdma_set_sysfs_dir(const char *dir);

#endif /* GPUD_RDMA_INTERNAL_H */
