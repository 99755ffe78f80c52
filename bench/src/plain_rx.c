// SPDX-License-Identifier: MIT
/*
 * The baselines --compare measures gpud_rx against, on the same path:
 *  plain      recv() into a host buffer and nothing else, as iperf3 does;
 *  plain_h2d  recv() and then a host->device copy of what arrived
 *             (gpud_mem_write), which is the path NCCL's socket transport
 *             takes to get network data into GPU memory.
 */
#include "rxbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int recv_loop(struct rxb_flow_ctx *f, uint8_t *buf, struct gpud_mem *dst,
		     const struct rxb_pattern *p)
{
	size_t cap = dst ? gpud_mem_size(dst) : 0, pos = 0;
	size_t chunk = f->o->chunk;
	ssize_t r;
	int err;

	if (dst && cap < chunk)
		chunk = cap;
	while (!rxb_flow_done(f)) {
		r = recv(f->fd, buf, chunk, 0);
		f->res.st.recv_calls++;
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			f->res.err = -errno;
			snprintf(f->res.errmsg, sizeof(f->res.errmsg), "flow %u: recv: %s", f->idx,
				 strerror(errno));
			return f->res.err;
		}
		rxb_hist_add(&f->hist, (uint64_t)r);
		if (p && !rxb_flow_check(f, p, f->bytes, buf, (size_t)r))
			break;
		if (dst) {
			/* A ring over the device buffer, like a staging area. */
			if (pos + (size_t)r > cap)
				pos = 0;
			err = gpud_mem_write(dst, pos, buf, (size_t)r);
			if (err) {
				f->res.err = err;
				snprintf(f->res.errmsg, sizeof(f->res.errmsg),
					 "flow %u: gpud_mem_write: %s", f->idx, gpud_errmsg());
				return err;
			}
			pos += (size_t)r;
		}
		__atomic_store_n(&f->bytes, f->bytes + (uint64_t)r, __ATOMIC_RELAXED);
	}
	return 0;
}

void *rxb_plain_flow(void *arg)
{
	struct rxb_flow_ctx *f = arg;
	struct gpud_mem *dst = NULL;
	struct rxb_pattern pat = { 0 };
	double u0, s0, u1, s1, t0;
	uint8_t *buf;
	int err = 0;

	if (f->run->kind == RXB_KIND_PLAIN_H2D)
		dst = f->rs->h2d_mem[f->idx];
	f->mode = GPUD_RX_COPY;
	snprintf(f->reason, sizeof(f->reason), "%s",
		 dst ? "recv() into host memory, then host->device copy" :
		       "recv() into host memory");
	buf = aligned_alloc(4096, (f->o->chunk + 4095) & ~(size_t)4095);
	if (!buf)
		err = -ENOMEM;
	if (!err && f->o->validate)
		err = rxb_pattern_init(&pat, f->seed, f->o->chunk);
	if (err) {
		f->res.err = err;
		snprintf(f->res.errmsg, sizeof(f->res.errmsg), "flow %u: %s", f->idx,
			 strerror(-err));
	}
	rxb_gate_wait(f->go);
	if (err) {
		*f->stop = 1;
		goto out;
	}
	rxb_thread_cpu(&u0, &s0);
	t0 = rxb_now();
	recv_loop(f, buf, dst, f->o->validate ? &pat : NULL);
	f->res.seconds = rxb_now() - t0;
	rxb_thread_cpu(&u1, &s1);
	f->res.user_s = u1 - u0;
	f->res.sys_s = s1 - s0;
out:
	f->res.bytes = f->bytes;
	rxb_pattern_free(&pat);
	free(buf);
	return NULL;
}
