// SPDX-License-Identifier: MIT
/*
 * The two ranks talk over an AF_UNIX socketpair made before the fork, the way
 * NCCL ranks talk over their bootstrap network: listen handles, ports,
 * iteration counts, times, barriers. It never carries payload.
 */
#include "pluginbench.h"

#include <errno.h>
#include <unistd.h>

static int xfer(int fd, void *buf, size_t len, bool wr)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = wr ? write(fd, (char *)buf + done, len - done)
			       : read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;	/* the other rank is gone */
		done += (size_t)n;
	}
	return 0;
}

int pb_ctl_write(int fd, const void *buf, size_t len)
{
	return xfer(fd, (void *)buf, len, true);
}

int pb_ctl_read(int fd, void *buf, size_t len)
{
	return xfer(fd, buf, len, false);
}

/* Both write first: a byte always fits, so neither side can block the other. */
int pb_ctl_barrier(int fd)
{
	char c = 'b';
	int err;

	err = pb_ctl_write(fd, &c, 1);
	return err ? err : pb_ctl_read(fd, &c, 1);
}

/* Both ranks learn whether either failed, so neither waits for the other. */
int pb_ctl_agree(int fd, int err)
{
	int32_t mine = err, theirs = 0;

	if (pb_ctl_write(fd, &mine, sizeof(mine)) || pb_ctl_read(fd, &theirs, sizeof(theirs)))
		return -EPIPE;
	return err ? err : theirs ? -ECANCELED : 0;
}
