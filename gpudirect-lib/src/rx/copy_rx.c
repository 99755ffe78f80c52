// SPDX-License-Identifier: MIT
/*
 * The copy engine: plain recv() into the copy target's ring, for when devmem
 * cannot run (no binding: NIC without header split or queue API, memory
 * without dma-buf export, no CAP_NET_ADMIN). Fragments look exactly like
 * devmem ones except for GPUD_FRAG_COPY.
 *
 * Host memory that is not exported is received into directly: one copy, the
 * kernel's. Anything else (GPU memory, an exported host buffer whose readers
 * may be devices) goes through a host staging buffer and gpud_mem_write(), so
 * the backend does its host-to-device copy or dma-buf CPU-access bracketing.
 */
#include "rx_internal.h"

#include <string.h>
#include <sys/socket.h>

/*
 * One recv into the ring. Returns bytes, 0 at EOF, -errno of recv() (no
 * message yet), or a sticky failure with its message (*failed set).
 */
static ssize_t recv_one(struct gpud_rx *rx, struct gpud_frag *f, uint64_t room, int flags,
			bool *failed)
{
	void *dst = rx->copy_direct ? (char *)rx->copy_direct + rx->ring.head : rx->staging;
	uint64_t off;
	ssize_t ret;
	int err;

	ret = recv(rx->fd, dst, room, flags);
	rx->st.recv_calls++;
	if (ret <= 0)
		return ret < 0 ? -errno : 0;
	if (!rx->copy_direct) {
		err = gpud_rx_copy_in(rx, dst, (uint32_t)ret, f);
		goto out;
	}
	err = gpud_ring_push(&rx->ring, (uint32_t)ret, &off, &f->token);
	if (err) {
		err = gpud_err(err, "copy ring: cannot add a region: %s", strerror(-err));
		goto out;
	}
	f->offset = off;
	f->len = (uint32_t)ret;
	f->flags = GPUD_FRAG_COPY;
	f->reserved = 0;
out:
	if (err) {
		*failed = true;
		return gpud_rx_fail(rx, err);
	}
	return ret;
}

/*
 * Blocks (per @flags) for the first fragment only, then takes what is
 * already queued while reads fill their room, so one call returns a batch
 * like the devmem engine does.
 */
static int copy_recv(struct gpud_rx *rx, struct gpud_frag *frags, size_t max, int flags)
{
	size_t n = 0;

	while (n < max) {
		uint64_t room = gpud_ring_prepare(&rx->ring, rx->opts.copy_chunk);
		bool failed = false;
		ssize_t ret;

		if (!room) {
			if (n)
				break;
			return gpud_err(-ENOBUFS,
					"copy ring full (%u fragments held): release fragments first",
					rx->ring.nout);
		}
		ret = recv_one(rx, &frags[n], room, n ? flags | MSG_DONTWAIT : flags, &failed);
		if (ret > 0) {
			n++;
			/*
			 * A short read emptied the socket's queue (TCP copies
			 * until the buffer or the queue ends): asking again would
			 * only return EAGAIN, one wasted system call per batch
			 * that plain recv() does not make.
			 */
			if ((uint64_t)ret < room)
				break;
			continue;
		}
		if (failed)	/* sticky: the fragments already out stay valid */
			return n ? (int)n : (int)ret;
		if (!n)
			return ret ? gpud_rx_sock_err(rx, (int)-ret, "recv") : 0;
		/* EOF or nothing more queued: report it on the next call. */
		if (ret < 0 && ret != -EAGAIN && ret != -EWOULDBLOCK && ret != -EINTR)
			gpud_rx_sock_err(rx, (int)-ret, "recv");
		break;
	}
	return (int)n;
}

const struct gpud_rx_engine gpud_rx_copy_engine = {
	.name = "copy",
	.recv = copy_recv,
};
