#define _POSIX_C_SOURCE 200809L
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

static int takes_value(const struct option *o)
{
	return o->type == OPTION_INT || o->type == OPTION_STRING || o->type == OPTION_LIST;
}

static int set_value(const struct option *o, const char *arg, const char *shown)
{
	switch (o->type) {
	case OPTION_FLAG:
		*(int *)o->value = 1;
		return 0;
	case OPTION_COUNT:
		(*(int *)o->value)++;
		return 0;
	case OPTION_INT: {
		char *end;
		long v;

		errno = 0;
		v = strtol(arg, &end, 10);
		if (!*arg || *end || errno || v < INT_MIN || v > INT_MAX)
			return error("option '%s' expects a number, not '%s'", shown, arg);
		*(int *)o->value = (int)v;
		return 0;
	}
	case OPTION_STRING:
		*(const char **)o->value = arg;
		return 0;
	case OPTION_LIST: {
		struct option_list *l = o->value;

		ALLOC_GROW(l->v, l->nr + 1, l->alloc);
		l->v[l->nr++] = arg;
		return 0;
	}
	default:
		BUG("bad option type %d", (int)o->type);
	}
}

static const struct option *find_long(const struct option *opts, const char *name, size_t len)
{
	for (; opts->type != OPTION_END; opts++)
		if (opts->long_name && strlen(opts->long_name) == len &&
		    !memcmp(opts->long_name, name, len))
			return opts;
	return NULL;
}

static const struct option *find_short(const struct option *opts, int c)
{
	for (; opts->type != OPTION_END; opts++)
		if (opts->short_name == c)
			return opts;
	return NULL;
}

int parse_options(int argc, const char **argv, const struct option *opts)
{
	int i, npos = 0, only_paths = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (only_paths || a[0] != '-' || !a[1]) {
			argv[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_paths = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return -2;
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const struct option *o = find_long(opts, name, len);
			const char *val = eq ? eq + 1 : NULL;

			if (!o)
				return error("unknown option '--%.*s'", (int)len, name);
			if (!takes_value(o)) {
				if (val)
					return error("option '--%s' takes no value", o->long_name);
			} else if (!val) {
				if (i + 1 >= argc)
					return error("option '--%s' needs a value", o->long_name);
				val = argv[++i];
			}
			{
				char *shown = xstrfmt("--%s", o->long_name);
				int rc = set_value(o, val, shown);

				free(shown);
				if (rc < 0)
					return -1;
			}
			continue;
		}
		for (a++; *a; a++) {
			const struct option *o = find_short(opts, (unsigned char)*a);
			char shown[3] = { '-', *a, 0 };

			if (!o)
				return error("unknown option '-%c'", *a);
			if (!takes_value(o)) {
				if (set_value(o, NULL, shown) < 0)
					return -1;
				continue;
			}
			if (a[1]) {
				if (set_value(o, a + 1, shown) < 0)
					return -1;
			} else {
				if (i + 1 >= argc)
					return error("option '%s' needs a value", shown);
				if (set_value(o, argv[++i], shown) < 0)
					return -1;
			}
			break;
		}
	}
	return npos;
}

void usage_with_options(void *out, const char *const *usage, const struct option *opts)
{
	FILE *fp = out;

	for (; *usage; usage++)
		fprintf(fp, "%s\n", *usage);
	fputc('\n', fp);
	for (; opts->type != OPTION_END; opts++) {
		char left[64];
		int n = 0;

		if (opts->short_name && opts->long_name)
			n = snprintf(left, sizeof(left), "-%c, --%s", opts->short_name, opts->long_name);
		else if (opts->short_name)
			n = snprintf(left, sizeof(left), "-%c", opts->short_name);
		else
			n = snprintf(left, sizeof(left), "--%s", opts->long_name);
		if (opts->argh && n > 0 && (size_t)n < sizeof(left))
			snprintf(left + n, sizeof(left) - (size_t)n, " %s", opts->argh);
		fprintf(fp, "  %-24s %s\n", left, opts->help);
	}
}

void option_list_release(struct option_list *l)
{
	free(l->v);
	l->v = NULL;
	l->nr = l->alloc = 0;
}
