// SPDX-License-Identifier: MIT
/*
 * vm: devmem receive through NAPI GRO, with GRO off and on (`ethtool -K
 * nsim0 gro off|on`, here the legacy ETHTOOL_SGRO ioctl, which sets the same
 * feature). The series' netdevsim cuts TSO super-packets into MSS-sized
 * frames on the wire and feeds every received frame, after header split, to
 * napi_gro_receive(), so with GRO on the stack merges skbs whose fragments
 * are net_iovs (skb_gro_receive(): frags moved between skbs recycling into
 * the same page pool, then frag_list chaining).
 *
 * What shows the merging: TCP's InSegs counts the skbs tcp_v4_rcv() gets,
 * tcpi_data_segs_in counts wire segments (a GRO skb counts its gso_segs). So
 * wire segments per skb is 1 with GRO off (the test fails otherwise: the
 * frames would not be MSS-sized or something else merges) and must be well
 * above 1 with GRO on (else GRO never ran on the devmem queue). Each frame's
 * payload lands in one buffer, so bytes per fragment stay at most the MSS in
 * both modes: GRO appends fragments, it never rewrites them. Both transfers
 * are validated byte for byte and the pool must take its net_iovs back.
 *
 * usage: recycle_gro [MiB per mode, default 8]
 */
#define _GNU_SOURCE
#include "recycle_common.h"

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/tcp.h>  /* tcp_info with tcpi_data_segs_in (glibc lacks it) */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 5351
#define SEED 0x6a0ull
#define MEM_SIZE (64u << 20)
/* GRO on must merge at least this many wire segments per skb on average. */
#define MIN_MERGE 2.0

struct gro_run {
	bool gro;
	struct gpud_rx_stats st;
	double secs;
	long long skbs;			/* Tcp InSegs delta: skbs into TCP */
	unsigned int data_segs;		/* tcpi_data_segs_in: wire segments */
	unsigned int rcv_mss;
};

/* dev->features NETIF_F_GRO, as `ethtool -K DEV gro on|off` sets it. */
static int gro_set(const char *ifname, bool on)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_SGRO, .data = on };
	struct ifreq ifr = { .ifr_data = (char *)&ev };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCETHTOOL, &ifr))
		err = -errno;
	ev.cmd = ETHTOOL_GGRO;
	ev.data = !on;
	if (!err && ioctl(fd, SIOCETHTOOL, &ifr))
		err = -errno;
	if (!err && ev.data != on)
		err = -EIO;	/* the device refused the change */
	close(fd);
	return err;
}

static void gro_transfer(struct rc_env *env, struct gro_run *run, int index, uint64_t total)
{
	struct rc_send s = { .nflows = 1, .bytes = total, .seed = SEED, .first_flow = index };
	struct rc_recv r = { 0 };
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	long long insegs;
	int fd, flow;
	double t0;
	pid_t pid;

	T_ASSERT_OK(gro_set(env->d.np.ifname[0], run->gro));
	insegs = rc_netstat("Tcp", "InSegs");
	T_ASSERT(insegs >= 0);
	pid = rc_sender_start(env, &s);
	fd = rc_accept(env, &flow);
	T_ASSERT_EQ(index, flow);
	t0 = t_now();
	T_ASSERT_EQ(total, rc_recv_flow(env, fd, SEED + (uint64_t)flow, &r, &run->st));
	run->secs = t_now() - t0;
	rc_sender_wait(pid);
	/* The peer's FIN is in: every data segment has been counted. */
	memset(&ti, 0, sizeof(ti));
	T_ASSERT_OK(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -errno : 0);
	run->skbs = rc_netstat("Tcp", "InSegs") - insegs;
	run->data_segs = ti.tcpi_data_segs_in;
	run->rcv_mss = ti.tcpi_rcv_mss;
	close(fd);
	rc_log_stats(run->gro ? "devmem, GRO on" : "devmem, GRO off", &run->st, run->secs);
	T_ASSERT_EQ(0, run->st.bytes_copied);
	T_ASSERT_EQ(total, run->st.bytes_devmem);
	rc_check_closed(env);
}

static void gro_report(const struct gro_run *run)
{
	const struct gpud_rx_stats *st = &run->st;
	double per_skb = run->skbs > 0 ? (double)run->data_segs / (double)run->skbs : 0;

	t_log("GRO %-3s: %llu bytes, %u wire data segments in %lld skbs into TCP (%.2f segments per skb, %.0f bytes per skb), %llu fragments (%.0f bytes per fragment, MSS %u), %.1f fragments per recvmsg, %llu tokens returned, %.2f s",
	      run->gro ? "on" : "off", (unsigned long long)st->bytes, run->data_segs, run->skbs,
	      per_skb, run->skbs > 0 ? (double)st->bytes / (double)run->skbs : 0,
	      (unsigned long long)st->frags, st->frags ? (double)st->bytes / (double)st->frags : 0,
	      run->rcv_mss, st->recv_calls ? (double)st->frags / (double)st->recv_calls : 0,
	      (unsigned long long)st->tokens_released, run->secs);
	if (!run->rcv_mss || !st->frags || run->skbs <= 0 || !run->data_segs)
		T_FAIL("GRO %s: nothing measured", run->gro ? "on" : "off");
	/* One buffer per wire frame: a fragment never exceeds the MSS. */
	if (st->bytes > (uint64_t)st->frags * run->rcv_mss)
		T_FAIL("GRO %s: %.0f bytes per fragment > MSS %u: frames are not MSS-sized",
		       run->gro ? "on" : "off", (double)st->bytes / (double)st->frags,
		       run->rcv_mss);
}

int main(int argc, char **argv)
{
	const uint64_t total = (argc > 1 ? strtoull(argv[1], NULL, 0) : 8) << 20;
	struct gro_run off = { .gro = false }, on = { .gro = true };
	struct rc_env env;

	if (!total)
		T_FAIL("usage: %s [MiB per mode]", argv[0]);
	rc_setup(&env, PORT, MEM_SIZE);
	gro_transfer(&env, &off, 0, total);
	gro_transfer(&env, &on, 1, total);
	gro_report(&off);
	gro_report(&on);

	/* Every skb one wire segment: InSegs also counts SYN, ACK and FIN. */
	if (off.data_segs > off.skbs)
		T_FAIL("GRO off: %u wire segments arrived in %lld skbs: something merged them",
		       off.data_segs, off.skbs);
	if ((double)on.data_segs < MIN_MERGE * (double)on.skbs)
		T_FAIL("GRO on: %u wire segments in %lld skbs (%.2f per skb, want >= %.1f): GRO did not merge on the devmem queue",
		       on.data_segs, on.skbs, (double)on.data_segs / (double)on.skbs, MIN_MERGE);

	T_ASSERT_OK(gro_set(env.d.np.ifname[0], true));
	rc_teardown(&env);
	t_log("recycle_gro: pass");
	return T_EXIT_PASS;
}
