// SPDX-License-Identifier: MIT
/*
 * Flushing the per-CPU lists of skbs whose freeing TCP deferred.
 *
 * Linux 6.12, net/ipv4/tcp.c tcp_eat_recv_skb(): when recvmsg() has consumed
 * an skb on a CPU other than the one that allocated it (skb->alloc_cpu, the
 * CPU that ran the driver's NAPI poll), skb_attempt_defer_free()
 * (net/core/skbuff.c) does not free it: it queues it on that CPU's
 * softnet_data.defer_list (up to net.core.skb_defer_max = 64 skbs, an IPI
 * only when the list reaches half of that). The list is freed by
 * skb_defer_free_flush() (net/core/dev.c) at the start of the next
 * net_rx_action() on that CPU, i.e. when that CPU next receives a packet.
 * Until then the skbs keep their frags: with devmem those are net_iovs of
 * the bound dma-buf, counted as in flight by its page pool, which therefore
 * cannot finish shutting down after unbind. On a busy host the next packet
 * comes soon; in an idle test VM it may never come.
 *
 * A datagram a socket sends to itself over loopback is received on the
 * sending CPU (loopback_xmit() -> __netif_rx() -> enqueue_to_backlog() on
 * smp_processor_id(), no RPS configured) and its NET_RX softirq runs before
 * sendto() returns, so one datagram from each CPU in turn flushes every list.
 */
#define _GNU_SOURCE
#include "gpud_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

/* One datagram to itself from every CPU through UDP socket @fd. */
static int flush_through(int fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	cpu_set_t saved, one;
	int cpus = 0, err = 0;
	char b = 0;

	if (sched_getaffinity(0, sizeof(saved), &saved))
		return -errno;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen))
		return -errno;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue; /* not online */
		if (sendto(fd, &b, 1, 0, (struct sockaddr *)&a, sizeof(a)) != 1) {
			err = -errno;
			break;
		}
		recv(fd, &b, 1, MSG_DONTWAIT);
		cpus++;
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	if (!err && !cpus)
		err = -ENODEV;
	return err < 0 ? err : cpus;
}

int t_skb_defer_flush(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -errno;
	ret = flush_through(fd);
	close(fd);
	return ret;
}

/* A socket belongs to the namespace it was made in, whatever the thread's. */
int t_skb_defer_flush_in(int nsfd)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), fd, ret;

	if (self < 0)
		return -errno;
	if (setns(nsfd, CLONE_NEWNET)) {
		ret = -errno;
		close(self);
		return ret;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ret = fd < 0 ? -errno : 0;
	if (setns(self, CLONE_NEWNET))
		abort(); /* stranded in another namespace: nothing sane left */
	close(self);
	if (ret)
		return ret;
	ret = flush_through(fd);
	close(fd);
	return ret;
}

int t_pin_cpu(int cpu)
{
	cpu_set_t allowed, one;
	int n;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return -errno;
	n = CPU_COUNT(&allowed);
	if (!n)
		return -ENODEV;
	cpu %= n;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &allowed) || cpu--)
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		return sched_setaffinity(0, sizeof(one), &one) ? -errno : c;
	}
	return -ENODEV;
}
