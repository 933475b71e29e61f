/*
 * main.c - dispatch to a subcommand.  `prepyc PATH...` is `prepyc compile PATH...`.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "util.h"
#include "banned.h"

#ifndef PREPYC_VERSION
#define PREPYC_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*fn)(int argc, const char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "compile", cmd_compile, "compile .py files into the target's bytecode cache" },
	{ "compileall", cmd_compileall, "python -m compileall ARGS, the same output, on all cores" },
	{ "check", cmd_check, "verify that a tree is fully and freshly compiled" },
	{ "clean", cmd_clean, "remove orphaned and stale bytecode" },
	{ "canon", cmd_canon, "rewrite pycs in the canonical form (same code, same bytes)" },
	{ "cache", cmd_cache, "show, clear or prune the bytecode cache" },
};

/*
 * What `prepyc --version` says about the build.  The platform is the one
 * the compiler targeted, from its predefined macros.
 */
#if defined(__clang__)
#define BUILD_COMPILER __VERSION__ /* "Clang 14.0.6", "Apple LLVM 15.0.0 (...)" */
#elif defined(__GNUC__)
#define BUILD_COMPILER "gcc " __VERSION__
#elif defined(__VERSION__)
#define BUILD_COMPILER __VERSION__
#else
#define BUILD_COMPILER "unknown"
#endif

#if defined(__linux__)
#define BUILD_OS "linux"
#elif defined(__APPLE__)
#define BUILD_OS "darwin"
#elif defined(__FreeBSD__)
#define BUILD_OS "freebsd"
#elif defined(__NetBSD__)
#define BUILD_OS "netbsd"
#elif defined(__OpenBSD__)
#define BUILD_OS "openbsd"
#else
#define BUILD_OS "unknown-os"
#endif

#if defined(__x86_64__)
#define BUILD_ARCH "x86_64"
#elif defined(__aarch64__)
#define BUILD_ARCH "aarch64"
#elif defined(__i386__)
#define BUILD_ARCH "i386"
#elif defined(__arm__)
#define BUILD_ARCH "arm"
#elif defined(__riscv) && __riscv_xlen == 64
#define BUILD_ARCH "riscv64"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define BUILD_ARCH "ppc64le"
#elif defined(__powerpc64__)
#define BUILD_ARCH "ppc64"
#elif defined(__s390x__)
#define BUILD_ARCH "s390x"
#else
#define BUILD_ARCH "unknown-arch"
#endif

/*
 * Optional parts compiled in, one line each, guarded by the macro the
 * Makefile defines when it builds that part in, e.g.
 *	#ifdef PREPYC_WITH_LIBCURL
 *		"libcurl",
 *	#endif
 */
static const char *const features[] = {
#ifdef PREPYC_WITH_LIBARCHIVE
	"libarchive",
#endif
#ifdef PREPYC_WITH_LIBCURL
	"libcurl",
#endif
#ifdef PREPYC_WITH_HIREDIS
	"hiredis",
#endif
#ifdef PREPYC_WITH_ZSTD
	"zstd",
#endif
	NULL
};

static void version(void)
{
	size_t i;

	printf("prepyc %s\n", PREPYC_VERSION);
	printf("compiler: %s\n", BUILD_COMPILER);
	printf("platform: %s %s\n", BUILD_OS, BUILD_ARCH);
	printf("features:");
	for (i = 0; features[i]; i++)
		printf(" %s", features[i]);
	printf("%s\n", i ? "" : " none");
}

static void usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: prepyc [COMMAND] [OPTIONS] PATH...\n\n"
		    "Precompile Python bytecode for deployment, with the target interpreter's\n"
		    "own compiler.  Without a command, prepyc compiles.\n\n"
		    "commands:\n");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(fp, "\n'prepyc COMMAND --help' describes a command's options.\n\n"
		    "exit status: 0 success; 1 a file failed to compile (the others were\n"
		    "compiled); 2 usage or environment error (bad option, unusable target\n"
		    "interpreter); 130/143 interrupted by SIGINT/SIGTERM.\n");
}

int main(int argc, const char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		version();
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	/* no command: compile, with argv[0] standing in for the command name */
	return cmd_compile(argc, argv);
}
