// SPDX-License-Identifier: MIT
/*
 * The RDMA baseline in a build without rdma-core's headers
 * (<infiniband/verbs.h>, Debian's libibverbs-dev): every entry says so, and
 * the rdma run is skipped with that reason like on a host without a device.
 */
#include "rxbench.h"

#include <errno.h>
#include <string.h>

#define NOT_BUILT "this gpud-rxbench was built without rdma-core's headers " \
		  "(<infiniband/verbs.h>): install libibverbs-dev and rebuild"

int rxb_rdma_rx_init(struct rxb_rxsetup *rs, const struct rxb_opts *o)
{
	snprintf(rs->rdma_skip, sizeof(rs->rdma_skip), "%s", NOT_BUILT);
	return -EOPNOTSUPP;
}

void rxb_rdma_rx_free(struct rxb_rxsetup *rs)
{
}

void rxb_rdma_rx_describe(const struct rxb_rxsetup *rs, struct rxb_rdma_info *info)
{
}

void *rxb_rdma_flow(void *arg)
{
	struct rxb_flow_ctx *f = arg;

	f->res.err = -EOPNOTSUPP;
	snprintf(f->res.errmsg, sizeof(f->res.errmsg), "flow %u: %s", f->idx, NOT_BUILT);
	rxb_gate_wait(f->go);
	*f->stop = 1;
	return NULL;
}

int rxb_rdma_send_flow(struct rxb_send_flow *f)
{
	fprintf(stderr, "gpud-rxbench: --rdma: %s\n", NOT_BUILT);
	return -EOPNOTSUPP;
}
