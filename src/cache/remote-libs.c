/*
 * remote-libs.c - libcurl, hiredis and libzstd, loaded with dlopen the
 * first time a remote store calls them, not linked.
 *
 * Linked, libcurl and hiredis bring 30 libraries (TLS, Kerberos, LDAP,
 * IDN, the compressors...) that the dynamic loader maps and relocates at
 * the start of every run of every command: 12 ms and 450 page faults, a
 * tenth of a no-op on a 10,000-file tree, paid even by runs that use no
 * remote cache (as libarchive was: bundle-read.c).  So the functions that
 * store-http.c and store-redis.c call are defined here under the
 * libraries' own names and prototypes (from their headers): each loads its
 * library once (pthread_once) and calls the real function through dlsym.
 * The store files are written against the libraries' APIs as if linked.
 *
 * Which file: the soname the headers were built for -- libcurl.so.4 (the
 * soname since 7.16), libhiredis.so.HIREDIS_SONAME (hiredis.h's own
 * macro: the ABI the store was compiled against), libzstd.so.1 (its
 * ZSTD_VERSION_MAJOR).
 *
 * Errors: a library that cannot be loaded, or lacks a function, is one
 * error naming the package to install, printed by the first call; then
 * curl_global_init() fails (CURLE_FAILED_INIT), the redisConnect*()
 * functions return NULL, and every other function fails as its API allows,
 * so the stores turn themselves off as for an unreachable server.
 * libzstd is optional even then, and loaded quietly: compress.c asks
 * zstd_loaded() (compress.h) before any ZSTD_ function, and without it
 * values are sent uncompressed and compressed ones are misses.
 *
 * State: each library's handle and function pointers are written once,
 * under pthread_once(), and only read afterwards: the loader's own
 * relocation table, filled late.
 */
#define _POSIX_C_SOURCE 200809L

#if defined(PREPYC_WITH_LIBCURL) || defined(PREPYC_WITH_HIREDIS) || defined(PREPYC_WITH_ZSTD)
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "util.h"

/*
 * Load `soname` and its functions names[k] into fns[k]; -1 after saying
 * what to install (`package`; NULL: quietly).
 */
static int load_lib(const char *soname, const char *const *names, void **fns, size_t n,
		    const char *package)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	size_t k;

	if (!h)
		return package ? error("remote cache: cannot load %s: %s; install %s", soname,
				       dlerror(), package) : -1;
	for (k = 0; k < n; k++) {
		if (!(fns[k] = dlsym(h, names[k]))) {
			dlclose(h);
			return package ? error("remote cache: no %s in %s; install %s", names[k],
					       soname, package) : -1;
		}
	}
	return 0;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/*
 * A library's table, loader and NAME_loaded() (LINKAGE: static, or
 * nothing), whether it is loaded: NAME_lib holds `ok` and a pointer per
 * function of the X-macro list FUNCS; NAME_load(), run once by
 * NAME_loaded(), loads SONAME (PACKAGE: what to install; NULL: quietly)
 * and sets each pointer from dlsym()'s void * (POSIX's one blessed
 * conversion).
 */
#define LIB_POINTER(ret, name, args) ret(*name) args;
#define LIB_NAME(ret, name, args) #name,
#define LIB_SET(ret, name, args) *(void **)&table->name = fns[k++];
#define DEFINE_LIBRARY(LINKAGE, NAME, FUNCS, SONAME, PACKAGE)                               \
	static struct NAME##_table {                                                        \
		int ok;                                                                     \
		FUNCS(LIB_POINTER)                                                          \
	} NAME##_lib;                                                                       \
	static pthread_once_t NAME##_once = PTHREAD_ONCE_INIT;                              \
	static void NAME##_load(void)                                                       \
	{                                                                                   \
		static const char *const names[] = { FUNCS(LIB_NAME) };                     \
		struct NAME##_table *table = &NAME##_lib;                                   \
		void *fns[sizeof(names) / sizeof(*names)];                                  \
		size_t k = 0;                                                               \
                                                                                            \
		if (load_lib(SONAME, names, fns, sizeof(names) / sizeof(*names), PACKAGE) < 0) \
			return;                                                             \
		FUNCS(LIB_SET)                                                              \
		table->ok = 1;                                                              \
	}                                                                                   \
	LINKAGE int NAME##_loaded(void)                                                     \
	{                                                                                   \
		pthread_once(&NAME##_once, NAME##_load);                                    \
		return NAME##_lib.ok;                                                       \
	}
#endif

#ifdef PREPYC_WITH_LIBCURL
#define CURL_DISABLE_TYPECHECK /* its checking macros would rename our definitions */
#include <curl/curl.h>

#define CURL_FUNCTIONS(X)                                                                  \
	X(CURLcode, curl_global_init, (long))                                              \
	X(void, curl_global_cleanup, (void))                                               \
	X(CURL *, curl_easy_init, (void))                                                  \
	X(CURLcode, curl_easy_setopt, (CURL *, CURLoption, ...))                           \
	X(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                            \
	X(void, curl_easy_cleanup, (CURL *))                                               \
	X(void, curl_easy_reset, (CURL *))                                                 \
	X(const char *, curl_easy_strerror, (CURLcode))                                    \
	X(CURLM *, curl_multi_init, (void))                                                \
	X(CURLMcode, curl_multi_setopt, (CURLM *, CURLMoption, ...))                       \
	X(CURLMcode, curl_multi_add_handle, (CURLM *, CURL *))                             \
	X(CURLMcode, curl_multi_remove_handle, (CURLM *, CURL *))                          \
	X(CURLMcode, curl_multi_perform, (CURLM *, int *))                                 \
	X(CURLMcode, curl_multi_poll, (CURLM *, struct curl_waitfd *, unsigned, int, int *)) \
	X(CURLMsg *, curl_multi_info_read, (CURLM *, int *))                               \
	X(CURLMcode, curl_multi_cleanup, (CURLM *))                                        \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist *, const char *))     \
	X(void, curl_slist_free_all, (struct curl_slist *))

DEFINE_LIBRARY(static, curl, CURL_FUNCTIONS, "libcurl.so.4",
	       "libcurl4 (Debian), libcurl (Fedora)")

CURLcode curl_global_init(long flags)
{
	return curl_loaded() ? curl_lib.curl_global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
	if (curl_loaded())
		curl_lib.curl_global_cleanup();
}

CURL *curl_easy_init(void)
{
	return curl_loaded() ? curl_lib.curl_easy_init() : NULL;
}

/*
 * The option's number says its argument's type (curl.h's CURLOPTTYPE_*,
 * shared by the multi options): read as that type, passed on as it.
 */
#define PASS_OPTION(call, opt, ap)                                                     \
	((opt) < CURLOPTTYPE_OBJECTPOINT     ? call(va_arg(ap, long))                  \
	 : (opt) < CURLOPTTYPE_FUNCTIONPOINT ? call(va_arg(ap, void *))                \
	 : (opt) < CURLOPTTYPE_OFF_T         ? call(va_arg(ap, void (*)(void)))        \
	 : (opt) < CURLOPTTYPE_BLOB          ? call(va_arg(ap, curl_off_t))            \
					     : call(va_arg(ap, void *)))

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode rc = CURLE_FAILED_INIT;
	va_list ap;

	va_start(ap, opt);
#define CALL(arg) curl_lib.curl_easy_setopt(h, opt, arg)
	if (curl_loaded())
		rc = PASS_OPTION(CALL, opt, ap);
#undef CALL
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode rc = CURLE_FAILED_INIT;
	va_list ap;

	va_start(ap, info);
	if (curl_loaded())
		rc = curl_lib.curl_easy_getinfo(h, info, va_arg(ap, void *)); /* always a pointer */
	va_end(ap);
	return rc;
}

void curl_easy_cleanup(CURL *h)
{
	if (curl_loaded())
		curl_lib.curl_easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (curl_loaded())
		curl_lib.curl_easy_reset(h);
}

const char *curl_easy_strerror(CURLcode rc)
{
	return curl_loaded() ? curl_lib.curl_easy_strerror(rc) : "libcurl not loaded";
}

CURLM *curl_multi_init(void)
{
	return curl_loaded() ? curl_lib.curl_multi_init() : NULL;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
	CURLMcode rc = CURLM_INTERNAL_ERROR;
	va_list ap;

	va_start(ap, opt);
#define CALL(arg) curl_lib.curl_multi_setopt(m, opt, arg)
	if (curl_loaded())
		rc = PASS_OPTION(CALL, opt, ap);
#undef CALL
	va_end(ap);
	return rc;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	return curl_loaded() ? curl_lib.curl_multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	return curl_loaded() ? curl_lib.curl_multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	return curl_loaded() ? curl_lib.curl_multi_perform(m, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
			  int *numfds)
{
	return curl_loaded() ? curl_lib.curl_multi_poll(m, extra, n, timeout_ms, numfds)
			     : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *queued)
{
	return curl_loaded() ? curl_lib.curl_multi_info_read(m, queued) : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
	return curl_loaded() ? curl_lib.curl_multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return curl_loaded() ? curl_lib.curl_slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (curl_loaded())
		curl_lib.curl_slist_free_all(list);
}
#endif /* PREPYC_WITH_LIBCURL */

#ifdef PREPYC_WITH_HIREDIS
#include <sys/time.h>
#include <hiredis.h>

#define HIREDIS_FUNCTIONS(X)                                                                 \
	X(redisContext *, redisConnectWithTimeout, (const char *, int, const struct timeval)) \
	X(redisContext *, redisConnectUnixWithTimeout, (const char *, const struct timeval))  \
	X(int, redisSetTimeout, (redisContext *, const struct timeval))                      \
	X(void, redisFree, (redisContext *))                                                 \
	X(int, redisGetReply, (redisContext *, void **))                                     \
	X(int, redisvAppendCommand, (redisContext *, const char *, va_list))                 \
	X(int, redisAppendCommandArgv, (redisContext *, int, const char **, const size_t *)) \
	X(void, freeReplyObject, (void *))

DEFINE_LIBRARY(static, redis, HIREDIS_FUNCTIONS, "libhiredis.so." STRINGIFY(HIREDIS_SONAME),
	       "libhiredis" STRINGIFY(HIREDIS_SONAME) " (Debian), hiredis (Fedora)")

redisContext *redisConnectWithTimeout(const char *ip, int port, const struct timeval tv)
{
	return redis_loaded() ? redis_lib.redisConnectWithTimeout(ip, port, tv) : NULL;
}

redisContext *redisConnectUnixWithTimeout(const char *path, const struct timeval tv)
{
	return redis_loaded() ? redis_lib.redisConnectUnixWithTimeout(path, tv) : NULL;
}

int redisSetTimeout(redisContext *c, const struct timeval tv)
{
	return redis_loaded() ? redis_lib.redisSetTimeout(c, tv) : REDIS_ERR;
}

void redisFree(redisContext *c)
{
	if (redis_loaded())
		redis_lib.redisFree(c);
}

int redisGetReply(redisContext *c, void **reply)
{
	return redis_loaded() ? redis_lib.redisGetReply(c, reply) : REDIS_ERR;
}

int redisAppendCommand(redisContext *c, const char *format, ...)
{
	int rc = REDIS_ERR;
	va_list ap;

	va_start(ap, format);
	if (redis_loaded())
		rc = redis_lib.redisvAppendCommand(c, format, ap);
	va_end(ap);
	return rc;
}

int redisAppendCommandArgv(redisContext *c, int argc, const char **argv, const size_t *argvlen)
{
	return redis_loaded() ? redis_lib.redisAppendCommandArgv(c, argc, argv, argvlen)
			      : REDIS_ERR;
}

void freeReplyObject(void *reply)
{
	if (redis_loaded())
		redis_lib.freeReplyObject(reply);
}
#endif /* PREPYC_WITH_HIREDIS */

#ifdef PREPYC_WITH_ZSTD
#include <zstd.h>

#include "compress.h"

#define ZSTD_FUNCTIONS(X)                                                                   \
	X(size_t, ZSTD_compressBound, (size_t))                                               \
	X(unsigned, ZSTD_isError, (size_t))                                                   \
	X(size_t, ZSTD_compress, (void *, size_t, const void *, size_t, int))                 \
	X(size_t, ZSTD_decompress, (void *, size_t, const void *, size_t))                    \
	X(unsigned long long, ZSTD_getFrameContentSize, (const void *, size_t))               \
	X(size_t, ZSTD_findFrameCompressedSize, (const void *, size_t))

/* Quietly: without it, values are sent as they are and compressed ones are misses (compress.h). */
DEFINE_LIBRARY(, zstd, ZSTD_FUNCTIONS, "libzstd.so." STRINGIFY(ZSTD_VERSION_MAJOR), NULL)

/* Called only once zstd_loaded() said yes (compress.c). */
size_t ZSTD_compressBound(size_t n)
{
	return zstd_lib.ZSTD_compressBound(n);
}

unsigned ZSTD_isError(size_t code)
{
	return zstd_lib.ZSTD_isError(code);
}

size_t ZSTD_compress(void *dst, size_t cap, const void *src, size_t len, int level)
{
	return zstd_lib.ZSTD_compress(dst, cap, src, len, level);
}

size_t ZSTD_decompress(void *dst, size_t cap, const void *src, size_t len)
{
	return zstd_lib.ZSTD_decompress(dst, cap, src, len);
}

unsigned long long ZSTD_getFrameContentSize(const void *src, size_t len)
{
	return zstd_lib.ZSTD_getFrameContentSize(src, len);
}

size_t ZSTD_findFrameCompressedSize(const void *src, size_t len)
{
	return zstd_lib.ZSTD_findFrameCompressedSize(src, len);
}
#endif /* PREPYC_WITH_ZSTD */

#if !defined(PREPYC_WITH_LIBCURL) && !defined(PREPYC_WITH_HIREDIS) && !defined(PREPYC_WITH_ZSTD)
typedef int remote_libs_none; /* ISO C wants a translation unit to declare something */
#endif
