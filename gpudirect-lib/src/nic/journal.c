// SPDX-License-Identifier: MIT
/*
 * The NIC journal: what a gpud_nic changed (the originals it will put back
 * and the rules it added), written to $GPUD_STATE_DIR or /run/gpudirect/nic
 * as IFNAME.PID after every change. gpud_nic_free() restores and removes
 * it. When the process dies without that (SIGKILL, a crash, a node agent
 * killed), gpud_nic_cleanup() - `gpudctl cleanup IFNAME`, and gpudd at its
 * start - finds journals whose owner is gone and puts the NIC back.
 *
 * Best effort by design: a process that may not write there (no privilege)
 * cannot change the NIC either, so nothing is lost by skipping it.
 */
#include "nic/nic_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC "gpudirect-nic-journal 1"

const char *gpud_state_dir(void)
{
	const char *d = getenv("GPUD_STATE_DIR");

	return d && d[0] ? d : "/run/gpudirect/nic";
}

/* Field 22 of /proc/PID/stat: tells a live owner from a reused pid. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ") " come fields 3..; skip to field 22. */
	for (int f = 3; p && f <= 22; f++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

static unsigned long long netns_id(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : (unsigned long long)st.st_ino;
}

static void mkdirs(const char *dir)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

void gpud_state_mkdir(void)
{
	mkdirs(gpud_state_dir());
}

int gpud_journal_write(const struct gpud_journal_rec *r, char *path, size_t plen)
{
	char tmp[300];
	FILE *f;

	if (!path[0]) {
		mkdirs(gpud_state_dir());
		snprintf(path, plen, "%s/%s.%d", gpud_state_dir(), r->ifname, (int)getpid());
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		gpud_log(GPUD_LOG_DEBUG, "no NIC journal (%s: %s): gpudctl cleanup will not know "
			 "this process's changes", tmp, strerror(errno));
		return -errno;
	}
	fprintf(f, JOURNAL_MAGIC "\npid %d\nstart %llu\nnetns %llu\nifname %s\nifindex %d\n",
		(int)getpid(), start_time(getpid()), netns_id(), r->ifname, r->ifindex);
	if (r->hds_saved)
		fprintf(f, "hds %u\n", r->hds_orig);
	if (r->ch_saved)
		fprintf(f, "channels %u %u %u\n", r->ch_saved, r->ch_orig.combined, r->ch_orig.rx);
	if (r->rss_orig && r->rss_was_default) {
		fprintf(f, "rss default\n");
	} else if (r->rss_orig) {
		fprintf(f, "rss %u", r->rss_size);
		for (uint32_t i = 0; i < r->rss_size; i++)
			fprintf(f, " %u", r->rss_orig[i]);
		fputc('\n', f);
	}
	for (size_t i = 0; i < r->nflows; i++)
		fprintf(f, "rule %u\n", r->flows[i]);
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

void gpud_journal_remove(const char *path)
{
	if (path[0])
		unlink(path);
}

struct jrec {
	pid_t pid;
	unsigned long long start, netns;
	char ifname[IF_NAMESIZE];
	int hds;		/* -1: untouched */
	unsigned int ch_which, ch_combined, ch_rx;
	int rss_mode;		/* 0 untouched, 1 the driver's default, 2 rss_tab */
	uint32_t rss_size, *rss_tab;
	uint32_t rules[1024];
	size_t nrules;
};

static int jparse_rss(char *line, struct jrec *j)
{
	char *end;
	unsigned long n = strtoul(line + 4, &end, 10);

	if (!n || n > 4096)
		return -EINVAL;
	free(j->rss_tab);
	j->rss_tab = calloc(n, sizeof(*j->rss_tab));
	if (!j->rss_tab)
		return -ENOMEM;
	for (unsigned long i = 0; i < n; i++)
		j->rss_tab[i] = (uint32_t)strtoul(end, &end, 10);
	j->rss_size = (uint32_t)n;
	j->rss_mode = 2;
	return 0;
}

static int jparse(FILE *f, struct jrec *j)
{
	static char line[65536];
	int err;

	memset(j, 0, sizeof(*j));
	j->hds = -1;
	if (!fgets(line, sizeof(line), f) || strncmp(line, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)))
		return -EINVAL;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		unsigned int u, v, w;
		char s[IF_NAMESIZE];

		if (sscanf(line, "pid %llu", &a) == 1) {
			j->pid = (pid_t)a;
		} else if (sscanf(line, "start %llu", &a) == 1) {
			j->start = a;
		} else if (sscanf(line, "netns %llu", &a) == 1) {
			j->netns = a;
		} else if (sscanf(line, "ifname %15s", s) == 1) {
			memcpy(j->ifname, s, sizeof(s));
		} else if (sscanf(line, "hds %u", &u) == 1) {
			j->hds = (int)u;
		} else if (sscanf(line, "channels %u %u %u", &u, &v, &w) == 3) {
			j->ch_which = u;
			j->ch_combined = v;
			j->ch_rx = w;
		} else if (!strncmp(line, "rss default", 11)) {
			j->rss_mode = 1;
		} else if (!strncmp(line, "rss ", 4)) {
			err = jparse_rss(line, j);
			if (err)
				return err;
		} else if (sscanf(line, "rule %u", &u) == 1 &&
			   j->nrules < GPUD_ARRAY_SIZE(j->rules)) {
			j->rules[j->nrules++] = u;
		}
	}
	return j->pid > 0 && j->ifname[0] ? 0 : -EINVAL;
}

/* Puts back what journal @j recorded; counts into @st. Failures are logged. */
static void jrestore(const struct jrec *j, struct gpud_cleanup_stats *st)
{
	struct gpud_nl *eth = NULL;
	int ifindex = (int)if_nametoindex(j->ifname);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err;

	for (size_t i = 0; i < j->nrules; i++) {
		err = gpud_ntuple_delete(fd, j->ifname, j->rules[i]);
		if (err && err != -ENOENT)
			gpud_log(GPUD_LOG_WARN, "cleanup %s: rule %u: %s", j->ifname, j->rules[i],
				 strerror(-err));
		else
			st->rules++;
	}
	if (j->rss_mode) {
		err = gpud_rss_set(fd, j->ifname, j->rss_tab, j->rss_mode == 1 ? 0 : j->rss_size);
		if (err)
			gpud_log(GPUD_LOG_WARN, "cleanup %s: RSS table: %s", j->ifname, strerror(-err));
		else
			st->rss++;
	}
	if ((j->ch_which || j->hds >= 0) && !gpud_ethtool_open(&eth)) {
		if (j->ch_which) {
			struct gpud_channels ch = { .combined = j->ch_combined, .rx = j->ch_rx };

			err = gpud_ethtool_set_channels(eth, ifindex, &ch, j->ch_which);
			if (err)
				gpud_log(GPUD_LOG_WARN, "cleanup %s: channels: %s", j->ifname,
					 strerror(-err));
			else
				st->channels++;
		}
		if (j->hds >= 0) {
			err = gpud_ethtool_set_hds(eth, ifindex, (uint8_t)j->hds);
			if (err)
				gpud_log(GPUD_LOG_WARN, "cleanup %s: header split: %s", j->ifname,
					 strerror(-err));
			else
				st->hds++;
		}
		gpud_nl_close(eth);
	}
	if (fd >= 0)
		close(fd);
}

int gpud_nic_cleanup(const char *ifname, struct gpud_cleanup_stats *out)
{
	struct gpud_cleanup_stats st = { .sz = sizeof(st) };
	const char *dir = gpud_state_dir();
	struct dirent *de;
	DIR *d;

	if (out) {
		int err = gpud_opts_copy(&st, sizeof(st), out, "gpud_cleanup_stats");

		if (err)
			return err;
	}
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			return gpud_err(-errno, "cleanup: %s: %s", dir, strerror(errno));
		goto done;
	}
	while ((de = readdir(d))) {
		char path[512];
		struct jrec j;
		FILE *f;
		int err;

		/* *.lock: nic_lock.c's, held by whoever changes the NIC now */
		if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp") ||
		    strstr(de->d_name, ".lock"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		err = jparse(f, &j);
		fclose(f);
		if (err || (ifname && strcmp(j.ifname, ifname))) {
			free(j.rss_tab);
			continue;
		}
		if (j.start && start_time(j.pid) == j.start) {
			st.live++;	/* its owner is running: not ours to undo */
		} else if (j.netns != netns_id()) {
			st.other_netns++;
		} else {
			jrestore(&j, &st);
			unlink(path);
			st.journals++;
			gpud_log(GPUD_LOG_INFO, "cleanup %s: undid what pid %d left", j.ifname,
				 (int)j.pid);
		}
		free(j.rss_tab);
	}
	closedir(d);
done:
	/* An older caller's struct is shorter: only what it has room for. */
	if (out) {
		size_t n = out->sz < sizeof(st) ? out->sz : sizeof(st);

		st.sz = out->sz;
		memcpy(out, &st, n);
	}
	return 0;
}
