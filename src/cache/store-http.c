/*
 * store-http.c - the HTTP transport of the remote store (store-remote.h)
 * on libcurl: GET and PUT of BASE/KEY[0:2]/KEY, a window of concurrent
 * transfers on one multi handle (connections reused, HTTP/2 multiplexed
 * over TLS when the server offers it), proxies from the usual variables.
 * Built only with PREPYC_WITH_LIBCURL; else the open function says what
 * to install.
 */
#define _POSIX_C_SOURCE 200809L
#include "store-remote.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef PREPYC_WITH_LIBCURL
#include <curl/curl.h>

#include "banned.h"

#define HTTP_CONNECTIONS 8 /* per server (HTTP/1.1 needs several; HTTP/2 multiplexes) */
/*
 * Transfers in flight: over HTTP/2 (or 3) streams of one connection; over
 * HTTP/1.1 two per connection, one in progress and the next queued.  Ones
 * beyond that only wait for a connection in curl, and were measured to
 * stall the batch (a fleet run over loopback: 1.7-2.9 s with 64 in flight,
 * 1.3-1.4 s with 16).  HTTP/1.1 until a reply says otherwise.
 */
#define HTTP_WINDOW 64
#define HTTP_WINDOW_H1 (2 * HTTP_CONNECTIONS)
/*
 * The keys a group should hold (remote-group.h): a request is then worth
 * a megabyte or two of entries, 30 to 60 requests for a 7,600-entry
 * tree, while a changed file costs its group's upload and its group's
 * keys fetched one by one on the builders of the tree it was changed in.
 */
#define HTTP_GROUP_KEYS 128

struct http_transport {
	struct remote_transport base; /* first: the store's handle */
	char *base_url;               /* without a trailing '/' */
	struct curl_slist *headers;
	CURLM *multi;
	int multiplexed;              /* a reply came over HTTP/2 or later: the whole window */
	CURL *handles[HTTP_WINDOW];   /* one per slot of the window, reset and used again */
	long connect_ms, timeout_ms;
};

struct xfer {
	CURL *h;
	size_t i;                 /* the key in the batch */
	struct strbuf *body;      /* get: the value */
	const struct strbuf *up;  /* put: the value */
	size_t sent;
	int too_large;
	char err[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;

	if (!x->body) /* a PUT's answer */
		return n;
	if (x->body->len + n > REMOTE_VALUE_MAX) {
		x->too_large = 1;
		return 0; /* curl fails the transfer */
	}
	if (!x->body->len) { /* the whole value's room at once, not grown a piece at a time */
		curl_off_t whole = -1;

		if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &whole) == CURLE_OK &&
		    whole > 0 && (uint64_t)whole <= REMOTE_VALUE_MAX)
			strbuf_grow(x->body, (size_t)whole);
	}
	strbuf_add(x->body, data, size * n);
	return size * n;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t left = x->up->len - x->sent, len = size * n < left ? size * n : left;

	memcpy(buf, x->up->buf + x->sent, len);
	x->sent += len;
	return len;
}

/* Start key i of `b` in slot k of the window (`x`); -1 when curl cannot. */
static int start(struct http_transport *t, struct remote_batch *b, int put, struct xfer *x,
		 size_t k, size_t i)
{
	const char *hex = b->hex[i];
	char *url;

	memset(x, 0, sizeof(*x));
	x->i = i;
	if (t->handles[k])
		curl_easy_reset(t->handles[k]);
	else
		t->handles[k] = curl_easy_init();
	x->h = t->handles[k];
	if (!x->h)
		return -1;
	url = xstrfmt("%s/%.2s/%s", t->base_url, hex, hex);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->err);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, t->connect_ms);
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, t->timeout_ms);
	curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(x->h, CURLOPT_USERAGENT, "prepyc/" PREPYC_VERSION);
	curl_easy_setopt(x->h, CURLOPT_PIPEWAIT, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	if (put) {
		x->up = &b->values[i];
		curl_easy_setopt(x->h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(x->h, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(x->h, CURLOPT_READDATA, x);
		curl_easy_setopt(x->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->up->len);
	} else {
		x->body = &b->values[i];
	}
	if (curl_multi_add_handle(t->multi, x->h) != CURLM_OK) {
		x->h = NULL;
		return -1;
	}
	return 0;
}

/* A transfer ended with `res`: its status, counted in `io`. */
static void finish(struct http_transport *t, struct remote_batch *b, struct remote_io *io,
		   struct xfer *x, CURLcode res)
{
	long code = 0;
	curl_off_t down = 0;
	signed char *status = &b->status[x->i];

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(x->h, CURLINFO_SIZE_DOWNLOAD_T, &down);
#if LIBCURL_VERSION_NUM >= 0x073200 /* 7.50 */
	if (res == CURLE_OK && !t->multiplexed) {
		long version = 0;

		curl_easy_getinfo(x->h, CURLINFO_HTTP_VERSION, &version);
		t->multiplexed = version >= CURL_HTTP_VERSION_2_0;
	}
#endif
	io->requests++;
	io->received += (uint64_t)down;
	io->sent += x->sent;
	*status = REMOTE_FAILED;
	if (res != CURLE_OK) {
		/* waiting again for a server that does not answer would only add the timeouts */
		int off = res == CURLE_OPERATION_TIMEDOUT || res == CURLE_COULDNT_CONNECT ||
			  res == CURLE_COULDNT_RESOLVE_HOST || res == CURLE_COULDNT_RESOLVE_PROXY;

		if (x->too_large)
			remote_io_fail(io, 0, "an entry larger than %zu bytes", REMOTE_VALUE_MAX);
		else
			remote_io_fail(io, off, "%s", *x->err ? x->err : curl_easy_strerror(res));
	} else if (x->up) {
		if (code >= 200 && code < 300)
			*status = REMOTE_DONE;
		else
			remote_io_fail(io, 0, "HTTP status %ld for a PUT", code);
	} else if (code == 200) {
		*status = REMOTE_DONE;
	} else if (code == 404) {
		*status = REMOTE_MISSING;
	} else {
		remote_io_fail(io, 0, "HTTP status %ld", code);
	}
	if (x->body && *status != REMOTE_DONE)
		strbuf_reset(x->body);
	curl_multi_remove_handle(t->multi, x->h);
	x->h = NULL; /* the handle stays in t->handles, for the slot's next transfer */
}

static void run_batch(struct http_transport *t, struct remote_batch *b, struct remote_io *io,
		      int put)
{
	struct xfer *slots = xcalloc(HTTP_WINDOW, sizeof(*slots));
	size_t next = 0, active = 0, k;

	for (k = 0; k < b->n; k++)
		b->status[k] = REMOTE_FAILED;
	for (;;) {
		size_t window = t->multiplexed ? HTTP_WINDOW : HTTP_WINDOW_H1;
		int running = 0, queued;
		CURLMsg *msg;

		for (k = 0; k < window && next < b->n; k++) {
			if (slots[k].h || io->off || io->errors >= io->max_errors)
				continue;
			if (start(t, b, put, &slots[k], k, next) < 0) {
				remote_io_fail(io, 1, "cannot start a transfer");
				break;
			}
			next++;
			active++;
		}
		if (!active)
			break;
		if (curl_multi_perform(t->multi, &running) != CURLM_OK) {
			remote_io_fail(io, 1, "curl_multi_perform failed");
			break;
		}
		while ((msg = curl_multi_info_read(t->multi, &queued)) != NULL) {
			struct xfer *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			finish(t, b, io, x, msg->data.result);
			active--;
		}
		if (io->off || io->errors >= io->max_errors)
			break; /* switched off: what is in flight is not waited for */
		if (running && curl_multi_poll(t->multi, NULL, 0, 100, NULL) != CURLM_OK) {
			remote_io_fail(io, 1, "curl_multi_poll failed");
			break;
		}
	}
	for (k = 0; k < HTTP_WINDOW; k++) {
		if (!slots[k].h)
			continue;
		if (slots[k].body)
			strbuf_reset(slots[k].body);
		curl_multi_remove_handle(t->multi, slots[k].h);
	}
	free(slots);
}

static void http_get(struct remote_transport *rt, struct remote_batch *b, struct remote_io *io)
{
	run_batch((struct http_transport *)rt, b, io, 0);
}

static void http_put(struct remote_transport *rt, struct remote_batch *b, struct remote_io *io)
{
	run_batch((struct http_transport *)rt, b, io, 1);
}

static void http_free(struct remote_transport *rt)
{
	struct http_transport *t = (struct http_transport *)rt;
	size_t k;

	for (k = 0; k < HTTP_WINDOW; k++)
		if (t->handles[k])
			curl_easy_cleanup(t->handles[k]);
	curl_multi_cleanup(t->multi);
	curl_slist_free_all(t->headers);
	free(t->base_url);
	free(t);
	curl_global_cleanup();
}

static const struct remote_transport_ops http_ops = { http_get, http_put, http_free };

struct remote_transport *remote_http_open(const char *url, const struct cache_remote_opts *o)
{
	struct http_transport *t;
	size_t len = strlen(url);

	if (strpbrk(url, "?#")) {
		char *shown = remote_url_display(url);

		error("remote cache '%s': an HTTP URL cannot have a query or a fragment", shown);
		free(shown);
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		error("remote cache: cannot initialize libcurl");
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->base.ops = &http_ops;
	t->base.group_keys = HTTP_GROUP_KEYS;
	while (len && url[len - 1] == '/')
		len--;
	t->base_url = xstrndup(url, len);
	t->connect_ms = o->connect_timeout_ms;
	t->timeout_ms = o->timeout_ms;
	t->headers = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
	t->headers = curl_slist_append(t->headers, "Content-Type: application/octet-stream");
	if (o->token && *o->token) {
		char *auth = xstrfmt("Authorization: Bearer %s", o->token);

		t->headers = curl_slist_append(t->headers, auth);
		free(auth);
	}
	t->multi = curl_multi_init();
	if (!t->headers || !t->multi)
		die("out of memory");
	curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTP_CONNECTIONS);
	curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return &t->base;
}

#else /* no libcurl */

struct remote_transport *remote_http_open(const char *url, const struct cache_remote_opts *o)
{
	char *shown = remote_url_display(url);

	(void)o;
	error("remote cache '%s': prepyc was built without libcurl; install libcurl "
	      "(Debian: libcurl4-openssl-dev, and pkg-config) and rebuild", shown);
	free(shown);
	return NULL;
}

#endif
