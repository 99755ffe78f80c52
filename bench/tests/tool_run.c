// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "tool_run.h"
#include "gpud_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int drop_to_nobody(void)
{
	return setgid(65534) || setuid(65534) ? -errno : 0;
}

static void child(int wfd, int efd, char *const argv[], bool as_nobody)
{
	dup2(wfd, STDOUT_FILENO);
	dup2(efd, STDERR_FILENO);
	if (as_nobody && drop_to_nobody())
		_exit(126);
	execv(argv[0], argv);
	_exit(127);
}

void tool_run(struct tool_run *r, char *const argv[], double signal_after_s, int sig,
	      bool as_nobody)
{
	double t_sig = signal_after_s > 0 ? t_now() + signal_after_s : 0;
	size_t len = 0, cap = 65536;
	FILE *ef = tmpfile();
	int pfd[2];

	memset(r, 0, sizeof(*r));
	r->out = malloc(cap);
	T_ASSERT(r->out);
	T_ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(NULL);
	r->pid = fork();
	T_ASSERT(r->pid >= 0);
	T_ASSERT(ef);
	if (r->pid == 0)
		child(pfd[1], fileno(ef), argv, as_nobody);
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		ssize_t n;

		if (t_sig && t_now() >= t_sig) {
			kill(r->pid, sig);
			t_sig = 0;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (len + 4096 > cap) {
			cap *= 2;
			r->out = realloc(r->out, cap);
			T_ASSERT(r->out);
		}
		n = read(pfd[0], r->out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	r->out[len] = '\0';
	close(pfd[0]);
	while (waitpid(r->pid, &r->status, 0) < 0)
		T_ASSERT(errno == EINTR);
	len = (size_t)ftell(ef);
	r->err = calloc(1, len + 1);
	T_ASSERT(r->err);
	rewind(ef);
	len = fread(r->err, 1, len, ef);
	r->err[len] = '\0';
	fclose(ef);
	fputs(r->err, stderr);
}

/* In the dropped child: the first component of @path it cannot pass, to @fd. */
static int reach_child(int fd, const char *path)
{
	char buf[4096], msg[4200];
	int err = drop_to_nobody();

	if (err) {
		snprintf(msg, sizeof(msg), "cannot drop to uid 65534: %s", strerror(-err));
		goto out_fail;
	}
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (access(buf, X_OK)) {
			snprintf(msg, sizeof(msg), "directory %s: %s", buf, strerror(errno));
			goto out_fail;
		}
		*p = '/';
	}
	if (!access(path, X_OK))
		return 0;
	snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
out_fail:
	if (write(fd, msg, strlen(msg)) < 0)
		return 2;
	return 1;
}

bool tool_reachable_as_nobody(const char *path, char *why, size_t len)
{
	int pfd[2], st = 0;
	ssize_t n;
	pid_t pid;

	T_ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	fflush(NULL);
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		_exit(reach_child(pfd[1], path));
	}
	close(pfd[1]);
	n = read(pfd[0], why, len - 1);
	why[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0)
		T_ASSERT(errno == EINTR);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

void tool_run_free(struct tool_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int tool_exit_code(const struct tool_run *r)
{
	if (WIFEXITED(r->status))
		return WEXITSTATUS(r->status);
	return 128 + WTERMSIG(r->status);
}

bool tool_netns_gone(pid_t pid, double wait_s)
{
	double give_up = t_now() + wait_s;
	char a[96], b[96];

	snprintf(a, sizeof(a), "/var/run/netns/gpud-rxbench-%d-tx", (int)pid);
	snprintf(b, sizeof(b), "/var/run/netns/gpud-rxbench-%d-rx", (int)pid);
	for (;;) {
		if (access(a, F_OK) && access(b, F_OK))
			return true;
		if (t_now() > give_up)
			return false;
		usleep(100000);
	}
}
