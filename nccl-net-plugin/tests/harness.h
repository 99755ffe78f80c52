/* SPDX-License-Identifier: MIT */
/*
 * Test harness: loads libnccl-net-devmem.so with dlopen and drives it the way
 * NCCL's proxy does (init, devices, getProperties, listen, connect/accept
 * polling, regMr, isend/irecv/test polling, close), through any of the ABI
 * versions v8..v12. Receiver in namespace a, sender in namespace b, the
 * listen handle passed over a pipe (NCCL's bootstrap does the same).
 */
#ifndef DM_HARNESS_H
#define DM_HARNESS_H

#include "gpud_test.h"
#include "ncclnet/net.h"

#include <sys/types.h>

struct h_plugin {
	int version;		/* 8..12 */
	void *so;
	const ncclNet_v8_t *v8;
	const ncclNet_v9_t *v9;
	const ncclNet_v10_t *v10;
	const ncclNet_v11_t *v11;
	const ncclNet_v12_t *v12;
	void *ctx;		/* v11/v12 init context */
};

/* Number of WARN lines the plugin logged in this process. */
extern int h_warns;
/* Last WARN text, for checks on what the log says. */
extern char h_last_warn[512];
/* Log lines (any level) containing h_log_needle since it was set, and the last one. */
extern char h_log_needle[128];
extern int h_log_hits;
extern char h_log_hit[512];

/*
 * h_unload() leaves the plugin loaded. For runs where libgpudirect (linked
 * into the plugin) loaded a driver library: it keeps that library's function
 * table for the life of the process, which a dlclose() would leak.
 */
extern bool h_keep_loaded;

const char *h_plugin_path(void);
/* The traffic class NCCL hands the plugin: H_TCLASS, else UNDEF. */
int h_tclass(void);
void h_load(struct h_plugin *p, int version);
void h_unload(struct h_plugin *p);

ncclResult_t h_listen(struct h_plugin *p, int dev, void *handle, void **lcomm);
ncclResult_t h_connect(struct h_plugin *p, int dev, void *handle, void **scomm);
ncclResult_t h_accept(struct h_plugin *p, void *lcomm, void **rcomm);
/*
 * accept() as NCCL calls it for a plugin offering NCCL_NET_DEVICE_UNPACK:
 * with a device handle it allocated (type and version set) for the plugin
 * to fill. *dh: NULL (no offload) or the handle.
 */
ncclResult_t h_accept_dev(struct h_plugin *p, void *lcomm, void **rcomm,
			  ncclNetDeviceHandle_v11_t **dh);
ncclResult_t h_irecv_consumed(struct h_plugin *p, void *c, int n, void *req);
/* netDeviceType, netDeviceVersion, maxRecvs of @dev through any version's getProperties. */
void h_props_dev(struct h_plugin *p, int dev, int *type, int *version, int *max_recvs);
ncclResult_t h_regmr(struct h_plugin *p, void *comm, void *data, size_t size, void **mh);
ncclResult_t h_deregmr(struct h_plugin *p, void *comm, void *mh);
ncclResult_t h_isend(struct h_plugin *p, void *c, void *data, size_t size, int tag, void *mh,
		     void **req);
ncclResult_t h_irecv(struct h_plugin *p, void *c, int n, void **data, size_t *sizes, int *tags,
		     void **mh, void **req);
ncclResult_t h_iflush(struct h_plugin *p, void *c, void *data, int size, void *mh, void **req);
ncclResult_t h_test(struct h_plugin *p, void *req, int *done, int *sizes);
ncclResult_t h_close_send(struct h_plugin *p, void *c);
ncclResult_t h_close_recv(struct h_plugin *p, void *c);
ncclResult_t h_close_listen(struct h_plugin *p, void *l);

/* Polls connect/accept like NCCL until a comm appears; fails the test after @secs. */
void *h_connect_wait(struct h_plugin *p, int dev, void *handle, double secs);
void *h_accept_wait(struct h_plugin *p, void *lcomm, double secs);
void *h_accept_wait_dev(struct h_plugin *p, void *lcomm, ncclNetDeviceHandle_v11_t **dh,
			double secs);
/* Polls test() until done; returns its result (ncclSuccess only when done). */
ncclResult_t h_wait(struct h_plugin *p, void *req, int *sizes, double secs);
/* isend/irecv retried while the plugin answers request == NULL. */
void *h_isend_wait(struct h_plugin *p, void *c, void *data, size_t size, int tag, void *mh);

/* Two-process fixture */
struct h_pair {
	struct t_netpair net;
	int hpipe[2];		/* handles: receiver → sender */
	int spipe[2];		/* sync: sender → receiver */
	pid_t child;
};
/* Forks; the parent returns 0 as receiver (ns a), the child returns 1 as sender (ns b). */
int h_pair_start(struct h_pair *hp);
/* Parent: waits for the child; fails the test unless it exited 0 within @secs. */
void h_pair_join(struct h_pair *hp, double secs);
void h_send_handle(struct h_pair *hp, const void *handle);
void h_recv_handle(struct h_pair *hp, void *handle);
void h_sync_send(struct h_pair *hp);
void h_sync_recv(struct h_pair *hp);

void *h_alloc(size_t size);

#endif
