#include "harness.h"

int harness_failures;

#define T(name) void test_##name(void);
#include "tests.list"
#undef T

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
#define T(name) { #name, test_##name },
#include "tests.list"
#undef T
};

int main(int argc, char **argv)
{
	size_t i;
	int passed = 0, failed = 0;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = harness_failures;

		/* an argument selects the tests whose name holds it; "!TEXT" leaves them out */
		if (argc > 1 && argv[1][0] != '!' && !strstr(tests[i].name, argv[1]))
			continue;
		if (argc > 1 && argv[1][0] == '!' && strstr(tests[i].name, argv[1] + 1))
			continue;
		tests[i].fn();
		if (harness_failures == before) {
			printf("ok %s\n", tests[i].name);
			passed++;
		} else {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		}
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
