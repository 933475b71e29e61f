# prepyc - plain Makefile.  `make` needs only cc and make; `make test` also python3.
#   make                 build ./prepyc
#   make test            C unit tests + end-to-end tests (ends with "N passed, N failed")
#   make asan            the same tests with AddressSanitizer + UndefinedBehaviorSanitizer
#   make conformance     compare with compileall on the full stdlib of every interpreter
#   make bench           compare speed with `python -m compileall -j0`
#   make install PREFIX=/usr/local
#   DEVELOPER=1          adds -Werror and stricter warnings

CC ?= cc
PYTHON ?= python3
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
VERSION = 0.1.0

CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(DEVELOPER),1)
WARN += -Werror
endif
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -DPREPYC_VERSION='"$(VERSION)"' -MMD -MP
LDFLAGS ?=

BUILD = build
LIB_SRC = src/util.c src/strbuf.c src/pyc.c src/proto.c src/child.c src/target.c \
	  src/walk.c src/pool.c src/tempfile.c src/options.c src/progress.c \
	  src/cmd-compile.c
LIB_OBJ = $(LIB_SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/embedded.o
MAIN_OBJ = $(BUILD)/main.o
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_OBJ = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%.o)

all: prepyc

prepyc: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%.o: tests/unit/%.c | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -Isrc -c -o $@ $<

# The Python programs the binary runs in target interpreters, embedded as C arrays.
$(BUILD)/embed: tools/embed.c | $(BUILD)
	$(CC) -O1 -o $@ $<

$(BUILD)/worker_py.c: src/worker.py $(BUILD)/embed
	$(BUILD)/embed worker_py $< $@

$(BUILD)/facts_py.c: src/facts.py $(BUILD)/embed
	$(BUILD)/embed facts_py $< $@

$(BUILD)/embedded.o: $(BUILD)/worker_py.c $(BUILD)/facts_py.c
	cat $(BUILD)/worker_py.c $(BUILD)/facts_py.c > $(BUILD)/embedded.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $(BUILD)/embedded.c

$(BUILD):
	@mkdir -p $(BUILD)

tests/unit/unit-tests: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS)

test: prepyc tests/unit/unit-tests
	$(PYTHON) tests/run.py

# Sanitized build in its own directory; the tests run against it.
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" prepyc tests/unit/unit-tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(PYTHON) tests/run.py
	$(MAKE) clean-objects

conformance: prepyc
	$(PYTHON) tests/conformance.py

bench: prepyc
	$(PYTHON) bench/bench.py --prepyc ./prepyc

install: prepyc
	mkdir -p $(DESTDIR)$(BINDIR)
	cp prepyc $(DESTDIR)$(BINDIR)/prepyc

clean-objects:
	rm -f prepyc tests/unit/unit-tests

clean:
	rm -rf build build-asan prepyc tests/unit/unit-tests

.PHONY: all test asan conformance bench install clean clean-objects

-include $(wildcard $(BUILD)/*.d $(BUILD)/unit/*.d)
