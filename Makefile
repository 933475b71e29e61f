# prepyc - plain Makefile.  `make` needs only cc and make; `make test` also python3.
#   make                 build ./prepyc
#   make test            header lint + C unit tests + end-to-end tests
#                        (ends with "N passed, N failed")
#   make lint            do the header comments name real functions with their
#                        real signatures?  (tools/check-headers.py; make test runs it)
#   make asan            the same tests with AddressSanitizer + UndefinedBehaviorSanitizer
#   make conformance     compare with compileall on the full stdlib of every interpreter
#   make compileall-tests  CPython's test_compileall command-line tests against `prepyc compileall`
#   make test-valgrind   unit + end-to-end tests with prepyc under valgrind (~12 min;
#                        VALGRIND_TESTS="-k NAME" for a part); not in CI
#   make bench           compare speed with `python -m compileall -j0`
#   make fuzz            libFuzzer on the marshal reader, frame decoder, pyc reader and
#                        option parser, FUZZ_SECONDS (60) each; needs clang
#   make install PREFIX=/usr/local    (DESTDIR=... for staging)
#   make uninstall PREFIX=/usr/local  removes what install installed
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
ALL_CFLAGS = -std=c11 -pthread $(INCLUDES) $(WARN) $(CFLAGS) -DPREPYC_VERSION='"$(VERSION)"' -MMD -MP
LDFLAGS ?=
LIBS = -pthread

# Optional: libarchive, for `prepyc check BUNDLE` (zip, wheel, tar); without
# it that says which package to install.  NO_LIBARCHIVE=1 leaves it out.
ifneq ($(NO_LIBARCHIVE),1)
ifeq ($(shell pkg-config --exists libarchive 2>/dev/null && echo yes),yes)
ALL_CFLAGS += -DPREPYC_WITH_LIBARCHIVE $(shell pkg-config --cflags libarchive)
# prepyc loads it with dlopen() when a bundle is read (bundle-read.c): linked,
# it and its fifteen libraries slowed every run's start.  The unit tests
# write bundles with it, so they link it.
LIBS += -ldl
TEST_LIBS = $(shell pkg-config --libs libarchive)
endif
endif

# Optional libraries, found with pkg-config; without them the build stays
# libc-only and the feature says what to install (REMOTE=0 leaves them out).
#   libcurl  --remote-cache http(s)://   (src/cache/store-http.c)
#   hiredis  --remote-cache redis://     (src/cache/store-redis.c)
#   libzstd  remote values compressed    (src/cache/compress.c)
PKG_CONFIG ?= pkg-config
REMOTE ?= 1
ifeq ($(REMOTE),1)
HAVE_CURL := $(shell $(PKG_CONFIG) --exists libcurl 2>/dev/null && echo 1)
HAVE_HIREDIS := $(shell $(PKG_CONFIG) --exists hiredis 2>/dev/null && echo 1)
HAVE_ZSTD := $(shell $(PKG_CONFIG) --exists libzstd 2>/dev/null && echo 1)
endif
# All three are loaded with dlopen() when a remote store first calls them
# (src/cache/remote-libs.c): linked, their 30 libraries slowed every run's start.
ifeq ($(HAVE_CURL),1)
ALL_CFLAGS += -DPREPYC_WITH_LIBCURL $(shell $(PKG_CONFIG) --cflags libcurl)
LIBS += -ldl
endif
ifeq ($(HAVE_HIREDIS),1)
ALL_CFLAGS += -DPREPYC_WITH_HIREDIS $(shell $(PKG_CONFIG) --cflags hiredis)
LIBS += -ldl
endif
ifeq ($(HAVE_ZSTD),1)
ALL_CFLAGS += -DPREPYC_WITH_ZSTD $(shell $(PKG_CONFIG) --cflags libzstd)
LIBS += -ldl
endif

BUILD = build
# src/ is in layers, each a folder (ARCHITECTURE.md): base <- format <- python,
# cache <- engine <- cli.  Object files are named after the source alone.
SRC_DIRS = base format python cache engine cli
INCLUDES = $(addprefix -Isrc/,$(SRC_DIRS))
vpath %.c $(addprefix src/,$(SRC_DIRS))
# The library (every layer but the commands) is what the unit tests and the
# test tool link; the commands and main() only go into prepyc.
LIB_SRC = $(foreach d,$(filter-out cli,$(SRC_DIRS)),$(wildcard src/$(d)/*.c))
CLI_SRC = $(filter-out src/cli/main.c,$(wildcard src/cli/*.c))
LIB_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(notdir $(LIB_SRC))) $(BUILD)/embedded.o
CLI_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(notdir $(CLI_SRC)))
MAIN_OBJ = $(BUILD)/main.o $(CLI_OBJ)
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_HDR = tests/unit/harness.h tests/unit/tests.list
UNIT_OBJ = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%.o)
TOOL_OBJ = $(BUILD)/tools/test-tool.o

all: prepyc

prepyc: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/%.o: %.c | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%.o: tests/unit/%.c $(UNIT_HDR) | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tools/%.o: tests/tools/%.c | $(BUILD)
	@mkdir -p $(BUILD)/tools
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The Python programs the binary runs in target interpreters, embedded as C arrays.
$(BUILD)/embed: tools/embed.c | $(BUILD)
	$(CC) -O1 -o $@ $<

$(BUILD)/worker_py.c: src/python/worker.py $(BUILD)/embed
	$(BUILD)/embed worker_py $< $@

$(BUILD)/facts_py.c: src/python/facts.py $(BUILD)/embed
	$(BUILD)/embed facts_py $< $@

$(BUILD)/rxfilter_py.c: src/python/rxfilter.py $(BUILD)/embed
	$(BUILD)/embed rxfilter_py $< $@

$(BUILD)/syspath_py.c: src/python/syspath.py $(BUILD)/embed
	$(BUILD)/embed syspath_py $< $@

$(BUILD)/importcheck_py.c: src/python/importcheck.py $(BUILD)/embed
	$(BUILD)/embed importcheck_py $< $@

EMBEDDED = $(BUILD)/worker_py.c $(BUILD)/facts_py.c $(BUILD)/rxfilter_py.c $(BUILD)/syspath_py.c \
	   $(BUILD)/importcheck_py.c
$(BUILD)/embedded.o: $(EMBEDDED)
	cat $(EMBEDDED) > $(BUILD)/embedded.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $(BUILD)/embedded.c

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS) $(TEST_LIBS)

# The end-to-end tests' helper (tests/tools/test-tool.c), linked like the unit tests.
$(BUILD)/test-tool: $(TOOL_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

# tests/run.py runs the header lint (as `make lint`) first, as one test of
# its count, so that a finding neither stops the tests nor hides their
# closing "N passed, N failed" line.
test: prepyc $(BUILD)/unit-tests $(BUILD)/test-tool
	@sh tests/pyodide/install.sh || true
	PREPYC=$(CURDIR)/prepyc PREPYC_UNIT_TESTS=$(CURDIR)/$(BUILD)/unit-tests \
		PREPYC_TEST_TOOL=$(CURDIR)/$(BUILD)/test-tool $(PYTHON) tests/run.py

# Sanitized build in its own directory; the tests run against it.
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		build-asan/prepyc build-asan/unit-tests build-asan/test-tool
	ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 \
		PREPYC=$(CURDIR)/build-asan/prepyc PREPYC_UNIT_TESTS=$(CURDIR)/build-asan/unit-tests \
		PREPYC_TEST_TOOL=$(CURDIR)/build-asan/test-tool \
		$(PYTHON) tests/run.py

$(BUILD)/prepyc: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LIBS)

conformance: prepyc
	@sh tests/pyodide/install.sh || true
	$(PYTHON) tests/conformance.py

# CPython's own compileall command-line tests (each interpreter's
# Lib/test/test_compileall.py) run against `prepyc compileall`.
compileall-tests: prepyc
	PREPYC=$(CURDIR)/prepyc $(PYTHON) tests/cpython/run_compileall_tests.py

# libFuzzer on src/format/marshal.c and canon.c, seeded with
# tests/fuzz/corpus/marshal (new inputs it finds go to
# build/fuzz-marshal-corpus, crashes to build/).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SRC_marshal = src/format/marshal.c src/format/canon.c src/base/strbuf.c src/base/util.c
$(BUILD)/fuzz-marshal: tests/fuzz/fuzz-marshal.c $(FUZZ_SRC_marshal) $(wildcard src/*/*.h) | $(BUILD)
	$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		$(INCLUDES) -o $@ tests/fuzz/fuzz-marshal.c $(FUZZ_SRC_marshal)

fuzz-marshal: $(BUILD)/fuzz-marshal
	@mkdir -p $(BUILD)/fuzz-marshal-corpus
	$(BUILD)/fuzz-marshal -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/ \
		$(BUILD)/fuzz-marshal-corpus tests/fuzz/corpus/marshal

# libFuzzer on the frame decoder, the pyc reader/verifier and the option
# parser, each linked with only the sources it needs (FUZZ_SRC_NAME), the
# same way; `make fuzz` runs all four targets.
FUZZ_FLAGS = -std=c11 -pthread -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined $(INCLUDES)
FUZZ_TARGETS = proto pyc options
FUZZ_SRC_proto = src/python/proto.c src/base/strbuf.c src/base/util.c
FUZZ_SRC_pyc = src/format/pyc.c src/format/verify.c src/format/marshal.c src/format/siphash.c \
	src/base/strbuf.c src/base/util.c
FUZZ_SRC_options = src/base/options.c src/base/strbuf.c src/base/util.c
$(BUILD)/fuzz-proto: tests/fuzz/fuzz-proto.c $(FUZZ_SRC_proto) $(wildcard src/*/*.h) | $(BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRC_proto)
$(BUILD)/fuzz-pyc: tests/fuzz/fuzz-pyc.c $(FUZZ_SRC_pyc) $(wildcard src/*/*.h) | $(BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRC_pyc)
$(BUILD)/fuzz-options: tests/fuzz/fuzz-options.c $(FUZZ_SRC_options) $(wildcard src/*/*.h) | $(BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRC_options)

$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%: $(BUILD)/fuzz-%
	@mkdir -p $(BUILD)/fuzz-$*-corpus
	$(BUILD)/fuzz-$* -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/ \
		-close_fd_mask=2 $(BUILD)/fuzz-$*-corpus tests/fuzz/corpus/$*

fuzz: fuzz-marshal $(addprefix fuzz-,$(FUZZ_TARGETS))

# The unit tests under valgrind (all but marshal_nesting_limit, 100,000 deep:
# hours), then the end-to-end tests against one interpreter (VALGRIND_PYTHON)
# with every prepyc process under valgrind: tests/valgrind-prepyc is PREPYC
# and writes one log per process to build/valgrind (never to the output the
# tests compare, nor into the exit status they check); run.py --valgrind-logs
# then counts each process with a memcheck error or a definite/indirect leak
# as a failure, in its closing "N passed, N failed" line.  Workers are not
# traced.  Not part of CI.
# The whole suite: about 12 minutes on 2 cores.  VALGRIND_TESTS="-k NAME ..."
# runs a part of it (run.py's -k patterns).
VALGRIND ?= valgrind
VALGRIND_PYTHON ?= /usr/bin/python3
VALGRIND_TESTS ?=
test-valgrind: prepyc $(BUILD)/unit-tests $(BUILD)/test-tool
	$(VALGRIND) -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 --track-fds=no $(BUILD)/unit-tests '!marshal_nesting_limit'
	rm -rf $(BUILD)/valgrind && mkdir -m 1777 -p $(BUILD)/valgrind # a test runs prepyc as nobody
	PREPYC=$(CURDIR)/tests/valgrind-prepyc PREPYC_REAL=$(CURDIR)/prepyc \
	PREPYC_VALGRIND="$$(command -v $(VALGRIND))" PREPYC_VALGRIND_LOGS=$(CURDIR)/$(BUILD)/valgrind \
	PREPYC_TEST_TOOL=$(CURDIR)/$(BUILD)/test-tool PREPYC_TEST_PYTHONS=$(VALGRIND_PYTHON) \
		$(PYTHON) tests/run.py --no-lint --no-unit --valgrind-logs $(BUILD)/valgrind $(VALGRIND_TESTS)

lint:
	$(PYTHON) tools/check-headers.py

bench: prepyc $(BUILD)/test-tool
	$(PYTHON) bench/bench.py --prepyc ./prepyc --test-tool $(BUILD)/test-tool

# install copies the binary alone, and uninstall removes exactly that file
# (pip users: `pip install .`, `pip uninstall prepyc`; see pyproject.toml).
install: prepyc
	mkdir -p $(DESTDIR)$(BINDIR)
	cp prepyc $(DESTDIR)$(BINDIR)/prepyc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/prepyc

clean:
	rm -rf build build-asan prepyc

.PHONY: all test lint asan conformance compileall-tests bench install uninstall clean fuzz \
	fuzz-marshal \
	$(addprefix fuzz-,$(FUZZ_TARGETS)) test-valgrind

-include $(wildcard $(BUILD)/*.d $(BUILD)/unit/*.d $(BUILD)/tools/*.d)
