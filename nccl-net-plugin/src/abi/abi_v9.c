// SPDX-License-Identifier: MIT
/* ncclNet_v9_t over v12: v10's shape without profiler arguments or comm config. */
#include "abi/abi.h"

static ncclResult_t v9_init(ncclDebugLogger_t logFunction)
{
	return dm_net_init(NULL, 0, NULL, logFunction, NULL);
}

static ncclResult_t v9_get_properties(int dev, ncclNetProperties_v9_t *props)
{
	/* v9 and v10 properties are one type (see net_v10.h) */
	return ncclNetPlugin_v10.getProperties(dev, props);
}

static ncclResult_t v9_listen(int dev, void *handle, void **listenComm)
{
	return dm_net_listen(NULL, dev, handle, listenComm);
}

static ncclResult_t v9_connect(int dev, void *handle, void **sendComm,
			       ncclNetDeviceHandle_v9_t **sendDevComm)
{
	return dm_net_connect(NULL, dev, handle, sendComm, sendDevComm);
}

static ncclResult_t v9_isend(void *sendComm, void *data, size_t size, int tag, void *mhandle,
			     void **request)
{
	return dm_net_isend(sendComm, data, size, tag, mhandle, NULL, request);
}

static ncclResult_t v9_irecv(void *recvComm, int n, void **data, size_t *sizes, int *tags,
			     void **mhandles, void **request)
{
	return dm_net_irecv(recvComm, n, data, sizes, tags, mhandles, NULL, request);
}

DM_EXPORT const ncclNet_v9_t ncclNetPlugin_v9 = {
	.name = DM_NAME,
	.init = v9_init,
	.devices = dm_net_devices,
	.getProperties = v9_get_properties,
	.listen = v9_listen,
	.connect = v9_connect,
	.accept = dm_net_accept,
	.regMr = dm_net_reg_mr,
	.regMrDmaBuf = dm_net_reg_mr_dmabuf,
	.deregMr = dm_net_dereg_mr,
	.isend = v9_isend,
	.irecv = v9_irecv,
	.iflush = dm_net_iflush,
	.test = dm_net_test,
	.closeSend = dm_net_close_send,
	.closeRecv = dm_net_close_recv,
	.closeListen = dm_net_close_listen,
	.getDeviceMr = dm_net_get_device_mr,
	.irecvConsumed = dm_net_irecv_consumed,
	.makeVDevice = dm_net_make_vdevice_v11,
};
