// SPDX-License-Identifier: MIT
/*
 * The flow of a connected TCP socket, read from the socket itself: the one
 * conversion the library's direct path (gpud_nic_add_flow_sock()) and gpudd
 * (which steers only connections a client proves are its own) share.
 */
#include "nic/nic_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int gpud_flow_of_sock(int fd, struct gpud_flow *f)
{
	struct sockaddr_storage la, pa;
	socklen_t ll = sizeof(la), pl = sizeof(pa);

	if (getpeername(fd, (struct sockaddr *)&pa, &pl))
		return -ENOTCONN;
	if (getsockname(fd, (struct sockaddr *)&la, &ll))
		return -errno;
	memset(f, 0, sizeof(*f));
	f->sz = sizeof(*f);
	f->family = la.ss_family;
	if (la.ss_family == AF_INET) {
		const struct sockaddr_in *l = (void *)&la, *p = (void *)&pa;

		memcpy(f->dst_addr, &l->sin_addr, 4);
		memcpy(f->src_addr, &p->sin_addr, 4);
		f->dst_port = l->sin_port;
		f->src_port = p->sin_port;
	} else if (la.ss_family == AF_INET6) {
		const struct sockaddr_in6 *l = (void *)&la, *p = (void *)&pa;

		memcpy(f->dst_addr, &l->sin6_addr, 16);
		memcpy(f->src_addr, &p->sin6_addr, 16);
		f->dst_port = l->sin6_port;
		f->src_port = p->sin6_port;
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

void gpud_flow_str(const struct gpud_flow *f, char *buf, size_t len)
{
	char ls[INET6_ADDRSTRLEN] = "?", ps[INET6_ADDRSTRLEN] = "?";

	inet_ntop(f->family, f->dst_addr, ls, sizeof(ls));
	inet_ntop(f->family, f->src_addr, ps, sizeof(ps));
	snprintf(buf, len, "tcp%c %s:%u <- %s:%u", f->family == AF_INET ? '4' : '6', ls,
		 ntohs(f->dst_port), ps, ntohs(f->src_port));
}
