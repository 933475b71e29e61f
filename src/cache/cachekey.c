/*
 * cachekey.c - the bytecode cache's keys (see cachekey.h for the recipe).
 */
#define _GNU_SOURCE /* memmem */
#include "cachekey.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blake2b.h"
#include "banned.h"

static void add_field(struct strbuf *sb, const char *name, const char *value)
{
	strbuf_add(sb, name, strlen(name));
	strbuf_add(sb, "=", 1);
	strbuf_add(sb, value, strlen(value) + 1);
}

void cache_key_identity(struct strbuf *id, const struct target *t, int canonical,
			const char *warnings_env)
{
	const char *seed = getenv("PYTHONHASHSEED");
	char magic[16];

	snprintf(magic, sizeof(magic), "%02x%02x%02x%02x", t->fmt.magic[0], t->fmt.magic[1],
		 t->fmt.magic[2], t->fmt.magic[3]);
	add_field(id, "prepyc-cache-key", "2");
	add_field(id, "implementation", t->implementation);
	add_field(id, "build", t->build);
	add_field(id, "magic", magic);
	add_field(id, "cache_tag", t->cache_tag);
	add_field(id, "hashseed", seed && *seed ? seed : "0");
	add_field(id, "warnings", warnings_env ? warnings_env : "");
	add_field(id, "canonical", canonical ? "1" : "0");
	/* only when set, so that the default build's keys stay what they were */
	if (t->gil_disabled)
		add_field(id, "gil_disabled", "1");
}

int cache_key_relocatable(int canonical, const char *warnings_env, const char *dfile,
			  const void *src, size_t len)
{
	size_t n = strlen(dfile), i;

	if (!canonical || (warnings_env && *warnings_env) || !n || !strcmp(dfile, "__main__.py"))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)dfile[i] & 0x80)
			return 0;
	return !memmem(src, len, dfile, n);
}

void cache_key_compute(const struct strbuf *id, int opt, const char *dfile, const void *src,
		       size_t len, unsigned char key[CACHE_KEY_LEN])
{
	unsigned char n[8];
	char level[16];
	struct blake2b b;
	int i;

	snprintf(level, sizeof(level), "%d", opt);
	for (i = 0; i < 8; i++)
		n[i] = (unsigned char)((uint64_t)len >> (8 * i));
	blake2b_init(&b, CACHE_KEY_LEN);
	blake2b_update(&b, id->buf, id->len);
	blake2b_update(&b, level, strlen(level) + 1);
	if (dfile) {
		blake2b_update(&b, "=", 1);
		blake2b_update(&b, dfile, strlen(dfile) + 1);
	} else {
		blake2b_update(&b, "*", 2);
	}
	blake2b_update(&b, n, sizeof(n));
	blake2b_update(&b, src, len);
	blake2b_final(&b, key);
}
