/* SPDX-License-Identifier: MIT */
/*
 * libnccl-net-devmem, layer 6 (abi): the exported tables, ncclNetPlugin_v8 ..
 * v12, each an adapter over api/ (v12 is api/ itself), and abi_check.c's
 * compile-time checks of their layout. Includes the layers below only.
 */
#ifndef DM_ABI_H
#define DM_ABI_H

#include "api/api.h"

#define DM_EXPORT __attribute__((visibility("default")))

/* v9..v11 (4 devices per vNIC) from v12 (8): -EINVAL past 4. */
int dm_vprops_to_v11(const ncclNetVDeviceProps_v12_t *in, ncclNetVDeviceProps_v11_t *out);
void dm_vprops_from_v11(const ncclNetVDeviceProps_v11_t *in, ncclNetVDeviceProps_v12_t *out);
/* makeVDevice of the 4-device tables (v9..v11). */
ncclResult_t dm_net_make_vdevice_v11(int *d, ncclNetVDeviceProps_v11_t *props);

/* abi_v9.c reuses the v10 adapter's property conversion. */
extern const ncclNet_v10_t ncclNetPlugin_v10;

#endif /* DM_ABI_H */
