// SPDX-License-Identifier: MIT
/*
 * gpudd: the per-node agent that owns NIC configuration for every local
 * process (see docs/setup.md, "Many processes per node: gpudd").
 *
 *   gpudd [-f] [-s SOCKET] [-g GROUP] [--pool IFNAME:FIRST-LAST]...
 *         [--channels IFNAME:N]...
 *
 * One thread, one poll loop: every request is answered before the next is
 * read, so the agent's state needs no locks and a request's time is bounded
 * by the netlink calls it makes. Binds, the slow requests, go after the
 * cheap ones of each round, one per round (loop()). With systemd socket
 * activation (gpudd.socket) the listening socket arrives as fd 3 and the
 * first client starts the agent without waiting for it.
 */
#include "gpudd.h"

#include "agent/client.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static bool log_stderr = true;	/* set once in main(), before anything logs */

double gpudd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void gpudd_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_stderr) {
		/*
		 * CLOCK_MONOTONIC seconds, as the plugin tests' lines: a rank's
		 * start-up reads as one timeline across the processes.
		 */
		fprintf(stderr, "gpudd: [%.3f] ", gpudd_now());
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(LOG_INFO, fmt, ap);
	}
	va_end(ap);
}

static void lib_log(enum gpud_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level <= GPUD_LOG_WARN)
		gpudd_log("%s", msg);
}

/*
 * A previous gpudd killed with SIGKILL (or any process that died holding a
 * gpud_nic) left its journal: put those NICs back before serving. Bindings
 * need nothing: they died with the netlink sockets of the dead process.
 */
static void restore_journals(void)
{
	struct gpud_cleanup_stats st = { .sz = sizeof(st) };

	if (gpud_nic_cleanup(NULL, &st))
		gpudd_log("cannot read the NIC journals: %s", gpud_errmsg());
	else if (st.journals)
		gpudd_log("restored what %u dead process(es) left: %u rule(s), %u RSS table(s), "
			  "%u channel count(s), %u header-split setting(s)", st.journals, st.rules,
			  st.rss, st.channels, st.hds);
}

/*
 * The interfaces --pool and --channels name are configured before the first
 * client, so a channel count is raised (and RSS spread over it) before any
 * queue is handed out, and a pool that cannot fit stops gpudd with the fix.
 * An interface not there yet is configured when a client first asks for it.
 */
static int open_configured(struct gpudd *d)
{
	for (int i = 0; i < d->cfg.npools + d->cfg.nchans; i++) {
		const char *ifname = i < d->cfg.npools ? d->cfg.pools[i].ifname :
							 d->cfg.chans[i - d->cfg.npools].ifname;
		struct gpudd_nic *n;
		char why[512];
		int err;

		if (!strcmp(ifname, "*"))
			continue;
		err = gpudd_nic_get(d, ifname, &n, why, sizeof(why));
		if (err == -ENODEV) {
			gpudd_log("%s: not here yet: configured when a client first asks for it",
				  ifname);
		} else if (err) {
			gpudd_log("%s", why);
			return err;
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: gpudd [-f] [-s SOCKET] [-g GROUP] [--pool IFNAME:FIRST-LAST]...\n"
	      "             [--channels IFNAME:N]...\n"
	      "  -f, --foreground  stay in the foreground, log to stderr (else syslog)\n"
	      "  -s, --socket PATH listening socket (default " GPUD_AGENT_SOCK_DEFAULT ")\n"
	      "  -g, --group NAME  who may connect besides root (default gpudirect)\n"
	      "  --pool IF:A-B     queues A..B of IF (or * for every interface) are\n"
	      "                    handed to clients; default 1..last (queue 0 stays\n"
	      "                    with RSS for plain traffic); when the pool reaches\n"
	      "                    past IF's RX queues, gpudd raises its channel count\n"
	      "                    (up to the driver's maximum) and puts it back at stop\n"
	      "  --channels IF:N   set IF's RX channel count to N while gpudd runs\n", f);
}

static int parse_pool(const char *s, struct gpudd_pool_cfg *pc)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long a, b;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(pc->ifname))
		return -EINVAL;
	a = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '-')
		return -EINVAL;
	b = strtoul(end + 1, &end, 10);
	if (*end || a < 1 || b < a || b >= GPUDD_MAX_QUEUES)
		return -EINVAL;
	memcpy(pc->ifname, s, (size_t)(colon - s));
	pc->ifname[colon - s] = 0;
	pc->first = (unsigned int)a;
	pc->last = (unsigned int)b;
	return 0;
}

static int parse_chan(const char *s, struct gpudd_chan_cfg *cc)
{
	const char *colon = strrchr(s, ':');
	char *end;
	unsigned long n;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(cc->ifname) ||
	    !strncmp(s, "*:", 2))
		return -EINVAL;
	n = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || *end || n < 2 || n > GPUDD_MAX_QUEUES)
		return -EINVAL;
	memcpy(cc->ifname, s, (size_t)(colon - s));
	cc->ifname[colon - s] = 0;
	cc->count = (unsigned int)n;
	return 0;
}

static int parse_args(int argc, char **argv, struct gpudd_cfg *cfg, bool *fg)
{
	static const struct option lo[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ "pool", required_argument, NULL, 'p' },
		{ "channels", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	cfg->sock_path = GPUD_AGENT_SOCK_DEFAULT;
	cfg->group = "gpudirect";
	while ((c = getopt_long(argc, argv, "fs:g:h", lo, NULL)) != -1) {
		switch (c) {
		case 'f': *fg = true; break;
		case 's': cfg->sock_path = optarg; break;
		case 'g': cfg->group = optarg; break;
		case 'p':
			if (cfg->npools == GPUDD_MAX_POOLS ||
			    parse_pool(optarg, &cfg->pools[cfg->npools])) {
				fprintf(stderr, "gpudd: bad --pool %s (IFNAME:FIRST-LAST, "
					"1 <= FIRST <= LAST)\n", optarg);
				return -EINVAL;
			}
			cfg->npools++;
			break;
		case 'c':
			if (cfg->nchans == GPUDD_MAX_POOLS ||
			    parse_chan(optarg, &cfg->chans[cfg->nchans])) {
				fprintf(stderr, "gpudd: bad --channels %s (IFNAME:N, 2 <= N <= %d; "
					"queue 0 stays for plain traffic)\n", optarg,
					GPUDD_MAX_QUEUES);
				return -EINVAL;
			}
			cfg->nchans++;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* mkdir -p of the socket's directory, 0755. */
static int make_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(dir, 0755);
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int listen_socket(struct gpudd *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *lp = getenv("LISTEN_PID"), *lf = getenv("LISTEN_FDS");
	int fd, err;

	if (lp && lf && atoi(lp) == getpid() && atoi(lf) >= 1) {
		d->listen_fd = 3;	/* SD_LISTEN_FDS_START */
		d->socket_activated = true;
		return 0;
	}
	if (strlen(d->cfg.sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "gpudd: socket path too long: %s\n", d->cfg.sock_path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, d->cfg.sock_path);
	err = make_dir(d->cfg.sock_path);
	if (err) {
		fprintf(stderr, "gpudd: cannot create the directory of %s: %s\n",
			d->cfg.sock_path, strerror(-err));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a dead agent answers ECONNREFUSED: take it over. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		fprintf(stderr, "gpudd: another gpudd already serves %s\n", d->cfg.sock_path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(d->cfg.sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		err = -errno;
		fprintf(stderr, "gpudd: cannot listen on %s: %s\n", d->cfg.sock_path,
			strerror(errno));
		close(fd);
		return err;
	}
	/* Everyone may connect: the group is checked on SO_PEERCRED, with a message. */
	chmod(d->cfg.sock_path, 0666);
	d->listen_fd = fd;
	return 0;
}

static int signal_fd(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void drop_client(struct gpudd *d, int i)
{
	gpudd_client_release(d, d->clients[i]);
	d->clients[i] = d->clients[--d->nclients];
}

/*
 * One of the binds that waited this round: the next client after the one
 * served last, by id, so every client's binds take turns.
 */
static void serve_one_bind(struct gpudd *d, struct gpudd_client **binds, int nb)
{
	struct gpudd_client *pick = NULL, *first = NULL;

	for (int i = 0; i < nb; i++) {
		struct gpudd_client *c = binds[i];

		if (!first || c->id < first->id)
			first = c;
		if (c->id > d->last_bind && (!pick || c->id < pick->id))
			pick = c;
	}
	pick = pick ? pick : first;
	d->last_bind = pick->id;
	if (gpudd_client_serve(d, pick))
		return;
	for (int i = 0; i < d->nclients; i++) {
		if (d->clients[i] == pick) {
			drop_client(d, i);
			return;
		}
	}
}

/*
 * Requests are answered one at a time, but a bind (the kernel maps the
 * dma-buf and restarts the queue: up to ~100 ms here, under rtnl_lock) is
 * not let ahead of cheap ones: each round serves every other pending
 * request first and then one bind. A rank's flow rules, or another job's,
 * then wait behind at most one bind, not behind every rank's.
 */
static int loop(struct gpudd *d, int sfd)
{
	struct pollfd pfd[GPUDD_MAX_CLIENTS + 2];
	struct gpudd_client *binds[GPUDD_MAX_CLIENTS];

	for (;;) {
		int n = d->nclients, nb = 0, r;

		pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = d->listen_fd, .events = POLLIN };
		for (int i = 0; i < n; i++)
			pfd[i + 2] = (struct pollfd){ .fd = d->clients[i]->fd, .events = POLLIN };
		r = poll(pfd, (nfds_t)n + 2, 1000);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				gpudd_log("signal %u: stopping", si.ssi_signo);
				return 0;
			}
		}
		/* Newest first, so dropping one (swap with the last) skips no one. */
		for (int i = n; i-- > 0;) {
			struct gpudd_client *c = d->clients[i];
			bool keep = true;

			if (pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) {
				if (gpudd_client_bind_next(c))
					binds[nb++] = c;	/* after the others' */
				else
					keep = gpudd_client_serve(d, c);
			}
			if (keep && !c->hello && gpudd_now() - c->since > GPUDD_HELLO_TIMEOUT_S) {
				gpudd_log("pid %d said no hello within %.0f s: dropped",
					  (int)c->cred.pid, GPUDD_HELLO_TIMEOUT_S);
				keep = false;
			}
			if (!keep)
				drop_client(d, i);
		}
		/* Deferred clients said hello, so no timeout dropped them above. */
		if (nb)
			serve_one_bind(d, binds, nb);
		if (pfd[1].revents & POLLIN)
			gpudd_client_accept(d);
		gpudd_conns_sweep(d);
	}
}

int main(int argc, char **argv)
{
	struct gpudd d = { .listen_fd = -1, .diag_fd = -1 };
	struct group *gr;
	bool fg = false;
	socklen_t ol = sizeof(d.netns_cookie);
	int sfd, fd, err;

	if (parse_args(argc, argv, &d.cfg, &fg))
		return 2;
	log_stderr = fg;
	if (!fg) {
		openlog("gpudd", LOG_PID, LOG_DAEMON);
		if (daemon(0, 0)) {
			perror("gpudd: daemon");
			return 1;
		}
	}
	/* The agent itself talks to the kernel: never to an agent. */
	gpud_agent_client_disable();
	gpud_set_log(lib_log, NULL, GPUD_LOG_WARN);
	gr = getgrnam(d.cfg.group);
	if (gr) {
		d.cfg.gid = gr->gr_gid;
		d.cfg.have_gid = true;
	} else {
		gpudd_log("group %s does not exist: only root may connect", d.cfg.group);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &d.netns_cookie, &ol)) {
		gpudd_log("no SO_NETNS_COOKIE (Linux 5.14+): flow rules will be refused");
		d.netns_cookie = UINT64_MAX;	/* no socket has this cookie */
	}
	if (fd >= 0)
		close(fd);
	sfd = signal_fd();
	/* Before listening: a client never sees the NIC a dead agent left. */
	restore_journals();
	gpudd_conns_open(&d);
	err = open_configured(&d);
	if (err) {
		gpudd_nics_free(&d);
		return 1;
	}
	err = listen_socket(&d);
	if (err) {
		gpudd_nics_free(&d);
		return 1;
	}
	gpudd_log("serving %s (group %s), protocol %d..%d", d.socket_activated ?
		  "the socket systemd passed" : d.cfg.sock_path, d.cfg.group,
		  GPUD_PROTO_VERSION_MIN, GPUD_PROTO_VERSION_MAX);
	err = loop(&d, sfd);
	while (d.nclients)
		drop_client(&d, d.nclients - 1);
	gpudd_nics_free(&d);
	if (!d.socket_activated)
		unlink(d.cfg.sock_path);
	close(d.listen_fd);
	if (d.diag_fd >= 0)
		close(d.diag_fd);
	gpudd_log("stopped; every NIC it changed is restored");
	return err ? 1 : 0;
}
