// SPDX-License-Identifier: MIT
/*
 * Layout pins for the ABI structs (x86_64 / aarch64 LP64). Offsets and sizes
 * computed from NCCL v2.28.9-1's ext-net headers (v12: v2.30's
 * plugins/net/example/nccl/net_v12.h); a mismatch here means our
 * declarations drifted from what libnccl.so.2 reads.
 */
#include "ncclnet/net.h"
#include "ncclnet/net_device_unpack.h"

#include <stddef.h>

#define PIN(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field)
#define SIZE(type, sz) _Static_assert(sizeof(type) == (sz), "sizeof " #type)

SIZE(ncclResult_t, 4);
SIZE(ncclNetDeviceHandle_v7_t, 32);
PIN(ncclNetDeviceHandle_v7_t, handle, 8);
PIN(ncclNetDeviceHandle_v7_t, needsProxyProgress, 24);
SIZE(ncclNetVDeviceProps_v9_t, 20);

/* device unpack (unpack_defs.h): 16-byte entries, 16 x 2048 of them, then the counts */
SIZE(ncclNetUnpackLoadMeta_t, 16);
_Static_assert(_Alignof(ncclNetUnpackLoadMeta_t) == 16, "loadMeta is alignas(16)");
PIN(ncclNetUnpackLoadMeta_t, len, 4);
PIN(ncclNetUnpackLoadMeta_t, dst_off, 8);
_Static_assert(NCCL_NET_UNPACK_MAX_SLICE_PAGES == 2048, "2048 entries per receive");
PIN(ncclNetUnpackMeta_t, cnt, 16 * 2048 * 16);
SIZE(ncclNetUnpackMeta_t, 16 * 2048 * 16 + 16 * 8);
PIN(ncclNetUnpackHandle_t, bounce_buf, 8);
PIN(ncclNetUnpackHandle_t, head, 16);
SIZE(ncclNetUnpackHandle_t, 24);

/* v8: name, pciPath, guid, then 4-byte fields */
PIN(ncclNetProperties_v8_t, guid, 16);
PIN(ncclNetProperties_v8_t, ptrSupport, 24);
PIN(ncclNetProperties_v8_t, speed, 32);
PIN(ncclNetProperties_v8_t, latency, 40);
PIN(ncclNetProperties_v8_t, netDeviceVersion, 56);
SIZE(ncclNetProperties_v8_t, 64);

/* v9/v10: forceFlush after regIsGlobal, vProps, then two size_t */
PIN(ncclNetProperties_v9_t, forceFlush, 32);
PIN(ncclNetProperties_v9_t, speed, 36);
PIN(ncclNetProperties_v9_t, netDeviceVersion, 60);
PIN(ncclNetProperties_v9_t, vProps, 64);
PIN(ncclNetProperties_v9_t, maxP2pBytes, 88);
PIN(ncclNetProperties_v9_t, maxCollBytes, 96);
SIZE(ncclNetProperties_v9_t, 104);

/* v11: maxMultiRequestSize appended */
PIN(ncclNetProperties_v11_t, vProps, 64);
PIN(ncclNetProperties_v11_t, maxCollBytes, 96);
PIN(ncclNetProperties_v11_t, maxMultiRequestSize, 104);
SIZE(ncclNetProperties_v11_t, 112);
SIZE(ncclNetAttr_v11_t, 44);

/* v12 (NCCL 2.30): 8 devices per vNIC, railId/planeId appended */
SIZE(ncclNetVDeviceProps_v12_t, 36);
PIN(ncclNetProperties_v12_t, vProps, 64);
PIN(ncclNetProperties_v12_t, maxP2pBytes, 104);
PIN(ncclNetProperties_v12_t, maxCollBytes, 112);
PIN(ncclNetProperties_v12_t, maxMultiRequestSize, 120);
PIN(ncclNetProperties_v12_t, railId, 124);
PIN(ncclNetProperties_v12_t, planeId, 126);
SIZE(ncclNetProperties_v12_t, 128);
SIZE(ncclNetAttr_v12_t, 44);

/* function tables: pointer slots in NCCL's order */
#define SLOT(type, field, n) PIN(type, field, (n) * sizeof(void *))
SLOT(ncclNet_v8_t, init, 1);
SLOT(ncclNet_v8_t, isend, 10);
SLOT(ncclNet_v8_t, test, 13);
SLOT(ncclNet_v8_t, irecvConsumed, 18);
SIZE(ncclNet_v8_t, 19 * sizeof(void *));
SLOT(ncclNet_v9_t, makeVDevice, 19);
SIZE(ncclNet_v9_t, 20 * sizeof(void *));
SIZE(ncclNet_v10_t, 20 * sizeof(void *));
SLOT(ncclNet_v11_t, makeVDevice, 19);
SLOT(ncclNet_v11_t, finalize, 20);
SLOT(ncclNet_v11_t, setNetAttr, 21);
SIZE(ncclNet_v11_t, 22 * sizeof(void *));
SLOT(ncclNet_v12_t, getProperties, 3);
SLOT(ncclNet_v12_t, makeVDevice, 19);
SLOT(ncclNet_v12_t, setNetAttr, 21);
SIZE(ncclNet_v12_t, 22 * sizeof(void *));
