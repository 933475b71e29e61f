/*
 * embed - turn a file into a C array, so the prepyc binary carries the
 * Python programs it runs in target interpreters (src/worker.py, src/facts.py).
 *
 *   embed SYMBOL INPUT OUTPUT
 *
 * writes OUTPUT defining `const char SYMBOL[]` (the bytes of INPUT plus a
 * terminating NUL) and `const unsigned long SYMBOL_len`.  Built and run on
 * the build machine by the Makefile; it needs only a C compiler.
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	FILE *in, *out;
	int c;
	unsigned long n = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: embed SYMBOL INPUT OUTPUT\n");
		return 2;
	}
	in = fopen(argv[2], "rb");
	if (!in) {
		perror(argv[2]);
		return 1;
	}
	out = fopen(argv[3], "w");
	if (!out) {
		perror(argv[3]);
		return 1;
	}
	fprintf(out, "/* Generated from %s by tools/embed; do not edit. */\n", argv[2]);
	fprintf(out, "const char %s[] = {", argv[1]);
	while ((c = getc(in)) != EOF) {
		fprintf(out, "%s0x%02x,", n % 16 ? "" : "\n\t", (unsigned)c);
		n++;
	}
	fprintf(out, "\n\t0x00\n};\nconst unsigned long %s_len = %lu;\n", argv[1], n);
	if (ferror(in) || fclose(out) != 0) {
		fprintf(stderr, "embed: cannot write %s\n", argv[3]);
		remove(argv[3]);
		return 1;
	}
	fclose(in);
	return 0;
}
