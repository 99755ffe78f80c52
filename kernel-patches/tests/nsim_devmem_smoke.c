// SPDX-License-Identifier: GPL-2.0
/*
 * nsim_devmem_smoke - prove the netdevsim devmem series end to end.
 *
 * Runs in the receiver's network namespace, on a netdevsim port linked to
 * a peer port in another namespace (see run-smoke.sh):
 *
 *   nsim_devmem_smoke IFNAME LOCAL_IPV4 PEER_NETNS_PATH [MIB]
 *
 * 1. enables tcp-data-split (ethtool netlink), points RSS at queue 0 only
 *    and steers TCP to LOCAL_IPV4:PORT to queue 1 with an n-tuple rule;
 * 2. without a binding: a sender forked into PEER_NETNS_PATH sends a known
 *    pattern, received with plain recv() and checked byte for byte;
 * 3. checks that a bind fails while tcp-data-split is off;
 * 4. binds a 64 MiB udmabuf to queue 1 (NETDEV_CMD_BIND_RX), checks that
 *    tcp-data-split cannot be turned off while bound, receives MIB MiB
 *    (default 256) with recvmsg(MSG_SOCK_DEVMEM), checks every fragment
 *    against the pattern through the memfd mapping, returns the tokens;
 * 5. unbinds and waits for the devmem page pool to drain;
 * 6. restores the port's configuration.
 *
 * Exit: 0 pass, 1 fail, 77 skip (with the reason printed).
 *
 * Build against the uapi headers of the patched tree (6.12+):
 *   make O=$KBUILD headers_install INSTALL_HDR_PATH=$HDR
 *   make -C kernel-patches/tests KHDR=$HDR/include
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/dma-buf.h>
#include <linux/ethtool.h>
#include <linux/ethtool_netlink.h>
#include <linux/genetlink.h>
#include <linux/netdev.h>
#include <linux/sockios.h>
#include <linux/udmabuf.h>

/* Not exported by every libc; values from the 6.12 uapi / kernel headers */
#ifndef MSG_SOCK_DEVMEM
#define MSG_SOCK_DEVMEM		0x2000000
#endif
#ifndef SO_DEVMEM_LINEAR
#define SO_DEVMEM_LINEAR	78
#define SO_DEVMEM_DMABUF	79
#define SO_DEVMEM_DONTNEED	80
#endif
#define SCM_DEVMEM_LINEAR	SO_DEVMEM_LINEAR
#define SCM_DEVMEM_DMABUF	SO_DEVMEM_DMABUF

/* <linux/uio.h> clashes with libc's struct iovec: same layout, local name */
struct devmem_cmsg {
	uint64_t frag_offset;
	uint32_t frag_size;
	uint32_t frag_token;
	uint32_t dmabuf_id;
	uint32_t flags;
};

struct devmem_token {
	uint32_t token_start;
	uint32_t token_count;
};

#define PORT		5201
#define RX_QUEUE	1
#define DMABUF_SIZE	(64UL << 20)
#define PATTERN_LEN	((1UL << 20) + 13)	/* not a multiple of a page */
#define MAX_TOKENS	128			/* per SO_DEVMEM_DONTNEED */
#define IOBUF_LEN	(256 << 10)
#define MAX_CMSGS	1024
#define MAX_HELD	(2 * DMABUF_SIZE / 4096)	/* a page may be split */

static const char *ifname;
static unsigned int ifindex;
static struct in_addr local_addr;
static const char *peer_ns;
static uint8_t *pattern;		/* 2 * PATTERN_LEN, for wrap-free compares */
static volatile size_t progress;	/* bytes received in the current phase */

#define pr_fail(...) do { printf("FAIL: " __VA_ARGS__); } while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- netlink -------------------------------------------------------- */

struct nl_req {
	struct mnl_socket *nl;
	char buf[8192];
	unsigned int seq;
};

static int nl_open(struct nl_req *r)
{
	int one = 1;

	r->nl = mnl_socket_open(NETLINK_GENERIC);
	if (!r->nl)
		return -errno;
	mnl_socket_setsockopt(r->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(r->nl);
		return -errno;
	}
	r->seq = time(NULL);
	return 0;
}

static void nl_close(struct nl_req *r)
{
	if (r->nl)
		mnl_socket_close(r->nl);
	r->nl = NULL;
}

static struct nlmsghdr *nl_msg(struct nl_req *r, uint16_t family, uint8_t cmd,
			       uint8_t version, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++r->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

/* Prints the kernel's extack message, if any, for a failed request */
static void nl_print_extack(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	unsigned int off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	mnl_attr_for_each(a, nlh, off)
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
			printf("  kernel says: %s\n", mnl_attr_get_str(a));
}

static bool nl_quiet;	/* expected failure: don't print the extack */

static int nl_err_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (e->error) {
		if (!nl_quiet)
			nl_print_extack(nlh);
		errno = -e->error;
		return MNL_CB_ERROR;
	}
	return MNL_CB_STOP;
}

static int nl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_STOP;
}

/* Send one request, run @cb on each reply; 0 or -errno */
static int nl_talk(struct nl_req *r, struct nlmsghdr *nlh, mnl_cb_t cb,
		   void *data, bool quiet)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = nl_err_cb,
		[NLMSG_DONE] = nl_done_cb,
	};
	unsigned int seq = nlh->nlmsg_seq;
	char rbuf[8192];
	unsigned int portid;
	int ret;

	nl_quiet = quiet;
	portid = mnl_socket_get_portid(r->nl);
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ret = mnl_socket_recvfrom(r->nl, rbuf, sizeof(rbuf));
		if (ret < 0)
			return -errno;
		ret = mnl_cb_run2(rbuf, ret, seq, portid, cb, data, ctl,
				  NLMSG_MIN_TYPE);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

/* netlink "uint": 4 or 8 bytes */
static uint64_t attr_uint(const struct nlattr *a)
{
	if (mnl_attr_get_payload_len(a) == sizeof(uint32_t))
		return mnl_attr_get_u32(a);
	return mnl_attr_get_u64(a);
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
			*(uint16_t *)data = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int nl_family(struct nl_req *r, const char *name, uint16_t *id)
{
	struct nlmsghdr *nlh;

	nlh = nl_msg(r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
	*id = 0;
	return nl_talk(r, nlh, family_cb, id, false) ?: (*id ? 0 : -ENOENT);
}

/* ---- port configuration ------------------------------------------------ */

static int set_tcp_data_split(bool on, bool quiet)
{
	struct nlmsghdr *nlh;
	struct nl_req r = {};
	struct nlattr *nest;
	uint16_t fam;
	int err;

	err = nl_open(&r) ?: nl_family(&r, ETHTOOL_GENL_NAME, &fam);
	if (err)
		goto out;
	nlh = nl_msg(&r, fam, ETHTOOL_MSG_RINGS_SET, ETHTOOL_GENL_VERSION, 0);
	nest = mnl_attr_nest_start(nlh, ETHTOOL_A_RINGS_HEADER);
	mnl_attr_put_u32(nlh, ETHTOOL_A_HEADER_DEV_INDEX, ifindex);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put_u8(nlh, ETHTOOL_A_RINGS_TCP_DATA_SPLIT,
			on ? ETHTOOL_TCP_DATA_SPLIT_ENABLED :
			     ETHTOOL_TCP_DATA_SPLIT_DISABLED);
	err = nl_talk(&r, nlh, NULL, NULL, quiet);
out:
	nl_close(&r);
	return err;
}

static int ethtool_ioctl(void *cmd)
{
	struct ifreq ifr = {};
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	ret = ioctl(fd, SIOCETHTOOL, &ifr) ? -errno : 0;
	close(fd);
	return ret;
}

/* Steer TCP to local_addr:PORT to RX_QUEUE; returns the rule's location */
static int add_ntuple_rule(void)
{
	struct ethtool_rxnfc nfc = {
		.cmd = ETHTOOL_SRXCLSRLINS,
		.fs.flow_type = TCP_V4_FLOW,
		.fs.h_u.tcp_ip4_spec.ip4dst = local_addr.s_addr,
		.fs.h_u.tcp_ip4_spec.pdst = htons(PORT),
		.fs.m_u.tcp_ip4_spec.ip4dst = 0xffffffff,
		.fs.m_u.tcp_ip4_spec.pdst = 0xffff,
		.fs.ring_cookie = RX_QUEUE,
		.fs.location = RX_CLS_LOC_ANY,
	};
	int err = ethtool_ioctl(&nfc);

	return err ?: (int)nfc.fs.location;
}

static int del_ntuple_rule(int loc)
{
	struct ethtool_rxnfc nfc = {
		.cmd = ETHTOOL_SRXCLSRLDEL,
		.fs.location = loc,
	};

	return ethtool_ioctl(&nfc);
}

/* indir_size 0 resets the table to the default spread over all queues */
static int set_rss_queue0_only(bool reset)
{
	struct ethtool_rxfh hdr = { .cmd = ETHTOOL_GRSSH };
	struct ethtool_rxfh *rxfh;
	int err;

	err = ethtool_ioctl(&hdr);
	if (err)
		return err;
	rxfh = calloc(1, sizeof(*rxfh) + hdr.indir_size * sizeof(uint32_t));
	if (!rxfh)
		return -ENOMEM;
	rxfh->cmd = ETHTOOL_SRSSH;
	rxfh->indir_size = reset ? 0 : hdr.indir_size;
	rxfh->hfunc = 0;	/* ETH_RSS_HASH_NO_CHANGE */
	/* all entries 0: queue RX_QUEUE only gets what the n-tuple rule sends */
	err = ethtool_ioctl(rxfh);
	free(rxfh);
	return err;
}

static long read_stat(const char *name)
{
	char path[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s",
		 ifname, name);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* ---- dma-buf ---------------------------------------------------------- */

struct dmabuf {
	int memfd;
	int fd;
	uint8_t *map;
};

static int udmabuf_create(struct dmabuf *d)
{
	struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC };
	int devfd, err = 0;

	devfd = open("/dev/udmabuf", O_RDWR);
	if (devfd < 0)
		return -errno;
	d->memfd = memfd_create("nsim-devmem", MFD_ALLOW_SEALING);
	if (d->memfd < 0 || fcntl(d->memfd, F_ADD_SEALS, F_SEAL_SHRINK) ||
	    ftruncate(d->memfd, DMABUF_SIZE)) {
		err = -errno;
		goto out;
	}
	c.memfd = d->memfd;
	c.size = DMABUF_SIZE;
	d->fd = ioctl(devfd, UDMABUF_CREATE, &c);
	if (d->fd < 0) {
		err = -errno;
		goto out;
	}
	d->map = mmap(NULL, DMABUF_SIZE, PROT_READ, MAP_SHARED, d->memfd, 0);
	if (d->map == MAP_FAILED)
		err = -errno;
out:
	close(devfd);
	return err;
}

static int dmabuf_sync(struct dmabuf *d, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags | DMA_BUF_SYNC_READ };

	return ioctl(d->fd, DMA_BUF_IOCTL_SYNC, &s) ? -errno : 0;
}

/* ---- bind / page pools --------------------------------------------------- */

static int bind_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(a) == NETDEV_A_DMABUF_ID)
			*(uint32_t *)data = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

/* The binding lives as long as @r's socket stays open */
static int bind_rx(struct nl_req *r, int dmabuf_fd, uint32_t *id, bool quiet)
{
	struct nlmsghdr *nlh;
	struct nlattr *q;
	uint16_t fam;
	int err;

	err = nl_open(r) ?: nl_family(r, NETDEV_FAMILY_NAME, &fam);
	if (err)
		return err;
	nlh = nl_msg(r, fam, NETDEV_CMD_BIND_RX, NETDEV_FAMILY_VERSION, 0);
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_IFINDEX, ifindex);
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_FD, dmabuf_fd);
	q = mnl_attr_nest_start(nlh, NETDEV_A_DMABUF_QUEUES);
	mnl_attr_put_u32(nlh, NETDEV_A_QUEUE_ID, RX_QUEUE);
	mnl_attr_put_u32(nlh, NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX);
	mnl_attr_nest_end(nlh, q);
	*id = 0;
	err = nl_talk(r, nlh, bind_cb, id, quiet);
	if (err)
		nl_close(r);
	return err;
}

struct pp_info {
	uint32_t dmabuf;		/* look for pools of this binding */
	int found;
	uint64_t id, inflight, inflight_mem;
	bool detached;
};

static int pp_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pp_info *pi = data;
	uint64_t id = 0, inflight = 0, mem = 0;
	uint32_t ifi = 0, dmabuf = 0;
	const struct nlattr *a;
	bool detached = false;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case NETDEV_A_PAGE_POOL_ID:
			id = attr_uint(a);
			break;
		case NETDEV_A_PAGE_POOL_IFINDEX:
			ifi = mnl_attr_get_u32(a);
			break;
		case NETDEV_A_PAGE_POOL_INFLIGHT:
			inflight = attr_uint(a);
			break;
		case NETDEV_A_PAGE_POOL_INFLIGHT_MEM:
			mem = attr_uint(a);
			break;
		case NETDEV_A_PAGE_POOL_DMABUF:
			dmabuf = mnl_attr_get_u32(a);
			break;
		case NETDEV_A_PAGE_POOL_DETACH_TIME:
			detached = true;
			break;
		}
	}
	/* Orphaned pools report no ifindex; match them by binding too */
	if (dmabuf == pi->dmabuf && (ifi == ifindex || !ifi)) {
		pi->found++;
		pi->id = id;
		pi->inflight = inflight;
		pi->inflight_mem = mem;
		pi->detached = detached;
	}
	return MNL_CB_OK;
}

static int pp_dump(struct pp_info *pi)
{
	struct nlmsghdr *nlh;
	struct nl_req r = {};
	uint16_t fam;
	int err;

	pi->found = 0;
	err = nl_open(&r) ?: nl_family(&r, NETDEV_FAMILY_NAME, &fam);
	if (!err) {
		nlh = nl_msg(&r, fam, NETDEV_CMD_PAGE_POOL_GET,
			     NETDEV_FAMILY_VERSION, NLM_F_DUMP);
		err = nl_talk(&r, nlh, pp_cb, pi, false);
	}
	nl_close(&r);
	return err;
}

struct pp_stats {
	uint64_t id;
	uint64_t v[NETDEV_A_PAGE_POOL_STATS_MAX + 1];
};

static int pp_stats_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pp_stats *st = data, cur = {};
	const struct nlattr *a, *n;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		unsigned int t = mnl_attr_get_type(a);

		if (t == NETDEV_A_PAGE_POOL_STATS_INFO) {
			mnl_attr_for_each_nested(n, a)
				if (mnl_attr_get_type(n) == NETDEV_A_PAGE_POOL_ID)
					cur.id = attr_uint(n);
		} else if (t <= NETDEV_A_PAGE_POOL_STATS_MAX) {
			cur.v[t] = attr_uint(a);
		}
	}
	if (cur.id == st->id)
		*st = cur;
	return MNL_CB_OK;
}

static void pp_print_stats(uint64_t id)
{
	struct pp_stats st = { .id = id };
	struct nlmsghdr *nlh;
	struct nl_req r = {};
	uint16_t fam;

	if (nl_open(&r) || nl_family(&r, NETDEV_FAMILY_NAME, &fam))
		goto out;
	nlh = nl_msg(&r, fam, NETDEV_CMD_PAGE_POOL_STATS_GET,
		     NETDEV_FAMILY_VERSION, NLM_F_DUMP);
	if (nl_talk(&r, nlh, pp_stats_cb, &st, true))
		goto out;
	printf("  pool %llu stats: alloc fast %llu slow %llu empty %llu refill %llu, recycle cached %llu ring %llu ring-full %llu released %llu\n",
	       (unsigned long long)id,
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_ALLOC_FAST],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_ALLOC_SLOW],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_ALLOC_EMPTY],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_ALLOC_REFILL],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_RECYCLE_CACHED],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_RECYCLE_RING_FULL],
	       (unsigned long long)st.v[NETDEV_A_PAGE_POOL_STATS_RECYCLE_RELEASED_REFCNT]);
out:
	nl_close(&r);
}

/* ---- traffic -------------------------------------------------------------- */

/* Child: join the peer namespace, connect, send @len bytes of the pattern */
static pid_t start_sender(size_t len)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(PORT),
		.sin_addr = local_addr,
	};
	size_t off = 0;
	pid_t pid;
	int nsfd, fd;

	pid = fork();
	if (pid)
		return pid;

	nsfd = open(peer_ns, O_RDONLY);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
		perror("sender: setns");
		_exit(1);
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (void *)&sa, sizeof(sa))) {
		perror("sender: connect");
		_exit(1);
	}
	while (off < len) {
		size_t n = PATTERN_LEN - off % PATTERN_LEN;
		ssize_t ret;

		if (n > len - off)
			n = len - off;
		ret = send(fd, pattern + off % PATTERN_LEN, n, 0);
		if (ret <= 0) {
			perror("sender: send");
			_exit(1);
		}
		off += ret;
	}
	close(fd);
	_exit(0);
}

static int wait_sender(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_fail("sender failed\n");
		return -1;
	}
	return 0;
}

static bool check(const uint8_t *got, size_t stream_off, size_t len)
{
	const uint8_t *want = pattern + stream_off % PATTERN_LEN;
	size_t i;

	/* pattern is stored twice, so any len <= PATTERN_LEN compares flat */
	if (!memcmp(got, want, len))
		return true;
	for (i = 0; got[i] == want[i]; i++)
		;
	pr_fail("data mismatch at stream offset %zu: want 0x%02x got 0x%02x\n",
		stream_off + i, want[i], got[i]);
	return false;
}

static int accept_one(int lfd)
{
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0)
		pr_fail("accept: %s\n", strerror(errno));
	return fd;
}

/* Phase without a binding: payload must arrive readable and intact */
static int recv_plain(int lfd, size_t len)
{
	static uint8_t buf[IOBUF_LEN];
	pid_t pid = start_sender(len);
	size_t off = 0;
	int fd, ret = -1;

	fd = accept_one(lfd);
	if (fd < 0)
		goto out;
	while (off < len) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0) {
			pr_fail("recv: %s after %zu bytes\n",
				n ? strerror(errno) : "EOF", off);
			goto out;
		}
		if (!check(buf, off, n))
			goto out;
		off += n;
		progress = off;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return wait_sender(pid) ?: ret;
}

/* Tokens received and not yet given back; at most one per page */
static struct devmem_token held[MAX_HELD];
static unsigned int n_held;

static int return_tokens(int fd)
{
	unsigned int i, n;
	int ret;

	for (i = 0; i < n_held; i += n) {
		n = n_held - i < MAX_TOKENS ? n_held - i : MAX_TOKENS;
		ret = setsockopt(fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, held + i,
				 n * sizeof(*held));
		if (ret != (int)n) {
			pr_fail("SO_DEVMEM_DONTNEED freed %d of %u: %s\n",
				ret, n, strerror(errno));
			return -1;
		}
	}
	n_held = 0;
	return 0;
}

/*
 * NSIM_SMOKE_MODE picks a stress variant of phase 3:
 *   exhaust      keep every token until the pool runs dry and the port
 *                drops packets, then give them back; TCP must recover
 *   unbind       unbind with traffic in flight and tokens held
 *   deldev=ID    delete netdevsim device ID (ours) likewise
 *   exit         _exit() likewise, leaving the kernel to clean up
 *   downup       take the port down and up mid-transfer, tokens held;
 *                the reopened queue must pick the binding up again
 * The kernel log is checked by the VM runner.
 */
enum mode {
	MODE_NORMAL, MODE_EXHAUST, MODE_DOWNUP,
	MODE_UNBIND, MODE_DELDEV, MODE_EXIT,	/* these end the transfer */
};
static enum mode mode;
static const char *deldev_id;
static struct nl_req *bind_req;

struct rx_count {
	size_t bytes, dmabuf_frags, linear_bytes;
};

/* One recvmsg(MSG_SOCK_DEVMEM): check each fragment, return its token */
static ssize_t recv_devmem_once(int fd, struct dmabuf *d, uint32_t id,
				size_t off, struct rx_count *cnt)
{
	static char ctrl[CMSG_SPACE(sizeof(struct devmem_cmsg)) * MAX_CMSGS];
	static uint8_t iobuf[IOBUF_LEN];
	struct iovec iov = { iobuf, sizeof(iobuf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctrl, .msg_controllen = sizeof(ctrl),
	};
	size_t start = off, lin = 0;
	struct cmsghdr *cm;
	ssize_t n;
	int err;

	n = recvmsg(fd, &msg, MSG_SOCK_DEVMEM);
	if (n <= 0) {
		pr_fail("recvmsg(MSG_SOCK_DEVMEM): %s\n",
			n ? strerror(errno) : "EOF");
		return -1;
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		pr_fail("control data truncated\n");
		return -1;
	}

	if (dmabuf_sync(d, DMA_BUF_SYNC_START)) {
		pr_fail("DMA_BUF_SYNC_START: %s\n", strerror(errno));
		return -1;
	}
	err = 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm && !err; cm = CMSG_NXTHDR(&msg, cm)) {
		struct devmem_cmsg *dc = (void *)CMSG_DATA(cm);

		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_DEVMEM_LINEAR) {
			/* headers the stack kept linear: copied into iobuf */
			if (!check(iobuf + lin, off, dc->frag_size))
				err = -1;
			lin += dc->frag_size;
			cnt->linear_bytes += dc->frag_size;
		} else if (cm->cmsg_type == SCM_DEVMEM_DMABUF) {
			if (dc->dmabuf_id != id ||
			    dc->frag_offset + dc->frag_size > DMABUF_SIZE) {
				pr_fail("bad fragment: id %u off %llu size %u\n",
					dc->dmabuf_id,
					(unsigned long long)dc->frag_offset,
					dc->frag_size);
				err = -1;
				break;
			}
			if (!check(d->map + dc->frag_offset, off, dc->frag_size))
				err = -1;
			if (n_held == MAX_HELD) {
				pr_fail("more than %lu tokens outstanding\n",
					MAX_HELD);
				err = -1;
				break;
			}
			held[n_held].token_start = dc->frag_token;
			held[n_held++].token_count = 1;
			cnt->dmabuf_frags++;
		} else {
			continue;
		}
		off += dc->frag_size;
	}
	if (dmabuf_sync(d, DMA_BUF_SYNC_END)) {
		pr_fail("DMA_BUF_SYNC_END: %s\n", strerror(errno));
		err = -1;
	}
	if (!err && off - start != (size_t)n) {
		pr_fail("cmsgs cover %zu bytes, recvmsg returned %zd\n",
			off - start, n);
		err = -1;
	}
	return err ? -1 : n;
}

/* Mid-transfer teardown, with tokens held and the sender still going */
static int teardown(int fd)
{
	char path[] = "/sys/bus/netdevsim/del_device";
	int ret = 0;
	FILE *f;

	printf("  %u tokens held, tearing down: %s\n", n_held,
	       mode == MODE_UNBIND ? "unbind" :
	       mode == MODE_DELDEV ? "delete device" : "exit");
	switch (mode) {
	case MODE_UNBIND:
		nl_close(bind_req);
		break;
	case MODE_DELDEV:
		f = fopen(path, "w");
		if (!f || fprintf(f, "%s\n", deldev_id) < 0 || fclose(f)) {
			pr_fail("%s: %s\n", path, strerror(errno));
			ret = -1;
		}
		break;
	case MODE_EXIT:
		_exit(0);
	default:
		break;
	}
	/* closing the socket drops the tokens still held */
	close(fd);
	return ret;
}

static int set_port_up(bool up)
{
	struct ifreq ifr = {};
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ret = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (!ret) {
		ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP :
				     ifr.ifr_flags & ~IFF_UP;
		ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

/* Exhaust mode: when nothing arrives for a while, the pool ran dry */
static int maybe_refill(int fd, bool *done, long drops0)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	long drops;

	if (mode != MODE_EXHAUST || *done || poll(&pfd, 1, 1000))
		return 0;
	drops = read_stat("rx_dropped");
	printf("  stalled with %u tokens held, rx_dropped +%ld; returning them\n",
	       n_held, drops - drops0);
	if (drops <= drops0) {
		pr_fail("stalled without drops\n");
		return -1;
	}
	*done = true;
	return return_tokens(fd);
}

static int recv_devmem(int lfd, struct dmabuf *d, uint32_t id, size_t len)
{
	long drops0 = read_stat("rx_dropped");
	struct rx_count cnt = {};
	pid_t pid = start_sender(len);
	bool refilled = false, bounced = false;
	size_t off = 0;
	double t0;
	ssize_t n;
	int fd, ret = -1;

	fd = accept_one(lfd);
	if (fd < 0)
		goto out;
	t0 = now();
	while (off < len) {
		if (maybe_refill(fd, &refilled, drops0))
			goto out;
		n = recv_devmem_once(fd, d, id, off, &cnt);
		if (n < 0)
			goto out;
		off += n;
		progress = off;
		if (mode >= MODE_UNBIND && off >= 16UL << 20) {
			ret = teardown(fd);
			/* the sender may never learn: without a port, no RST */
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return ret;
		}
		if (mode == MODE_DOWNUP && !bounced && off >= 16UL << 20) {
			printf("  %u tokens held, port down and up\n", n_held);
			if (set_port_up(false) || set_port_up(true)) {
				pr_fail("port down/up: %s\n", strerror(errno));
				goto out;
			}
			bounced = true;
		}
		if (mode != MODE_EXHAUST || refilled) {
			if (return_tokens(fd))
				goto out;
		}
	}
	if (mode == MODE_EXHAUST && !refilled) {
		pr_fail("the pool never ran dry\n");
		goto out;
	}
	printf("  devmem: %zu bytes in %.2f s (%.0f Mbit/s), %zu dmabuf frags, %zu linear bytes\n",
	       off, now() - t0, off * 8 / (now() - t0) / 1e6,
	       cnt.dmabuf_frags, cnt.linear_bytes);
	if (!cnt.dmabuf_frags) {
		pr_fail("no payload arrived in the dma-buf\n");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return wait_sender(pid) ?: ret;
}

/* ---- main -------------------------------------------------------------- */

static int listen_on(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(PORT),
		.sin_addr = local_addr,
	};
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&sa, sizeof(sa)) || listen(fd, 4)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * recvmsg() frees an skb it consumed on a CPU other than the one whose NAPI
 * allocated it through skb_attempt_defer_free(): onto that CPU's defer list,
 * freed at its next net_rx_action() (net/ipv4/tcp.c tcp_eat_recv_skb(),
 * net/core/dev.c skb_defer_free_flush()). Those skbs hold net_iovs until
 * then, for ever on an idle VM. A datagram sent to ourselves over loopback
 * is received on the sending CPU before sendto() returns: send one from
 * every CPU.
 */
static void flush_skb_defer_lists(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	cpu_set_t saved, one;
	char b = 0;
	int fd, cpu;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (void *)&sa, sizeof(sa)) ||
	    getsockname(fd, (void *)&sa, &len) ||
	    sched_getaffinity(0, sizeof(saved), &saved))
		goto out;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		sendto(fd, &b, 1, 0, (void *)&sa, sizeof(sa));
	}
	sched_setaffinity(0, sizeof(saved), &saved);
out:
	if (fd >= 0)
		close(fd);
}

/* After unbind the devmem pool must go away once every net_iov is back */
static int wait_pool_drained(uint32_t id)
{
	struct pp_info pi = { .dmabuf = id };
	int i;

	for (i = 0; i < 100; i++) {
		flush_skb_defer_lists();
		if (pp_dump(&pi)) {
			pr_fail("page pool dump failed\n");
			return -1;
		}
		if (!pi.found) {
			printf("  devmem page pool released after unbind\n");
			return 0;
		}
		usleep(100 * 1000);
	}
	pr_fail("devmem page pool %llu still there: inflight %llu (%llu bytes)%s\n",
		(unsigned long long)pi.id, (unsigned long long)pi.inflight,
		(unsigned long long)pi.inflight_mem,
		pi.detached ? ", detached" : "");
	return -1;
}

static int run(size_t mib, int lfd, struct dmabuf *d)
{
	struct pp_info pi = {};
	struct nl_req bind = {};
	long drops0, drops1;
	uint32_t id;
	int err;

	printf("phase 1: no binding, plain recv of 32 MiB\n");
	drops0 = read_stat("rx_dropped");
	if (recv_plain(lfd, 32UL << 20))
		return 1;
	drops1 = read_stat("rx_dropped");
	if (drops1 != drops0) {
		pr_fail("rx_dropped moved without a binding: %ld -> %ld\n",
			drops0, drops1);
		return 1;
	}
	printf("  ok\n");

	printf("phase 2: bind with tcp-data-split off must fail\n");
	if (set_tcp_data_split(false, false))
		return 1;
	err = bind_rx(&bind, d->fd, &id, true);
	if (!err) {
		nl_close(&bind);
		pr_fail("bind succeeded without tcp-data-split\n");
		return 1;
	}
	printf("  refused: %s\n", strerror(-err));
	if (set_tcp_data_split(true, false))
		return 1;

	printf("phase 3: bind queue %d, devmem recv of %zu MiB\n", RX_QUEUE, mib);
	progress = 0;
	err = bind_rx(&bind, d->fd, &id, false);
	if (err) {
		pr_fail("NETDEV_CMD_BIND_RX: %s\n", strerror(-err));
		return 1;
	}
	bind_req = &bind;
	printf("  bound dma-buf id %u\n", id);
	err = set_tcp_data_split(false, true);
	if (err != -EBUSY) {
		pr_fail("turning tcp-data-split off while bound: %s, want EBUSY\n",
			strerror(-err));
		set_tcp_data_split(true, true);
		goto err_unbind;
	}
	pi.dmabuf = id;
	if (pp_dump(&pi) || pi.found != 1) {
		pr_fail("want 1 page pool with dmabuf %u, found %d\n", id,
			pi.found);
		goto err_unbind;
	}
	drops0 = read_stat("rx_dropped");
	if (recv_devmem(lfd, d, id, mib << 20))
		goto err_unbind;
	if (mode == MODE_DELDEV || mode == MODE_UNBIND) {
		nl_close(&bind);
		return wait_pool_drained(id) ? 1 : 0;
	}
	drops1 = read_stat("rx_dropped");
	pp_dump(&pi);
	printf("  pool %llu: inflight %llu (%llu bytes) after the socket closed, rx_dropped +%ld\n",
	       (unsigned long long)pi.id, (unsigned long long)pi.inflight,
	       (unsigned long long)pi.inflight_mem, drops1 - drops0);
	pp_print_stats(pi.id);

	printf("phase 4: unbind\n");
	nl_close(&bind);
	if (wait_pool_drained(id))
		return 1;
	printf("phase 5: plain recv again after unbind\n");
	if (recv_plain(lfd, 8UL << 20))
		return 1;
	printf("  ok\n");
	return 0;

err_unbind:
	nl_close(&bind);
	return 1;
}

static void on_timeout(int sig)
{
	char msg[160];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg),
		     "FAIL: timed out, %zu bytes into the current phase, rx_dropped %ld\n",
		     progress, read_stat("rx_dropped"));
	if (write(STDOUT_FILENO, msg, n) < 0)
		_exit(1);
	_exit(1);
}

int main(int argc, char **argv)
{
	struct dmabuf d = { .memfd = -1, .fd = -1 };
	int lfd, loc, ret, err;
	size_t mib = 256;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: %s IFNAME LOCAL_IPV4 PEER_NETNS_PATH [MIB]\n",
			argv[0]);
		return 1;
	}
	ifname = argv[1];
	peer_ns = argv[3];
	if (argc == 5)
		mib = strtoul(argv[4], NULL, 0);
	if (getenv("NSIM_SMOKE_MODE")) {
		const char *m = getenv("NSIM_SMOKE_MODE");

		if (!strcmp(m, "exhaust"))
			mode = MODE_EXHAUST;
		else if (!strcmp(m, "unbind"))
			mode = MODE_UNBIND;
		else if (!strncmp(m, "deldev=", 7))
			mode = MODE_DELDEV, deldev_id = m + 7;
		else if (!strcmp(m, "exit"))
			mode = MODE_EXIT;
		else if (!strcmp(m, "downup"))
			mode = MODE_DOWNUP;
		else
			return fprintf(stderr, "bad NSIM_SMOKE_MODE\n"), 1;
	}
	ifindex = if_nametoindex(ifname);
	if (!ifindex || !inet_pton(AF_INET, argv[2], &local_addr)) {
		fprintf(stderr, "bad interface or address\n");
		return 1;
	}

	err = udmabuf_create(&d);
	if (err) {
		printf("SKIP: cannot create a %lu MiB udmabuf: %s\n",
		       DMABUF_SIZE >> 20, strerror(-err));
		return 77;
	}
	pattern = malloc(2 * PATTERN_LEN);
	if (!pattern)
		return 1;
	srandom(42);
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = pattern[i + PATTERN_LEN] = random();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_timeout);
	alarm(60 + mib);	/* TCG manages a few MiB/s at worst */

	err = set_tcp_data_split(true, false);
	if (err) {
		printf("SKIP: %s cannot enable tcp-data-split: %s\n", ifname,
		       strerror(-err));
		return 77;
	}
	err = set_rss_queue0_only(false);
	loc = err ? err : add_ntuple_rule();
	if (loc < 0) {
		printf("SKIP: %s cannot steer flows (RSS/n-tuple): %s\n",
		       ifname, strerror(-loc));
		ret = 77;
		goto restore;
	}
	printf("setup: tcp-data-split on, RSS -> queue 0, rule %d: tcp dport %d -> queue %d\n",
	       loc, PORT, RX_QUEUE);

	lfd = listen_on();
	if (lfd < 0) {
		pr_fail("listen: %s\n", strerror(errno));
		ret = 1;
	} else {
		ret = run(mib, lfd, &d);
		close(lfd);
	}
	del_ntuple_rule(loc);
restore:
	set_rss_queue0_only(true);
	set_tcp_data_split(false, true);
	printf("%s\n", ret == 0 ? "PASS" : ret == 77 ? "SKIP" : "FAIL");
	return ret;
}
