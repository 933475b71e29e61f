/*
 * test-remote.c - the remote store (store-remote.c) over a fake transport:
 * an in-memory server whose answers and faults the tests choose.  The
 * real transports (Redis, HTTP) are tested end to end (tests/e2e/test_remote.py).
 */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include "cache-util.h"
#include "store-disk.h"
#include "compress.h"
#include "store-remote.h"
#include "remote-group.h"

static int cmp_key_bytes(const void *a, const void *b)
{
	return memcmp(a, b, CACHE_KEY_LEN);
}

struct fake {
	struct remote_transport base;
	char hex[128][2 * CACHE_KEY_LEN + 1];
	struct strbuf val[128];
	size_t n;
	int fail;          /* every request fails */
	int off;           /* ...as a timeout */
	size_t gets, puts; /* keys asked, keys stored */
	int freed;
};

static ssize_t fake_find(struct fake *f, const char *hex)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->hex[i], hex))
			return (ssize_t)i;
	return -1;
}

static void fake_get(struct remote_transport *t, struct remote_batch *b, struct remote_io *io)
{
	struct fake *f = (struct fake *)t;
	size_t i;

	for (i = 0; i < b->n; i++) {
		ssize_t at = fake_find(f, b->hex[i]);

		f->gets++;
		io->requests++;
		if (f->fail) {
			b->status[i] = REMOTE_FAILED;
			remote_io_fail(io, f->off, "fake failure");
		} else if (at < 0) {
			b->status[i] = REMOTE_MISSING;
		} else {
			strbuf_add(&b->values[i], f->val[at].buf, f->val[at].len);
			b->status[i] = REMOTE_DONE;
		}
	}
}

static void fake_put(struct remote_transport *t, struct remote_batch *b, struct remote_io *io)
{
	struct fake *f = (struct fake *)t;
	size_t i;

	for (i = 0; i < b->n; i++) {
		ssize_t at = fake_find(f, b->hex[i]);

		if (f->fail) {
			b->status[i] = REMOTE_FAILED;
			remote_io_fail(io, f->off, "fake failure");
			continue;
		}
		if (at < 0) {
			at = (ssize_t)f->n++;
			memcpy(f->hex[at], b->hex[i], sizeof(f->hex[at]));
			strbuf_init(&f->val[at], 0);
		}
		strbuf_reset(&f->val[at]);
		strbuf_add(&f->val[at], b->values[i].buf, b->values[i].len);
		b->status[i] = REMOTE_DONE;
		f->puts++;
	}
}

static void fake_free(struct remote_transport *t)
{
	((struct fake *)t)->freed = 1;
}

static const struct remote_transport_ops fake_ops = { fake_get, fake_put, fake_free };

static void fake_release(struct fake *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		strbuf_release(&f->val[i]);
}

static struct cache_store *open_fake(struct fake *f, int read_only, const char *secret)
{
	struct cache_remote_opts o = CACHE_REMOTE_OPTS_INIT;

	o.read_only = read_only;
	o.secret = secret;
	f->base.ops = &fake_ops;
	return remote_store_new(&f->base, "redis://user:pw@host/0", &o);
}

static void close_store(struct cache_store *s, struct cache_remote_stats *st)
{
	struct cache_store_counts none = { 0, 0, 0, 0, NULL };

	memset(st, 0, sizeof(*st));
	s->ops->flush(s);
	s->ops->stats(s, st);
	s->ops->close(s, "", &none);
}

/* Put keys 0..n-1 through a store on `f` (uploaded at the flush). */
static void fill(struct fake *f, int n, const char *secret)
{
	struct cache_store *s = open_fake(f, 0, secret);
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	struct cache_remote_stats st;
	unsigned char key[CACHE_KEY_LEN];
	uint64_t bytes = 0;
	int i;

	for (i = 0; i < n; i++) {
		make_key(key, i);
		body_of(i, &code, &warn);
		CHECK(s->ops->put(s, key, code.buf, code.len, warn.buf, warn.len, &bytes) == 1);
	}
	CHECK(f->puts == 0); /* queued, not sent */
	close_store(s, &st);
	CHECK_INT((int)st.uploads, n);
	CHECK_INT((int)f->puts, n);
	CHECK(f->freed);
	f->freed = 0;
	strbuf_release(&code);
	strbuf_release(&warn);
}

/* Look keys 0..n-1 up after one prefetch; the number of exact hits. */
static int lookups(struct fake *f, int n, const char *secret, struct cache_remote_stats *st)
{
	struct cache_store *s = open_fake(f, 1, secret);
	unsigned char keys[64][CACHE_KEY_LEN];
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, want = STRBUF_INIT,
		      wwant = STRBUF_INIT;
	int i, hits = 0;

	for (i = 0; i < n; i++)
		make_key(keys[i], i);
	s->ops->prefetch(s, (const unsigned char (*)[CACHE_KEY_LEN])keys, (size_t)n,
			 (const unsigned char (*)[CACHE_KEY_LEN])keys, (size_t)n);
	for (i = 0; i < n; i++) {
		strbuf_reset(&code);
		strbuf_reset(&warn);
		body_of(i, &want, &wwant);
		if (s->ops->get(s, keys[i], &code, &warn) == 1 && code.len == want.len &&
		    !memcmp(code.buf, want.buf, want.len) && warn.len == wwant.len &&
		    !memcmp(warn.buf, wwant.buf, wwant.len))
			hits++;
	}
	close_store(s, st);
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&want);
	strbuf_release(&wwant);
	return hits;
}

TEST(remote_store_round_trip_and_batches)
{
	struct fake f;
	struct cache_remote_stats st;

	memset(&f, 0, sizeof(f));
	fill(&f, 10, NULL);
	f.gets = 0;
	CHECK_INT(lookups(&f, 12, NULL, &st), 10);
	CHECK_INT((int)f.gets, 12); /* the prefetch, nothing after */
	CHECK_INT((int)st.hits, 10);
	CHECK_INT((int)st.misses, 2);
	CHECK_INT((int)st.errors, 0);
	/* the value on the server is the disk entry, byte for byte, compressed with libzstd */
	if (compress_available()) {
		struct strbuf plain = STRBUF_INIT;

		CHECK(compressed(f.val[0].buf, f.val[0].len));
		CHECK_INT(decompress_value(f.val[0].buf, f.val[0].len, 1 << 20, &plain), COMPRESS_OK);
		CHECK_INT((int)plain.len, (int)disk_entry_size(plain.buf, plain.len));
		strbuf_release(&plain);
	} else {
		CHECK_INT((int)f.val[0].len, (int)disk_entry_size(f.val[0].buf, f.val[0].len));
	}
	fake_release(&f);
}

TEST(remote_store_compressed_values)
{
	struct fake f;
	struct cache_remote_stats st;
	struct strbuf z = STRBUF_INIT, back = STRBUF_INIT;
	char big[4096];
	size_t i;

	/* compress.h: a round trip, bounds, damage; declines what does not shrink */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)("pyc"[i % 3]);
	if (compress_available()) {
		CHECK_INT(compress_value(big, sizeof(big), &z), 0);
		CHECK(z.len < sizeof(big) && compressed(z.buf, z.len));
		CHECK_INT((int)compressed_frame_size(z.buf, z.len), (int)z.len);
		CHECK_INT(decompress_value(z.buf, z.len, sizeof(big), &back), COMPRESS_OK);
		CHECK(back.len == sizeof(big) && !memcmp(back.buf, big, sizeof(big)));
		CHECK_INT(decompress_value(z.buf, z.len, sizeof(big) - 1, &back), COMPRESS_BAD);
		CHECK_INT(decompress_value(z.buf, z.len - 1, sizeof(big), &back), COMPRESS_BAD);
		strbuf_addch(&z, 0); /* trailing bytes: not one frame */
		CHECK_INT(decompress_value(z.buf, z.len, sizeof(big), &back), COMPRESS_BAD);
		CHECK_INT(compress_value("ab", 2, &z), -1);
	} else {
		CHECK_INT(compress_value(big, sizeof(big), &z), -1);
		CHECK_INT(decompress_value(big, sizeof(big), sizeof(big), &back), COMPRESS_UNSUPPORTED);
	}
	strbuf_release(&z);
	strbuf_release(&back);
	if (!compress_available())
		return;
	/* a damaged frame is rejected, with a secret or without */
	memset(&f, 0, sizeof(f));
	fill(&f, 3, NULL);
	CHECK(compressed(f.val[0].buf, f.val[0].len)); /* the small ones may not shrink */
	f.val[0].buf[f.val[0].len / 2] ^= 0x55;
	CHECK_INT(lookups(&f, 3, NULL, &st), 2);
	CHECK_INT((int)st.rejected, 1);
	strbuf_setlen(&f.val[0], f.val[0].len - 3);
	CHECK_INT(lookups(&f, 3, NULL, &st), 2);
	CHECK_INT((int)st.rejected, 1);
	fake_release(&f);
	/* signed: read with the secret, and without it (the tag is not asked for) */
	memset(&f, 0, sizeof(f));
	fill(&f, 3, "k");
	CHECK(compressed(f.val[0].buf, f.val[0].len));
	CHECK_INT(lookups(&f, 3, "k", &st), 3);
	CHECK_INT(lookups(&f, 3, NULL, &st), 3);
	f.val[2].buf[f.val[2].len / 2] ^= 0x55; /* the frame, under a tag that no longer fits */
	CHECK_INT(lookups(&f, 3, "k", &st), 2);
	CHECK_INT((int)st.rejected, 1);
	fake_release(&f);
}

TEST(remote_store_secret_signs_and_checks)
{
	struct fake f;
	struct cache_remote_stats st;
	unsigned char *p;

	memset(&f, 0, sizeof(f));
	fill(&f, 4, "a secret");
	CHECK_INT(lookups(&f, 4, "a secret", &st), 4);
	CHECK_INT(lookups(&f, 4, "another secret", &st), 0);
	CHECK_INT((int)st.rejected, 4);
	CHECK_INT(lookups(&f, 4, NULL, &st), 4); /* no secret: the tag is not asked for */
	/* a missing tag, a flipped tag byte, a flipped code byte with the checksum intact */
	strbuf_setlen(&f.val[0], f.val[0].len - REMOTE_TAG_LEN);
	p = (unsigned char *)f.val[1].buf;
	p[f.val[1].len - 1] ^= 1;
	CHECK_INT(lookups(&f, 4, "a secret", &st), 2);
	CHECK_INT((int)st.rejected, 2);
	/* a longer secret than a BLAKE2b key: hashed, still works */
	fake_release(&f);
	memset(&f, 0, sizeof(f));
	fill(&f, 2, "0123456789012345678901234567890123456789012345678901234567890123456789");
	CHECK_INT(lookups(&f, 2, "0123456789012345678901234567890123456789012345678901234567890123456789",
			  &st), 2);
	fake_release(&f);
}

TEST(remote_store_damaged_values_are_rejected)
{
	struct fake f;
	struct cache_remote_stats st;

	memset(&f, 0, sizeof(f));
	fill(&f, 3, NULL);
	strbuf_reset(&f.val[2]); /* key 0's entry under key 2's name: another key */
	strbuf_add(&f.val[2], f.val[0].buf, f.val[0].len);
	f.val[0].buf[DISK_HEADER_LEN] ^= 1; /* the checksum */
	strbuf_setlen(&f.val[1], 10);       /* short */
	CHECK_INT(lookups(&f, 3, NULL, &st), 0);
	CHECK_INT((int)st.rejected, 3);
	CHECK_INT((int)st.errors, 0);
	fake_release(&f);
}

/*
 * A build over a fake that wants groups of 4 keys: keys ids[0..n) looked
 * up after one prefetch, and each miss "compiled" (put).  The exact hits.
 */
static int group_build(struct fake *f, const int *ids, int n, int read_only,
		       struct cache_remote_stats *st)
{
	struct cache_store *s;
	unsigned char keys[64][CACHE_KEY_LEN];
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, want = STRBUF_INIT,
		      wwant = STRBUF_INIT;
	uint64_t bytes;
	int i, hits = 0;

	f->base.group_keys = 4;
	s = open_fake(f, read_only, "k");
	for (i = 0; i < n; i++)
		make_key(keys[i], ids[i]);
	s->ops->prefetch(s, (const unsigned char (*)[CACHE_KEY_LEN])keys, (size_t)n,
			 (const unsigned char (*)[CACHE_KEY_LEN])keys, (size_t)n);
	for (i = 0; i < n; i++) {
		strbuf_reset(&code);
		strbuf_reset(&warn);
		body_of(ids[i], &want, &wwant);
		if (s->ops->get(s, keys[i], &code, &warn) != 1)
			s->ops->put(s, keys[i], want.buf, want.len, wwant.buf, wwant.len, &bytes);
		else if (code.len == want.len && !memcmp(code.buf, want.buf, want.len) &&
			 warn.len == wwant.len && !memcmp(warn.buf, wwant.buf, wwant.len))
			hits++;
	}
	close_store(s, st);
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&want);
	strbuf_release(&wwant);
	return hits;
}

/* The fake's values that are groups (remote-group.h), and the first one's index. */
static int fake_groups(const struct fake *f, size_t *first)
{
	size_t i;
	int n = 0;

	for (i = 0; i < f->n; i++)
		if (f->val[i].len >= 8 && !memcmp(f->val[i].buf, REMOTE_GROUP_MAGIC, 8) && !n++)
			*first = i;
	return n;
}

/* The number of groups of keys ids[0..n), 4 keys a group. */
static int groups_of(const int *ids, int n)
{
	unsigned char keys[64][CACHE_KEY_LEN];
	struct remote_group *g;
	size_t made;
	int i;

	for (i = 0; i < n; i++)
		make_key(keys[i], ids[i]);
	qsort(keys, (size_t)n, CACHE_KEY_LEN, cmp_key_bytes);
	made = remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])keys, (size_t)n, 4, &g);
	free(g);
	return (int)made;
}

TEST(remote_groups_cut_and_name)
{
	unsigned char keys[40][CACHE_KEY_LEN], other[40][CACHE_KEY_LEN];
	struct remote_group *g, *h;
	size_t n, i, total = 0;

	for (i = 0; i < 40; i++)
		make_key(keys[i], (int)i);
	qsort(keys, 40, CACHE_KEY_LEN, cmp_key_bytes);
	memcpy(other, keys, sizeof(keys));
	CHECK_INT((int)remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])keys, 40, 0, &g), 0);
	CHECK_INT((int)remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])keys, 7, 4, &g), 0);
	/* 40 keys, 4 a group: 3 bits, 8 ranges, each key in the range of its first 3 bits */
	n = remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])keys, 40, 4, &g);
	CHECK(n >= 6 && n <= 8);
	for (i = 0; i < n; i++) {
		CHECK_INT((int)remote_group_range(keys[g[i].first], 3),
			  (int)remote_group_range(keys[g[i].first + g[i].n - 1], 3));
		total += g[i].n;
	}
	CHECK_INT((int)total, 40);
	/* one key changed: one name changed */
	other[g[1].first][CACHE_KEY_LEN - 1] ^= 1;
	CHECK_INT((int)remote_groups_cut((const unsigned char (*)[CACHE_KEY_LEN])other, 40, 4, &h),
		  (int)n);
	for (i = 0, total = 0; i < n; i++)
		total += memcmp(g[i].name, h[i].name, CACHE_KEY_LEN) != 0;
	CHECK_INT((int)total, 1);
	CHECK(memcmp(g[1].name, h[1].name, CACHE_KEY_LEN) != 0);
	free(g);
	free(h);
}

static void count_record(void *arg, const unsigned char *key, const void *value, size_t len)
{
	(void)key;
	(void)value;
	*(size_t *)arg += len;
}

TEST(remote_group_objects_parse_or_fail)
{
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf obj = STRBUF_INIT;
	size_t bytes = 0, len;

	make_key(key, 1);
	remote_group_begin(&obj, 2);
	remote_group_add(&obj, key, "abc", 3);
	remote_group_add(&obj, key, "de", 2);
	CHECK_INT(remote_group_parse(obj.buf, obj.len, count_record, &bytes), 0);
	CHECK_INT((int)bytes, 5);
	/* every shortening fails; a record that says it is longer than the object fails */
	for (len = 0; len < obj.len; len++)
		CHECK_INT(remote_group_parse(obj.buf, len, count_record, &bytes), -1);
	strbuf_addch(&obj, 0);
	CHECK_INT(remote_group_parse(obj.buf, obj.len, count_record, &bytes), -1);
	obj.buf[REMOTE_GROUP_HEADER + CACHE_KEY_LEN] = 100;
	CHECK_INT(remote_group_parse(obj.buf, obj.len, count_record, &bytes), -1);
	obj.buf[8] = 2; /* another version */
	CHECK_INT(remote_group_parse(obj.buf, obj.len, count_record, &bytes), -1);
	strbuf_release(&obj);
}

TEST(remote_groups_fetch_a_tree_in_few_requests)
{
	struct fake f;
	struct cache_remote_stats st;
	int ids[40], i, groups;
	size_t g0 = 0, gets;

	memset(&f, 0, sizeof(f));
	for (i = 0; i < 40; i++)
		ids[i] = i;
	/* the first builder: every group and key missing; each key and each group uploaded */
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 0);
	CHECK_INT((int)st.uploads, 40);
	groups = fake_groups(&f, &g0);
	CHECK(groups >= 6 && groups <= 8);
	CHECK_INT((int)f.n, 40 + groups);
	/* the next: every key from its group, one request per group */
	f.gets = 0;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 40);
	CHECK_INT((int)f.gets, groups);
	CHECK_INT((int)st.uploads, 0);
	CHECK_INT((int)f.n, 40 + groups); /* nothing new */
	/* a tree with one file changed: its group's keys one by one, that group uploaded */
	ids[7] = 1000;
	f.gets = 0;
	gets = f.n;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 39);
	CHECK(f.gets > (size_t)groups);
	CHECK_INT((int)st.uploads, 1);
	CHECK(f.n - gets >= 2 && f.n - gets <= 3); /* the key, one or two groups renamed */
	f.gets = 0;
	CHECK_INT(group_build(&f, ids, 40, 1, &st), 40);
	CHECK_INT((int)f.gets, groups_of(ids, 40));
	fake_release(&f);
}

static int cmp_id_key(const void *a, const void *b)
{
	unsigned char x[CACHE_KEY_LEN], y[CACHE_KEY_LEN];

	make_key(x, *(const int *)a);
	make_key(y, *(const int *)b);
	return memcmp(x, y, CACHE_KEY_LEN);
}

TEST(remote_groups_taken_in_key_order_with_repeats)
{
	struct fake f;
	struct cache_remote_stats st;
	int ids[60], i, groups;
	size_t g0 = 0;

	memset(&f, 0, sizeof(f));
	for (i = 0; i < 40; i++)
		ids[i] = i;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 0);
	groups = fake_groups(&f, &g0);
	/*
	 * The lookups in the keys' order, as the cache phase makes them, then
	 * 20 keys again (the same source in two files, the second looked up
	 * late): a group is done with once its keys were looked up, and the
	 * repeats hit the values copied out of it
	 */
	qsort(ids, 40, sizeof(ids[0]), cmp_id_key);
	for (i = 0; i < 20; i++)
		ids[40 + i] = ids[2 * i];
	f.gets = 0;
	CHECK_INT(group_build(&f, ids, 60, 1, &st), 60);
	CHECK_INT((int)f.gets, groups);
	CHECK_INT((int)st.rejected, 0);
	fake_release(&f);
}

TEST(remote_groups_damaged_are_checked_and_mended)
{
	struct fake f;
	struct cache_remote_stats st;
	int ids[40], i, groups;
	size_t g0 = 0, gets, puts;
	char hex[2 * CACHE_KEY_LEN + 1];
	ssize_t at;

	memset(&f, 0, sizeof(f));
	for (i = 0; i < 40; i++)
		ids[i] = i;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 0);
	groups = fake_groups(&f, &g0);
	/*
	 * A byte of a group's first value flipped: rejected, the key's own value
	 * taken instead, and the group mended with it
	 */
	f.val[g0].buf[REMOTE_GROUP_HEADER + REMOTE_GROUP_RECORD + 20] ^= 1;
	puts = f.puts;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 40);
	CHECK_INT((int)st.rejected, 1);
	CHECK_INT((int)(f.puts - puts), 1); /* the group */
	f.gets = 0;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 40);
	CHECK_INT((int)st.rejected, 0);
	CHECK_INT((int)f.gets, groups);
	/* a group that does not parse: its keys one by one, all hits, and it is replaced */
	strbuf_setlen(&f.val[g0], f.val[g0].len - 1);
	gets = f.gets = 0;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 40);
	CHECK(f.gets > (size_t)groups);
	gets = f.gets;
	f.gets = 0;
	CHECK_INT(group_build(&f, ids, 40, 0, &st), 40);
	CHECK_INT((int)f.gets, groups);
	CHECK(gets > 0);
	/* read-only: a damaged group is used for what passes and not replaced */
	f.val[g0].buf[REMOTE_GROUP_HEADER + REMOTE_GROUP_RECORD + 20] ^= 1;
	puts = f.puts;
	CHECK_INT(group_build(&f, ids, 40, 1, &st), 40);
	CHECK_INT((int)st.rejected, 1);
	CHECK_INT((int)(f.puts - puts), 0);
	/* the key's own value damaged too: that one is compiled */
	hex_encode((const unsigned char *)f.val[g0].buf + REMOTE_GROUP_HEADER, CACHE_KEY_LEN, hex);
	CHECK((at = fake_find(&f, hex)) >= 0);
	f.val[at].buf[f.val[at].len / 2] ^= 1;
	CHECK_INT(group_build(&f, ids, 40, 1, &st), 39);
	CHECK_INT((int)st.rejected, 2);
	fake_release(&f);
}

/* A server that holds every key: its value made from the key (the code is the key's hex). */
struct gen {
	struct remote_transport base;
	size_t gets;
};

static void gen_get(struct remote_transport *t, struct remote_batch *b, struct remote_io *io)
{
	size_t i, k;

	for (i = 0; i < b->n; i++) {
		unsigned char key[CACHE_KEY_LEN];

		for (k = 0; k < CACHE_KEY_LEN; k++) {
			unsigned v;

			sscanf(b->hex[i] + 2 * k, "%2x", &v);
			key[k] = (unsigned char)v;
		}
		disk_entry_format(&b->values[i], key, b->hex[i], 2 * CACHE_KEY_LEN, "", 0);
		b->status[i] = REMOTE_DONE;
		((struct gen *)t)->gets++;
		io->requests++;
	}
}

static void gen_put(struct remote_transport *t, struct remote_batch *b, struct remote_io *io)
{
	size_t i;

	(void)t;
	(void)io;
	for (i = 0; i < b->n; i++)
		b->status[i] = REMOTE_DONE;
}

static void gen_free(struct remote_transport *t)
{
	(void)t;
}

static const struct remote_transport_ops gen_ops = { gen_get, gen_put, gen_free };

/* Prefetch keys 0..n-1, then look up those with i % step == 0, in order or backwards. */
static size_t gen_lookups(struct gen *g, size_t n, size_t step, int backwards)
{
	struct cache_remote_opts o = CACHE_REMOTE_OPTS_INIT;
	struct cache_store *s;
	unsigned char (*keys)[CACHE_KEY_LEN] = xcalloc(n, CACHE_KEY_LEN);
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	struct cache_remote_stats st;
	size_t i, hits = 0;

	memset(g, 0, sizeof(*g));
	g->base.ops = &gen_ops;
	s = remote_store_new(&g->base, "redis://host/0", &o);
	for (i = 0; i < n; i++)
		make_key(keys[i], (int)i);
	s->ops->prefetch(s, (const unsigned char (*)[CACHE_KEY_LEN])keys, n,
			 (const unsigned char (*)[CACHE_KEY_LEN])keys, n);
	for (i = 0; i < n; i += step) {
		size_t k = backwards ? n - 1 - i : i;

		strbuf_reset(&code);
		hits += s->ops->get(s, keys[k], &code, &warn) == 1 &&
			code.len == 2 * CACHE_KEY_LEN;
	}
	close_store(s, &st); /* joins the prefetch, wherever it is */
	strbuf_release(&code);
	strbuf_release(&warn);
	free(keys);
	return hits;
}

TEST(remote_prefetch_stays_ahead_without_a_stall)
{
	struct gen g;
	size_t n = 4 * REMOTE_LOOKAHEAD + 77;

	alarm(120); /* a deadlock fails the run rather than hanging it */
	/* in order: the prefetch waits for the lookups now and then, never for good */
	CHECK_INT((int)gen_lookups(&g, n, 1, 0), (int)n);
	CHECK_INT((int)g.gets, (int)n);
	/* backwards: the first lookup waits for the last key, so the prefetch runs on */
	CHECK_INT((int)gen_lookups(&g, n, 1, 1), (int)n);
	/* keys never taken do not hold it back */
	CHECK_INT((int)gen_lookups(&g, n, 3, 0), (int)((n + 2) / 3));
	/* one lookup, then the end: the prefetch stops where it is, and the close returns */
	CHECK_INT((int)gen_lookups(&g, n, n, 0), 1);
	CHECK(g.gets < n);
	alarm(0);
}

TEST(remote_store_errors_switch_it_off)
{
	struct fake f;
	struct cache_remote_stats st;
	struct cache_store *s;
	unsigned char key[CACHE_KEY_LEN];
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT;
	uint64_t bytes;
	int i;

	memset(&f, 0, sizeof(f));
	fill(&f, 2, NULL);
	f.fail = 1;
	f.gets = 0;
	CHECK_INT(lookups(&f, 10, NULL, &st), 0);
	CHECK_INT((int)st.errors, 10); /* the fake does not stop a batch early; a transport does */
	CHECK_INT((int)st.misses, 0);  /* an error is not a miss */
	CHECK_INT((int)f.gets, 10);    /* off after the prefetch: no single lookups */
	/* a timeout: off at once, uploads dropped */
	f.off = 1;
	s = open_fake(&f, 0, NULL);
	for (i = 0; i < 5; i++) {
		make_key(key, 100 + i);
		CHECK(s->ops->get(s, key, &code, &warn) == 0);
	}
	make_key(key, 200);
	CHECK(s->ops->put(s, key, "x", 1, "", 0, &bytes) == 0);
	close_store(s, &st);
	CHECK_INT((int)st.errors, 1);
	CHECK_INT((int)st.uploads, 0);
	fake_release(&f);
	strbuf_release(&code);
	strbuf_release(&warn);
}

TEST(remote_store_read_only_uploads_nothing)
{
	struct fake f;
	struct cache_store *s;
	struct cache_remote_stats st;
	unsigned char key[CACHE_KEY_LEN];
	uint64_t bytes = 0;

	memset(&f, 0, sizeof(f));
	s = open_fake(&f, 1, NULL);
	make_key(key, 1);
	CHECK(s->ops->put(s, key, "code", 4, "", 0, &bytes) == 0);
	close_store(s, &st);
	CHECK_INT((int)f.puts, 0);
	CHECK_INT((int)st.uploads, 0);
}

TEST(remote_url_display_hides_credentials)
{
	char *s;

	s = remote_url_display("redis://user:p@ss@host:6379/2?ttl=5");
	CHECK_STR(s, "redis://host:6379/2");
	free(s);
	s = remote_url_display("https://tok@cache.example.com/prepyc#x");
	CHECK_STR(s, "https://cache.example.com/prepyc");
	free(s);
	s = remote_url_display("redis+unix:///run/redis.sock?db=1");
	CHECK_STR(s, "redis+unix:///run/redis.sock");
	free(s);
	s = remote_url_display("http://host/a@b");
	CHECK_STR(s, "http://host/a@b");
	free(s);
}

TEST(remote_bad_urls_are_refused)
{
	struct cache_remote_opts o = CACHE_REMOTE_OPTS_INIT;

	CHECK(cache_add_remote(NULL, "ftp://host/x", &o) == -1);
	CHECK(cache_add_remote(NULL, "redis://", &o) == -1);
	CHECK(cache_add_remote(NULL, "redis://h:0", &o) == -1);
	CHECK(cache_add_remote(NULL, "redis://h:6379/x", &o) == -1);
	CHECK(cache_add_remote(NULL, "redis://h?ttl=x", &o) == -1);
	CHECK(cache_add_remote(NULL, "redis+unix://rel", &o) == -1);
	CHECK(cache_add_remote(NULL, "http://h/p?q", &o) == -1);
#ifdef PREPYC_WITH_HIREDIS
	CHECK(cache_add_remote(NULL, "redis://u:p@[::1]:7000/3?ttl=60", &o) == 0);
	CHECK(cache_add_remote(NULL, "redis+unix:///tmp/r.sock?db=2&ttl=9", &o) == 0);
#endif
#ifdef PREPYC_WITH_LIBCURL
	CHECK(cache_add_remote(NULL, "https://h:8443/cache/", &o) == 0);
#endif
}

/*
 * Behind a disk store, through the front: what the disk lacked at the
 * prefetch is taken from the remote and filled into the disk once; a
 * second lookup of the key (a file of the same content) is a disk hit.
 */
TEST(remote_hits_fill_the_disk_store_once)
{
	char *tmp = make_tmpdir(), *dir = xstrfmt("%s/c", tmp);
	struct cache *c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
	struct strbuf code = STRBUF_INIT, warn = STRBUF_INIT, want = STRBUF_INIT,
		      wwant = STRBUF_INIT;
	unsigned char keys[6][CACHE_KEY_LEN];
	size_t hits, misses, stored, gets, i;
	struct fake f;

	memset(&f, 0, sizeof(f));
	fill(&f, 4, NULL);
	f.gets = 0;
	for (i = 0; i < 5; i++)
		make_key(keys[i], (int)i);
	make_key(keys[5], 1); /* key 1 twice */
	/* key 0 is on the disk already: not asked of the remote */
	body_of(0, &code, &warn);
	cache_put(c, keys[0], code.buf, code.len, warn.buf, warn.len);
	cache_add_store(c, open_fake(&f, 1, NULL));
	CHECK(cache_batches(c));
	cache_prefetch(c, (const unsigned char (*)[CACHE_KEY_LEN])keys, 6);
	for (i = 0; i < 6; i++) {
		int n = i == 5 ? 1 : (int)i;

		strbuf_reset(&code);
		strbuf_reset(&warn);
		body_of(n, &want, &wwant);
		CHECK_INT(cache_get(c, keys[i], &code, &warn), n < 4);
		if (n < 4) {
			CHECK(code.len == want.len && !memcmp(code.buf, want.buf, want.len));
			CHECK(warn.len == wwant.len && !memcmp(warn.buf, wwant.buf, wwant.len));
		}
	}
	/* not key 0 (on the disk), nor the second key 1 (the disk had it by then) */
	gets = f.gets;
	CHECK(gets >= 4 && gets <= 5);
	strbuf_reset(&code);
	strbuf_reset(&warn);
	CHECK_INT(cache_get(c, keys[2], &code, &warn), 1);
	CHECK_INT((int)f.gets, (int)gets); /* from the disk */
	cache_counts(c, &hits, &misses, &stored);
	CHECK_INT((int)hits, 6);
	CHECK_INT((int)misses, 1);
	CHECK_INT((int)stored, 1); /* key 0's put (the back-fills count as the disk store's) */
	for (i = 0; i < 4; i++) {
		char *path = disk_entry_path(dir, keys[i]);
		struct stat st;

		CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
		free(path);
	}
	/* a compile's put after a miss, then the key asks the disk again */
	body_of(4, &code, &warn);
	cache_put(c, keys[4], code.buf, code.len, warn.buf, warn.len);
	strbuf_reset(&code);
	strbuf_reset(&warn);
	CHECK_INT(cache_get(c, keys[4], &code, &warn), 1);
	cache_close(c, "t");
	/*
	 * With libzstd, a back-filled entry is the remote's frame as it came
	 * (fewer bytes written): read alone, it gives the entry's very parts;
	 * damaged, it is a miss and goes.
	 */
	if (compress_available()) {
		char *path = disk_entry_path(dir, keys[3]);
		unsigned char head[4];
		struct stat st;
		FILE *fp;

		size_t framed = 0;

		/* (the values that zstd could not make smaller are stored plain) */
		for (i = 1; i < 4; i++) {
			char *p = disk_entry_path(dir, keys[i]), hex[2 * CACHE_KEY_LEN + 1];
			ssize_t v = fake_find(&f, hex_encode(keys[i], CACHE_KEY_LEN, hex));

			fp = fopen(p, "rb");
			CHECK(v >= 0 && fp && fread(head, 1, sizeof(head), fp) == sizeof(head));
			if (v >= 0 && compressed(head, sizeof(head))) {
				CHECK(compressed(f.val[v].buf, f.val[v].len));
				framed++;
			}
			if (fp)
				fclose(fp);
			free(p);
		}
		CHECK(framed >= 2);
		c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		for (i = 1; i < 4; i++) {
			body_of((int)i, &want, &wwant);
			strbuf_reset(&code);
			strbuf_reset(&warn);
			CHECK_INT(cache_get(c, keys[i], &code, &warn), 1);
			CHECK(code.len == want.len && !memcmp(code.buf, want.buf, want.len));
			CHECK(warn.len == wwant.len && !memcmp(warn.buf, wwant.buf, wwant.len));
		}
		cache_close(c, "t");
		CHECK(stat(path, &st) == 0);
		fp = fopen(path, "r+b");
		CHECK(fp && fseek(fp, st.st_size / 2, SEEK_SET) == 0 && fputc('#', fp) != EOF);
		if (fp)
			fclose(fp);
		c = cache_open(dir, CACHE_DEFAULT_MAX_SIZE);
		CHECK_INT(cache_get(c, keys[3], &code, &warn), 0);
		CHECK_INT(cache_get(c, keys[2], &code, &warn), 1);
		cache_close(c, "t");
		CHECK(stat(path, &st) < 0 && errno == ENOENT); /* removed as damaged */
		free(path);
	}
	fake_release(&f);
	strbuf_release(&code);
	strbuf_release(&warn);
	strbuf_release(&want);
	strbuf_release(&wwant);
	free(dir);
	remove_tree(tmp);
}
