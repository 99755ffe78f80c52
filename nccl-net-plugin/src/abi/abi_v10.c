// SPDX-License-Identifier: MIT
/*
 * ncclNet_v10_t over the v12 implementation. v10 has no per-communicator
 * context (init/listen/connect take none) and no finalize; connect takes the
 * comm config that v11 passes at init.
 */
#include "abi/abi.h"

static ncclResult_t v10_init(ncclDebugLogger_t logFunction, ncclProfilerCallback_t profFunction)
{
	return dm_net_init(NULL, 0, NULL, logFunction, profFunction);
}

static ncclResult_t v10_get_properties(int dev, ncclNetProperties_v10_t *props)
{
	ncclNetProperties_v12_t p;
	ncclResult_t r = dm_net_get_properties(dev, &p);

	if (r != ncclSuccess)
		return r;
	/* v10 is v11 without maxMultiRequestSize (same order, checked in abi_check.c) */
	*props = (ncclNetProperties_v10_t){
		.name = p.name, .pciPath = p.pciPath, .guid = p.guid, .ptrSupport = p.ptrSupport,
		.regIsGlobal = p.regIsGlobal, .forceFlush = p.forceFlush, .speed = p.speed,
		.port = p.port, .latency = p.latency, .maxComms = p.maxComms,
		.maxRecvs = p.maxRecvs, .netDeviceType = p.netDeviceType,
		.netDeviceVersion = p.netDeviceVersion, .maxP2pBytes = p.maxP2pBytes,
		.maxCollBytes = p.maxCollBytes,
	};
	if (dm_vprops_to_v11(&p.vProps, &props->vProps)) {
		DM_WARN("dev %d fuses %d NICs, more than this NCCL's %d: use NCCL 2.30+ (v12)",
			dev, p.vProps.ndevs, NCCL_NET_MAX_DEVS_PER_NIC);
		return ncclInternalError;
	}
	return ncclSuccess;
}

static ncclResult_t v10_listen(int dev, void *handle, void **listenComm)
{
	return dm_net_listen(NULL, dev, handle, listenComm);
}

static ncclResult_t v10_connect(int dev, ncclNetCommConfig_v10_t *config, void *handle,
				void **sendComm, ncclNetDeviceHandle_v10_t **sendDevComm)
{
	return dm_net_connect_tc(config ? config->trafficClass : NCCL_NET_TRAFFIC_CLASS_UNDEF, dev,
				 handle, sendComm);
}

DM_EXPORT const ncclNet_v10_t ncclNetPlugin_v10 = {
	.name = DM_NAME,
	.init = v10_init,
	.devices = dm_net_devices,
	.getProperties = v10_get_properties,
	.listen = v10_listen,
	.connect = v10_connect,
	.accept = dm_net_accept,
	.regMr = dm_net_reg_mr,
	.regMrDmaBuf = dm_net_reg_mr_dmabuf,
	.deregMr = dm_net_dereg_mr,
	.isend = dm_net_isend,
	.irecv = dm_net_irecv,
	.iflush = dm_net_iflush,
	.test = dm_net_test,
	.closeSend = dm_net_close_send,
	.closeRecv = dm_net_close_recv,
	.closeListen = dm_net_close_listen,
	.getDeviceMr = dm_net_get_device_mr,
	.irecvConsumed = dm_net_irecv_consumed,
	.makeVDevice = dm_net_make_vdevice_v11,
};
