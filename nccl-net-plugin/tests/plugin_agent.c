// SPDX-License-Identifier: MIT
/*
 * vm: the plugin through gpudd, as a job of two nodes with four ranks each
 * runs it. Two namespaces stand for the nodes, joined by linked netdevsim
 * ports with 8 queues each, one gpudd per node. Every rank is its own
 * unprivileged process (uid 65534, in the agents' group), loads the plugin
 * in NCCL_DEVMEM_MODE=devmem with LOCAL_RANK set as launchers set it, and
 * exchanges a pattern stream both ways with the rank of the same number on
 * the other node. Checked: all bytes exact, each rank on its own queue (the
 * agent's status while they run), and afterwards no rule, queue or client
 * left, header split and RSS as before the agents started.
 *
 *   plugin_agent ranks        all eight ranks finish
 *   plugin_agent rank-killed  rank 2 of node a is killed with SIGKILL once
 *                             its transfer is under way: its peer's comms
 *                             fail with a WARN (or finish), never hang; the
 *                             other six finish byte-exact; `gpudctl agent
 *                             status -j` stops listing the killed pid, and
 *                             its queue is unbound
 *   plugin_agent no-agent     no gpudd: a process holds nsim0 directly (header
 *                             split on); a rank in devmem mode is refused
 *                             naming that pid and gpudd, one in auto mode
 *                             copies with one WARN saying why (the
 *                             library's error line is INFO); after kill -9
 *                             of the holder `gpudctl -j cleanup nsim0` puts
 *                             header split back and a devmem rank works
 *
 * argv: SCENARIO GPUDD GPUDCTL NSIM_PAIR_SH. Outside the VM: skip.
 *
 * /dev/udmabuf (the pool's memory here; GPU memory on a real node, which
 * the job's user owns) is root's in the guest: the test lends it to group
 * 65534 for the run and puts its mode back.
 */
#include "harness.h"

#include "nic/nic_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PREFIX "gpplg"
#define NRANKS 4
#define VICTIM_NODE 0
#define VICTIM_RANK 2
#define DEADLINE 60.0	/* TCG guest: any single step within this, or it hangs */
#define MAXMSG (3u << 20)

static const char *const ifname[2] = { "nsim0", "nsim1" };
static const size_t sizes[] = { 1, 4096, (64 << 10) + 7, 1 << 20, 3 << 20, 1 << 20,
				2 << 20, 512 << 10 };
#define NITER (sizeof(sizes) / sizeof(sizes[0]))

static char dir[64], sock[2][96], logp[2][96], statedir[2][96], nsim[256];
static pid_t agent[2];
static int nsfd[2], home_ns;
static bool victim_run;
static pid_t main_pid;	/* only it tears the fixture down */

struct report {
	int state;		/* 0 finished, 1 failed (comm error), 2 setup failed */
	unsigned int queue;	/* what gpudd gave this rank, from the plugin's INFO line */
	uint64_t rx, tx;
	/* Start-up, logged (issue 16: first byte within 1 s of connect): from
	 * the first connect call to both comms up (gpudd's queue, rule and bind
	 * included), and from "go" to the first message (1 byte) received.
	 */
	double up_ms, first_ms;
	int warns;
	char msg[700];
};

/* Pipes: per rank, handles/sync out to the peer, reports to the parent. */
struct rank_io {
	int to_peer[2];		/* this rank writes [1]; its peer reads [0] */
	int report[2];
	int progress[2];	/* the victim: "under way" */
};
static struct rank_io io[2][NRANKS];
static int ready[2], go[2];

static void cleanup(void)
{
	char cmd[400];

	if (getpid() != main_pid)
		return;	/* a rank's exit */
	for (int i = 0; i < 2; i++)
		if (agent[i] > 0)
			kill(agent[i], SIGKILL);
	snprintf(cmd, sizeof(cmd), "%s down " PREFIX " >/dev/null 2>&1; rm -rf %s", nsim, dir);
	if (system(cmd))
		fprintf(stderr, "cleanup: %s failed\n", cmd);
}

static void enter(int node)
{
	T_ASSERT_OK(setns(node < 0 ? home_ns : nsfd[node], CLONE_NEWNET) ? -errno : 0);
}

static void agent_start(int node, const char *gpudd, const char *group)
{
	agent[node] = fork();
	T_ASSERT(agent[node] >= 0);
	if (agent[node] == 0) {
		int fd = open(logp[node], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 2);
		if (setns(nsfd[node], CLONE_NEWNET))
			_exit(126);
		setenv("GPUD_STATE_DIR", statedir[node], 1);
		execl(gpudd, "gpudd", "-f", "-s", sock[node], "-g", group, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400 && access(sock[node], F_OK); i++)
		usleep(50000);
	T_ASSERT_OK(access(sock[node], F_OK));
}

/* Every pipe end but this rank's own closes, so a dead peer reads as EOF. */
static void close_others(int node, int rank)
{
	for (int n = 0; n < 2; n++) {
		for (int r = 0; r < NRANKS; r++) {
			struct rank_io *x = &io[n][r];
			bool mine = n == node && r == rank, peer = n != node && r == rank;

			if (!mine)
				close(x->to_peer[1]);
			if (!peer)
				close(x->to_peer[0]);
			if (!mine) {
				close(x->report[1]);
				close(x->progress[1]);
			}
			close(x->report[0]);
			close(x->progress[0]);
		}
	}
	close(ready[0]);
	close(go[1]);
}

static bool xread(int fd, void *b, size_t n)
{
	for (size_t d = 0; d < n;) {
		ssize_t r = read(fd, (char *)b + d, n - d);

		if (r <= 0)
			return false;
		d += (size_t)r;
	}
	return true;
}

static bool xwrite(int fd, const void *b, size_t n)
{
	for (size_t d = 0; d < n;) {
		ssize_t r = write(fd, (const char *)b + d, n - d);

		if (r <= 0)
			return false;
		d += (size_t)r;
	}
	return true;
}

/* Polls both requests; ncclSuccess when both are done, else the failure. */
static ncclResult_t wait_two(struct h_plugin *p, void *a, void *b, int *rsz)
{
	double end = t_now() + DEADLINE;
	int da = 0, db = 0, ssz;

	while (!da || !db) {
		ncclResult_t r = ncclSuccess;

		if (!da)
			r = h_test(p, a, &da, rsz);
		if (r == ncclSuccess && !db)
			r = h_test(p, b, &db, &ssz);
		if (r != ncclSuccess)
			return r;
		if (t_now() > end)
			T_FAIL("a request not complete in %.0f s: a hang, not a clean failure",
			       DEADLINE);
	}
	return ncclSuccess;
}

static uint64_t seed_of(int node, int rank, size_t it)
{
	return (uint64_t)(node * 16 + rank) * 1000 + it;
}

/*
 * One message each way per iteration. The victim and its peer go on until
 * the comm fails: the kill then always lands mid-run, on both.
 */
static void transfer(struct h_plugin *p, int node, int rank, void *sc, void *rc,
		     struct report *rep)
{
	bool endless = victim_run && rank == VICTIM_RANK;
	bool victim = endless && node == VICTIM_NODE;
	char *sbuf = h_alloc(MAXMSG), *rbuf = h_alloc(MAXMSG);
	void *smh, *rmh;

	T_ASSERT_EQ(ncclSuccess, h_regmr(p, sc, sbuf, MAXMSG, &smh));
	T_ASSERT_EQ(ncclSuccess, h_regmr(p, rc, rbuf, MAXMSG, &rmh));
	double t_go = t_now();

	for (size_t it = 0; endless || it < NITER; it++) {
		size_t sz = sizes[it % NITER];
		void *sreq = NULL, *rreq = NULL, *data = rbuf;
		int tag = 1, rsz = -1;
		ncclResult_t r;
		long bad;

		t_pattern_fill(seed_of(node, rank, it), 0, sbuf, sz);
		memset(rbuf, 0xee, sz);
		r = h_irecv(p, rc, 1, &data, &sz, &tag, &rmh, &rreq);
		for (double end = t_now() + DEADLINE; r == ncclSuccess && !rreq;) {
			T_ASSERT(t_now() < end);
			r = h_irecv(p, rc, 1, &data, &sz, &tag, &rmh, &rreq);
		}
		for (double end = t_now() + DEADLINE; r == ncclSuccess && !sreq;) {
			T_ASSERT(t_now() < end);
			r = h_isend(p, sc, sbuf, sz, 1, smh, &sreq);
		}
		if (r == ncclSuccess)
			r = wait_two(p, rreq, sreq, &rsz);
		if (r != ncclSuccess) {
			rep->state = 1;
			snprintf(rep->msg, sizeof(rep->msg), "iteration %zu: %d (WARN: %s)", it, r,
				 h_last_warn);
			return;	/* a failed comm is closed as it is, buffers and all */
		}
		if (rsz != (int)sz)
			T_FAIL("rank %d/%d: iteration %zu received %d bytes, sent %zu", node, rank,
			       it, rsz, sz);
		bad = t_pattern_check(seed_of(1 - node, rank, it), 0, rbuf, sz);
		if (bad >= 0)
			T_FAIL("rank %d/%d: iteration %zu: byte %ld of %zu differs", node, rank, it,
			       bad, sz);
		if (it == 0)
			rep->first_ms = (t_now() - t_go) * 1e3;
		rep->rx += sz;
		rep->tx += sz;
		if (victim && it == 2 && !xwrite(io[node][rank].progress[1], "p", 1))
			_exit(8);
	}
	T_ASSERT_EQ(ncclSuccess, h_deregmr(p, sc, smh));
	T_ASSERT_EQ(ncclSuccess, h_deregmr(p, rc, rmh));
}

/* One rank: the plugin, unprivileged, through its node's gpudd. */
static void __attribute__((noreturn)) rank_main(int node, int rank)
{
	char h_mine[NCCL_NET_HANDLE_MAXSIZE] = { 0 }, h_peer[NCCL_NET_HANDLE_MAXSIZE];
	struct rank_io *me = &io[node][rank], *peer = &io[1 - node][rank];
	struct report rep = { .state = 2 };
	void *lc, *sc = NULL, *rc = NULL;
	struct h_plugin p;
	char v[16], c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close_others(node, rank);
	if (setns(nsfd[node], CLONE_NEWNET))
		_exit(3);
	snprintf(v, sizeof(v), "%d", rank);
	setenv("LOCAL_RANK", v, 1);
	setenv("GPUD_AGENT", sock[node], 1);
	setenv("NCCL_DEVMEM_IFNAME", ifname[node], 1);
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(4);
	snprintf(h_log_needle, sizeof(h_log_needle), "gpudd gave local rank %d queue ", rank);
	h_load(&p, 12);
	T_ASSERT_EQ(ncclSuccess, h_listen(&p, 0, h_mine, &lc));
	if (!xwrite(me->to_peer[1], h_mine, sizeof(h_mine)) ||
	    !xread(peer->to_peer[0], h_peer, sizeof(h_peer)))
		T_FAIL("rank %d/%d: no handle from the peer", node, rank);
	double t_conn = t_now();

	for (double end = t_conn + DEADLINE; !sc || !rc;) {
		if (!sc && h_connect(&p, 0, h_peer, &sc) != ncclSuccess)
			T_FAIL("rank %d/%d: connect: %s", node, rank, h_last_warn);
		if (!rc && h_accept(&p, lc, &rc) != ncclSuccess) {
			snprintf(rep.msg, sizeof(rep.msg), "accept (devmem setup): %s",
				 h_last_warn);
			goto out;
		}
		if (t_now() > end)
			T_FAIL("rank %d/%d: comms not up in %.0f s", node, rank, DEADLINE);
		usleep(200);
	}
	if (!h_log_hits) {
		snprintf(rep.msg, sizeof(rep.msg), "no \"%s\" line: not through gpudd",
			 h_log_needle);
		goto out;
	}
	rep.queue = (unsigned int)atoi(strstr(h_log_hit, h_log_needle) + strlen(h_log_needle));
	rep.up_ms = (t_now() - t_conn) * 1e3;
	rep.state = 0;
	if (!xwrite(ready[1], "r", 1))
		_exit(5);
	while (read(go[0], &c, 1) > 0)	/* the parent closes it: go */
		;
	transfer(&p, node, rank, sc, rc, &rep);
	/* both sides done before either closes: a close with bytes unread resets */
	if (rep.state == 0 && (!xwrite(me->to_peer[1], "d", 1) || !xread(peer->to_peer[0], &c, 1)))
		T_FAIL("rank %d/%d: the peer vanished after the transfer", node, rank);
out:
	if (sc && h_close_send(&p, sc) != ncclSuccess)
		T_FAIL("rank %d/%d: closeSend failed", node, rank);
	if (rc && h_close_recv(&p, rc) != ncclSuccess)
		T_FAIL("rank %d/%d: closeRecv failed", node, rank);
	h_close_listen(&p, lc);
	h_unload(&p);
	rep.warns = h_warns;
	if (!xwrite(me->report[1], &rep, sizeof(rep)))
		_exit(6);
	_exit(0);
}

static const char *gpudctl;

/* `gpudctl -j agent status` of @node's agent, as an operator would run it. */
static char *agent_status(int node)
{
	static char out[1 << 16];
	char cmd[400];
	size_t n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "GPUD_AGENT=%s %s -j agent status", sock[node], gpudctl);
	f = popen(cmd, "r");
	T_ASSERT(f != NULL);
	while (n < sizeof(out) - 1) {
		size_t r = fread(out + n, 1, sizeof(out) - 1 - n, f);

		if (!r)
			break;
		n += r;
	}
	out[n] = 0;
	if (pclose(f))
		T_FAIL("'%s' failed: %s", cmd, out);
	return out;
}

/* The "held" entries of the status: queue -> pid; returns their count. */
static int held_queues(const char *json, unsigned int *q, int *pid, int max)
{
	const char *s = json;
	int n = 0;

	while ((s = strstr(s, "{\"queue\":")) && n < max) {
		unsigned long long client;

		if (sscanf(s, "{\"queue\":%u,\"client\":%llu,\"pid\":%d}", &q[n], &client,
			   &pid[n]) == 3)
			n++;
		s++;
	}
	return n;
}

static bool lists_pid(const char *json, pid_t pid)
{
	char needle[32];

	snprintf(needle, sizeof(needle), "\"pid\":%d", (int)pid);
	return strstr(json, needle) != NULL;
}

static int queue_dmabuf(int node, unsigned int q)
{
	struct gpud_queue_info qi[64];
	int n, id = -1;

	enter(node);
	n = gpud_queues_get((int)if_nametoindex(ifname[node]), qi, 64);
	for (int i = 0; i < n && i < 64; i++)
		if (qi[i].type == 0 && qi[i].id == q)
			id = (int)qi[i].dmabuf_id;
	enter(-1);
	return id;
}

struct nic_state {
	enum gpud_hds hds;
	uint32_t *rss, rss_size, rules;
};

static void nic_state(int node, struct nic_state *st)
{
	struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };
	struct gpud_nic *nic;
	uint32_t table;
	bool any;
	int fd;

	enter(node);
	T_ASSERT_OK(gpud_nic_open_opts(ifname[node], &off, &nic));
	T_ASSERT_EQ(8, gpud_nic_rx_queues(nic));
	T_ASSERT_OK(gpud_nic_get_header_split(nic, &st->hds));
	gpud_nic_free(nic);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	T_ASSERT_OK(gpud_rss_get(fd, ifname[node], &st->rss, &st->rss_size));
	T_ASSERT_OK(gpud_ntuple_count(fd, ifname[node], &st->rules, &table, &any));
	close(fd);
	enter(-1);
}

/* Waits up to @secs for one byte on @fd; false on timeout or EOF. */
static bool byte_within(int fd, double secs)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&pf, 1, (int)(secs * 1000)) == 1 && read(fd, &c, 1) == 1;
}

/* Lends /dev/udmabuf to group 65534 for the run (see the top comment). */
static struct stat udmabuf_st;

static void udmabuf_lend(bool on)
{
	if (on) {
		T_ASSERT_OK(stat("/dev/udmabuf", &udmabuf_st) ? -errno : 0);
		T_ASSERT_OK(chown("/dev/udmabuf", udmabuf_st.st_uid, 65534) ? -errno : 0);
		T_ASSERT_OK(chmod("/dev/udmabuf", 0660) ? -errno : 0);
	} else {
		chown("/dev/udmabuf", udmabuf_st.st_uid, udmabuf_st.st_gid);
		chmod("/dev/udmabuf", udmabuf_st.st_mode & 07777);
	}
}

static void check_running(pid_t pid[2][NRANKS])
{
	for (int node = 0; node < 2; node++) {
		unsigned int q[64];
		int hp[64], n = held_queues(agent_status(node), q, hp, 64);

		/* one entry per queue: four entries, one per rank, are four distinct queues */
		if (n != NRANKS)
			T_FAIL("node %d: gpudd holds %d queue(s) for %d ranks: %s", node, n, NRANKS,
			       agent_status(node));
		for (int r = 0; r < NRANKS; r++) {
			int k = 0;

			for (int i = 0; i < n; i++)
				k += hp[i] == pid[node][r];
			if (k != 1)
				T_FAIL("node %d rank %d (pid %d) holds %d queue(s), expected 1",
				       node, r, (int)pid[node][r], k);
		}
		t_log("node %d: gpudd holds queues %u %u %u %u for the four ranks", node, q[0],
		      q[1], q[2], q[3]);
	}
}

static void check_report(int node, int rank, const struct report *rep)
{
	bool peer = victim_run && node != VICTIM_NODE && rank == VICTIM_RANK;
	uint64_t want = 0;

	if (rep->state != 2 && rep->queue != 7u - (unsigned int)rank)
		T_FAIL("rank %d/%d got queue %u; gpudd's queue for local rank %d is %d", node,
		       rank, rep->queue, rank, 7 - rank);

	for (size_t i = 0; i < NITER; i++)
		want += sizes[i];
	if (rep->state == 2)
		T_FAIL("rank %d/%d: %s", node, rank, rep->msg);
	if (peer && rep->state != 1)
		T_FAIL("rank %d/%d (peer of the killed rank) did not fail: state %d", node, rank,
		       rep->state);
	if (peer) {
		/* failing cleanly: an error from the plugin, with its reason in a WARN */
		if (!rep->warns)
			T_FAIL("rank %d/%d (peer of the killed rank) failed with no WARN: %s",
			       node, rank, rep->msg);
		t_log("rank %d/%d (peer of the killed rank): failed cleanly after %llu bytes: %s",
		      node, rank, (unsigned long long)rep->rx, rep->msg);
		return;
	}
	if (rep->state)
		T_FAIL("rank %d/%d: %s", node, rank, rep->msg);
	T_ASSERT_EQ(want, rep->rx);
	T_ASSERT_EQ(want, rep->tx);
	if (rep->warns)
		T_FAIL("rank %d/%d finished but logged %d WARN(s)", node, rank, rep->warns);
	t_log("rank %d/%d: queue %u, %llu bytes each way, byte-exact; comms up %.1f ms after "
	      "connect, first message %.1f ms after go", node, rank, rep->queue,
	      (unsigned long long)rep->rx, rep->up_ms, rep->first_ms);
}

/*
 * Where a node's start-up went, for the log: the agent's per-request wait
 * and service times from its status, and its own log (monotonic stamps, as
 * the ranks' INFO lines).
 */
static void log_agent_timing(int node)
{
	const char *js = agent_status(node), *req = strstr(js, "\"requests\":");
	const char *end = req ? strstr(req, "},\"nics\"") : NULL;
	char line[600];
	FILE *f;

	if (req && end)
		t_log("node %d: gpudd %.*s", node, (int)(end - req), req);
	f = fopen(logp[node], "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		t_log("node %d: %s", node, line);
	}
	fclose(f);
}

static void kill_victim(pid_t pid, unsigned int queue)
{
	double t0;

	if (!byte_within(io[VICTIM_NODE][VICTIM_RANK].progress[0], DEADLINE))
		T_FAIL("the rank to be killed never got under way");
	T_ASSERT(lists_pid(agent_status(VICTIM_NODE), pid));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	t0 = t_now();
	while (lists_pid(agent_status(VICTIM_NODE), pid) || queue_dmabuf(VICTIM_NODE, queue) > 0) {
		if (t_now() - t0 > 20)
			T_FAIL("20 s after SIGKILL: gpudd still lists pid %d, or queue %u is still "
			       "bound: %s", (int)pid, queue, agent_status(VICTIM_NODE));
		usleep(50000);
	}
	t_log("killed rank (pid %d, queue %u): gone from `gpudctl agent status -j` and unbound "
	      "%.0f ms after SIGKILL", (int)pid, queue, (t_now() - t0) * 1e3);
}

static void setup(void)
{
	char cmd[400];

	snprintf(dir, sizeof(dir), "/tmp/gpplg-%d", (int)getpid());
	mkdir(dir, 0755);
	chmod(dir, 0755);
	for (int i = 0; i < 2; i++) {
		snprintf(sock[i], sizeof(sock[i]), "%s/run%c/gpudd.sock", dir, 'a' + i);
		snprintf(logp[i], sizeof(logp[i]), "%s/gpudd-%c.log", dir, 'a' + i);
		snprintf(statedir[i], sizeof(statedir[i]), "%s/state%c", dir, 'a' + i);
	}
	atexit(cleanup);
	snprintf(cmd, sizeof(cmd), "%s up " PREFIX " --queues 8 >/dev/null", nsim);
	if (system(cmd))
		T_FAIL("%s failed", cmd);
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	nsfd[0] = open("/var/run/netns/" PREFIX "a", O_RDONLY | O_CLOEXEC);
	nsfd[1] = open("/var/run/netns/" PREFIX "b", O_RDONLY | O_CLOEXEC);
	T_ASSERT(home_ns >= 0 && nsfd[0] >= 0 && nsfd[1] >= 0);
}

/* ---- no-agent ---- */

/* Root, directly: nsim0's header split on, held until killed. */
static pid_t direct_holder(void)
{
	int pfd[2];
	pid_t pid;

	T_ASSERT_OK(pipe(pfd));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct gpud_agent_opts off = { .sz = sizeof(off), .mode = GPUD_AGENT_OFF };
		struct gpud_nic *nic;

		close(pfd[0]);
		if (setns(nsfd[0], CLONE_NEWNET) || gpud_nic_open_opts(ifname[0], &off, &nic) ||
		    gpud_nic_set_header_split(nic, true))
			_exit(3);
		if (write(pfd[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (!byte_within(pfd[0], DEADLINE))
		T_FAIL("the direct holder could not turn header split on");
	close(pfd[0]);
	return pid;
}

/* Sender in node b: one 4 KiB message if the receiver lets it connect. */
static void __attribute__((noreturn)) busy_sender(int hfd)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE], buf[4096];
	struct h_plugin p;
	void *sc = NULL, *mh, *req = NULL;
	int done = 0, sz;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setns(nsfd[1], CLONE_NEWNET))
		_exit(3);
	setenv("NCCL_DEVMEM_IFNAME", ifname[1], 1);
	setenv("NCCL_DEVMEM_MODE", "copy", 1);
	h_load(&p, 12);
	if (!xread(hfd, handle, sizeof(handle)))
		_exit(4);
	for (double end = t_now() + DEADLINE; !sc && t_now() < end;)
		if (h_connect(&p, 0, handle, &sc) != ncclSuccess)
			break;
	if (sc) {
		T_ASSERT_EQ(ncclSuccess, h_regmr(&p, sc, buf, sizeof(buf), &mh));
		t_pattern_fill(77, 0, buf, sizeof(buf));
		for (double end = t_now() + DEADLINE; !req && t_now() < end;)
			if (h_isend(&p, sc, buf, sizeof(buf), 1, mh, &req) != ncclSuccess)
				break;
		/* refused receivers end the comm: any outcome but a hang is fine here */
		for (double end = t_now() + DEADLINE; req && !done && t_now() < end;)
			if (h_test(&p, req, &done, &sz) != ncclSuccess)
				break;
		h_deregmr(&p, sc, mh);
		h_close_send(&p, sc);
	}
	h_unload(&p);
	_exit(0);
}

/*
 * A receiver rank of node a in @mode; @holder: the pid that holds nsim0, or
 * 0 when none does. Returns only when what it saw is right.
 */
static void busy_receiver(const char *mode, pid_t holder)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 }, buf[4096], want[32];
	void *lc, *rc = NULL, *mh, *req = NULL, *data = buf;
	int hp[2], st = 0, tag = 1, got;
	size_t size = sizeof(buf);
	struct h_plugin p;
	ncclResult_t r = ncclSuccess;
	pid_t spid;

	T_ASSERT_OK(pipe(hp));
	fflush(stdout);
	spid = fork();
	T_ASSERT(spid >= 0);
	if (spid == 0) {
		close(hp[1]);
		busy_sender(hp[0]);
	}
	close(hp[0]);
	enter(0);
	setenv("NCCL_DEVMEM_IFNAME", ifname[0], 1);
	setenv("NCCL_DEVMEM_MODE", mode, 1);
	h_warns = 0;
	h_last_warn[0] = 0;
	h_load(&p, 12);
	T_ASSERT_EQ(ncclSuccess, h_listen(&p, 0, handle, &lc));
	T_ASSERT(xwrite(hp[1], handle, sizeof(handle)));
	for (double end = t_now() + DEADLINE; !rc && r == ncclSuccess;) {
		r = h_accept(&p, lc, &rc);
		if (t_now() > end)
			T_FAIL("%s: accept neither done nor failed in %.0f s", mode, DEADLINE);
	}
	snprintf(want, sizeof(want), "pid %d (", (int)holder);
	if (holder && !strcmp(mode, "devmem")) {
		if (r == ncclSuccess)
			T_FAIL("devmem mode: a comm while pid %d holds %s: a silent downgrade",
			       (int)holder, ifname[0]);
		if (!strstr(h_last_warn, want) || !strstr(h_last_warn, "gpudd -f"))
			T_FAIL("devmem mode refused, but the WARN names neither %s nor gpudd: %s",
			       want, h_last_warn);
		t_log("devmem mode, NIC held by pid %d: refused: %s", (int)holder, h_last_warn);
	} else {
		if (r != ncclSuccess)
			T_FAIL("%s mode: accept failed: %s", mode, h_last_warn);
		/* one line, the plugin's: the library's own error of it is INFO */
		if (holder && (h_warns != 1 || !strstr(h_last_warn, want) ||
			       !strstr(h_last_warn, "copying, not devmem")))
			T_FAIL("auto mode, NIC held by pid %d: copy mode without one WARN saying "
			       "why (%d WARNs, last: %s)", (int)holder, h_warns, h_last_warn);
		if (!holder && h_warns)
			T_FAIL("%s mode, NIC free: %d WARN(s): %s", mode, h_warns, h_last_warn);
		if (holder)
			t_log("auto mode, NIC held by pid %d: %s", (int)holder, h_last_warn);
		T_ASSERT_EQ(ncclSuccess, h_regmr(&p, rc, buf, sizeof(buf), &mh));
		memset(buf, 0, sizeof(buf));
		for (double end = t_now() + DEADLINE; !req;) {
			T_ASSERT_EQ(ncclSuccess, h_irecv(&p, rc, 1, &data, &size, &tag, &mh, &req));
			T_ASSERT(t_now() < end);
		}
		T_ASSERT_EQ(ncclSuccess, h_wait(&p, req, &got, DEADLINE));
		T_ASSERT_EQ(sizeof(buf), got);
		T_ASSERT_EQ(-1, t_pattern_check(77, 0, buf, sizeof(buf)));
		T_ASSERT_EQ(ncclSuccess, h_deregmr(&p, rc, mh));
		waitpid(spid, &st, 0);	/* its close after ours would reset the last bytes */
		T_ASSERT_EQ(ncclSuccess, h_close_recv(&p, rc));
		spid = 0;
	}
	h_close_listen(&p, lc);
	h_unload(&p);
	close(hp[1]);
	if (spid)
		waitpid(spid, &st, 0);
	T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	enter(-1);
}

static void no_agent(void)
{
	struct nic_state before, after;
	char cmd[400], out[512];
	pid_t holder;
	size_t n;
	FILE *f;

	setenv("GPUD_AGENT", "off", 1);
	setenv("GPUD_STATE_DIR", statedir[0], 1);
	setenv("NCCL_DEVMEM_POOL_SIZE", "16M", 1);
	setenv("NCCL_DEVMEM_POOL_MEM", "host", 1);
	nic_state(0, &before);
	holder = direct_holder();
	/* each in its own process: one plugin load each, as separate jobs would */
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		int st;

		T_ASSERT(pid >= 0);
		if (pid == 0) {
			busy_receiver(i ? "auto" : "devmem", holder);
			exit(0);
		}
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			T_FAIL("the %s receiver failed (status 0x%x)", i ? "auto" : "devmem", st);
	}
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	enter(0);
	snprintf(cmd, sizeof(cmd), "%s -j cleanup %s", gpudctl, ifname[0]);
	f = popen(cmd, "r");
	T_ASSERT(f != NULL);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	if (pclose(f))
		T_FAIL("'%s' failed: %s", cmd, out);
	enter(-1);
	t_log("after kill -9 of pid %d: %s: %s", (int)holder, cmd, out);
	/* the holder's journal: header split put back by the tool */
	T_ASSERT(strstr(out, "\"journals\":1,") && strstr(out, "\"header_split_restored\":1,"));
	nic_state(0, &after);
	T_ASSERT_EQ(before.hds, after.hds);
	free(after.rss);
	{
		pid_t pid = fork();
		int st;

		T_ASSERT(pid >= 0);
		if (pid == 0) {
			busy_receiver("devmem", 0);
			exit(0);
		}
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			T_FAIL("devmem receiver after the holder's death failed (status 0x%x)", st);
	}
	nic_state(0, &after);
	T_ASSERT_EQ(before.hds, after.hds);
	T_ASSERT_EQ(before.rules, after.rules);
	T_ASSERT(!memcmp(before.rss, after.rss, before.rss_size * sizeof(uint32_t)));
	free(before.rss);
	free(after.rss);
	t_log("PASS plugin_agent no-agent");
	exit(T_EXIT_PASS);
}

int main(int argc, char **argv)
{
	pid_t pid[2][NRANKS];
	struct nic_state before[2], after[2];
	struct report rep[2][NRANKS];
	struct group *gr;
	int st;

	main_pid = getpid();
	if (argc < 5)
		T_FAIL("usage: plugin_agent ranks|rank-killed|no-agent GPUDD GPUDCTL NSIM_PAIR_SH");
	victim_run = !strcmp(argv[1], "rank-killed");
	if (!victim_run && strcmp(argv[1], "ranks") && strcmp(argv[1], "no-agent"))
		T_FAIL("unknown scenario %s", argv[1]);
	t_require_vm();
	t_require_root();
	t_require_file("/dev/udmabuf", "host memory as a dma-buf (CONFIG_UDMABUF)");
	gr = getgrgid(65534);
	if (!gr)
		t_skip("no group with gid 65534 to stand in for the gpudirect group");
	gpudctl = argv[3];
	snprintf(nsim, sizeof(nsim), "%s", argv[4]);
	setup();
	if (!strcmp(argv[1], "no-agent"))
		no_agent();
	for (int node = 0; node < 2; node++)
		nic_state(node, &before[node]);
	for (int node = 0; node < 2; node++)
		agent_start(node, argv[2], gr->gr_name);
	setenv("NCCL_DEVMEM_MODE", "devmem", 1);
	setenv("NCCL_DEVMEM_POOL_SIZE", "16M", 1);
	setenv("NCCL_DEVMEM_POOL_MEM", "host", 1);
	udmabuf_lend(true);

	T_ASSERT_OK(pipe(ready));
	T_ASSERT_OK(pipe(go));
	for (int node = 0; node < 2; node++)
		for (int r = 0; r < NRANKS; r++)
			T_ASSERT(!pipe(io[node][r].to_peer) && !pipe(io[node][r].report) &&
				 !pipe(io[node][r].progress));
	fflush(stdout);
	for (int node = 0; node < 2; node++) {
		for (int r = 0; r < NRANKS; r++) {
			pid[node][r] = fork();
			T_ASSERT(pid[node][r] >= 0);
			if (pid[node][r] == 0)
				rank_main(node, r);
		}
	}
	for (int node = 0; node < 2; node++) {
		for (int r = 0; r < NRANKS; r++) {
			close(io[node][r].to_peer[0]);
			close(io[node][r].to_peer[1]);
			close(io[node][r].report[1]);
			close(io[node][r].progress[1]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < 2 * NRANKS; i++)
		if (!byte_within(ready[0], 3 * DEADLINE))
			T_FAIL("only %d of %d ranks got their comms up (gpudd logs: %s, %s)", i,
			       2 * NRANKS, logp[0], logp[1]);
	check_running(pid);
	close(go[1]);	/* go */
	if (victim_run) {
		unsigned int q[64];
		int hp[64], n = held_queues(agent_status(VICTIM_NODE), q, hp, 64), vq = -1;

		for (int i = 0; i < n; i++)
			if (hp[i] == pid[VICTIM_NODE][VICTIM_RANK])
				vq = (int)q[i];
		T_ASSERT(vq > 0);
		kill_victim(pid[VICTIM_NODE][VICTIM_RANK], (unsigned int)vq);
	}
	for (int node = 0; node < 2; node++) {
		for (int r = 0; r < NRANKS; r++) {
			struct pollfd pf = { .fd = io[node][r].report[0], .events = POLLIN };

			if (victim_run && node == VICTIM_NODE && r == VICTIM_RANK)
				continue;
			if (poll(&pf, 1, (int)(3 * DEADLINE * 1000)) != 1 ||
			    !xread(io[node][r].report[0], &rep[node][r], sizeof(rep[node][r])))
				T_FAIL("rank %d/%d sent no report (died or hung)", node, r);
			waitpid(pid[node][r], &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				T_FAIL("rank %d/%d exited with status 0x%x", node, r, st);
			check_report(node, r, &rep[node][r]);
		}
	}
	udmabuf_lend(false);
	for (int node = 0; node < 2; node++)
		log_agent_timing(node);

	/* every rank gone: nothing of any of them left with the agents or on the NICs */
	for (int node = 0; node < 2; node++) {
		const char *js = agent_status(node);
		unsigned int q[64];
		int hp[64];

		if (held_queues(js, q, hp, 64))
			T_FAIL("node %d: queues still held after every rank exited: %s", node, js);
		for (int r = 0; r < NRANKS; r++)
			if (lists_pid(js, pid[node][r]))
				T_FAIL("node %d: gpudd still lists rank %d (pid %d): %s", node, r,
				       (int)pid[node][r], js);
		nic_state(node, &after[node]);
		T_ASSERT_EQ(before[node].rules, after[node].rules);
		free(after[node].rss);
	}
	for (int node = 0; node < 2; node++) {
		kill(agent[node], SIGTERM);
		waitpid(agent[node], &st, 0);
		agent[node] = 0;
		T_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		nic_state(node, &after[node]);
		T_ASSERT_EQ(before[node].hds, after[node].hds);
		T_ASSERT_EQ(before[node].rss_size, after[node].rss_size);
		if (memcmp(before[node].rss, after[node].rss,
			   before[node].rss_size * sizeof(uint32_t)))
			T_FAIL("node %d: the RSS table differs from before gpudd started", node);
		T_ASSERT_EQ(before[node].rules, after[node].rules);
		free(before[node].rss);
		free(after[node].rss);
	}
	t_log("PASS plugin_agent %s", argv[1]);
	return T_EXIT_PASS;
}
