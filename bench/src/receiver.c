// SPDX-License-Identifier: MIT
/*
 * The measured receiver: one thread per flow, through gpud_rx. Fragments are
 * counted, optionally read back through gpud_mem_read and checked against the
 * sender's pattern, then released. Validation reads cost CPU and are counted
 * in the run's CPU time: measure throughput with --no-validate / without
 * --validate.
 */
#include "rxbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RXB_FRAGS_PER_CALL	64
#define RXB_SCRATCH		(1u << 20)

bool rxb_flow_done(const struct rxb_flow_ctx *f)
{
	if (*f->stop || rxb_interrupted)
		return true;
	if (f->limit && f->bytes >= f->limit)
		return true;
	return f->deadline > 0 && rxb_now() >= f->deadline;
}

bool rxb_flow_check(struct rxb_flow_ctx *f, const struct rxb_pattern *p, uint64_t off,
		    const uint8_t *data, size_t len)
{
	long bad = rxb_pattern_check(p, off, data, len);

	if (bad < 0) {
		f->bytes_checked += len;
		return true;
	}
	f->bad = true;
	f->bad_off = off + (uint64_t)bad;
	f->bad_expected = rxb_pattern_at(p, f->bad_off)[0];
	f->bad_actual = data[bad];
	f->bytes_checked += (uint64_t)bad;
	/* One bad byte ends the whole run: the numbers mean nothing now. */
	*f->stop = 1;
	return false;
}

static int set_err(struct rxb_flow_ctx *f, int err, const char *what)
{
	const char *msg = gpud_errmsg();

	f->res.err = err;
	snprintf(f->res.errmsg, sizeof(f->res.errmsg), "flow %u: %s: %s", f->idx, what,
		 *msg ? msg : strerror(-err));
	return err;
}

/* Reads each fragment back from the gpud_mem (device memory included). */
static int check_frags(struct rxb_flow_ctx *f, struct gpud_rx *rx, const struct rxb_pattern *p,
		       uint8_t *scratch, const struct gpud_frag *fr, int n)
{
	for (int i = 0; i < n; i++) {
		/* Two memories: the bound dma-buf, or the copy target for copies. */
		struct gpud_mem *mem = fr[i].flags & GPUD_FRAG_COPY ? gpud_rx_copy_mem(rx) :
								      f->rs->bound_mem;
		uint64_t done = 0;

		while (done < fr[i].len) {
			size_t len = fr[i].len - done;
			int err;

			if (len > RXB_SCRATCH)
				len = RXB_SCRATCH;
			err = gpud_mem_read(mem, fr[i].offset + done, scratch, len);
			if (err)
				return set_err(f, err, "gpud_mem_read");
			if (!rxb_flow_check(f, p, f->bytes + done, scratch, len))
				return 0;
			done += len;
		}
		__atomic_store_n(&f->bytes, f->bytes + fr[i].len, __ATOMIC_RELAXED);
	}
	return 0;
}

static int recv_loop(struct rxb_flow_ctx *f, struct gpud_rx *rx, const struct rxb_pattern *p,
		     uint8_t *scratch)
{
	struct gpud_frag fr[RXB_FRAGS_PER_CALL];
	int n, err;

	while (!rxb_flow_done(f)) {
		n = gpud_rx_recv(rx, fr, RXB_FRAGS_PER_CALL, 0);
		if (n == 0)
			break;
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n < 0)
			return set_err(f, n, "gpud_rx_recv");
		for (int i = 0; i < n; i++)
			rxb_hist_add(&f->hist, fr[i].len);
		if (p) {
			err = check_frags(f, rx, p, scratch, fr, n);
			if (err)
				return err;
		} else {
			uint64_t b = f->bytes;

			for (int i = 0; i < n; i++)
				b += fr[i].len;
			__atomic_store_n(&f->bytes, b, __ATOMIC_RELAXED);
		}
		err = gpud_rx_release(rx, fr, (size_t)n);
		if (err)
			return set_err(f, err, "gpud_rx_release");
		if (f->bad)
			break;
	}
	return 0;
}

void *rxb_gpud_flow(void *arg)
{
	struct rxb_flow_ctx *f = arg;
	struct rxb_rxsetup *rs = f->rs;
	struct gpud_rx_opts ro = { .sz = sizeof(ro) };
	struct rxb_pattern pat = { 0 };
	uint8_t *scratch = NULL;
	struct gpud_rx *rx = NULL;
	double u0, s0, u1, s1, t0;
	int err;

	ro.mode = rs->mode;
	ro.binding = rs->binding;
	ro.copy_mem = rs->flow_mem[f->idx];
	ro.copy_chunk = f->o->chunk;
	ro.no_binding_reason = rs->have_reason ? rs->reason : NULL;
	err = gpud_rx_open(f->fd, &ro, &rx);
	if (err)
		set_err(f, err, "gpud_rx_open");
	if (!err && f->o->validate) {
		scratch = malloc(RXB_SCRATCH);
		err = scratch ? rxb_pattern_init(&pat, f->seed, RXB_SCRATCH) : -ENOMEM;
		if (err)
			set_err(f, err, "validation buffers");
	}
	/* Everyone starts the clock together, failed flows included. */
	rxb_gate_wait(f->go);
	if (err) {
		*f->stop = 1;
		goto out;
	}
	rxb_thread_cpu(&u0, &s0);
	t0 = rxb_now();
	recv_loop(f, rx, f->o->validate ? &pat : NULL, scratch);
	f->res.seconds = rxb_now() - t0;
	rxb_thread_cpu(&u1, &s1);
	f->res.user_s = u1 - u0;
	f->res.sys_s = s1 - s0;
	gpud_rx_get_stats(rx, &f->res.st);
out:
	/* After the data: in auto mode the first data decided the mode. */
	if (rx) {
		f->mode = gpud_rx_mode(rx);
		snprintf(f->reason, sizeof(f->reason), "%s", gpud_rx_mode_reason(rx));
	}
	f->res.bytes = f->bytes;
	gpud_rx_free(rx);
	rxb_pattern_free(&pat);
	free(scratch);
	return NULL;
}
