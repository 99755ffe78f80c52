/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 5 (api): the v12 implementation every exported
 * table (abi/) is built on — net.c's entry points, translating -errno to
 * ncclResult_t, device properties (props.c), memory registration (mr.c).
 * Includes the layers below only.
 */
#ifndef DM_API_H
#define DM_API_H

#include "base/base.h"
#include "conn/conn.h"

#include <errno.h>

ncclResult_t dm_net_init(void **ctx, uint64_t commId, ncclNetCommConfig_v12_t *config,
			 ncclDebugLogger_t logFunction, ncclProfilerCallback_t profFunction);
ncclResult_t dm_net_devices(int *ndev);
ncclResult_t dm_net_get_properties(int dev, ncclNetProperties_v12_t *props);
ncclResult_t dm_net_listen(void *ctx, int dev, void *handle, void **listenComm);
ncclResult_t dm_net_connect(void *ctx, int dev, void *handle, void **sendComm,
			    ncclNetDeviceHandle_v12_t **sendDevComm);
/* connect with NCCL's traffic class (v10 passes it per connect, v11+ at init) */
ncclResult_t dm_net_connect_tc(int tclass, int dev, void *handle, void **sendComm);
ncclResult_t dm_net_accept(void *listenComm, void **recvComm,
			   ncclNetDeviceHandle_v12_t **recvDevComm);
ncclResult_t dm_net_reg_mr(void *comm, void *data, size_t size, int type, void **mhandle);
ncclResult_t dm_net_reg_mr_dmabuf(void *comm, void *data, size_t size, int type,
				  uint64_t offset, int fd, void **mhandle);
ncclResult_t dm_net_dereg_mr(void *comm, void *mhandle);
ncclResult_t dm_net_isend(void *sendComm, void *data, size_t size, int tag, void *mhandle,
			  void *phandle, void **request);
ncclResult_t dm_net_irecv(void *recvComm, int n, void **data, size_t *sizes, int *tags,
			  void **mhandles, void **phandles, void **request);
ncclResult_t dm_net_iflush(void *recvComm, int n, void **data, int *sizes, void **mhandles,
			   void **request);
ncclResult_t dm_net_test(void *request, int *done, int *sizes);
ncclResult_t dm_net_close_send(void *sendComm);
ncclResult_t dm_net_close_recv(void *recvComm);
ncclResult_t dm_net_close_listen(void *listenComm);
ncclResult_t dm_net_get_device_mr(void *comm, void *mhandle, void **dptr_mhandle);
ncclResult_t dm_net_irecv_consumed(void *recvComm, int n, void *request);
ncclResult_t dm_net_make_vdevice(int *d, ncclNetVDeviceProps_v12_t *props);
ncclResult_t dm_net_finalize(void *ctx);
ncclResult_t dm_net_set_net_attr(void *ctx, ncclNetAttr_v12_t *attr);

/* ---- global state (net.c) ---- */
int dm_global_init(ncclDebugLogger_t logger);

/* ---- devices (props.c) ---- */
int dm_devs_scan(const char *iflist, int family, struct dm_dev *devs, int max);
void dm_props_fill(int dev, ncclNetProperties_v12_t *props);

/* ---- memory registration (mr.c) ---- */
int dm_mr_reg(void *data, size_t size, int type, int fd, struct dm_mr **out);
void dm_mr_dereg(struct dm_mr *mr);

#endif /* DM_API_H */
