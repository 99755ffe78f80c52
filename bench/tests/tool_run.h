/* SPDX-License-Identifier: MIT */
/* Test helper: run gpud-rxbench as a child, capture stdout, optionally signal it. */
#ifndef TOOL_RUN_H
#define TOOL_RUN_H

#include <stdbool.h>
#include <sys/types.h>

struct tool_run {
	char *out;		/* stdout, NUL-terminated (malloc'd) */
	char *err;		/* stderr, likewise (also echoed to ours) */
	int status;		/* waitpid status */
	pid_t pid;
};

/*
 * Runs argv (argv[0] = program) and waits for it. When @signal_after_s > 0,
 * sends @sig after that many seconds. @as_nobody drops root in the child
 * before exec (to check the "needs root" message).
 */
void tool_run(struct tool_run *r, char *const argv[], double signal_after_s, int sig,
	      bool as_nobody);
void tool_run_free(struct tool_run *r);
/*
 * Can uid/gid 65534 (what @as_nobody drops to) execute @path? Checks every
 * directory on the way: a build tree under /root is not. When not, @why
 * names the first component it cannot get past.
 */
bool tool_reachable_as_nobody(const char *path, char *why, size_t len);
/* Exit code, or 128 + signal. */
int tool_exit_code(const struct tool_run *r);
/* Both demo namespaces of @pid are gone (polls up to @wait_s for the guardian). */
bool tool_netns_gone(pid_t pid, double wait_s);

#endif
