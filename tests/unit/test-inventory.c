/*
 * test-inventory.c - the one UTF-8 decoder's Python view, the walk order on
 * undecodable names, and the inventory of check and clean.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "inventory.h"
#include "util.h"
#include "walk.h"

TEST(utf8_decode_escaped_is_surrogateescape)
{
	unsigned cp;

	CHECK_INT(utf8_decode_escaped((const unsigned char *)"a", &cp), 1);
	CHECK_INT(cp, 'a');
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\xc3\xa9", &cp), 2);
	CHECK_INT(cp, 0xe9);
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\xf0\x9f\x98\x80", &cp), 4);
	CHECK_INT(cp, 0x1f600);
	/* not UTF-8: one byte, as U+DC00+byte */
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\xe9t", &cp), 1);
	CHECK_INT(cp, 0xdce9);
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\xc0\x80", &cp), 1); /* overlong */
	CHECK_INT(cp, 0xdcc0);
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\xed\xa0\x80", &cp), 1); /* surrogate */
	CHECK_INT(cp, 0xdced);
	CHECK_INT(utf8_decode_escaped((const unsigned char *)"\x80", &cp), 1);
	CHECK_INT(cp, 0xdc80);
}

TEST(walk_path_cmp_undecodable_names)
{
	/* sorted(key=lambda b: os.fsdecode(b).split('/')) */
	static const char *const sorted[] = {
		"t/\xc3\x80\x80", "t/\xc3\x80\x81", "t/\xc3\xa8" "b", "t/\xc3\xa9" "a", "t/\xe2\x82\xac",
		"t/\xc0\x80", "t/\xed\xa0\x80", "t/\xf4\x90\x80\x80", "t/\xef\xbf\xbd",
		"t/\xf0\x9f\x98\x80",
	};
	size_t n = sizeof(sorted) / sizeof(*sorted), i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			int c = walk_path_cmp(sorted[i], sorted[j]);

			CHECK(i < j ? c < 0 : i > j ? c > 0 : c == 0);
		}
}

static void put(const char *dir, const char *name)
{
	char *path = xstrfmt("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	free(path);
}

TEST(inventory_orphans_and_sourceless)
{
	char tmp[] = "/tmp/prepyc-unit-inventory-XXXXXX";
	struct source_list list = SOURCE_LIST_INIT;
	struct inventory inv = INVENTORY_INIT;
	char *pc, *cmd;
	size_t i, orphans = 0, sourceless = 0;

	if (!mkdtemp(tmp))
		die("mkdtemp: %s", strerror(errno));
	pc = xstrfmt("%s/__pycache__", tmp);
	CHECK_INT(mkdir(pc, 0777), 0);
	put(tmp, "a.py");
	put(tmp, "a.pyc");       /* legacy, with its source */
	put(tmp, "b.pyc");       /* sourceless */
	put(pc, "a.cpython-311.pyc");
	put(pc, "gone.cpython-311.opt-1.pyc"); /* orphan */
	put(pc, "odd.pyc");      /* not a cache name: neither */
	put(pc, "a.cpython-311.opt-2.pyc");
	put(pc, "a.cpython-311.opt-x.pyc"); /* a level of nobody's */
	CHECK_INT(walk_path(tmp, WALK_MAX_DEPTH, WALK_PYCACHE, &list), 0);
	inventory_build(&inv, &list);
	CHECK_INT(inv.nr, 7);
	for (i = 0; i < inv.nr; i++) {
		const struct inventory_pyc *p = &inv.v[i];
		const char *name = strrchr(p->entry->path, '/') + 1;

		orphans += inventory_is_orphan(p);
		sourceless += inventory_is_sourceless(p);
		if (!strcmp(name, "gone.cpython-311.opt-1.pyc")) {
			CHECK(inventory_is_orphan(p));
			CHECK_STR(p->tag, "cpython-311");
			CHECK_INT(p->level, 1);
		} else if (!strcmp(name, "b.pyc")) {
			CHECK(inventory_is_sourceless(p));
			CHECK_INT(p->level, -1);
		} else if (!strcmp(name, "a.cpython-311.pyc")) {
			CHECK(p->has_source);
			CHECK_INT(p->level, 0);
		} else if (!strcmp(name, "a.cpython-311.opt-2.pyc")) {
			CHECK(p->has_source);
			CHECK_INT(p->level, 2);
		} else if (!strcmp(name, "a.cpython-311.opt-x.pyc")) {
			CHECK(p->has_source);
			CHECK_INT(p->level, -1);
		} else if (!strcmp(name, "odd.pyc")) {
			CHECK(p->source.path == NULL);
		} else {
			CHECK(p->has_source);
		}
	}
	CHECK_INT(orphans, 1);
	CHECK_INT(sourceless, 1);
	inventory_release(&inv);
	source_list_release(&list);
	cmd = xstrfmt("rm -rf '%s'", tmp);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	free(pc);
}
