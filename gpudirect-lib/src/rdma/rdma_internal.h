/* SPDX-License-Identifier: MIT */
/* Private to src/rdma: the loaded libibverbs, shared by rdma.c and qp.c; test hooks. */
#ifndef GPUD_RDMA_INTERNAL_H
#define GPUD_RDMA_INTERNAL_H

#include "internal.h"

#include <stdint.h>

/*
 * Only pointers to these cross this header, so it needs no
 * <infiniband/verbs.h>: rdma.c is built without it (rdma-core stays
 * optional), qp.c with it where it is installed.
 */
struct ibv_device;
struct ibv_context;
struct ibv_pd;
struct ibv_mr;
struct ibv_comp_channel;
struct ibv_cq;
struct ibv_qp;
struct ibv_qp_init_attr;
struct ibv_qp_attr;
struct ibv_gid_entry;
struct _compat_ibv_port_attr;
union ibv_gid;

/*
 * The exported libibverbs functions the library calls, resolved once per
 * process (rdma.c). Everything verbs.h has as a static inline (posting,
 * polling, arming a CQ) goes through the context's ops and needs no entry
 * here. The queue-pair ones are optional: qp.c checks them.
 */
struct gpud_verbs_api {
	void *lib;
	struct ibv_device **(*get_device_list)(int *);
	void (*free_device_list)(struct ibv_device **);
	const char *(*get_device_name)(struct ibv_device *);
	struct ibv_context *(*open_device)(struct ibv_device *);
	int (*close_device)(struct ibv_context *);
	struct ibv_pd *(*alloc_pd)(struct ibv_context *);
	int (*dealloc_pd)(struct ibv_pd *);
	struct ibv_mr *(*reg_mr_iova)(struct ibv_pd *, void *, size_t, uint64_t, int);
	int (*dereg_mr)(struct ibv_mr *);
	/* libibverbs 34+ (rdma-core 34); NULL before: no dma-buf MRs. */
	struct ibv_mr *(*reg_dmabuf_mr)(struct ibv_pd *, uint64_t, size_t, uint64_t, int, int);

	struct ibv_comp_channel *(*create_comp_channel)(struct ibv_context *);
	int (*destroy_comp_channel)(struct ibv_comp_channel *);
	struct ibv_cq *(*create_cq)(struct ibv_context *, int, void *, struct ibv_comp_channel *,
				    int);
	int (*destroy_cq)(struct ibv_cq *);
	struct ibv_qp *(*create_qp)(struct ibv_pd *, struct ibv_qp_init_attr *);
	int (*destroy_qp)(struct ibv_qp *);
	int (*modify_qp)(struct ibv_qp *, struct ibv_qp_attr *, int);
	int (*query_port)(struct ibv_context *, uint8_t, struct _compat_ibv_port_attr *);
	int (*query_gid)(struct ibv_context *, uint8_t, int, union ibv_gid *);
	int (*get_cq_event)(struct ibv_comp_channel *, struct ibv_cq **, void **);
	void (*ack_cq_events)(struct ibv_cq *, unsigned int);
	const char *(*wc_status_str)(int);	/* enum ibv_wc_status */
	/* rdma-core 32+: tells RoCE v1 from v2 GIDs; NULL before */
	int (*query_gid_ex)(struct ibv_context *, uint32_t, uint32_t, struct ibv_gid_entry *,
			    uint32_t, size_t);
};

/* The table @dev was opened with. */
const struct gpud_verbs_api *gpud_rdma_dev_api(const struct gpud_rdma_dev *dev);
/* References held by objects on @dev (MRs, QPs); the last one closes it. */
void gpud_rdma_dev_ref(struct gpud_rdma_dev *dev);
void gpud_rdma_dev_unref(struct gpud_rdma_dev *dev);

/*
 * White-box test hook (not exported): read provider facts from @dir instead
 * of /sys/class/infiniband (NULL: the default), so tests with a fake
 * libibverbs can give a device a soft-RoCE "parent". Not thread-safe; set
 * before any rdma call.
 */
void gpud_rdma_set_sysfs_dir(const char *dir);

#endif /* GPUD_RDMA_INTERNAL_H */
