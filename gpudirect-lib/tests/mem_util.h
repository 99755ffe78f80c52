/* SPDX-License-Identifier: MIT */
/* Helpers shared by the gpud_mem tests: fd counting, isolated scenarios. */
#ifndef GPUD_MEM_TEST_UTIL_H
#define GPUD_MEM_TEST_UTIL_H

#include "gpud_test.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

/* Open fds of this process (the directory stream's own fd included, always). */
static inline int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		T_FAIL("opendir /proc/self/fd");
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * Runs @fn in a child so that each scenario starts with empty caches (the
 * probe cache, a loaded driver library) and its own environment. The child
 * fails with T_ASSERT; the parent turns that into a failure naming @name.
 */
static inline void t_scenario(const char *name, void (*fn)(void))
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		T_FAIL("fork");
	if (!pid) {
		fn();
		/* exit(), not _exit(): LeakSanitizer checks the child at exit. */
		exit(T_EXIT_PASS);
	}
	if (waitpid(pid, &status, 0) != pid)
		T_FAIL("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		T_FAIL("scenario \"%s\" failed (status 0x%x)", name, status);
	t_log("ok: %s", name);
}

/* Fails unless the thread's error message contains @needle. */
#define T_ASSERT_MSG(needle)                                                   \
	do {                                                                   \
		const char *m_ = gpud_errmsg();                                \
		if (!strstr(m_, (needle)))                                     \
			T_FAIL("message lacks \"%s\": \"%s\"", (needle), m_);  \
	} while (0)

#endif /* GPUD_MEM_TEST_UTIL_H */
