// SPDX-License-Identifier: MIT
/*
 * Queue pairs in a library built without rdma-core's headers: the entry
 * points exist (the ABI does not depend on the build host), creating a QP
 * says what to install and rebuild with. The accessors are never reached
 * without a QP.
 */
#include "rdma_internal.h"

#include <errno.h>

static int no_headers(const char *what)
{
	return gpud_err(-ENOSYS, "%s: this libgpudirect was built without rdma-core's headers: install libibverbs-dev and rebuild for queue pairs",
			what);
}

int gpud_rdma_qp_create(struct gpud_rdma_dev *dev, const struct gpud_rdma_qp_opts *o,
			struct gpud_rdma_qp **out)
{
	(void)dev;
	(void)o;
	(void)out;
	return no_headers("gpud_rdma_qp_create");
}

int gpud_rdma_port_check(struct gpud_rdma_dev *dev)
{
	(void)dev;
	return no_headers("gpud_rdma_port_check");
}

void gpud_rdma_qp_local(const struct gpud_rdma_qp *qp, struct gpud_rdma_ep *out)
{
	(void)qp;
	(void)out;
}

int gpud_rdma_qp_connect(struct gpud_rdma_qp *qp, const struct gpud_rdma_ep *peer)
{
	(void)qp;
	(void)peer;
	return no_headers("gpud_rdma_qp_connect");
}

void *gpud_rdma_qp_ibv(const struct gpud_rdma_qp *qp)
{
	(void)qp;
	return NULL;
}

void *gpud_rdma_qp_cq(const struct gpud_rdma_qp *qp)
{
	(void)qp;
	return NULL;
}

int gpud_rdma_qp_gid_index(const struct gpud_rdma_qp *qp)
{
	(void)qp;
	return -1;
}

unsigned int gpud_rdma_qp_path_mtu(const struct gpud_rdma_qp *qp)
{
	(void)qp;
	return 0;
}

int gpud_rdma_qp_wait(struct gpud_rdma_qp *qp, int fd, int ms)
{
	(void)qp;
	(void)fd;
	(void)ms;
	return no_headers("gpud_rdma_qp_wait");
}

const char *gpud_rdma_wc_status_str(const struct gpud_rdma_qp *qp, int status)
{
	(void)qp;
	(void)status;
	return "unknown";
}

void gpud_rdma_qp_free(struct gpud_rdma_qp *qp)
{
	(void)qp;
}
