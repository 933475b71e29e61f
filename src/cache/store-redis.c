/*
 * store-redis.c - the Redis transport of the remote store
 * (store-remote.h) on hiredis: MGET of many keys per command and SET
 * (with EX when a TTL is asked), pipelined on one connection.
 *
 *   redis://[USER:PASSWORD@]HOST[:PORT][/DB][?ttl=SECONDS]
 *   redis+unix:///PATH[?db=DB&ttl=SECONDS]
 *
 * (user and password %-decoded; [IPv6] hosts).  Built only with
 * PREPYC_WITH_HIREDIS; else the open function says what to install.
 */
#define _POSIX_C_SOURCE 200809L
#include "store-remote.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef PREPYC_WITH_HIREDIS
#include <errno.h>
#include <sys/time.h>

#include <hiredis.h>

#include "banned.h"

#define REDIS_MGET_KEYS 256 /* keys per MGET */
#define REDIS_SET_WINDOW 128 /* SETs sent before their replies are read */

struct redis_transport {
	struct remote_transport base; /* first: the store's handle */
	char *host, *unix_path, *user, *password;
	int port, db;
	long ttl;
	long connect_ms, timeout_ms;
	redisContext *c;
};

static struct timeval ms_to_tv(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* The connection's error into `io`: it is closed (a timeout or EOF switches the server off). */
static void lost(struct redis_transport *t, struct remote_io *io, const char *doing)
{
	int off = 1;
	const char *why = t->c && t->c->errstr[0] ? t->c->errstr : "connection lost";

	if (t->c && t->c->err == REDIS_ERR_PROTOCOL)
		off = 0; /* garbage: counted, and a new connection next time */
	if (t->c && t->c->err == REDIS_ERR_IO && !strcmp(why, strerror(EAGAIN)))
		remote_io_fail(io, off, "%s: no answer within %ld ms", doing, t->timeout_ms);
	else
		remote_io_fail(io, off, "%s: %s", doing, why);
	if (t->c)
		redisFree(t->c);
	t->c = NULL;
}

/* A command's reply that must be +OK; -1 (counted in `io`) otherwise. */
static int expect_ok(struct redis_transport *t, struct remote_io *io, const char *doing)
{
	redisReply *reply = NULL;
	int rc = -1;

	if (redisGetReply(t->c, (void **)&reply) != REDIS_OK) {
		lost(t, io, doing);
		return -1;
	}
	if (reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "OK"))
		rc = 0;
	else
		remote_io_fail(io, 1, "%s: %s", doing,
			       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	freeReplyObject(reply);
	return rc;
}

static int connect_redis(struct redis_transport *t, struct remote_io *io)
{
	struct timeval tv = ms_to_tv(t->connect_ms);

	if (t->c)
		return 0;
	t->c = t->unix_path ? redisConnectUnixWithTimeout(t->unix_path, tv)
			    : redisConnectWithTimeout(t->host, t->port, tv);
	if (!t->c || t->c->err) {
		lost(t, io, "cannot connect");
		return -1;
	}
	tv = ms_to_tv(t->timeout_ms);
	redisSetTimeout(t->c, tv);
	if (t->password) {
		if (t->user)
			redisAppendCommand(t->c, "AUTH %s %s", t->user, t->password);
		else
			redisAppendCommand(t->c, "AUTH %s", t->password);
		if (expect_ok(t, io, "AUTH") < 0)
			goto fail;
	}
	if (t->db) {
		redisAppendCommand(t->c, "SELECT %d", t->db);
		if (expect_ok(t, io, "SELECT") < 0)
			goto fail;
	}
	return 0;
fail:
	if (t->c)
		redisFree(t->c);
	t->c = NULL;
	return -1;
}

static void redis_get(struct remote_transport *rt, struct remote_batch *b, struct remote_io *io)
{
	struct redis_transport *t = (struct redis_transport *)rt;
	size_t plen = strlen(REMOTE_REDIS_PREFIX), klen = plen + 2 * CACHE_KEY_LEN;
	char (*keys)[sizeof(REMOTE_REDIS_PREFIX) + 2 * CACHE_KEY_LEN];
	const char **argv;
	size_t *argvlen, i, at, sent = 0;

	for (i = 0; i < b->n; i++)
		b->status[i] = REMOTE_FAILED;
	if (connect_redis(t, io) < 0)
		return;
	keys = xcalloc(b->n, sizeof(*keys));
	argv = xcalloc(REDIS_MGET_KEYS + 1, sizeof(*argv));
	argvlen = xcalloc(REDIS_MGET_KEYS + 1, sizeof(*argvlen));
	/* every MGET first (one round trip), then their replies */
	for (at = 0; at < b->n; at += REDIS_MGET_KEYS) {
		size_t n = b->n - at < REDIS_MGET_KEYS ? b->n - at : REDIS_MGET_KEYS;

		argv[0] = "MGET";
		argvlen[0] = 4;
		for (i = 0; i < n; i++) {
			memcpy(keys[at + i], REMOTE_REDIS_PREFIX, plen);
			memcpy(keys[at + i] + plen, b->hex[at + i], 2 * CACHE_KEY_LEN);
			argv[i + 1] = keys[at + i];
			argvlen[i + 1] = klen;
		}
		redisAppendCommandArgv(t->c, (int)n + 1, argv, argvlen);
		io->requests++;
		io->sent += (uint64_t)(n * klen);
		sent++;
	}
	for (at = 0; sent--; at += REDIS_MGET_KEYS) {
		size_t n = b->n - at < REDIS_MGET_KEYS ? b->n - at : REDIS_MGET_KEYS;
		redisReply *reply = NULL;

		if (!t->c || redisGetReply(t->c, (void **)&reply) != REDIS_OK) {
			if (t->c)
				lost(t, io, "MGET");
			break;
		}
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
			remote_io_fail(io, 0, "MGET: %s",
				       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		} else {
			for (i = 0; i < n; i++) {
				redisReply *e = reply->element[i];

				if (e->type == REDIS_REPLY_NIL) {
					b->status[at + i] = REMOTE_MISSING;
				} else if (e->type == REDIS_REPLY_STRING && e->len <= REMOTE_VALUE_MAX) {
					strbuf_add(&b->values[at + i], e->str, e->len);
					b->status[at + i] = REMOTE_DONE;
					io->received += e->len;
				}
				/* anything else stays FAILED: the entry check would reject it anyway */
			}
		}
		freeReplyObject(reply);
	}
	free(keys);
	free(argv);
	free(argvlen);
}

/* Read `n` SET replies for keys from `first`; -1 when the connection is gone. */
static int read_sets(struct redis_transport *t, struct remote_batch *b, size_t first, size_t n,
		     struct remote_io *io)
{
	size_t i;

	for (i = 0; i < n; i++) {
		redisReply *reply = NULL;

		if (redisGetReply(t->c, (void **)&reply) != REDIS_OK) {
			lost(t, io, "SET");
			return -1;
		}
		if (reply->type == REDIS_REPLY_STATUS)
			b->status[first + i] = REMOTE_DONE;
		else
			remote_io_fail(io, 0, "SET: %s",
				       reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
		freeReplyObject(reply);
		if (io->errors >= io->max_errors)
			return -1;
	}
	return 0;
}

static void redis_put(struct remote_transport *rt, struct remote_batch *b, struct remote_io *io)
{
	struct redis_transport *t = (struct redis_transport *)rt;
	char key[sizeof(REMOTE_REDIS_PREFIX) + 2 * CACHE_KEY_LEN], ttl[32];
	const char *argv[5] = { "SET", key, NULL, "EX", ttl };
	size_t argvlen[5] = { 3, sizeof(key) - 1, 0, 2, 0 };
	size_t i, first = 0;

	for (i = 0; i < b->n; i++)
		b->status[i] = REMOTE_FAILED;
	if (connect_redis(t, io) < 0)
		return;
	snprintf(ttl, sizeof(ttl), "%ld", t->ttl);
	argvlen[4] = strlen(ttl);
	memcpy(key, REMOTE_REDIS_PREFIX, strlen(REMOTE_REDIS_PREFIX));
	for (i = 0; i < b->n; i++) {
		memcpy(key + strlen(REMOTE_REDIS_PREFIX), b->hex[i], 2 * CACHE_KEY_LEN);
		argv[2] = b->values[i].buf;
		argvlen[2] = b->values[i].len;
		/* hiredis copies the command: key and value can change at once */
		redisAppendCommandArgv(t->c, t->ttl > 0 ? 5 : 3, argv, argvlen);
		io->requests++;
		io->sent += b->values[i].len + argvlen[1];
		if (i + 1 - first == REDIS_SET_WINDOW || i + 1 == b->n) {
			if (read_sets(t, b, first, i + 1 - first, io) < 0)
				return;
			first = i + 1;
		}
	}
}

static void redis_free(struct remote_transport *rt)
{
	struct redis_transport *t = (struct redis_transport *)rt;

	if (t->c)
		redisFree(t->c);
	free(t->host);
	free(t->unix_path);
	free(t->user);
	if (t->password)
		memset(t->password, 0, strlen(t->password));
	free(t->password);
	free(t);
}

static const struct remote_transport_ops redis_ops = { redis_get, redis_put, redis_free };

/* ---- the URL ------------------------------------------------------------ */

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* `len` bytes at `s`, %XX decoded (a new string). */
static char *pct_decode(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len &&
		    hexval((unsigned char)s[i + 1]) >= 0 && hexval((unsigned char)s[i + 2]) >= 0) {
			strbuf_addch(&sb, hexval((unsigned char)s[i + 1]) * 16 +
						  hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			strbuf_addch(&sb, s[i]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

/* A decimal in [0, max]; -1 otherwise. */
static long number(const char *s, size_t len, long max)
{
	long v = 0;
	size_t i;

	if (!len || len > 12)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* The query "ttl=N&db=N"; -1 for anything else. */
static int parse_query(struct redis_transport *t, const char *q)
{
	while (*q) {
		size_t len = strcspn(q, "&");
		long v;

		if (!strncmp(q, "ttl=", 4) && (v = number(q + 4, len - 4, 0x7fffffffL)) >= 0)
			t->ttl = v;
		else if (!strncmp(q, "db=", 3) && (v = number(q + 3, len - 3, 0x7fffffffL)) >= 0)
			t->db = (int)v;
		else
			return -1;
		q += len + (q[len] == '&');
	}
	return 0;
}

/* redis://[USER:PASSWORD@]HOST[:PORT][/DB]: -1 when malformed. */
static int parse_tcp(struct redis_transport *t, const char *p, const char *end)
{
	const char *at = NULL, *s, *colon, *host_end;
	long v;

	for (s = p; s < end; s++)
		if (*s == '@')
			at = s;
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			if (colon > p)
				t->user = pct_decode(p, (size_t)(colon - p));
			t->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		} else {
			t->password = pct_decode(p, (size_t)(at - p));
		}
		p = at + 1;
	}
	s = p + strcspn(p, "/");
	if (s > end)
		s = end;
	if (*p == '[') {
		host_end = memchr(p, ']', (size_t)(s - p));
		if (!host_end)
			return -1;
		t->host = xstrndup(p + 1, (size_t)(host_end - p - 1));
		colon = host_end + 1 < s && host_end[1] == ':' ? host_end + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(s - p));
		t->host = xstrndup(p, (size_t)((colon ? colon : s) - p));
	}
	if (!*t->host)
		return -1;
	t->port = 6379;
	if (colon) {
		if ((v = number(colon + 1, (size_t)(s - colon - 1), 65535)) <= 0)
			return -1;
		t->port = (int)v;
	}
	if (s < end && s + 1 < end) {
		if ((v = number(s + 1, (size_t)(end - s - 1), 0x7fffffffL)) < 0)
			return -1;
		t->db = (int)v;
	}
	return 0;
}

struct remote_transport *remote_redis_open(const char *url, const struct cache_remote_opts *o)
{
	struct redis_transport *t = xcalloc(1, sizeof(*t));
	const char *q = strchr(url, '?'), *end = q ? q : url + strlen(url);
	int bad;

	t->base.ops = &redis_ops;
	t->connect_ms = o->connect_timeout_ms;
	t->timeout_ms = o->timeout_ms;
	if (!strncmp(url, "redis+unix://", 13)) {
		t->unix_path = xstrndup(url + 13, (size_t)(end - url - 13));
		bad = *t->unix_path != '/';
	} else {
		bad = parse_tcp(t, url + 8, end) < 0;
	}
	if (!bad && q)
		bad = parse_query(t, q + 1) < 0;
	if (bad) {
		char *shown = remote_url_display(url);

		error("remote cache '%s': not a Redis URL (redis://[USER:PASSWORD@]HOST[:PORT][/DB]"
		      "[?ttl=SECONDS] or redis+unix:///PATH[?db=DB&ttl=SECONDS])", shown);
		free(shown);
		redis_free(&t->base);
		return NULL;
	}
	return &t->base;
}

#else /* no hiredis */

struct remote_transport *remote_redis_open(const char *url, const struct cache_remote_opts *o)
{
	char *shown = remote_url_display(url);

	(void)o;
	error("remote cache '%s': prepyc was built without hiredis; install it (Debian: "
	      "libhiredis-dev, and pkg-config) and rebuild", shown);
	free(shown);
	return NULL;
}

#endif
