// SPDX-License-Identifier: MIT
/* ncclNet_v8_t over v12: int sizes, no virtual NICs, fewer properties. */
#include "abi/abi.h"

#include <limits.h>

static ncclResult_t v8_init(ncclDebugLogger_t logFunction)
{
	return dm_net_init(NULL, 0, NULL, logFunction, NULL);
}

static ncclResult_t v8_get_properties(int dev, ncclNetProperties_v8_t *props)
{
	ncclNetProperties_v12_t p;
	ncclResult_t r = dm_net_get_properties(dev, &p);

	if (r != ncclSuccess)
		return r;
	*props = (ncclNetProperties_v8_t){
		.name = p.name, .pciPath = p.pciPath, .guid = p.guid, .ptrSupport = p.ptrSupport,
		.regIsGlobal = p.regIsGlobal, .speed = p.speed, .port = p.port,
		.latency = p.latency, .maxComms = p.maxComms, .maxRecvs = p.maxRecvs,
		.netDeviceType = p.netDeviceType, .netDeviceVersion = p.netDeviceVersion,
	};
	return ncclSuccess;
}

static ncclResult_t v8_listen(int dev, void *handle, void **listenComm)
{
	return dm_net_listen(NULL, dev, handle, listenComm);
}

static ncclResult_t v8_connect(int dev, void *handle, void **sendComm,
			       ncclNetDeviceHandle_v8_t **sendDevComm)
{
	return dm_net_connect(NULL, dev, handle, sendComm, sendDevComm);
}

static ncclResult_t v8_isend(void *sendComm, void *data, int size, int tag, void *mhandle,
			     void **request)
{
	if (size < 0)
		return ncclInvalidArgument;
	return dm_net_isend(sendComm, data, (size_t)size, tag, mhandle, NULL, request);
}

static ncclResult_t v8_irecv(void *recvComm, int n, void **data, int *sizes, int *tags,
			     void **mhandles, void **request)
{
	size_t sz[DM_MAX_RECVS];

	if (n < 1 || n > DM_MAX_RECVS)
		return ncclInvalidArgument;
	for (int i = 0; i < n; i++) {
		if (sizes[i] < 0)
			return ncclInvalidArgument;
		sz[i] = (size_t)sizes[i];
	}
	return dm_net_irecv(recvComm, n, data, sz, tags, mhandles, NULL, request);
}

DM_EXPORT const ncclNet_v8_t ncclNetPlugin_v8 = {
	.name = DM_NAME,
	.init = v8_init,
	.devices = dm_net_devices,
	.getProperties = v8_get_properties,
	.listen = v8_listen,
	.connect = v8_connect,
	.accept = dm_net_accept,
	.regMr = dm_net_reg_mr,
	.regMrDmaBuf = dm_net_reg_mr_dmabuf,
	.deregMr = dm_net_dereg_mr,
	.isend = v8_isend,
	.irecv = v8_irecv,
	.iflush = dm_net_iflush,
	.test = dm_net_test,
	.closeSend = dm_net_close_send,
	.closeRecv = dm_net_close_recv,
	.closeListen = dm_net_close_listen,
	.getDeviceMr = dm_net_get_device_mr,
	.irecvConsumed = dm_net_irecv_consumed,
};
