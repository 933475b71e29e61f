/*
 * tempfile.h - write files atomically.
 *
 * write_file_atomic() creates a temporary file beside `path`
 * (DIR/.prepyc-PID-N.tmp, O_CREAT|O_EXCL|O_CLOEXEC, `mode` before umask),
 * writes the buffers, checks close(), and renames it over `path`, so a
 * reader sees the old file or the whole new one, never a part.  Missing
 * parent directories are created (mode 0777 before umask, as os.makedirs).
 * On any failure the temporary file is removed, nothing else changed, and
 * -1 is returned with errno set and `*what` naming the step that failed.
 *
 * The ".prepyc-" prefix is reserved: a temporary file left by a process
 * killed with SIGKILL is recognisable as ours.
 */
#ifndef TEMPFILE_H
#define TEMPFILE_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

int write_file_atomic(const char *path, mode_t mode, const struct iovec *iov,
		      int iovcnt, const char **what);

/*
 * As write_file_atomic(), but the file gets exactly `mode` (fchmod: the
 * umask does not narrow it, as a cache shared by a group needs), and a
 * missing directory is not created (-1, ENOENT): the caller makes its
 * directories with the modes it wants (trustdir.h).
 */
int write_file_atomic_exact(const char *path, mode_t mode, const struct iovec *iov,
			    int iovcnt, const char **what);

/*
 * write_file_atomic_exact() for a caller that knows the process's umask,
 * `mask` (read with umask() while no other thread ran): the fchmod(), a
 * system call per file, is left out when the umask takes no bit of `mode`.
 */
int write_file_atomic_masked(const char *path, mode_t mode, mode_t mask,
			     const struct iovec *iov, int iovcnt, const char **what);

/*
 * A temporary file written at will, then published whole: temp_open()
 * creates it beside `path` as write_file_atomic_exact() would (exactly
 * `mode`, read-write, missing directory: -1 ENOENT); temp_publish() closes
 * it and renames it to `path` (which may differ from the first one, in the
 * same directory); temp_drop() closes and removes it.  Each returns 0, or
 * -1 with errno and `*what` naming the step; after a failed publish the
 * file is gone.  A killed process's file is swept as those above are.
 */
struct temp_file {
	int fd;
	char *tmp; /* its name */
};
int temp_open(struct temp_file *t, const char *path, mode_t mode, mode_t mask,
	      const char **what);
int temp_publish(struct temp_file *t, const char *path, const char **what);
void temp_drop(struct temp_file *t);

/*
 * Remove, once per directory and process, the temporary files a killed
 * prepyc left in the directory of `path`: ".prepyc-PID-N.tmp" whose PID is
 * not running (or is ours with an N we have not used yet: a former process
 * with the same PID, as in containers), or older than an hour (another
 * host, another PID namespace).  A live run's temporary file is never
 * touched.  write_file_atomic() calls it (not for a directory it made
 * itself: that holds nothing to sweep); thread-safe.
 */
void remove_stray_temps(const char *path);

/*
 * Remove the stray temporary files of directory `dir` now (judged as above),
 * calling fn(path, 0 or the errno of a failed unlink, arg) for each; with
 * `dry_run`, only call fn.  Returns how many were (or would be) removed.
 */
size_t sweep_stray_temps(const char *dir, int dry_run,
			 void (*fn)(const char *path, int err, void *arg), void *arg);

/*
 * Make sure of the directory of `path` before writing there: unless this
 * process knows it already (from an earlier call, a sweep or a write), one
 * mkdir() (mode 0777 before umask).  Returns 1 when this process made it
 * (here or in write_file_atomic()): it then held only what this process
 * wrote into it, so a writer need not look for an old file there first.
 * Returns 0 when it was there already, or could not be made (its parent is
 * missing too, no permission: write_file_atomic() then makes the parents
 * or says what failed).  Thread-safe.
 */
int temp_dir_prepare(const char *path);

/* mkdir -p of the directory part of `path`; 0 or -1 with errno. */
int mkdirs_for(const char *path);

#endif
