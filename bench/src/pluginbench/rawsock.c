// SPDX-License-Identifier: MIT
/* Plain TCP for the baselines; see rawsock.h. */
#include "rawsock.h"
#include "pluginbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAW_MIN_CHUNK	(64u << 10)	/* the plugin's DM_MIN_CHUNK */
#define RAW_MAX_CHUNK	(512u << 10)	/* its default NCCL_DEVMEM_CHUNK_SIZE */
#define RAW_ONE_CONN_MAX (2 * RAW_MIN_CHUNK) /* its DM_ONE_SOCK_MAX */

uint64_t pb_tcp_chunk(uint64_t size, unsigned int n)
{
	/*
	 * The same cut as the plugin's (stripe.c): up to 128 KiB whole on one
	 * connection, else an n-th each. Cut differently, a ratio would measure
	 * the cut, not the transport.
	 */
	uint64_t c = size <= RAW_ONE_CONN_MAX ? size : (size + n - 1) / n;

	c = (c + 4095) & ~4095ull;
	if (c < RAW_MIN_CHUNK)
		c = RAW_MIN_CHUNK;
	return c > RAW_MAX_CHUNK ? RAW_MAX_CHUNK : c;
}

int pb_tcp_tune(int fd)
{
	int one = 1;

	/* messages, not a stream: a small one must not wait for an ACK */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ? -errno : 0;
}

int pb_tcp_listen(const char *addr, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd, err;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = sa.sin_port;
	return fd;
}

/* Each connection says which one it is: accept order is not connect order. */
int pb_tcp_connect_n(const char *addr, uint16_t port, int *fds, unsigned int n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = port };

	for (uint32_t i = 0; i < n; i++)
		fds[i] = -1;
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		fds[i] = fd;
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(fd, &i, sizeof(i)) != sizeof(i))
			return -errno;
	}
	return 0;
}

int pb_tcp_accept_n(int lfd, int *fds, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		uint32_t i;

		if (fd < 0)
			return -errno;
		if (read(fd, &i, sizeof(i)) != sizeof(i) || i >= n || fds[i] >= 0) {
			close(fd);
			return -EPROTO;
		}
		fds[i] = fd;
	}
	return 0;
}

uint64_t pb_tcp_share(uint64_t size, uint64_t c, unsigned int n, unsigned int i)
{
	uint64_t nchunks = (size + c - 1) / c, bytes = 0;

	for (uint64_t k = i; k < nchunks; k += n)
		bytes += size - k * c < c ? size - k * c : c;
	return bytes;
}

int pb_tcp_step(struct pb_tcp_sock *s, uint8_t *buf, uint64_t c, unsigned int n, unsigned int i,
		bool tx)
{
	int moved = 0;

	while (s->pos < s->total) {
		uint64_t k = i + (uint64_t)n * (s->pos / c), in = s->pos % c;
		uint64_t len = c - in < s->total - s->pos ? c - in : s->total - s->pos;
		ssize_t r = tx ? send(s->fd, buf + k * c + in, len, MSG_DONTWAIT | MSG_NOSIGNAL)
			       : recv(s->fd, buf + k * c + in, len, MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return moved;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		s->pos += (uint64_t)r;
		moved = 1;
	}
	return moved;
}
