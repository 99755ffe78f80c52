/* SPDX-License-Identifier: MIT */
/*
 * Plain TCP for the baselines (raw.c: sendrecv; link_raw.c: the ring):
 * connection set-up, and a message cut over N connections exactly as the
 * plugin cuts it over its data sockets (page-aligned chunks of 64 KiB ..
 * 512 KiB, chunk k on connection k % N), moved without blocking.
 */
#ifndef PB_RAWSOCK_H
#define PB_RAWSOCK_H

#include <stdbool.h>
#include <stdint.h>

struct pb_tcp_sock {
	int fd;
	uint64_t total, pos;	/* this connection's share of the message */
};

/* A listening socket on @addr, any port (*port, network order). fd or -errno. */
int pb_tcp_listen(const char *addr, uint16_t *port);
/* @n connections to @addr:@port; each first sends its index. 0 or -errno. */
int pb_tcp_connect_n(const char *addr, uint16_t port, int *fds, unsigned int n);
/* @n connections from @lfd, put at the index each one sent. 0 or -errno. */
int pb_tcp_accept_n(int lfd, int *fds, unsigned int n);
/* TCP_NODELAY and O_NONBLOCK. 0 or -errno. */
int pb_tcp_tune(int fd);
/* The chunk a @size-byte message is cut into over @n connections. */
uint64_t pb_tcp_chunk(uint64_t size, unsigned int n);
/* Bytes of chunks i, i+n, i+2n, ... */
uint64_t pb_tcp_share(uint64_t size, uint64_t c, unsigned int n, unsigned int i);
/* Moves what connection @i takes now: 1 if it moved bytes, 0 if none, -errno. */
int pb_tcp_step(struct pb_tcp_sock *s, uint8_t *buf, uint64_t c, unsigned int n, unsigned int i,
		bool tx);

#endif /* PB_RAWSOCK_H */
