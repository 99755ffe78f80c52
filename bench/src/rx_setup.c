// SPDX-License-Identifier: MIT
/*
 * Receive-side setup, done once before the runs: the memory to receive into
 * and, for devmem, the NIC configuration and the dma-buf binding.
 *
 * In auto mode every step that can fail on an ordinary host (no udmabuf, a
 * NIC without header split or queue management) falls back to copy mode and
 * keeps the library's message as the reason; --mode devmem fails instead.
 */
#include "rxbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define RXB_DEVMEM_MEM	(32u << 20)	/* under udmabuf's default 64 MiB size limit */
#define RXB_COPY_MEM	(8u << 20)	/* per flow */

static int fail_step(struct rxb_rxsetup *rs, int err, const char *what)
{
	const char *msg = gpud_errmsg();

	snprintf(rs->reason, sizeof(rs->reason), "%s: %s", what,
		 *msg ? msg : strerror(-err));
	rs->have_reason = true;
	return err;
}

static int add_rules(struct rxb_rxsetup *rs, const struct rxb_opts *o)
{
	for (unsigned int i = 0; i < o->flows; i++) {
		struct gpud_flow fl = { .sz = sizeof(fl), .family = AF_INET };
		unsigned int q = 1 + i % o->queues;
		int err;

		/* Run 0 is the gpud run: only its ports are steered to bound queues. */
		fl.dst_port = htons((uint16_t)(o->port + i));
		if (o->listen_addr && inet_pton(AF_INET, o->listen_addr, fl.dst_addr) != 1)
			return fail_step(rs, -EINVAL, "--listen address");
		err = gpud_nic_add_flow(rs->nic, &fl, q, &rs->rule_id[i]);
		if (err)
			return fail_step(rs, err, "n-tuple rule");
	}
	return 0;
}

static int setup_devmem(struct rxb_rxsetup *rs, const struct rxb_opts *o)
{
	enum gpud_mem_placement where;
	unsigned int queues[64];
	int nq, err;

	err = gpud_mem_create(rs->mem_kind, rs->mem_size, &rs->mem_opts, &rs->bound_mem);
	if (err)
		return fail_step(rs, err, "dma-buf export");
	err = gpud_nic_open(o->ifname, &rs->nic);
	if (err)
		return fail_step(rs, err, "gpud_nic_open");
	nq = gpud_nic_rx_queues(rs->nic);
	if (nq < 0)
		return fail_step(rs, nq, "RX queue count");
	if ((unsigned int)nq < o->queues + 1) {
		snprintf(rs->reason, sizeof(rs->reason),
			 "%s has %d RX queue(s); --queues %u needs %u (queue 0 keeps RSS)",
			 o->ifname, nq, o->queues, o->queues + 1);
		rs->have_reason = true;
		return -ERANGE;
	}
	err = gpud_nic_set_header_split(rs->nic, true);
	if (err)
		return fail_step(rs, err, "header split");
	err = gpud_nic_rss_limit(rs->nic, 1);
	if (err)
		return fail_step(rs, err, "RSS limit");
	err = add_rules(rs, o);
	if (err)
		return err;
	for (unsigned int i = 0; i < o->queues; i++)
		queues[i] = 1 + i;
	err = gpud_bind_rx(gpud_nic_ifindex(rs->nic), rs->bound_mem, queues, o->queues,
			   &rs->binding);
	if (err)
		return fail_step(rs, err, "bind");
	/* Only now can amdgpu have moved VRAM to GTT: never report GPU-direct unchecked. */
	if (gpud_mem_placement_why(rs->bound_mem, &where, rs->placement_why,
				   sizeof(rs->placement_why)))
		where = GPUD_MEM_PLACE_UNKNOWN;
	snprintf(rs->placement, sizeof(rs->placement), "%s", gpud_mem_placement_name(where));
	return 0;
}

static void undo_devmem(struct rxb_rxsetup *rs)
{
	gpud_binding_free(rs->binding);
	rs->binding = NULL;
	/* Restores header split, RSS and removes our rules. */
	gpud_nic_free(rs->nic);
	rs->nic = NULL;
	gpud_mem_free(rs->bound_mem);
	rs->bound_mem = NULL;
}

static int create_flow_mems(struct rxb_rxsetup *rs, const struct rxb_opts *o,
			    struct gpud_mem **mems)
{
	struct gpud_mem_opts mo = rs->mem_opts;

	/*
	 * Copy targets are never handed to a NIC: no export needed, and
	 * unexported host memory lets gpud_rx recv() straight into it.
	 */
	mo.flags |= GPUD_MEM_F_NO_DMABUF;
	for (unsigned int i = 0; i < o->flows; i++) {
		int err = gpud_mem_create(rs->mem_kind, rs->copy_size, &mo, &mems[i]);

		if (err) {
			fprintf(stderr, "gpud-rxbench: cannot allocate %zu bytes of %s memory: %s\n",
				rs->copy_size, o->mem_spec, gpud_errmsg());
			return err;
		}
	}
	return 0;
}

int rxb_rxsetup_init(struct rxb_rxsetup *rs, const struct rxb_opts *o, unsigned int nruns)
{
	int err;

	memset(rs, 0, sizeof(*rs));
	rs->mem_opts.sz = sizeof(rs->mem_opts);
	err = gpud_mem_parse_spec(o->mem_spec, &rs->mem_kind, &rs->mem_opts);
	if (err) {
		fprintf(stderr, "gpud-rxbench: --mem %s: %s\n", o->mem_spec, gpud_errmsg());
		return err;
	}
	rs->mode = o->mode;
	if (o->only_rdma) {
		/* No gpud run: nothing to bind, no copy targets. */
		goto rdma;
	} else if (o->mode != GPUD_RX_COPY && o->ifname) {
		rs->mem_size = o->mem_size ? o->mem_size : RXB_DEVMEM_MEM;
		err = setup_devmem(rs, o);
		if (err) {
			undo_devmem(rs);
			if (o->mode == GPUD_RX_DEVMEM) {
				fprintf(stderr, "gpud-rxbench: devmem setup on %s: %s\n", o->ifname,
					rs->reason);
				return err;
			}
			/* Stay AUTO: gpud_rx reports copy with our reason. */
		}
	} else if (o->mode != GPUD_RX_COPY) {
		rs->have_reason = true;
		snprintf(rs->reason, sizeof(rs->reason),
			 "no --ifname given, so no NIC queue to bind the buffer to");
	}
	/*
	 * Every flow gets a copy target of the --mem kind: the whole stream in
	 * copy mode, and in devmem mode whatever the kernel delivers in host
	 * memory, so that it too ends up where the consumer reads.
	 */
	rs->copy_size = o->mem_size && !rs->binding ? o->mem_size : RXB_COPY_MEM;
	err = create_flow_mems(rs, o, rs->flow_mem);
	if (err)
		goto err_free;
	if (nruns > 1 && o->cmp_plain && rs->mem_kind != GPUD_MEM_HOST) {
		err = create_flow_mems(rs, o, rs->h2d_mem);
		if (err)
			goto err_free;
	}
rdma:
	/*
	 * After the binding, so that the RDMA peer writes into the very buffer
	 * the NIC received into. A failure here is a reason, not an error: the
	 * caller decides (skip the run, or refuse --only rdma).
	 */
	if (o->cmp_rdma || o->only_rdma)
		rs->rdma_skip_err = rxb_rdma_rx_init(rs, o);
	return 0;

err_free:
	rxb_rxsetup_free(rs);
	return err;
}

void rxb_rxsetup_free(struct rxb_rxsetup *rs)
{
	/* The MR holds the buffer: it goes first. */
	rxb_rdma_rx_free(rs);
	undo_devmem(rs);
	for (unsigned int i = 0; i < RXB_MAX_FLOWS; i++) {
		gpud_mem_free(rs->flow_mem[i]);
		gpud_mem_free(rs->h2d_mem[i]);
		rs->flow_mem[i] = rs->h2d_mem[i] = NULL;
	}
}
