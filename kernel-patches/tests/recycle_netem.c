// SPDX-License-Identifier: MIT
/*
 * vm: devmem receive through loss, reordering, duplication and jitter. netem
 * on the SENDING port (namespace b) makes the receiver's TCP queue unreadable
 * skbs out of order, drop duplicates (DSACK), fill holes from retransmits and
 * try to coalesce neighbours (tcp_try_coalesce(), tcp_ofo_queue()): all paths
 * that must keep net_iov frags intact and give each back to the pool exactly
 * once. The stream must still arrive byte-exact, all of it in the dma-buf.
 */
#define _GNU_SOURCE
#include "recycle_common.h"

#include <unistd.h>

#define PORT 5331
#define SEED 0x4e7e3ull
#define MEM_SIZE (64u << 20)
#define NETEM "delay 2ms 1ms 25% loss 1% duplicate 1% reorder 25% 50%"

static const char *const counters[] = {
	"TCPOFOQueue", "TCPOFOMerge", "TCPOFODrop", "TCPDSACKRecv", "TCPDSACKOfoRecv",
	"TCPDSACKOldSent", "TCPDSACKOfoSent", "TCPRcvCoalesce", "TCPLossProbes",
	"TCPFastRetrans", "TCPSlowStartRetrans", "TCPSACKReorder",
};
#define NCOUNTERS (sizeof(counters) / sizeof(counters[0]))

/* usage: recycle_netem [MiB, default 32] */
int main(int argc, char **argv)
{
	const uint64_t total = (argc > 1 ? strtoull(argv[1], NULL, 0) : 32) << 20;
	struct rc_send s = { .nflows = 1, .bytes = total, .seed = SEED };
	long long d[NCOUNTERS];
	struct rc_recv r = { 0 };
	struct gpud_rx_stats st;
	struct rc_env env;
	int fd, flow;
	double t0;
	pid_t pid;

	rc_setup(&env, PORT, MEM_SIZE);
	if (t_netpair_exec(&env.d.np, 1, "tc qdisc add dev %s root netem %s", env.d.np.ifname[1],
			   NETEM))
		t_skip("cannot add netem on %s: kernel without CONFIG_NET_SCH_NETEM (kernel-patches/config/vm.config has it) or no tc",
		       env.d.np.ifname[1]);
	rc_tcpext_snap(counters, NCOUNTERS, d);

	pid = rc_sender_start(&env, &s);
	fd = rc_accept(&env, &flow);
	t0 = t_now();
	T_ASSERT_EQ(total, rc_recv_flow(&env, fd, SEED + (uint64_t)flow, &r, &st));
	rc_log_stats("devmem through netem (" NETEM ")", &st, t_now() - t0);
	rc_sender_wait(pid);
	close(fd);

	/* The receiver's counters (namespace a) say which paths ran. */
	rc_tcpext_delta(counters, NCOUNTERS, d);
	T_ASSERT(d[0] > 0);	/* TCPOFOQueue: the out-of-order queue held data */
	T_ASSERT_EQ(0, st.bytes_copied);
	T_ASSERT_EQ(total, st.bytes_devmem);

	T_ASSERT_EQ(0, t_netpair_exec(&env.d.np, 1, "tc qdisc del dev %s root", env.d.np.ifname[1]));
	rc_check_closed(&env);
	rc_teardown(&env);
	t_log("recycle_netem: pass");
	return T_EXIT_PASS;
}
