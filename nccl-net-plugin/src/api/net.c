// SPDX-License-Identifier: MIT
/*
 * NCCL's v12 entry points, translating -errno to ncclResult_t; the tables
 * (abi/abi_v12.c, and abi_v8.c .. abi_v11.c as thin adapters) export them.
 */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpudirect/gpudirect.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool inited;

/* v11/v12's per-communicator context: what NCCL told us at init. */
struct dm_ctx {
	uint64_t comm_id;
	int traffic_class;
};

static void lib_log(enum gpud_log_level level, const char *msg, void *ctx)
{
	/* an error the plugin reports itself, in its words, stays at INFO */
	if (level <= GPUD_LOG_WARN && !(level == GPUD_LOG_ERROR && dm_lib_errors_owned()))
		DM_WARN("libgpudirect: %s", msg);
	else
		DM_INFO("libgpudirect: %s", msg);
}

int dm_global_init(ncclDebugLogger_t logger)
{
	int err = 0;

	pthread_mutex_lock(&init_lock);
	if (logger)
		dm_log_set(logger);
	if (inited)
		goto out;
	dm_config_load(&dm_cfg);
	gpud_set_log(lib_log, NULL, GPUD_LOG_INFO);
	err = dm_devs_scan(dm_cfg.ifname, dm_cfg.family, dm_devs, DM_MAX_DEVS);
	if (err < 0) {
		DM_WARN("cannot list network interfaces: %s", strerror(-err));
		goto out;
	}
	dm_devs_n = dm_devs_nphys = err;
	err = 0;
	if (!dm_devs_n) {
		DM_WARN("no usable interface (%s); set NCCL_DEVMEM_IFNAME%s",
			dm_cfg.ifname[0] ? "none of NCCL_DEVMEM_IFNAME is up with a usable address"
					 : "no non-loopback interface is up with a usable address",
			dm_cfg.family != AF_UNSPEC ? " or NCCL_DEVMEM_FAMILY" : "");
		err = -ENODEV;
		goto out;
	}
	for (int i = 0; i < dm_devs_n; i++) {
		char a[64];

		dm_addr_str(&dm_devs[i].addr, a, sizeof(a));
		DM_INFO("dev %d: %s %s %s, speed %d Mbit/s, mode %s, %d data socket(s), %d thread(s), unpack %s, pool %s",
			i, dm_devs[i].name, a, dm_devs[i].pci_path, dm_devs[i].speed_mbps,
			dm_mode_name(dm_cfg.mode), dm_cfg.nsocks, dm_cfg.nthreads,
			dm_unpack_name(dm_cfg.unpack), dm_cfg.pool_mem);
	}
	if (dm_cfg.unpack == DM_UNPACK_NCCL)
		DM_INFO("NCCL_DEVMEM_UNPACK=nccl: offering NCCL's device unpack (netDeviceType UNPACK, version 0x%x, maxRecvs 1); NCCL's kernels copy devmem fragments, the plugin returns tokens on irecvConsumed",
			NCCL_NET_DEVICE_UNPACK_VERSION);
	inited = true;
out:
	pthread_mutex_unlock(&init_lock);
	return err;
}

static bool dev_ok(int dev)
{
	if (dev >= 0 && dev < dm_devs_n)
		return true;
	DM_WARN("invalid device %d (have %d)", dev, dm_devs_n);
	return false;
}

ncclResult_t dm_net_init(void **ctx, uint64_t commId, ncclNetCommConfig_v12_t *config,
			 ncclDebugLogger_t logFunction, ncclProfilerCallback_t profFunction)
{
	struct dm_ctx *c;
	int err = dm_global_init(logFunction);

	if (err)
		return dm_result(err);
	if (!ctx)
		return ncclSuccess;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ncclSystemError;
	c->comm_id = commId;
	c->traffic_class = config ? config->trafficClass : NCCL_NET_TRAFFIC_CLASS_UNDEF;
	*ctx = c;
	return ncclSuccess;
}

ncclResult_t dm_net_devices(int *ndev)
{
	*ndev = dm_devs_n;
	return ncclSuccess;
}

ncclResult_t dm_net_get_properties(int dev, ncclNetProperties_v12_t *props)
{
	if (!dev_ok(dev))
		return ncclInvalidArgument;
	dm_props_fill(dev, props);
	return ncclSuccess;
}

ncclResult_t dm_net_listen(void *ctx, int dev, void *handle, void **listenComm)
{
	struct dm_listen *l;
	int err;

	if (!dev_ok(dev))
		return ncclInvalidArgument;
	err = dm_listen(dev, handle, &l);
	if (err)
		return dm_result(err);
	if (ctx)
		dm_listen_set_tclass(l, ((struct dm_ctx *)ctx)->traffic_class);
	*listenComm = l;
	return ncclSuccess;
}

ncclResult_t dm_net_connect_tc(int tclass, int dev, void *handle, void **sendComm)
{
	struct dm_comm *c;
	int err;

	*sendComm = NULL;
	if (!dev_ok(dev))
		return ncclInvalidArgument;
	err = dm_connect(dev, handle, &c);
	if (err)
		return dm_result(err);
	if (c)
		dm_comm_set_tclass(c, tclass);
	*sendComm = c;
	return ncclSuccess;
}

ncclResult_t dm_net_connect(void *ctx, int dev, void *handle, void **sendComm,
			    ncclNetDeviceHandle_v12_t **sendDevComm)
{
	int tc = ctx ? ((struct dm_ctx *)ctx)->traffic_class : NCCL_NET_TRAFFIC_CLASS_UNDEF;

	return dm_net_connect_tc(tc, dev, handle, sendComm);
}

ncclResult_t dm_net_accept(void *listenComm, void **recvComm,
			   ncclNetDeviceHandle_v12_t **recvDevComm)
{
	ncclNetDeviceHandle_v12_t *dh = recvDevComm ? *recvDevComm : NULL;
	struct dm_comm *c;
	int err;

	*recvComm = NULL;
	err = dm_accept(listenComm, &c);
	if (err || !c)
		return dm_result(err);
	dm_comm_set_tclass(c, dm_listen_tclass(listenComm));
	/*
	 * NCCL allocates the handle (type and version set) only when it
	 * takes our NCCL_NET_DEVICE_UNPACK offer; we fill in the rest.
	 */
	if (dh && dh->netDeviceType == NCCL_NET_DEVICE_UNPACK) {
		err = dm_devmem_unpack_attach(c, dh);
		if (err) {
			dm_comm_destroy(c);
			return dm_result(err);
		}
	} else if (dm_cfg.unpack == DM_UNPACK_NCCL) {
		DM_INFO("recv comm %p: NCCL_DEVMEM_UNPACK=nccl but NCCL asked for no device handle (%s): the plugin unpacks",
			(void *)c, dh ? "another device type" : "none passed");
	}
	*recvComm = c;
	return ncclSuccess;
}

/* A CUDA buffer gives its comm a GPU engine now, before any byte moves. */
static int reg_mr(void *comm, void *data, size_t size, int type, int fd, void **mhandle)
{
	struct dm_mr *mr;
	int err = dm_mr_reg(data, size, type, fd, &mr);

	if (err)
		return err;
	if (comm && type == NCCL_PTR_CUDA) {
		err = dm_comm_gpu_attach(comm, mr->cuctx);
		if (err) {
			dm_mr_dereg(mr);
			return err;
		}
	}
	*mhandle = mr;
	return 0;
}

ncclResult_t dm_net_reg_mr(void *comm, void *data, size_t size, int type, void **mhandle)
{
	return dm_result(reg_mr(comm, data, size, type, -1, mhandle));
}

ncclResult_t dm_net_reg_mr_dmabuf(void *comm, void *data, size_t size, int type,
				  uint64_t offset, int fd, void **mhandle)
{
	/*
	 * Not offered (props.c: no NCCL_PTR_DMABUF); kept for NCCL versions
	 * that call it regardless. Bytes move by virtual address, the fd is
	 * not needed.
	 */
	return dm_result(reg_mr(comm, data, size, type, fd, mhandle));
}

ncclResult_t dm_net_dereg_mr(void *comm, void *mhandle)
{
	/* NCCL deregisters before it closes the comm; NULL: no comm to quiesce */
	if (comm && mhandle)
		dm_comm_quiesce_mr(comm, mhandle);
	dm_mr_dereg(mhandle);
	return ncclSuccess;
}

ncclResult_t dm_net_isend(void *sendComm, void *data, size_t size, int tag, void *mhandle,
			  void *phandle, void **request)
{
	return dm_result(dm_comm_isend(sendComm, data, size, tag, mhandle,
				       (struct dm_req **)request));
}

ncclResult_t dm_net_irecv(void *recvComm, int n, void **data, size_t *sizes, int *tags,
			  void **mhandles, void **phandles, void **request)
{
	bool optional = *request == (void *)NCCL_NET_OPTIONAL_RECV_COMPLETION;
	uint64_t sz[DM_MAX_RECVS];

	if (n < 1 || n > DM_MAX_RECVS) {
		DM_WARN("irecv: %d buffers requested, supported 1..%d", n, DM_MAX_RECVS);
		return ncclInvalidArgument;
	}
	for (int i = 0; i < n; i++)
		sz[i] = sizes[i];
	return dm_result(dm_comm_irecv(recvComm, n, data, sz, tags, (struct dm_mr **)mhandles,
				       optional, (struct dm_req **)request));
}

ncclResult_t dm_net_iflush(void *recvComm, int n, void **data, int *sizes, void **mhandles,
			   void **request)
{
	return dm_result(dm_comm_iflush(recvComm, (struct dm_req **)request));
}

ncclResult_t dm_net_test(void *request, int *done, int *sizes)
{
	return dm_result(dm_req_test(request, done, sizes));
}

ncclResult_t dm_net_close_send(void *sendComm)
{
	dm_comm_destroy(sendComm);
	return ncclSuccess;
}

ncclResult_t dm_net_close_recv(void *recvComm)
{
	dm_comm_destroy(recvComm);
	return ncclSuccess;
}

ncclResult_t dm_net_close_listen(void *listenComm)
{
	dm_listen_close(listenComm);
	return ncclSuccess;
}

ncclResult_t dm_net_get_device_mr(void *comm, void *mhandle, void **dptr_mhandle)
{
	/* NCCL's unpack kernel addresses buffers itself; it needs no device view of ours */
	*dptr_mhandle = NULL;
	return ncclSuccess;
}

ncclResult_t dm_net_irecv_consumed(void *recvComm, int n, void *request)
{
	return dm_result(dm_comm_irecv_consumed(recvComm, n, request));
}

/* 0 when @props names 1..DM_MAX_MEMBERS distinct interfaces of one address family. */
static int vdev_check(const ncclNetVDeviceProps_v12_t *props)
{
	if (props->ndevs < 1 || props->ndevs > DM_MAX_MEMBERS) {
		DM_WARN("makeVDevice: %d devices; a fused NIC has 1..%d", props->ndevs,
			DM_MAX_MEMBERS);
		return -EINVAL;
	}
	for (int i = 0; i < props->ndevs; i++) {
		int m = props->devs[i];

		if (m < 0 || m >= dm_devs_nphys) {
			DM_WARN("makeVDevice: device %d is not an interface (have %d; fused devices cannot be fused again)",
				m, dm_devs_nphys);
			return -EINVAL;
		}
		for (int k = 0; k < i; k++)
			if (props->devs[k] == m) {
				DM_WARN("makeVDevice: device %d (%s) listed twice", m, dm_devs[m].name);
				return -EINVAL;
			}
		if (dm_devs[m].addr.sa.sa_family != dm_devs[props->devs[0]].addr.sa.sa_family) {
			DM_WARN("makeVDevice: %s is %s, %s is %s: a fused NIC uses one address family (NCCL_DEVMEM_FAMILY)",
				dm_devs[m].name, dm_family_name(dm_devs[m].addr.sa.sa_family),
				dm_devs[props->devs[0]].name,
				dm_family_name(dm_devs[props->devs[0]].addr.sa.sa_family));
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * A fused device: what NCCL shows as one NIC. Named "a+b", placed at its
 * first member's PCI path, as fast as its members together; a comm on it
 * stripes its data sockets over the members (conn.c). The same set asked
 * again gets the same device.
 */
ncclResult_t dm_net_make_vdevice(int *d, ncclNetVDeviceProps_v12_t *props)
{
	struct dm_dev *v;
	int err = 0;

	if (vdev_check(props))
		return ncclInvalidArgument;
	if (props->ndevs == 1) {
		*d = props->devs[0];
		return ncclSuccess;
	}
	pthread_mutex_lock(&init_lock);
	for (int k = dm_devs_nphys; k < dm_devs_n; k++)
		if (dm_devs[k].nmembers == props->ndevs &&
		    !memcmp(dm_devs[k].members, props->devs, sizeof(int) * (size_t)props->ndevs)) {
			*d = k;
			goto out;
		}
	if (dm_devs_n == dm_devs_nphys + DM_MAX_VDEVS) {
		DM_WARN("makeVDevice: already %d fused devices", DM_MAX_VDEVS);
		err = -ENOSPC;
		goto out;
	}
	v = &dm_devs[dm_devs_n];
	*v = dm_devs[props->devs[0]];
	v->nmembers = props->ndevs;
	v->speed_mbps = 0;
	for (int i = 0, at = 0; i < props->ndevs; i++) {
		const struct dm_dev *m = &dm_devs[props->devs[i]];
		size_t l = strnlen(m->name, IF_NAMESIZE);

		v->members[i] = props->devs[i];
		v->speed_mbps += m->speed_mbps;
		if (i)
			v->name[at++] = '+';
		memcpy(v->name + at, m->name, l);	/* name[] holds DM_MAX_MEMBERS of them */
		at += (int)l;
		v->name[at] = '\0';
	}
	DM_INFO("dev %d: %s fuses %d NICs, %d Mbit/s; a comm stripes its data sockets over them",
		dm_devs_n, v->name, v->nmembers, v->speed_mbps);
	*d = dm_devs_n++;
out:
	pthread_mutex_unlock(&init_lock);
	return dm_result(err);
}

ncclResult_t dm_net_finalize(void *ctx)
{
	free(ctx);
	return ncclSuccess;
}

ncclResult_t dm_net_set_net_attr(void *ctx, ncclNetAttr_v12_t *attr)
{
	/* hints only: our socket count is fixed per comm by NCCL_DEVMEM_NSOCKS */
	return ncclSuccess;
}
