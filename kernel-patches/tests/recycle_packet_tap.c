// SPDX-License-Identifier: MIT
/*
 * vm: devmem receive with an AF_PACKET tap on the receiving port, as tcpdump
 * does. Taps see every skb the port receives: packet_rcv() (recvmsg sockets)
 * clones the shared skb and trims the clone to what it may copy; tpacket_rcv()
 * (mmap rings, tcpdump's way) copies straight from the skb. On an unreadable
 * (devmem) skb both may copy only the linear part (net/packet/af_packet.c:
 * snaplen = skb_headlen()), so a capture must show the headers, the original
 * length, and not one payload byte, while the payload still lands in the
 * dma-buf and the clones give every net_iov back to the pool.
 *
 * usage: recycle_packet_tap ring|recv|both [MiB, default 128]
 *   ring  TPACKET_V2 ring   (tpacket_rcv: no clone)
 *   recv  recvmsg() socket  (packet_rcv: skb_clone + pskb_trim of the clone)
 */
#define _GNU_SOURCE
#include "recycle_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define PORT 5311
#define SEED 0x7a9ull
#define MEM_SIZE (64u << 20)
#define RING_FRAME 2048u
#define RING_FRAMES 512u

struct tap {
	const char *kind;
	int fd;
	uint8_t *ring;		/* ring only */
	unsigned int head;
	/* results */
	uint64_t frames, data_frames, announced, readable_payload;
	uint64_t bad_len;
};

static struct rc_env env;
static atomic_bool stop;

static int tap_open(struct tap *t, bool ring)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = env.d.ifindex };
	int one = 1, v2 = TPACKET_V2;

	t->kind = ring ? "ring" : "recv";
	t->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (t->fd < 0)
		return -errno;
	if (ring) {
		struct tpacket_req req = { .tp_block_size = RING_FRAME * 32,
					   .tp_frame_size = RING_FRAME,
					   .tp_block_nr = RING_FRAMES / 32,
					   .tp_frame_nr = RING_FRAMES };

		if (setsockopt(t->fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof(v2)) ||
		    setsockopt(t->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)))
			return -errno;
		t->ring = mmap(NULL, (size_t)RING_FRAME * RING_FRAMES, PROT_READ | PROT_WRITE,
			       MAP_SHARED, t->fd, 0);
		if (t->ring == MAP_FAILED)
			return -errno;
	} else if (setsockopt(t->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one))) {
		return -errno;
	}
	if (bind(t->fd, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	return 0;
}

/* One captured frame: @cap bytes of a frame that was @len long on the wire. */
static void tap_frame(struct tap *t, const uint8_t *p, uint32_t cap, uint32_t len)
{
	const struct ether_header *eh = (const void *)p;
	const struct iphdr *ip = (const void *)(p + sizeof(*eh));
	const struct tcphdr *th;
	uint32_t hdr;

	t->frames++;
	if (cap < sizeof(*eh) + sizeof(*ip) || eh->ether_type != htons(ETHERTYPE_IP) ||
	    ip->protocol != IPPROTO_TCP || cap < sizeof(*eh) + ip->ihl * 4u + sizeof(*th))
		return;
	th = (const void *)(p + sizeof(*eh) + ip->ihl * 4);
	if (th->dest != htons(PORT))
		return; /* our ACKs going out */
	hdr = sizeof(*eh) + ip->ihl * 4 + th->doff * 4;
	if (len != sizeof(*eh) + ntohs(ip->tot_len))
		t->bad_len++;
	if (len <= hdr)
		return;
	t->data_frames++;
	t->announced += len - hdr;
	/* Anything past the headers would be payload the CPU could read. */
	if (cap > hdr)
		t->readable_payload += cap - hdr;
}

static void tap_drain_recv(struct tap *t)
{
	static uint8_t buf[65536 + 128];
	char cbuf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	for (;;) {
		uint32_t len = 0;

		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		n = recvmsg(t->fd, &m, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
				struct tpacket_auxdata aux;

				memcpy(&aux, CMSG_DATA(c), sizeof(aux));
				len = aux.tp_len;
				/* MSG_TRUNC returns the skb's length: the snap length */
				if (aux.tp_snaplen != (uint32_t)n)
					t->bad_len++;
			}
		tap_frame(t, buf, (uint32_t)n < sizeof(buf) ? (uint32_t)n : sizeof(buf), len);
	}
}

static void tap_drain_ring(struct tap *t)
{
	for (;;) {
		struct tpacket2_hdr *h = (void *)(t->ring + (size_t)t->head * RING_FRAME);

		if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
			return;
		tap_frame(t, (uint8_t *)h + h->tp_mac, h->tp_snaplen, h->tp_len);
		__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		t->head = (t->head + 1) % RING_FRAMES;
	}
}

static void *tap_thread(void *arg)
{
	struct tap *t = arg;
	struct pollfd pfd[2];
	int n = 0;

	for (int i = 0; i < 2; i++)
		if (t[i].fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = t[i].fd, .events = POLLIN };
	while (!atomic_load(&stop)) {
		poll(pfd, (nfds_t)n, 50);
		for (int i = 0; i < 2; i++) {
			if (t[i].fd < 0)
				continue;
			if (t[i].ring)
				tap_drain_ring(&t[i]);
			else
				tap_drain_recv(&t[i]);
		}
	}
	return NULL;
}

static void tap_report(const struct tap *t)
{
	struct tpacket_stats ps;
	socklen_t l = sizeof(ps);

	memset(&ps, 0, sizeof(ps));
	getsockopt(t->fd, SOL_PACKET, PACKET_STATISTICS, &ps, &l);
	t_log("tap %s: %llu frames, %llu with payload announcing %llu bytes, %llu payload bytes readable, %llu length mismatches, kernel: %u packets %u dropped",
	      t->kind, (unsigned long long)t->frames, (unsigned long long)t->data_frames,
	      (unsigned long long)t->announced, (unsigned long long)t->readable_payload,
	      (unsigned long long)t->bad_len, ps.tp_packets, ps.tp_drops);
	if (!t->data_frames)
		T_FAIL("tap %s saw no data frame of the flow", t->kind);
	T_ASSERT_EQ(0, t->readable_payload);
	T_ASSERT_EQ(0, t->bad_len);
}

int main(int argc, char **argv)
{
	struct rc_send s = { .nflows = 1, .seed = SEED };
	struct tap taps[2] = { { .fd = -1 }, { .fd = -1 } };
	const char *mode = argc > 1 ? argv[1] : "both";
	const uint64_t total = (argc > 2 ? strtoull(argv[2], NULL, 0) : 128) << 20;
	struct rc_recv r = { 0 };
	struct gpud_rx_stats st;
	pthread_t th;
	int fd, flow;
	double t0;
	pid_t pid;

	if (strcmp(mode, "ring") && strcmp(mode, "recv") && strcmp(mode, "both"))
		T_FAIL("usage: %s ring|recv|both", argv[0]);
	s.bytes = total;
	rc_setup(&env, PORT, MEM_SIZE);
	if (strcmp(mode, "recv"))
		T_ASSERT_OK(tap_open(&taps[0], true));
	if (strcmp(mode, "ring"))
		T_ASSERT_OK(tap_open(&taps[1], false));
	T_ASSERT_EQ(0, pthread_create(&th, NULL, tap_thread, taps));

	pid = rc_sender_start(&env, &s);
	fd = rc_accept(&env, &flow);
	t0 = t_now();
	T_ASSERT_EQ(total, rc_recv_flow(&env, fd, SEED + (uint64_t)flow, &r, &st));
	rc_log_stats("devmem under a packet tap", &st, t_now() - t0);
	rc_sender_wait(pid);
	T_ASSERT(st.bytes_devmem >= total / 100 * 99);
	close(fd);

	/* Let the taps catch up, then judge them while still open. */
	usleep(200000);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	/* Queued tap clones were trimmed to the headers: they hold no net_iov. */
	rc_check_closed(&env);
	for (int i = 0; i < 2; i++)
		if (taps[i].fd >= 0) {
			tap_report(&taps[i]);
			if (taps[i].ring)
				munmap(taps[i].ring, (size_t)RING_FRAME * RING_FRAMES);
			close(taps[i].fd);
		}
	rc_teardown(&env);
	t_log("recycle_packet_tap %s: pass", mode);
	return T_EXIT_PASS;
}
