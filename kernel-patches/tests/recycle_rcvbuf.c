// SPDX-License-Identifier: MIT
/*
 * vm: devmem receive under receive-buffer pressure. A slow reader flips the
 * socket's SO_RCVBUF between 256 KiB and a few KiB every few calls: each cut
 * comes after a large window was offered (and an offered window cannot
 * shrink), so in-window data overruns the buffer and TCP runs out of
 * receive memory (netem loss on the sender keeps the out-of-order queue
 * busy): tcp_prune_queue() collapses what it can and prunes the
 * out-of-order queue, and tcp_collapse() must skip unreadable skbs rather
 * than copy their payload into host memory (6.12: skb_frags_readable()
 * checks in tcp_collapse()). Every byte must come through the dma-buf
 * (bytes_copied 0: a collapsed skb would arrive as SCM_DEVMEM_LINEAR), the
 * stream must be exact, and the pruned net_iovs must go back to the pool.
 */
#define _GNU_SOURCE
#include "recycle_common.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 5341
#define SEED 0x9cb0full
#define TOTAL (16ull << 20)
#define MEM_SIZE (64u << 20)
#define RCVBUF 4096
#define RCVBUF_BIG (256 << 10)
#define FLIP_EVERY 32	/* recv calls */

#define NETEM "delay 1ms loss 2%"
#define STALL_US 50000	/* after each cut: let the offered window overrun it */
/*
 * Since netdevsim cuts TSO into MSS frames (series 0008), a window of one
 * or two segments under TCG moves 1-7 Mbit/s and each loss waits for an
 * RTO: flipping for all 16 MiB took 40-105 s. Once the kernel has pruned
 * this often the point is made; the rest of the stream runs with the big
 * buffer (still through devmem, still checked).
 */
#define PRUNE_GOAL 4

static const char *const prune_counter[] = { "PruneCalled" };
static long long prune_base;
static bool pressure_done;

static void flip_rcvbuf(int fd, unsigned long calls)
{
	int sz = (calls / FLIP_EVERY) % 2 ? RCVBUF : RCVBUF_BIG;
	long long now;

	if (calls % FLIP_EVERY || pressure_done)
		return;
	rc_tcpext_snap(prune_counter, 1, &now);
	if (now - prune_base >= PRUNE_GOAL) {
		pressure_done = true;
		sz = RCVBUF_BIG;
	}
	T_ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) ? -errno : 0);
	/* However fast the VM, the sender must find the buffer full. */
	if (sz == RCVBUF)
		usleep(STALL_US);
}

static const char *const counters[] = {
	"PruneCalled", "RcvPruned", "OfoPruned", "TCPRcvQDrop", "RcvCollapsed",
	"TCPOFOQueue", "TCPOFODrop", "TCPBacklogDrop", "TCPZeroWindowDrop",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

int main(void)
{
	struct rc_send s = { .nflows = 1, .bytes = TOTAL, .seed = SEED };
	struct rc_recv r = { .max_frags = 16, .delay_us = 300, .each = flip_rcvbuf };
	long long d[NCOUNTERS];
	int fd, flow, sz = RCVBUF;
	struct gpud_rx_stats st;
	socklen_t len = sizeof(sz);
	struct rc_env env;
	double t0;
	pid_t pid;

	rc_setup(&env, PORT, MEM_SIZE);
	/*
	 * Losses keep holes open: the sender goes on filling the window it was
	 * offered before a cut, out of order, whatever the VM's speed.
	 */
	if (t_netpair_exec(&env.d.np, 1, "tc qdisc add dev %s root netem %s",
			   env.d.np.ifname[1], NETEM))
		t_skip("cannot add netem on %s (CONFIG_NET_SCH_NETEM, tc)", env.d.np.ifname[1]);
	rc_tcpext_snap(counters, NCOUNTERS, d);
	rc_tcpext_snap(prune_counter, 1, &prune_base);
	pid = rc_sender_start(&env, &s);
	fd = rc_accept(&env, &flow);
	T_ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) ? -errno : 0);
	T_ASSERT_OK(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, &len) ? -errno : 0);
	t_log("SO_RCVBUF %d (asked %d), flipped with %d every %d calls; reader sleeps %u us per recv of <= %zu fragments",
	      sz, RCVBUF, RCVBUF_BIG, FLIP_EVERY, r.delay_us, r.max_frags);
	t0 = t_now();
	T_ASSERT_EQ(TOTAL, rc_recv_flow(&env, fd, SEED + (uint64_t)flow, &r, &st));
	rc_log_stats("devmem with a tiny receive buffer", &st, t_now() - t0);
	rc_sender_wait(pid);
	close(fd);

	rc_tcpext_delta(counters, NCOUNTERS, d);
	/* The pressure must have been real: tcp_prune_queue() ran. */
	if (d[0] <= 0)
		T_FAIL("no receive-memory pressure (PruneCalled %lld, TCPRcvQDrop %lld)", d[0], d[3]);
	T_ASSERT_EQ(0, st.bytes_copied);
	T_ASSERT_EQ(TOTAL, st.bytes_devmem);

	T_ASSERT_EQ(0, t_netpair_exec(&env.d.np, 1, "tc qdisc del dev %s root", env.d.np.ifname[1]));
	rc_check_closed(&env);
	rc_teardown(&env);
	t_log("recycle_rcvbuf: pass");
	return T_EXIT_PASS;
}
