/*
 * options.h - a small table-driven command-line parser.
 *
 *   int force = 0; const char *python = NULL;
 *   struct option opts[] = {
 *       OPT_FLAG('f', "force", &force, "recompile fresh files"),
 *       OPT_STRING(0, "python", &python, "PATH", "target interpreter"),
 *       OPT_END(),
 *   };
 *   npaths = parse_options(argc - 1, argv + 1, opts);  (argv[0]: the command)
 *   if (npaths == -2)
 *       usage_with_options(stdout, usage, opts);  (-h, --help)
 *   ... argv[1] to argv[npaths] are the positional arguments ...
 *
 * Short options may be bundled (-qq, -fq) and take their value attached or
 * as the next argument (-j4, -j 4); long options take --name=value or
 * --name value.  "--" ends the options; the first non-option argument does
 * not (options may follow paths).  Returns the number of positional
 * arguments, stored in order at the front of argv (the array is reused),
 * or -1 after printing a usage error.  -h and --help return -2.
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stddef.h>

enum option_type {
	OPTION_END,
	OPTION_FLAG,    /* int set to 1 */
	OPTION_COUNT,   /* int incremented */
	OPTION_INT,     /* int from a decimal value */
	OPTION_STRING,  /* const char * (the last one wins) */
	OPTION_LIST,    /* struct option_list, every value appended */
};

struct option_list {
	const char **v;
	size_t nr, alloc;
};

struct option {
	enum option_type type;
	int short_name;
	const char *long_name;
	void *value;
	const char *argh; /* name of the value in help, e.g. "PATH" */
	const char *help;
};

#define OPT_END() { OPTION_END, 0, NULL, NULL, NULL, NULL }
#define OPT_FLAG(s, l, v, h) { OPTION_FLAG, (s), (l), (v), NULL, (h) }
#define OPT_COUNT(s, l, v, h) { OPTION_COUNT, (s), (l), (v), NULL, (h) }
#define OPT_INT(s, l, v, a, h) { OPTION_INT, (s), (l), (v), (a), (h) }
#define OPT_STRING(s, l, v, a, h) { OPTION_STRING, (s), (l), (v), (a), (h) }
#define OPT_LIST(s, l, v, a, h) { OPTION_LIST, (s), (l), (v), (a), (h) }

int parse_options(int argc, const char **argv, const struct option *opts);

/* Print "usage: ..." lines then one line per option to `fp`. */
void usage_with_options(void *fp, const char *const *usage, const struct option *opts);

void option_list_release(struct option_list *l);

#endif
