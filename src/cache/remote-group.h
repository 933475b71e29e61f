/*
 * remote-group.h - a remote store's groups: the values of many keys in
 * one object, so that a builder with the same tree fetches a few hundred
 * kilobytes per request instead of one entry.  HTTP has no multi-get: a
 * fresh builder's 7,600 GETs, one per entry, cost it more than all the
 * rest of its run.  A transport that wants groups says how many keys one
 * should hold (struct remote_transport's group_keys; Redis has MGET and
 * keeps its values in memory, so it does not).
 *
 * The groups of a run: its keys, sorted and without repeats, cut by
 * their first `bits` bits into 2^bits ranges, with `bits` the most (at
 * most 8) that leaves each about `target` keys on average; none below
 * 2 * target keys.  A group's name, where the server keeps it as it
 * keeps a key's value, is
 *
 *   BLAKE2b-256("prepyc-remote-group-1" NUL, bits, number, its keys)
 *
 * so that the same files give the same names on every machine and at
 * every path, and a file changed, added or removed renames one group.
 * The object under a name, integers little-endian:
 *
 *   "PREPYCG\n", u32 version 1, u32 count, then count records:
 *   key 32, u32 len, VALUE (len bytes)
 *
 * VALUE is the key's value byte for byte (store-remote.h: BODY [TAG]),
 * and the store checks it as one: a group is trusted no more than what
 * is in it.  A forged or damaged group costs rejected values, each then
 * fetched by its key (or compiled), never a wrong hit.
 */
#ifndef REMOTE_GROUP_H
#define REMOTE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "strbuf.h"

#define REMOTE_GROUP_CONTEXT "prepyc-remote-group-1"
#define REMOTE_GROUP_MAGIC "PREPYCG\n"
#define REMOTE_GROUP_VERSION 1
#define REMOTE_GROUP_HEADER 16
#define REMOTE_GROUP_RECORD (CACHE_KEY_LEN + 4)
#define REMOTE_GROUP_MAX_BITS 8

/* One group: keys[first, first + n) of the sorted keys it was cut from. */
struct remote_group {
	size_t first, n;
	unsigned char name[CACHE_KEY_LEN];
};

/*
 * Cut `n` sorted, distinct keys into groups of about `target` keys: the
 * number of groups made (empty ranges are left out), each in `*out` (a
 * new array, NULL when 0).  0 when target is 0 or n < 2 * target.
 */
size_t remote_groups_cut(const unsigned char (*keys)[CACHE_KEY_LEN], size_t n, size_t target,
			 struct remote_group **out);

/* The number of the range `key` falls in, among those cut with `bits` bits. */
unsigned remote_group_range(const unsigned char *key, unsigned bits);

/* Start a group's object of `count` records in `out`; each then by remote_group_add(). */
void remote_group_begin(struct strbuf *out, size_t count);
void remote_group_add(struct strbuf *out, const unsigned char *key, const void *value, size_t len);

/*
 * Walk object `obj` of `len` bytes: `fn` called for each record with its
 * key and value, in the object's order.  0 when the whole object is well
 * formed, -1 at the first fault (the records before it were given).
 */
int remote_group_parse(const void *obj, size_t len,
		       void (*fn)(void *arg, const unsigned char *key, const void *value,
				  size_t value_len),
		       void *arg);

#endif
