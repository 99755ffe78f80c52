// SPDX-License-Identifier: MIT
/*
 * ncclNet_v11_t over the v12 implementation (NCCL 2.28, 2.29): the same
 * table; properties without railId/planeId, and virtual NICs of at most 4
 * devices.
 */
#include "abi/abi.h"

#include <string.h>

int dm_vprops_to_v11(const ncclNetVDeviceProps_v12_t *in, ncclNetVDeviceProps_v11_t *out)
{
	if (in->ndevs < 0 || in->ndevs > NCCL_NET_MAX_DEVS_PER_NIC)
		return -EINVAL;
	out->ndevs = in->ndevs;
	memcpy(out->devs, in->devs, sizeof(out->devs[0]) * (size_t)in->ndevs);
	return 0;
}

void dm_vprops_from_v11(const ncclNetVDeviceProps_v11_t *in, ncclNetVDeviceProps_v12_t *out)
{
	int n = in->ndevs < 0 ? 0 : in->ndevs > NCCL_NET_MAX_DEVS_PER_NIC ?
				    NCCL_NET_MAX_DEVS_PER_NIC : in->ndevs;

	memset(out, 0, sizeof(*out));
	out->ndevs = in->ndevs;
	memcpy(out->devs, in->devs, sizeof(out->devs[0]) * (size_t)n);
}

static ncclResult_t v11_get_properties(int dev, ncclNetProperties_v11_t *props)
{
	ncclNetProperties_v12_t p;
	ncclResult_t r = dm_net_get_properties(dev, &p);

	if (r != ncclSuccess)
		return r;
	*props = (ncclNetProperties_v11_t){
		.name = p.name, .pciPath = p.pciPath, .guid = p.guid, .ptrSupport = p.ptrSupport,
		.regIsGlobal = p.regIsGlobal, .forceFlush = p.forceFlush, .speed = p.speed,
		.port = p.port, .latency = p.latency, .maxComms = p.maxComms,
		.maxRecvs = p.maxRecvs, .netDeviceType = p.netDeviceType,
		.netDeviceVersion = p.netDeviceVersion, .maxP2pBytes = p.maxP2pBytes,
		.maxCollBytes = p.maxCollBytes, .maxMultiRequestSize = p.maxMultiRequestSize,
	};
	if (dm_vprops_to_v11(&p.vProps, &props->vProps)) {
		DM_WARN("dev %d fuses %d NICs, more than this NCCL's %d: use NCCL 2.30+ (v12)",
			dev, p.vProps.ndevs, NCCL_NET_MAX_DEVS_PER_NIC);
		return ncclInternalError;
	}
	return ncclSuccess;
}

ncclResult_t dm_net_make_vdevice_v11(int *d, ncclNetVDeviceProps_v11_t *props)
{
	ncclNetVDeviceProps_v12_t p;

	if (props->ndevs > NCCL_NET_MAX_DEVS_PER_NIC) {
		DM_WARN("makeVDevice: %d devices, more than this NCCL's %d per NIC", props->ndevs,
			NCCL_NET_MAX_DEVS_PER_NIC);
		return ncclInvalidArgument;
	}
	dm_vprops_from_v11(props, &p);
	return dm_net_make_vdevice(d, &p);
}

DM_EXPORT const ncclNet_v11_t ncclNetPlugin_v11 = {
	.name = DM_NAME,
	.init = dm_net_init,
	.devices = dm_net_devices,
	.getProperties = v11_get_properties,
	.listen = dm_net_listen,
	.connect = dm_net_connect,
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
	.finalize = dm_net_finalize,
	.setNetAttr = dm_net_set_net_attr,
};
