// SPDX-License-Identifier: MIT
/*
 * One process at a time changes a NIC directly (without gpudd).
 *
 * Two processes that each record and restore a NIC's RSS table, rules and
 * header split cannot both be right: the first to exit puts back the table
 * it saw and spreads plain traffic over the queue the other still has
 * bound. So a gpud_nic that changes its interface first takes an exclusive
 * flock on $GPUD_STATE_DIR/IFNAME.ns<NETNS-INODE>.lock (the state dir of
 * the journals, default /run/gpudirect/nic) and keeps it while it has
 * anything to restore. A second process is refused with -EBUSY naming the
 * holder's pid and the fix, gpudd. The kernel drops the flock when the
 * holder dies, SIGKILL included: the next one just gets it.
 *
 * Within one process, gpud_nic objects on the same interface share the lock
 * by reference count: flock would set two open files of one process against
 * each other, and ordering them is the caller's business (gpudirect.h).
 */
#include "nic/nic_internal.h"

#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct gpud_nic_lock {
	char path[320];
	int fd;
	unsigned int refs;
	struct gpud_nic_lock *next;
};

static pthread_mutex_t locks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gpud_nic_lock *locks;

unsigned long long gpud_netns_ino(void)
{
	struct stat st;

	/* thread-self: setns() moves only the calling thread */
	if (!stat("/proc/thread-self/ns/net", &st) || !stat("/proc/self/ns/net", &st))
		return (unsigned long long)st.st_ino;
	return 0;
}

/* "pid N (COMM)" from what the holder wrote, or "another process" before it did. */
static void holder(int fd, char *who, size_t len)
{
	char buf[64] = "", comm[24] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	int pid = 0;

	if (n > 0)
		buf[n] = 0;
	if (n > 0 && sscanf(buf, "%d %23s", &pid, comm) >= 1 && pid > 0)
		snprintf(who, len, "pid %d%s%s%s", pid, comm[0] ? " (" : "", comm,
			 comm[0] ? ")" : "");
	else
		snprintf(who, len, "another process");
}

static int busy(const char *ifname, int fd)
{
	char who[64];

	holder(fd, who, sizeof(who));
	return gpud_err(-EBUSY, "%s is being configured by %s, directly: a second process "
			"changing the same NIC would undo the first one's RSS table, rules and "
			"header split when either exits. Start the node agent so that both go "
			"through it: systemctl start gpudd.socket, or gpudd -f (and leave "
			"GPUD_AGENT unset, not 'off')", ifname, who);
}

/* Our pid and name, for the message a refused process gets. */
static void write_self(int fd, const char *path)
{
	char comm[32] = "", line[64];
	int cfd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC), len;

	if (cfd >= 0) {
		ssize_t n = read(cfd, comm, sizeof(comm) - 1);

		comm[n > 0 ? n : 0] = 0;
		comm[strcspn(comm, "\n ")] = 0;
		close(cfd);
	}
	len = snprintf(line, sizeof(line), "%d %s\n", (int)getpid(), comm);
	if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)len, 0) != len)
		gpud_log(GPUD_LOG_DEBUG, "%s: cannot write our pid: %s", path, strerror(errno));
}

/*
 * Opens and flocks @path; 0, -EBUSY (message set), or another -errno
 * (no message: the caller decides). Retries when the file it locked was
 * unlinked by a releasing holder meanwhile, since that lock guards nothing.
 */
static int lock_file(const char *path, const char *ifname, int *out)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat a, b;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			int err = errno == EWOULDBLOCK ? busy(ifname, fd) : -errno;

			close(fd);
			return err;
		}
		if (fstat(fd, &a) || stat(path, &b) || a.st_ino != b.st_ino ||
		    a.st_dev != b.st_dev) {
			close(fd);
			continue;
		}
		write_self(fd, path);
		*out = fd;
		return 0;
	}
	return -EAGAIN;
}

int gpud_nic_lock_get(const char *ifname, unsigned long long netns,
		      struct gpud_nic_lock **out)
{
	struct gpud_nic_lock *l;
	char path[320];
	int err, fd = -1;

	snprintf(path, sizeof(path), "%s/%s.ns%llu.lock", gpud_state_dir(), ifname, netns);
	pthread_mutex_lock(&locks_lock);
	for (l = locks; l && strcmp(l->path, path); l = l->next)
		;
	if (l) {
		l->refs++;
		err = 0;
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		err = gpud_err(-ENOMEM, "nic lock: out of memory");
		goto out;
	}
	gpud_state_mkdir();
	err = lock_file(path, ifname, &fd);
	if (err == -EBUSY) {
		free(l);
		l = NULL;
		goto out;
	}
	if (err) {
		/*
		 * No lock file (no write access to the state dir: then no
		 * privilege to change the NIC either, and that change fails in
		 * its own words). Going on unlocked is what we can do.
		 */
		gpud_log(err == -EACCES || err == -EPERM ? GPUD_LOG_DEBUG : GPUD_LOG_WARN,
			 "%s: cannot take %s (%s): a second process on this NIC will not be "
			 "refused", ifname, path, strerror(-err));
		fd = -1;
		err = 0;
	}
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->fd = fd;
	l->refs = 1;
	l->next = locks;
	locks = l;
out:
	pthread_mutex_unlock(&locks_lock);
	if (!err)
		*out = l;
	return err;
}

void gpud_nic_lock_put(struct gpud_nic_lock *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&locks_lock);
	if (--l->refs) {
		pthread_mutex_unlock(&locks_lock);
		return;
	}
	for (struct gpud_nic_lock **p = &locks; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	pthread_mutex_unlock(&locks_lock);
	if (l->fd >= 0) {
		/* Unlinked while still held: a newcomer then makes a fresh file (see lock_file). */
		unlink(l->path);
		close(l->fd);
	}
	free(l);
}
