// SPDX-License-Identifier: MIT
/*
 * gpud_nic: one interface, its original settings, and their restoration.
 *
 * Every change first records what it replaces (once per setting), and
 * gpud_nic_free() puts it all back in the reverse order of dependence: flow
 * rules (they name queues), RSS table (it names queues), channel counts,
 * header split. Upstream's ncdevmem left NICs reconfigured when it exited
 * on an error; a library cannot afford that.
 *
 * Live objects sit in a registry so that gpud_nic_restore_on_signal() can
 * restore them all when SIGINT/SIGTERM would otherwise end the process.
 */
#include "nic/nic_internal.h"

#include "agent/client.h"

#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/ethtool_netlink.h>

struct gpud_nic {
	char name[IF_NAMESIZE];
	int ifindex;
	struct gpud_nl *eth;	/* ethtool netlink, bound to the open-time netns */
	struct gpud_nl *nd;	/* netdev family, same netns; NULL before 6.3 */
	int ioctl_fd;		/* SIOCETHTOOL socket, same netns */
	pthread_mutex_t lock;
	struct gpud_agent_conn *agent;	/* NULL: we configure the NIC ourselves */
	struct gpud_nic *next;	/* registry, under reg_lock */

	bool hds_saved;
	uint8_t hds_orig;
	unsigned int ch_saved;	/* GPUD_CH_* fields recorded in ch_orig */
	struct gpud_channels ch_orig;
	uint32_t *rss_orig;	/* NULL: RSS untouched */
	uint32_t rss_size;
	bool rss_was_default;	/* restore with size 0, as the driver spreads */
	uint32_t *flows;	/* locations of rules we added */
	size_t nflows;
	char journal[300];	/* "": none written yet */
	struct gpud_nic_lock *claim;	/* held while anything above is to restore */
	unsigned long long netns;	/* the open-time namespace: the lock's key */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gpud_nic *reg_head;

static void reg_add(struct gpud_nic *nic)
{
	pthread_mutex_lock(&reg_lock);
	nic->next = reg_head;
	reg_head = nic;
	pthread_mutex_unlock(&reg_lock);
}

/* Caller holds reg_lock. */
static void reg_del(struct gpud_nic *nic)
{
	for (struct gpud_nic **p = &reg_head; *p; p = &(*p)->next) {
		if (*p == nic) {
			*p = nic->next;
			return;
		}
	}
}

/* After every change: what gpudctl cleanup needs if we die. Caller holds nic->lock. */
static void journal_sync(struct gpud_nic *nic)
{
	struct gpud_journal_rec r = {
		.ifname = nic->name, .ifindex = nic->ifindex,
		.hds_saved = nic->hds_saved, .hds_orig = nic->hds_orig,
		.ch_saved = nic->ch_saved, .ch_orig = nic->ch_orig,
		.rss_orig = nic->rss_orig, .rss_size = nic->rss_size,
		.rss_was_default = nic->rss_was_default,
		.flows = nic->flows, .nflows = nic->nflows,
	};

	gpud_journal_write(&r, nic->journal, sizeof(nic->journal));
}

/*
 * Before a change: the interface is ours alone among processes configuring
 * it directly (nic_lock.c). Caller holds nic->lock.
 */
static int nic_claim(struct gpud_nic *nic)
{
	return nic->claim ? 0 : gpud_nic_lock_get(nic->name, nic->netns, &nic->claim);
}

/* After a change failed, or everything was put back: nothing to guard. */
static void nic_unclaim_if_clean(struct gpud_nic *nic)
{
	if (nic->hds_saved || nic->ch_saved || nic->rss_orig || nic->nflows)
		return;
	gpud_nic_lock_put(nic->claim);
	nic->claim = NULL;
}

int gpud_nic_open(const char *ifname, struct gpud_nic **out)
{
	return gpud_nic_open_opts(ifname, NULL, out);
}

struct gpud_agent_conn *gpud_nic_agent(const struct gpud_nic *nic)
{
	return nic ? nic->agent : NULL;
}

bool gpud_nic_via_agent(const struct gpud_nic *nic)
{
	return nic && nic->agent;
}

int gpud_nic_open_opts(const char *ifname, const struct gpud_agent_opts *opts,
		       struct gpud_nic **out)
{
	struct gpud_nic *nic;
	int err;

	if (!ifname || !out || strlen(ifname) >= IF_NAMESIZE)
		return gpud_err(-EINVAL, "nic open: bad interface name");
	nic = calloc(1, sizeof(*nic));
	if (!nic)
		return gpud_err(-ENOMEM, "nic open: out of memory");
	snprintf(nic->name, sizeof(nic->name), "%s", ifname);
	nic->netns = gpud_netns_ino();
	nic->ifindex = (int)if_nametoindex(ifname);
	if (!nic->ifindex) {
		err = gpud_err(-ENODEV, "no interface %s in this network namespace", ifname);
		goto err_free;
	}
	nic->ioctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (nic->ioctl_fd < 0) {
		err = gpud_err(-errno, "nic open %s: socket: %s", ifname, strerror(errno));
		goto err_free;
	}
	err = gpud_ethtool_open(&nic->eth);
	if (err)
		goto err_close_fd;
	/* Only for counting queues; older kernels fall back to channels. */
	if (gpud_nl_open("netdev", &nic->nd))
		nic->nd = NULL;
	err = gpud_agent_conn_open(opts, &nic->agent);
	if (err)
		goto err_close_nl;
	pthread_mutex_init(&nic->lock, NULL);
	reg_add(nic);
	*out = nic;
	return 0;

err_close_nl:
	gpud_nl_close(nic->nd);
	gpud_nl_close(nic->eth);
err_close_fd:
	close(nic->ioctl_fd);
err_free:
	free(nic);
	return err;
}

const char *gpud_nic_name(const struct gpud_nic *nic)
{
	return nic ? nic->name : NULL;
}

int gpud_nic_ifindex(const struct gpud_nic *nic)
{
	return nic ? nic->ifindex : -EINVAL;
}

/* Without the netdev family: RX channels, which is what most drivers use. */
static int rx_queues_from_channels(struct gpud_nic *nic)
{
	struct gpud_channels ch;
	int err;

	pthread_mutex_lock(&nic->lock);
	err = gpud_ethtool_get_channels(nic->eth, nic->ifindex, &ch);
	pthread_mutex_unlock(&nic->lock);
	return err ? err : (int)(ch.rx + ch.combined);
}

int gpud_nic_rx_queues(const struct gpud_nic *cnic)
{
	struct gpud_nic *nic = (struct gpud_nic *)cnic;	/* the lock only */
	struct gpud_queue_info q[512];
	int n, rx = 0;

	if (!nic)
		return -EINVAL;
	if (!nic->nd)
		return rx_queues_from_channels(nic);
	pthread_mutex_lock(&nic->lock);
	n = gpud_netdev_queues(nic->nd, nic->ifindex, q, GPUD_ARRAY_SIZE(q));
	pthread_mutex_unlock(&nic->lock);
	if (n < 0)
		return n;
	if (n > (int)GPUD_ARRAY_SIZE(q))
		n = GPUD_ARRAY_SIZE(q);
	for (int i = 0; i < n; i++)
		rx += q[i].type == 0;
	return rx;
}

int gpud_nic_get_header_split(struct gpud_nic *nic, enum gpud_hds *state)
{
	uint8_t hds;
	int err;

	if (!nic || !state)
		return gpud_err(-EINVAL, "header split get: bad arguments");
	pthread_mutex_lock(&nic->lock);
	err = gpud_ethtool_get_hds(nic->eth, nic->ifindex, &hds);
	pthread_mutex_unlock(&nic->lock);
	if (err == -EOPNOTSUPP) {
		*state = GPUD_HDS_UNSUPPORTED;
		return 0;
	}
	if (err)
		return err;
	*state = hds == ETHTOOL_TCP_DATA_SPLIT_ENABLED	? GPUD_HDS_ENABLED :
		 hds == ETHTOOL_TCP_DATA_SPLIT_DISABLED ? GPUD_HDS_DISABLED :
							  GPUD_HDS_UNKNOWN;
	return 0;
}

int gpud_nic_set_header_split(struct gpud_nic *nic, bool on)
{
	uint8_t cur;
	int err;

	if (!nic)
		return gpud_err(-EINVAL, "header split set: no nic");
	if (nic->agent)
		return gpud_nic_agent_hds(nic, on);
	pthread_mutex_lock(&nic->lock);
	err = nic_claim(nic);
	if (err)
		goto out;
	err = gpud_ethtool_get_hds(nic->eth, nic->ifindex, &cur);
	if (err == -EOPNOTSUPP) {
		err = gpud_err(err, "%s: the driver has no ring parameters, so no TCP header "
			       "split: devmem needs a NIC that splits headers", nic->name);
		goto out;
	}
	if (err)
		goto out;
	err = gpud_ethtool_set_hds(nic->eth, nic->ifindex,
				   on ? ETHTOOL_TCP_DATA_SPLIT_ENABLED :
					ETHTOOL_TCP_DATA_SPLIT_DISABLED);
	if (err)
		goto out;
	if (!nic->hds_saved) {
		nic->hds_saved = true;
		nic->hds_orig = cur;
		journal_sync(nic);
	}
	gpud_log(GPUD_LOG_INFO, "%s: tcp-data-split %s (was %u)", nic->name,
		 on ? "on" : "off", cur);
out:
	nic_unclaim_if_clean(nic);
	pthread_mutex_unlock(&nic->lock);
	return err;
}

/*
 * Which count stands for the RX queues: "combined" where the driver pairs RX
 * with TX (most NICs), else "rx" (veth). 0 when it reports neither.
 */
static unsigned int rx_channel_kind(const struct gpud_channels *ch)
{
	if (ch->max_combined && (ch->combined || !ch->max_rx))
		return GPUD_CH_COMBINED;
	return ch->max_rx ? GPUD_CH_RX : 0;
}

int gpud_nic_rx_channels(struct gpud_nic *nic, unsigned int *count, unsigned int *max)
{
	struct gpud_channels ch;
	unsigned int which;
	int err;

	if (!nic || !count || !max)
		return gpud_err(-EINVAL, "rx channels: bad arguments");
	pthread_mutex_lock(&nic->lock);
	err = gpud_ethtool_get_channels(nic->eth, nic->ifindex, &ch);
	pthread_mutex_unlock(&nic->lock);
	if (err)
		return err;
	which = rx_channel_kind(&ch);
	if (!which)
		return gpud_err(-EOPNOTSUPP, "%s: the driver reports no RX channels to change",
				nic->name);
	*count = which == GPUD_CH_COMBINED ? ch.combined : ch.rx;
	*max = which == GPUD_CH_COMBINED ? ch.max_combined : ch.max_rx;
	return 0;
}

int gpud_nic_set_rx_channels(struct gpud_nic *nic, unsigned int count)
{
	struct gpud_channels cur, want;
	unsigned int which;
	int err;

	if (!nic || !count)
		return gpud_err(-EINVAL, "set rx channels: needs a nic and a count > 0");
	if (nic->agent)
		return gpud_err(-EPERM, "set rx channels %s: gpudd owns the channel counts of "
				"this node's NICs: it raises them to what its pool needs "
				"(gpudd --pool %s:FIRST-LAST, or --channels %s:N)", nic->name,
				nic->name, nic->name);
	pthread_mutex_lock(&nic->lock);
	err = nic_claim(nic);
	if (err)
		goto out;
	err = gpud_ethtool_get_channels(nic->eth, nic->ifindex, &cur);
	if (err)
		goto out;
	want = cur;
	which = rx_channel_kind(&cur);
	if (which == GPUD_CH_COMBINED) {
		want.combined = count;
	} else if (which == GPUD_CH_RX) {
		want.rx = count;
	} else {
		err = gpud_err(-EOPNOTSUPP, "%s: the driver reports no RX channels to change",
			       nic->name);
		goto out;
	}
	err = gpud_ethtool_set_channels(nic->eth, nic->ifindex, &want, which);
	if (err)
		goto out;
	if (!(nic->ch_saved & which)) {
		if (which == GPUD_CH_COMBINED)
			nic->ch_orig.combined = cur.combined;
		else
			nic->ch_orig.rx = cur.rx;
		nic->ch_saved |= which;
		journal_sync(nic);
	}
	gpud_log(GPUD_LOG_INFO, "%s: %u RX channels", nic->name, count);
out:
	nic_unclaim_if_clean(nic);
	pthread_mutex_unlock(&nic->lock);
	return err;
}

/* An ioctl failure with our hint; the ioctl has no extack to show. */
static int nic_ioctl_fail(const struct gpud_nic *nic, int err, const char *what)
{
	char ename[16];
	const char *hint;

	switch (-err) {
	case EPERM:
		hint = "changing NIC settings needs CAP_NET_ADMIN (run as root)";
		break;
	case EOPNOTSUPP:
		hint = "the driver does not support it";
		break;
	case EINVAL:
		hint = "the driver rejected it (for flow rules: is the ntuple feature on? "
		       "ethtool -K IFNAME ntuple on)";
		break;
	case ENOSPC:
		hint = "the rule table is full";
		break;
	default:
		hint = strerror(-err);
	}
	return gpud_err(err, "%s %s: %s: %s", what, nic->name,
			gpud_errno_name(err, ename, sizeof(ename)), hint);
}

int gpud_nic_probe_flow_steering(struct gpud_nic *nic)
{
	uint32_t rules, table;
	bool loc_any;
	int err;

	if (!nic)
		return gpud_err(-EINVAL, "flow steering probe: no nic");
	pthread_mutex_lock(&nic->lock);
	err = gpud_ntuple_count(nic->ioctl_fd, nic->name, &rules, &table, &loc_any);
	pthread_mutex_unlock(&nic->lock);
	if (err)
		return nic_ioctl_fail(nic, err, "n-tuple rules on");
	return 0;
}

int gpud_nic_add_flow(struct gpud_nic *nic, const struct gpud_flow *flow, unsigned int queue,
		      uint32_t *rule_id)
{
	struct gpud_flow f = { 0 };
	uint32_t *grown, loc;
	int err;

	if (!nic || !flow || !rule_id)
		return gpud_err(-EINVAL, "add flow: bad arguments");
	err = gpud_opts_copy(&f, sizeof(f), flow, "struct gpud_flow");
	if (err)
		return err;
	if (f.family != AF_INET && f.family != AF_INET6)
		return gpud_err(-EAFNOSUPPORT, "add flow: family must be AF_INET or AF_INET6");
	if (nic->agent)
		return gpud_err(-EPERM, "add flow %s: gpudd steers only connections a process "
				"proves are its own: use gpud_nic_add_flow_sock() with the "
				"connected socket", nic->name);
	pthread_mutex_lock(&nic->lock);
	err = nic_claim(nic);
	if (err)
		goto out;
	grown = realloc(nic->flows, (nic->nflows + 1) * sizeof(*grown));
	if (!grown) {
		err = gpud_err(-ENOMEM, "add flow: out of memory");
		goto out;
	}
	nic->flows = grown;
	err = gpud_ntuple_insert(nic->ioctl_fd, nic->name, &f, queue, &loc);
	if (err) {
		err = nic_ioctl_fail(nic, err, "adding an n-tuple rule to");
		goto out;
	}
	nic->flows[nic->nflows++] = loc;
	journal_sync(nic);
	gpud_log(GPUD_LOG_INFO, "%s: n-tuple rule %u steers to queue %u", nic->name, loc, queue);
	*rule_id = loc;
out:
	nic_unclaim_if_clean(nic);
	pthread_mutex_unlock(&nic->lock);
	return err;
}

int gpud_nic_del_flow(struct gpud_nic *nic, uint32_t rule_id)
{
	size_t i;
	int err;

	if (!nic)
		return gpud_err(-EINVAL, "del flow: no nic");
	if (nic->agent)
		return gpud_nic_agent_del_flow(nic, rule_id);
	pthread_mutex_lock(&nic->lock);
	for (i = 0; i < nic->nflows && nic->flows[i] != rule_id; i++)
		;
	if (i == nic->nflows) {
		err = gpud_err(-ENOENT, "%s: rule %u was not added by this object", nic->name,
			       rule_id);
		goto out;
	}
	err = gpud_ntuple_delete(nic->ioctl_fd, nic->name, rule_id);
	if (err) {
		err = nic_ioctl_fail(nic, err, "deleting an n-tuple rule from");
		goto out;
	}
	nic->flows[i] = nic->flows[--nic->nflows];
	journal_sync(nic);
	nic_unclaim_if_clean(nic);
out:
	pthread_mutex_unlock(&nic->lock);
	return err;
}

/* Records the RSS table before the first change. Caller holds nic->lock. */
static int rss_save(struct gpud_nic *nic, uint32_t rings)
{
	uint32_t *t, size;
	bool dflt = true;
	int err;

	if (nic->rss_orig)
		return 0;
	err = gpud_rss_get(nic->ioctl_fd, nic->name, &t, &size);
	if (err)
		return err;
	for (uint32_t i = 0; i < size; i++)
		dflt &= t[i] == i % rings;
	nic->rss_orig = t;
	nic->rss_size = size;
	nic->rss_was_default = dflt;
	journal_sync(nic);
	return 0;
}

int gpud_nic_rss_limit(struct gpud_nic *nic, unsigned int first_excluded)
{
	uint32_t rings, *t = NULL;
	int err;

	if (!nic)
		return gpud_err(-EINVAL, "rss limit: no nic");
	if (nic->agent) {
		/* The agent recomputes RSS over the queues nobody holds. */
		gpud_log(GPUD_LOG_INFO, "%s: RSS is gpudd's: it keeps held queues out", nic->name);
		return 0;
	}
	pthread_mutex_lock(&nic->lock);
	err = nic_claim(nic);
	if (err)
		goto out;
	err = gpud_rss_rings(nic->ioctl_fd, nic->name, &rings);
	if (!err)
		err = rss_save(nic, rings);
	if (err) {
		err = nic_ioctl_fail(nic, err, "reading the RSS table of");
		goto out;
	}
	if (!first_excluded || first_excluded > rings) {
		err = gpud_err(-ERANGE, "rss limit: %u is not within 1..%u (RX rings of %s)",
			       first_excluded, rings, nic->name);
		goto out;
	}
	t = malloc(nic->rss_size * sizeof(*t));
	if (!t) {
		err = gpud_err(-ENOMEM, "rss limit: out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < nic->rss_size; i++)
		t[i] = i % first_excluded;
	err = gpud_rss_set(nic->ioctl_fd, nic->name, t, nic->rss_size);
	if (err)
		err = nic_ioctl_fail(nic, err, "setting the RSS table of");
	else
		gpud_log(GPUD_LOG_INFO, "%s: RSS spreads over queues 0..%u only", nic->name,
			 first_excluded - 1);
out:
	free(t);
	nic_unclaim_if_clean(nic);
	pthread_mutex_unlock(&nic->lock);
	return err;
}

int gpud_nic_rss_set_table(struct gpud_nic *nic, const uint32_t *table, uint32_t size)
{
	uint32_t rings;
	int err;

	if (!nic || !table || !size)
		return gpud_err(-EINVAL, "rss set: bad arguments");
	pthread_mutex_lock(&nic->lock);
	err = nic_claim(nic);
	if (err)
		goto out;
	err = gpud_rss_rings(nic->ioctl_fd, nic->name, &rings);
	if (!err)
		err = rss_save(nic, rings);
	if (err) {
		err = nic_ioctl_fail(nic, err, "reading the RSS table of");
		goto out;
	}
	if (size != nic->rss_size) {
		err = gpud_err(-EINVAL, "rss set: %s has a %u-entry table, not %u", nic->name,
			       nic->rss_size, size);
		goto out;
	}
	err = gpud_rss_set(nic->ioctl_fd, nic->name, table, size);
	if (err)
		err = nic_ioctl_fail(nic, err, "setting the RSS table of");
out:
	nic_unclaim_if_clean(nic);
	pthread_mutex_unlock(&nic->lock);
	return err;
}

int gpud_nic_rss_size(struct gpud_nic *nic, uint32_t *size)
{
	uint32_t *t;
	int err;

	pthread_mutex_lock(&nic->lock);
	err = gpud_rss_get(nic->ioctl_fd, nic->name, &t, size);
	pthread_mutex_unlock(&nic->lock);
	if (err)
		return nic_ioctl_fail(nic, err, "reading the RSS table of");
	free(t);
	return 0;
}

/*
 * Puts back everything recorded, newest dependency first. Failures are
 * logged and the rest still restored. Caller holds nic->lock. Idempotent.
 */
static void nic_restore(struct gpud_nic *nic)
{
	int err;

	while (nic->nflows) {
		uint32_t loc = nic->flows[--nic->nflows];

		err = gpud_ntuple_delete(nic->ioctl_fd, nic->name, loc);
		if (err)
			gpud_log(GPUD_LOG_WARN, "%s: cannot remove n-tuple rule %u: %s",
				 nic->name, loc, strerror(-err));
	}
	if (nic->rss_orig) {
		err = gpud_rss_set(nic->ioctl_fd, nic->name, nic->rss_orig,
				   nic->rss_was_default ? 0 : nic->rss_size);
		if (err)
			gpud_log(GPUD_LOG_WARN, "%s: cannot restore the RSS table: %s",
				 nic->name, strerror(-err));
		free(nic->rss_orig);
		nic->rss_orig = NULL;
	}
	if (nic->ch_saved) {
		err = gpud_ethtool_set_channels(nic->eth, nic->ifindex, &nic->ch_orig,
						nic->ch_saved);
		if (err)
			gpud_log(GPUD_LOG_WARN, "%s: cannot restore channel counts: %s",
				 nic->name, strerror(-err));
		nic->ch_saved = 0;
	}
	if (nic->hds_saved) {
		err = gpud_ethtool_set_hds(nic->eth, nic->ifindex, nic->hds_orig);
		if (err)
			gpud_log(GPUD_LOG_WARN, "%s: cannot restore tcp-data-split: %s",
				 nic->name, strerror(-err));
		nic->hds_saved = false;
	}
	nic_unclaim_if_clean(nic);
}

void gpud_nic_free(struct gpud_nic *nic)
{
	if (!nic)
		return;
	/*
	 * Restore under reg_lock: a signal-time restoration (which holds it)
	 * then either sees this NIC or waits until it is fully restored.
	 */
	pthread_mutex_lock(&reg_lock);
	reg_del(nic);
	pthread_mutex_lock(&nic->lock);
	nic_restore(nic);
	gpud_journal_remove(nic->journal);
	pthread_mutex_unlock(&nic->lock);
	pthread_mutex_unlock(&reg_lock);
	pthread_mutex_destroy(&nic->lock);
	gpud_agent_conn_close(nic->agent);	/* the agent undoes what we got */
	gpud_nl_close(nic->eth);
	gpud_nl_close(nic->nd);
	close(nic->ioctl_fd);
	free(nic->flows);
	free(nic);
}

/*
 * Restoration on SIGINT/SIGTERM. Restoring means netlink round trips,
 * malloc and mutexes, none of which is async-signal-safe, so the handler
 * only writes the signal number into a pipe; a watcher thread reads it,
 * restores every live gpud_nic under reg_lock, puts back the disposition
 * that was there before, and sends the signal to the process again.
 */
static struct {
	pthread_mutex_t lock;	/* serialises enable/disable */
	bool on;
	int pipe[2];
	pthread_t thread;
	struct sigaction old[2];
	bool installed[2];
} sigr = { .lock = PTHREAD_MUTEX_INITIALIZER, .pipe = { -1, -1 } };

static const int sigr_signals[2] = { SIGINT, SIGTERM };
/* Read by the handler: sig_atomic_t, as C allows for handler-visible data. */
static volatile sig_atomic_t sigr_wfd = -1;

static void sigr_handler(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;
	ssize_t n;

	/* A full pipe means a restoration is pending already: nothing lost. */
	n = write(sigr_wfd, &c, 1);
	(void)n;
	errno = saved;
}

static void sigr_uninstall(void)
{
	for (int i = 0; i < 2; i++) {
		if (sigr.installed[i])
			sigaction(sigr_signals[i], &sigr.old[i], NULL);
		sigr.installed[i] = false;
	}
}

static void *sigr_thread(void *arg)
{
	unsigned char sig;
	sigset_t all;
	ssize_t n;

	/* Never take the signals ourselves: we must be free to act on them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	do {
		n = read(sigr.pipe[0], &sig, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1 || sig == 0)
		return NULL;	/* disabled, or pipe gone */

	gpud_log(GPUD_LOG_WARN, "signal %d: restoring NIC settings before exiting", sig);
	pthread_mutex_lock(&reg_lock);
	for (struct gpud_nic *nic = reg_head; nic; nic = nic->next) {
		pthread_mutex_lock(&nic->lock);
		nic_restore(nic);
		pthread_mutex_unlock(&nic->lock);
	}
	/*
	 * reg_lock stays held: no NIC may be reconfigured between our
	 * restoration and the process's end. The previous disposition decides
	 * what the re-sent signal does (by default: terminate).
	 */
	/*
	 * Not under sigr.lock: a concurrent gpud_nic_restore_on_signal(false)
	 * holds it while joining us. Both sides only write back the same old
	 * dispositions, so the overlap is harmless.
	 */
	sigr_uninstall();
	kill(getpid(), sig);
	pthread_mutex_unlock(&reg_lock);
	return NULL;
}

static int sigr_enable(void)
{
	struct sigaction sa;
	int err;

	if (pipe2(sigr.pipe, O_CLOEXEC | O_NONBLOCK))
		return gpud_err(-errno, "restore on signal: pipe: %s", strerror(errno));
	/* The reader blocks; only the handler's end must never block. */
	fcntl(sigr.pipe[0], F_SETFL, 0);
	sigr_wfd = sigr.pipe[1];
	err = -pthread_create(&sigr.thread, NULL, sigr_thread, NULL);
	if (err) {
		err = gpud_err(err, "restore on signal: cannot start the watcher thread");
		goto err_close;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigr_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (int i = 0; i < 2; i++) {
		struct sigaction cur;

		/* An ignored signal (nohup, background job) stays ignored. */
		sigaction(sigr_signals[i], NULL, &cur);
		if (cur.sa_handler == SIG_IGN)
			continue;
		if (sigaction(sigr_signals[i], &sa, &sigr.old[i]) == 0)
			sigr.installed[i] = true;
	}
	sigr.on = true;
	return 0;

err_close:
	close(sigr.pipe[0]);
	close(sigr.pipe[1]);
	sigr.pipe[0] = sigr.pipe[1] = sigr_wfd = -1;
	return err;
}

static void sigr_disable(void)
{
	unsigned char stop = 0;

	sigr_uninstall();
	/* A signal that already fired is being handled: join waits for it. */
	if (write(sigr.pipe[1], &stop, 1) < 0)
		gpud_log(GPUD_LOG_WARN, "restore on signal: cannot wake the watcher");
	pthread_join(sigr.thread, NULL);
	sigr_wfd = -1;
	close(sigr.pipe[0]);
	close(sigr.pipe[1]);
	sigr.pipe[0] = sigr.pipe[1] = -1;
	sigr.on = false;
}

int gpud_nic_restore_on_signal(bool enable)
{
	int err = 0;

	pthread_mutex_lock(&sigr.lock);
	if (enable && !sigr.on)
		err = sigr_enable();
	else if (!enable && sigr.on)
		sigr_disable();
	pthread_mutex_unlock(&sigr.lock);
	return err;
}
