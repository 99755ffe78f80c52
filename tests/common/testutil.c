// SPDX-License-Identifier: MIT
/* Exit-code, assertion, skip and pattern helpers shared by every test. */
#define _GNU_SOURCE
#include "gpud_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void t_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void t_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(T_EXIT_FAIL);
}

void t_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(T_EXIT_SKIP);
}

void t_require_root(void)
{
	if (geteuid() != 0)
		t_skip("needs root (network namespaces, NIC configuration)");
}

bool t_in_vm(void)
{
	const char *v = getenv("GPUD_IN_VM");

	return v && !strcmp(v, "1");
}

void t_require_vm(void)
{
	if (!t_in_vm())
		t_skip("needs the patched-kernel VM (ctest -L vm runs it through kernel-patches/scripts/vm-run.sh)");
}

void t_require_file(const char *path, const char *why)
{
	if (access(path, F_OK))
		t_skip("%s is missing: %s", path, why);
}

void t_pattern_fill(uint64_t seed, uint64_t off, void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t i = 0;

	/* Byte-wise head until 8-aligned stream offset, then whole words. */
	for (; i < len && ((off + i) & 7); i++)
		b[i] = t_pattern_byte(seed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = t_pattern_word(seed, (off + i) >> 3);

		for (int k = 0; k < 8; k++)
			b[i + k] = (uint8_t)(w >> (k * 8));
	}
	for (; i < len; i++)
		b[i] = t_pattern_byte(seed, off + i);
}

long t_pattern_check(uint64_t seed, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (b[i] != t_pattern_byte(seed, off + i))
			return (long)i;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = t_pattern_word(seed, (off + i) >> 3);

		for (int k = 0; k < 8; k++)
			if (b[i + k] != (uint8_t)(w >> (k * 8)))
				return (long)(i + k);
	}
	for (; i < len; i++)
		if (b[i] != t_pattern_byte(seed, off + i))
			return (long)i;
	return -1;
}

double t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int t_tcp_connect(const char *addr, uint16_t port, int tries)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, err;

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a refused connect leaves the socket unconnected: it may try again */
	for (int n = 0; connect(fd, (struct sockaddr *)&a, sizeof(a)); n++) {
		err = -errno;
		if (n >= tries || (err != -ECONNREFUSED && err != -EINTR)) {
			close(fd);
			return err;
		}
		usleep(10000);
	}
	return fd;
}

int t_send_pattern(int fd, uint64_t seed, uint64_t total)
{
	const size_t chunk = 256 << 10;
	char *buf = malloc(chunk);
	uint64_t off = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (!err && (!total || off < total)) {
		size_t len = chunk;

		if (total && total - off < len)
			len = (size_t)(total - off);
		t_pattern_fill(seed, off, buf, len);
		for (size_t done = 0; !err && done < len;) {
			ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);

			if (w <= 0)
				err = w < 0 ? -errno : -EPIPE;
			else
				done += (size_t)w;
		}
		off += len;
	}
	free(buf);
	return err;
}
