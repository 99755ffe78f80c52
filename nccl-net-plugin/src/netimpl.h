/* SPDX-License-Identifier: MIT */
/* The v12 implementation that every exported table is built on. */
#ifndef DM_NET_H
#define DM_NET_H

#include "plugin.h"

#include <errno.h>

#define DM_EXPORT __attribute__((visibility("default")))

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

/* v9..v11 (4 devices per vNIC) from v12 (8): -EINVAL past 4. */
int dm_vprops_to_v11(const ncclNetVDeviceProps_v12_t *in, ncclNetVDeviceProps_v11_t *out);
void dm_vprops_from_v11(const ncclNetVDeviceProps_v11_t *in, ncclNetVDeviceProps_v12_t *out);
/* makeVDevice of the 4-device tables (v9..v11). */
ncclResult_t dm_net_make_vdevice_v11(int *d, ncclNetVDeviceProps_v11_t *props);

/* abi_v9.c reuses the v10 adapter's property conversion. */
extern const ncclNet_v10_t ncclNetPlugin_v10;

#endif
