#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MADV_HUGEPAGE */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

const char *progname = "prepyc";

static void vreport(const char *prefix, const char *fmt, va_list ap, int err)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one line, whole: the walk reports from several threads */
	flockfile(stderr);
	fprintf(stderr, "%s: %s", progname, prefix);
	fput_printable(msg, strlen(msg), stderr);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	funlockfile(stderr);
}

int error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("error: ", fmt, ap, 0);
	va_end(ap);
	return -1;
}

int error_errno(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vreport("error: ", fmt, ap, saved);
	va_end(ap);
	errno = saved;
	return -1;
}

void warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap, 0);
	va_end(ap);
}

int trace_enabled(void)
{
	static int enabled = -1;

	if (enabled < 0)
		enabled = getenv("PREPYC_TRACE") && *getenv("PREPYC_TRACE");
	return enabled;
}

void trace(const char *fmt, ...)
{
	va_list ap;

	if (!trace_enabled())
		return;
	va_start(ap, fmt);
	vreport("trace: ", fmt, ap, 0);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(2);
}

void bug_fl(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: BUG: %s:%d: ", progname, file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (allocating %zu bytes)", n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		die("out of memory (allocating %zu x %zu bytes)", nmemb, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		die("out of memory (allocating %zu bytes)", n);
	return q;
}

#define BULK_PAGE ((size_t)2 << 20)

void *xrealloc_bulk(void *p, size_t n)
{
	void *q;

	if (p || n < BULK_PAGE / 2)
		return xrealloc(p, n);
	n = st_add(n, BULK_PAGE - 1) & ~(BULK_PAGE - 1);
	if (posix_memalign(&q, BULK_PAGE, n))
		die("out of memory (allocating %zu bytes)", n);
#ifdef MADV_HUGEPAGE
	/* advice only: without huge pages (THP off, none free) it is small ones */
	madvise(q, n, MADV_HUGEPAGE);
#endif
	return q;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(st_add(n, 1));

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrfmt(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		BUG("vsnprintf failed");
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

size_t st_add(size_t a, size_t b)
{
	if (a > SIZE_MAX - b)
		die("size overflow: %zu + %zu", a, b);
	return a + b;
}

size_t st_mult(size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b)
		die("size overflow: %zu * %zu", a, b);
	return a * b;
}

ssize_t xread(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t xwrite(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t read_in_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t total = 0;

	while (total < len) {
		ssize_t n = xread(fd, p + total, len - total);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		total += (size_t)n;
	}
	return (ssize_t)total;
}

ssize_t write_in_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t total = 0;

	while (total < len) {
		ssize_t n = xwrite(fd, p + total, len - total);
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ENOSPC;
			return -1;
		}
		total += (size_t)n;
	}
	return (ssize_t)total;
}

int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl);
}

int set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cpu_seconds(enum cpu_who who)
{
	struct rusage ru;
	struct timespec ts;

	if (who == CPU_THREAD) {
		if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
			return 0;
		return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	}
	if (getrusage(who == CPU_CHILDREN ? RUSAGE_CHILDREN : RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

void fput_printable(const char *s, size_t len, FILE *fp)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned cp;
		size_t n = *p ? utf8_decode_one(p, &cp) : 0;

		/* only what a terminal acts on: the compiler's lines keep U+FEFF and the like */
		if (n && p + n <= end && cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0)) {
			fwrite(p, 1, n, fp);
			p += n;
		} else if (n && p + n <= end) {
			if (cp == '\n')
				fputs("\\n", fp);
			else if (cp == '\t')
				fputs("\\t", fp);
			else if (cp == '\r')
				fputs("\\r", fp);
			else
				fprintf(fp, "\\x%02x", cp);
			p += n;
		} else {
			fprintf(fp, "\\x%02x", *p++);
		}
	}
}

size_t utf8_decode_one(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0], n, i, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0)
		n = 2, min = 0x80, c &= 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, min = 0x800, c &= 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, min = 0x10000, c &= 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}


size_t utf8_decode_escaped(const unsigned char *s, unsigned *cp)
{
	size_t n = utf8_decode_one(s, cp);

	if (n)
		return n;
	*cp = 0xdc00 + s[0];
	return 1;
}
