#define _POSIX_C_SOURCE 200809L
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

extern char **environ;

int child_start(struct child *c)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, deflt;
	const int orig[5] = { c->in_fd, c->out_fd, c->err_fd, c->fd3, c->fd4 };
	int fds[5], tmp[5] = { -1, -1, -1, -1, -1 };
	int i, rc, saved = 0;

	/* Move fds out of 0..4 first so the dup2s below cannot clobber each other. */
	for (i = 0; i < 5; i++) {
		fds[i] = orig[i];
		if (orig[i] >= 0 && orig[i] <= 4) {
			tmp[i] = fcntl(orig[i], F_DUPFD_CLOEXEC, 10);
			if (tmp[i] < 0) {
				saved = errno;
				goto fail_lift;
			}
			fds[i] = tmp[i];
		}
	}

	posix_spawn_file_actions_init(&fa);
	if (fds[0] >= 0)
		posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	for (i = 1; i < 5; i++)
		if (fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[i], i);

	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&deflt);
	sigaddset(&deflt, SIGINT);
	sigaddset(&deflt, SIGTERM);
	sigaddset(&deflt, SIGPIPE);
	sigaddset(&deflt, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &deflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

	if (c->search_path)
		rc = posix_spawnp(&c->pid, c->argv[0], &fa, &attr, (char *const *)c->argv,
				  c->env ? c->env : environ);
	else
		rc = posix_spawn(&c->pid, c->argv[0], &fa, &attr, (char *const *)c->argv,
				 c->env ? c->env : environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	saved = rc;
fail_lift:
	for (i = 0; i < 5; i++)
		if (tmp[i] >= 0)
			close(tmp[i]);
	if (saved) {
		c->pid = -1;
		errno = saved;
		return -1;
	}
	return 0;
}

int child_wait(struct child *c, int *status)
{
	pid_t r;

	if (c->pid <= 0) {
		errno = ECHILD;
		return -1;
	}
	do
		r = waitpid(c->pid, status, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	c->pid = -1;
	return 0;
}

const char *child_describe_status(int status)
{
	static char buf[128];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof(buf), "was stopped (status 0x%x)", (unsigned)status);
	return buf;
}

char **child_python_env(int keep_warnings)
{
	size_t n = 0, i, j = 0;
	char **env;
	int have_seed = 0;

	while (environ[n])
		n++;
	env = xcalloc(n + 2, sizeof(*env));
	for (i = 0; i < n; i++) {
		if (!strncmp(environ[i], "PYTHONHASHSEED=", 15)) {
			have_seed = 1;
		} else if (keep_warnings && !strncmp(environ[i], "PYTHONWARNINGS=", 15)) {
			; /* kept */
		} else if (!strncmp(environ[i], "PYTHON", 6)) {
			continue;
		}
		env[j++] = xstrdup(environ[i]);
	}
	if (!have_seed)
		env[j++] = xstrdup("PYTHONHASHSEED=0");
	env[j] = NULL;
	return env;
}

void child_free_env(char **env)
{
	size_t i;

	if (!env)
		return;
	for (i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}
