/*
 * child.h - start and reap child processes (the target interpreter).
 *
 * Calling sequence:
 *   struct child c = CHILD_INIT;
 *   c.argv = ...; c.env = ...; c.out_fd = pipe_write_end; ...
 *   if (child_start(&c) < 0) -> errno says why (ENOENT, EACCES, ENOEXEC...)
 *   ... talk to it ...
 *   child_wait(&c, &status);
 *
 * Descriptors: in_fd/out_fd/err_fd become the child's 0/1/2 (-1 inherits,
 * except in_fd, where -1 means /dev/null); fd3/fd4 (-1 for none) become its
 * 3 and 4.  Every other descriptor of ours must be close-on-exec: the
 * project opens all its descriptors with O_CLOEXEC so workers never inherit
 * each other's pipes (a worker holding another's pipe would hide that
 * pipe's end of file).
 *
 * The child starts with default SIGINT/SIGTERM/SIGPIPE dispositions and an
 * empty signal mask.  `search_path` looks argv[0] up in PATH.
 */
#ifndef CHILD_H
#define CHILD_H

#include <sys/types.h>

struct child {
	const char *const *argv;
	char *const *env; /* NULL: our environment */
	int in_fd, out_fd, err_fd, fd3, fd4;
	int search_path;
	pid_t pid;
};

#define CHILD_INIT { NULL, NULL, -1, -1, -1, -1, -1, 0, -1 }

/* 0, or -1 with errno set (nothing was started). */
int child_start(struct child *c);

/* Wait for the child; its raw wait status in *status.  0 or -1 with errno. */
int child_wait(struct child *c, int *status);

/* "exited with status 1", "was killed by signal 9 (Killed)" ... into a static buffer. */
const char *child_describe_status(int status);

/*
 * Our environment minus every PYTHON* variable, with PYTHONHASHSEED kept
 * when set, else set to 0, and PYTHONWARNINGS kept when `keep_warnings`.
 * A NULL-terminated array; free with child_free_env().
 */
char **child_python_env(int keep_warnings);
void child_free_env(char **env);

#endif
