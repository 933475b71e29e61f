/*
 * harness.h - the in-tree unit-test harness.
 *
 * A test is `TEST(name) { ... }`; CHECK(cond) records a failure and goes
 * on; CHECK_STR/CHECK_MEM/CHECK_INT print both sides.  main.c lists the
 * tests and prints "ok NAME" / "FAIL NAME" per test and a closing
 * "unit: N passed, N failed".
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdio.h>
#include <string.h>

extern int harness_failures;

#define TEST(name) void test_##name(void); void test_##name(void)

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			harness_failures++;                                      \
		}                                                                \
	} while (0)

#define CHECK_INT(a, b)                                                          \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);              \
		if (a_ != b_) {                                                  \
			printf("  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_); \
			harness_failures++;                                      \
		}                                                                \
	} while (0)

#define CHECK_STR(a, b)                                                          \
	do {                                                                     \
		const char *a_ = (a), *b_ = (b);                                 \
		if (!a_ || strcmp(a_, b_)) {                                     \
			printf("  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_); \
			harness_failures++;                                      \
		}                                                                \
	} while (0)

#define CHECK_MEM(a, b, n)                                                       \
	do {                                                                     \
		if (memcmp((a), (b), (n))) {                                     \
			printf("  %s:%d: %s differs from %s\n", __FILE__, __LINE__, #a, #b); \
			harness_failures++;                                      \
		}                                                                \
	} while (0)

#endif
