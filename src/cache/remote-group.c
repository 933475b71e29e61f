/*
 * remote-group.c - a remote store's groups (remote-group.h): their cut,
 * their names and their objects.
 */
#define _POSIX_C_SOURCE 200809L
#include "remote-group.h"

#include <stdlib.h>
#include <string.h>

#include "blake2b.h"
#include "util.h"
#include "banned.h"

unsigned remote_group_range(const unsigned char *key, unsigned bits)
{
	return bits ? (unsigned)key[0] >> (8 - bits) : 0;
}

static void name_group(struct remote_group *g, const unsigned char (*keys)[CACHE_KEY_LEN],
		       unsigned bits, unsigned range)
{
	unsigned char head[2] = { (unsigned char)bits, (unsigned char)range };
	struct blake2b s;

	blake2b_init(&s, CACHE_KEY_LEN);
	blake2b_update(&s, REMOTE_GROUP_CONTEXT, sizeof(REMOTE_GROUP_CONTEXT)); /* with its NUL */
	blake2b_update(&s, head, sizeof(head));
	blake2b_update(&s, keys[g->first], g->n * CACHE_KEY_LEN);
	blake2b_final(&s, g->name);
}

size_t remote_groups_cut(const unsigned char (*keys)[CACHE_KEY_LEN], size_t n, size_t target,
			 struct remote_group **out)
{
	unsigned bits = 0, range;
	size_t i = 0, made = 0;
	struct remote_group *g;

	*out = NULL;
	if (!target || n < 2 * target)
		return 0;
	while (bits < REMOTE_GROUP_MAX_BITS && n >> (bits + 1) >= target)
		bits++;
	g = xcalloc((size_t)1 << bits, sizeof(*g));
	for (range = 0; range < 1u << bits && i < n; range++) {
		size_t first = i;

		while (i < n && remote_group_range(keys[i], bits) == range)
			i++;
		if (i == first)
			continue;
		g[made].first = first;
		g[made].n = i - first;
		name_group(&g[made++], keys, bits, range);
	}
	*out = g;
	return made;
}

void remote_group_begin(struct strbuf *out, size_t count)
{
	unsigned char head[REMOTE_GROUP_HEADER];

	memcpy(head, REMOTE_GROUP_MAGIC, 8);
	put_le32(head + 8, REMOTE_GROUP_VERSION);
	put_le32(head + 12, (uint32_t)count);
	strbuf_add(out, head, sizeof(head));
}

void remote_group_add(struct strbuf *out, const unsigned char *key, const void *value, size_t len)
{
	unsigned char n[4];

	put_le32(n, (uint32_t)len);
	strbuf_add(out, key, CACHE_KEY_LEN);
	strbuf_add(out, n, sizeof(n));
	strbuf_add(out, value, len);
}

int remote_group_parse(const void *obj, size_t len,
		       void (*fn)(void *arg, const unsigned char *key, const void *value,
				  size_t value_len),
		       void *arg)
{
	const unsigned char *p = obj;
	size_t at = REMOTE_GROUP_HEADER, count, i;

	if (len < REMOTE_GROUP_HEADER || memcmp(p, REMOTE_GROUP_MAGIC, 8) ||
	    get_le32(p + 8) != REMOTE_GROUP_VERSION)
		return -1;
	count = get_le32(p + 12);
	for (i = 0; i < count; i++) {
		size_t n;

		if (len - at < REMOTE_GROUP_RECORD)
			return -1;
		n = get_le32(p + at + CACHE_KEY_LEN);
		if (len - at - REMOTE_GROUP_RECORD < n)
			return -1;
		fn(arg, p + at, p + at + REMOTE_GROUP_RECORD, n);
		at += REMOTE_GROUP_RECORD + n;
	}
	return at == len ? 0 : -1;
}
