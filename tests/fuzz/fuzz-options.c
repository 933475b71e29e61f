/*
 * fuzz-options - libFuzzer target for the option parser (src/cli/options.c)
 * (`make fuzz-options`).
 *
 * Input: NUL-separated argument strings.  parse_options() runs over them
 * with a table holding every option type (flags, counts, ints, strings,
 * lists; short bundles, attached and separate values, "--").  Whatever
 * the arguments it returns -2, -1 or a count no larger than argc, the
 * positional arguments it leaves are among the inputs, and no option
 * value points outside them.  (Its usage errors go to stderr: the Makefile
 * runs it with -close_fd_mask=2.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_arg(const char *p, const char **argv, int argc)
{
	int i;

	for (i = 0; i < argc; i++)
		if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	const char **argv, **copy;
	int argc = 1, i, n, flag = 0, count = 0, num = 0;
	const char *str = NULL;
	struct option_list list = { NULL, 0, 0 };
	size_t k;
	const struct option opts[] = {
		OPT_FLAG('f', "force", &flag, "a flag"),
		OPT_COUNT('q', "quiet", &count, "a count"),
		OPT_INT('j', "jobs", &num, "N", "an int"),
		OPT_STRING('d', "dir", &str, "DIR", "a string"),
		OPT_LIST('o', "opt", &list, "LEVEL", "a list"),
		OPT_STRING(0, "python", &str, "PATH", "long only"),
		OPT_END(),
	};

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (k = 0; k < size; k++)
		argc += !buf[k];
	argv = calloc((size_t)argc + 2, sizeof(*argv));
	copy = calloc((size_t)argc + 2, sizeof(*copy));
	argv[0] = "prog";
	for (i = 1, k = 0; i < argc + 1 && k <= size; i++) {
		argv[i] = buf + k;
		k += strlen(buf + k) + 1;
	}
	argc = i;
	memcpy(copy, argv, sizeof(*argv) * (size_t)argc);
	n = parse_options(argc - 1, argv + 1, opts);
	if (n < -2 || n > argc - 1)
		abort();
	for (i = 0; i < n; i++)
		if (!is_arg(argv[1 + i], copy, argc))
			abort();
	if (str && !is_arg(str, copy, argc))
		abort();
	for (k = 0; k < list.nr; k++)
		if (!is_arg(list.v[k], copy, argc))
			abort();
	option_list_release(&list);
	free(argv);
	free(copy);
	free(buf);
	return 0;
}
