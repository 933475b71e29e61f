/*
 * util.h - the small layer every other file stands on.
 *
 * Error reporting: error() and warning() print "prepyc: error: ..." on stderr;
 * error() returns -1 so library code can write `return error(...)`.  Only the
 * cmd_* layer and main() exit; die() is for the rare fatal condition that has
 * no caller to return to (out of memory, BUG()).
 *
 * Memory: the x* allocators never return NULL; they die once on exhaustion.
 * st_add()/st_mult() die on size_t overflow so size arithmetic is checked.
 *
 * I/O: xread()/xwrite() retry on EINTR; read_in_full()/write_in_full() also
 * loop over short counts.  They return -1 with errno set on failure.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The basename used in every message ("prepyc"). */
extern const char *progname;

int error(const char *fmt, ...) PRINTF_LIKE(1, 2);
int error_errno(const char *fmt, ...) PRINTF_LIKE(1, 2); /* appends ": strerror(errno)" */
void warning(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* With PREPYC_TRACE set in the environment, print "prepyc: trace: ..." on stderr. */
void trace(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Is PREPYC_TRACE set?  (Measurements that cost something are taken only then.) */
int trace_enabled(void);
NORETURN void die(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void bug_fl(const char *file, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
#define BUG(...) bug_fl(__FILE__, __LINE__, __VA_ARGS__)

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/*
 * xrealloc() for an array filled at once after it is sized (the walk's
 * entries, the plan's files, check's verdicts): a new one of 1 MiB or more
 * is aligned to 2 MiB, its size rounded up to a multiple of that, and
 * transparent huge pages are asked for (MADV_HUGEPAGE, where there is
 * such a thing).  Filling fresh memory is a page fault per 4 KiB, about
 * 11 us each on a VM, a no-op's largest cost after its stat() calls; one
 * 2 MiB page costs about what 30 small ones do.  free() releases it.
 */
void *xrealloc_bulk(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xstrfmt(const char *fmt, ...) PRINTF_LIKE(1, 2);

size_t st_add(size_t a, size_t b);
size_t st_mult(size_t a, size_t b);

/* Grow `array` (of `nr` used elements, `alloc` allocated) to hold at least `n`. */
#define ALLOC_GROW(array, n, alloc) ALLOC_GROW_WITH(array, n, alloc, xrealloc)
/* The same for an array sized once, then filled (xrealloc_bulk()). */
#define ALLOC_GROW_BULK(array, n, alloc) ALLOC_GROW_WITH(array, n, alloc, xrealloc_bulk)
#define ALLOC_GROW_WITH(array, n, alloc, realloc_fn)                             \
	do {                                                                     \
		if ((n) > (alloc)) {                                             \
			size_t new_alloc_ = (alloc) < 16 ? 16 : (alloc);         \
			while (new_alloc_ < (n))                                 \
				new_alloc_ = st_mult(new_alloc_, 2);             \
			(array) = realloc_fn((array), st_mult(new_alloc_, sizeof(*(array)))); \
			(alloc) = new_alloc_;                                    \
		}                                                                \
	} while (0)

ssize_t xread(int fd, void *buf, size_t len);
ssize_t xwrite(int fd, const void *buf, size_t len);
ssize_t read_in_full(int fd, void *buf, size_t len);
ssize_t write_in_full(int fd, const void *buf, size_t len);

/* Set or clear O_NONBLOCK / FD_CLOEXEC; -1 with errno on failure. */
int set_nonblock(int fd, int on);
int set_cloexec(int fd);

/* Monotonic clock in seconds. */
double now_seconds(void);
/* CPU seconds (user + system) used so far by `who`. */
enum cpu_who { CPU_PROCESS, CPU_CHILDREN /* reaped ones */, CPU_THREAD /* the caller's */ };
double cpu_seconds(enum cpu_who who);

/* Number of online processors (at least 1). */
int online_cpus(void);

/*
 * Decode the UTF-8 sequence at `s` (NUL-terminated) into *cp; returns its
 * length, or 0 when it is not valid UTF-8 (overlong, surrogate, truncated).
 */
size_t utf8_decode_one(const unsigned char *s, unsigned *cp);

/*
 * The next code point at `s` (NUL-terminated) as Python's str sees bytes
 * decoded with surrogateescape: valid UTF-8 (utf8_decode_one()) as itself,
 * any other byte B as U+DC00+B (U+DC80..U+DCFF).  Returns the number of
 * bytes consumed, at least 1.
 */
size_t utf8_decode_escaped(const unsigned char *s, unsigned *cp);

/*
 * Write s[0..len) to fp with what a terminal must not see escaped: invalid
 * UTF-8 bytes and controls (C0, DEL, C1) as \xNN (\n, \t, \r).  Every message goes through it: a file name may hold
 * any byte, and a message is one line.
 */
void fput_printable(const char *s, size_t len, FILE *fp);

/* Little-endian helpers used by the pyc, frame and log formats. */
static inline void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* `n` bytes as 2n lowercase hex digits and a NUL, into `out`; returns `out`. */
static inline char *hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

#endif
