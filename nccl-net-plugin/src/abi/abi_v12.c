// SPDX-License-Identifier: MIT
/* The v12 table (NCCL 2.30): api/net.c's entry points as they are. */
#include "abi/abi.h"

DM_EXPORT const ncclNet_v12_t ncclNetPlugin_v12 = {
	.name = DM_NAME,
	.init = dm_net_init,
	.devices = dm_net_devices,
	.getProperties = dm_net_get_properties,
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
	.makeVDevice = dm_net_make_vdevice,
	.finalize = dm_net_finalize,
	.setNetAttr = dm_net_set_net_attr,
};
