/* SPDX-License-Identifier: MIT */
/*
 * Types shared by every NCCL net-plugin ABI version we implement (v8..v11),
 * declared from NCCL's published ext-net headers at tag v2.28.9-1
 * (ext-net/example/nccl/{err,common,net_device,net}.h). These are ABI: the
 * values and layouts must match what libnccl.so.2 was compiled with, so
 * nothing here may be reordered or resized. abi_check.c pins them with
 * static asserts.
 */
#ifndef NCCLNET_TYPES_H
#define NCCLNET_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* The subset of ncclResult_t a net plugin may return. */
typedef enum {
	ncclSuccess = 0,
	ncclUnhandledCudaError = 1,
	ncclSystemError = 2,
	ncclInternalError = 3,
	ncclInvalidArgument = 4,
	ncclRemoteError = 6,
} ncclResult_t;

typedef enum {
	NCCL_LOG_NONE = 0,
	NCCL_LOG_VERSION = 1,
	NCCL_LOG_WARN = 2,
	NCCL_LOG_INFO = 3,
	NCCL_LOG_ABORT = 4,
	NCCL_LOG_TRACE = 5,
} ncclDebugLogLevel;

/* Subsystem flags for the logger's second argument (NCCL_DEBUG_SUBSYS). */
enum {
	NCCL_INIT = 1,
	NCCL_NET = 16,
	NCCL_ENV = 128,
	NCCL_ALL = ~0,
};

typedef void (*ncclDebugLogger_t)(ncclDebugLogLevel level, unsigned long flags,
				  const char *file, int line, const char *fmt, ...);

/* Profiler hook handed to init() from v10 on; we accept it and never call it. */
typedef ncclResult_t (*ncclProfilerCallback_t)(void **eHandle, int type, void *phandle,
					       int64_t pluginId, void *extData);

/* A listen handle must fit in what NCCL exchanges between ranks. */
#define NCCL_NET_HANDLE_MAXSIZE 128
/* Largest single transfer NCCL may ask for (1 TiB). */
#define NCCL_MAX_NET_SIZE_BYTES (1024LL * 1024 * 1024 * 1024)
/* NCCL keeps at most this many requests in flight per comm. */
#define NCCL_NET_MAX_REQUESTS 32
/*
 * Preset in *request by NCCL's proxy before irecv for LL/LL128 receives
 * (NCCL_NET_OPTIONAL_RECV_COMPLETION=1, the default): the plugin may skip
 * completion work. We use it to tell which receives NCCL's device unpack
 * will not consume (see net_device_unpack.h).
 */
#define NCCL_NET_OPTIONAL_RECV_COMPLETION 0x1

/* ptrSupport bits and regMr types */
#define NCCL_PTR_HOST 0x1
#define NCCL_PTR_CUDA 0x2
#define NCCL_PTR_DMABUF 0x4

/* Device-side offload (net_device.h) */
#define NCCL_NET_DEVICE_INVALID_VERSION 0x0
#define NCCL_NET_MTU_SIZE 4096
/* NCCL 2.28.9 accepts exactly this unpack version and refuses others. */
#define NCCL_NET_DEVICE_UNPACK_VERSION 0x7

typedef enum {
	NCCL_NET_DEVICE_HOST = 0,
	NCCL_NET_DEVICE_UNPACK = 1,
} ncclNetDeviceType;

/* Unchanged from v7 through v11. */
typedef struct {
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
	void *handle;		/* plugin's device-side state, e.g. unpack queue */
	size_t size;
	int needsProxyProgress;
} ncclNetDeviceHandle_v7_t;
typedef ncclNetDeviceHandle_v7_t ncclNetDeviceHandle_v8_t;
typedef ncclNetDeviceHandle_v7_t ncclNetDeviceHandle_v9_t;
typedef ncclNetDeviceHandle_v7_t ncclNetDeviceHandle_v10_t;
typedef ncclNetDeviceHandle_v7_t ncclNetDeviceHandle_v11_t;

/* Virtual NICs (v9+): a vNIC fuses up to 4 physical devices. */
#define NCCL_NET_MAX_DEVS_PER_NIC 4
typedef struct {
	int ndevs;
	int devs[NCCL_NET_MAX_DEVS_PER_NIC];
} ncclNetVDeviceProps_v9_t;
typedef ncclNetVDeviceProps_v9_t ncclNetVDeviceProps_v10_t;
typedef ncclNetVDeviceProps_v9_t ncclNetVDeviceProps_v11_t;

/* Per-communicator config (v10+). */
#define NCCL_NET_TRAFFIC_CLASS_UNDEF -1
typedef struct {
	int trafficClass;
} ncclNetCommConfig_v10_t;
typedef ncclNetCommConfig_v10_t ncclNetCommConfig_v11_t;

#endif /* NCCLNET_TYPES_H */
