// SPDX-License-Identifier: MIT
/*
 * vm: devmem TCP end to end, inside the patched-kernel VM (netdevsim with
 * emulated header split into the queue's page pool, /dev/udmabuf).
 *
 * In namespace a: header split on, RSS on queue 0 only, an n-tuple rule
 * steering the test flow (198.18.0.1:PORT) to queue 1, 64 MiB of host memory
 * exported through udmabuf and bound to queue 1. A sender in namespace b
 * sends 256 MiB of a pattern; gpud_rx in DEVMEM mode receives it, every
 * fragment is checked byte-exact through gpud_mem_read() (dma-buf CPU access
 * bracketed), tokens go back as we go. At the end: stats add up, no token
 * outstanding, and after unbind the dma-buf's page pool drains (inflight 0)
 * or is gone, and nothing is attached to the dma-buf any more. The sender
 * (whose CPU runs the receiving NAPI) and the receiver are pinned to
 * different CPUs, so that consumed skbs always take the deferred-free path
 * that once made this check flaky (see the end of main()). gpud_nic_free()
 * restores the NIC. Outside the VM: skip. The fixture is
 * tests/common/gpud_devmem_test.h, shared with kernel-patches/tests/.
 * GPUD_E2E_MEM=SPEC runs the same with another exporter (drm.cmake runs it
 * with vgem: drm:/dev/dri/card0).
 */
#define _GNU_SOURCE
#include "gpud_devmem_test.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PORT 5301
#define SEED 0xdeu
#define TOTAL (256ull << 20)
#define MEM_SIZE (64u << 20)
#define RXQ 1

int main(void)
{
	struct gpud_rx_opts o = { .sz = sizeof(o), .mode = GPUD_RX_DEVMEM };
	struct gpud_binding *b;
	struct gpud_rx *rx = NULL;
	struct gpud_rx_stats st;
	struct t_devmem d;
	int lfd, cfd;
	double t0, dt;
	uint64_t got;
	pid_t pid;

	t_devmem_setup(&d, RXQ, PORT);
	T_ASSERT_OK(t_netpair_enter(&d.np, 0));
	t_devmem_nic_setup(&d);
	t_devmem_mem_create(&d, MEM_SIZE);
	b = t_devmem_bind(&d);
	o.binding = b;

	lfd = t_devmem_listen(&d);
	/* The sender pins itself to CPU 1: its CPU runs the receiving NAPI. */
	t_pin_cpu(0);
	pid = t_devmem_sender(&d, SEED, TOTAL);
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	T_ASSERT(cfd >= 0);
	T_ASSERT_OK(gpud_rx_open(cfd, &o, &rx));
	t0 = t_now();
	got = t_devmem_recv_to_eof(rx, d.mem, SEED, 0);
	dt = t_now() - t0;
	t_log("mode: %s", gpud_rx_mode_reason(rx));
	T_ASSERT_EQ(GPUD_RX_DEVMEM, gpud_rx_mode(rx));
	T_ASSERT_EQ(TOTAL, got);
	gpud_rx_get_stats(rx, &st);
	t_log("received %llu bytes in %.2f s (%.0f Mbit/s): %llu fragments, devmem %llu bytes, copied %llu bytes, %llu tokens released in %llu DONTNEED calls, %llu recvmsg calls",
	      (unsigned long long)st.bytes, dt, st.bytes * 8 / dt / 1e6,
	      (unsigned long long)st.frags, (unsigned long long)st.bytes_devmem,
	      (unsigned long long)st.bytes_copied, (unsigned long long)st.tokens_released,
	      (unsigned long long)st.dontneed_calls, (unsigned long long)st.recv_calls);
	T_ASSERT_EQ(TOTAL, st.bytes);
	T_ASSERT_EQ(st.bytes, st.bytes_devmem + st.bytes_copied);
	/* Header split puts all payload in the dma-buf but for stragglers. */
	T_ASSERT(st.bytes_devmem >= TOTAL / 100 * 99);
	T_ASSERT_EQ(0, st.tokens_outstanding);
	T_ASSERT(st.tokens_released >= st.bytes_devmem / 4096);
	T_ASSERT_EQ(0, waitpid(pid, NULL, 0) == pid ? 0 : -1);

	/*
	 * The kernel destroys the pool and frees the binding once every
	 * net_iov is back. The last skbs recvmsg() consumed on another CPU
	 * than the NAPI's sit on that CPU's deferred-free list until it next
	 * receives a packet: a few hundred net_iovs, for ever in an idle VM.
	 * t_devmem_wait_released() makes every CPU run its NET_RX softirq, as
	 * traffic would (tests/common/softnet.c).
	 */
	t_devmem_close(&d, rx, cfd, lfd, b, 5);
	gpud_mem_free(d.mem);
	t_netpair_teardown(&d.np);
	t_log("rx_devmem_e2e: pass");
	return T_EXIT_PASS;
}
