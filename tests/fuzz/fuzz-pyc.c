/*
 * fuzz-pyc - libFuzzer target for the pyc header reader and verifier
 * (src/format/pyc.c, src/format/verify.c) (`make fuzz-pyc`).
 *
 * Input: one byte choosing the target (its value % 6: 3.6 with 12-byte
 * headers, 3.11, PyPy 3.9, 3.8, 3.12, 3.13) and the requested invalidation
 * mode (value / 8 % 4: any, timestamp, unchecked-hash, checked-hash), then a
 * pyc's bytes.  verify_pyc() judges it against a small source ("x = 1\n",
 * mtime SOURCE_MTIME, so that a seed's timestamp header can be fresh and the
 * body reach the marshal reader), as `prepyc check` does (header, flags,
 * magic, mtime, size, source hash, the body through the marshal reader);
 * pyc_header_is_fresh() judges its first bytes; pyc_header_parse() reads
 * them and pyc_version_of_magic() names their magic; pycache_name_parts()
 * and pyc_legacy_source() parse the bytes as a file name.
 * Whatever the bytes: a status in range, a NUL-terminated detail, no
 * sanitizer report; a header written by pyc_header_timestamp() for the
 * source is always fresh; a header pyc_header_parse() accepts is written
 * back byte for byte by pyc_header_timestamp() or pyc_header_hash().
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyc.h"
#include "siphash.h"
#include "target.h"
#include "verify.h"
#include "walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SOURCE_MTIME 1700000000 /* the seeds' headers carry it */

static char dir[64], src_path[96], pyc_path[96];

static void cleanup(void)
{
	unlink(pyc_path);
	unlink(src_path);
	rmdir(dir);
}

static void setup(void)
{
	struct timespec times[2] = { { SOURCE_MTIME, 0 }, { SOURCE_MTIME, 0 } };
	int fd;

	/* a file per input: tmpfs is twenty times faster than a disk's /tmp */
	snprintf(dir, sizeof(dir), "/dev/shm/prepyc-fuzz-pyc-%ld", (long)getpid());
	if (mkdir(dir, 0700) < 0) {
		snprintf(dir, sizeof(dir), "/tmp/prepyc-fuzz-pyc-%ld", (long)getpid());
		if (mkdir(dir, 0700) < 0)
			abort();
	}
	snprintf(src_path, sizeof(src_path), "%s/m.py", dir);
	snprintf(pyc_path, sizeof(pyc_path), "%s/m.pyc", dir);
	fd = open(src_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "x = 1\n", 6) != 6)
		abort();
	close(fd);
	if (utimensat(AT_FDCWD, src_path, times, 0) < 0)
		abort();
	atexit(cleanup);
}

/* Parse the header at `data`; what parses is written back to the same bytes. */
static void check_header(const struct pyc_format *fmt, const uint8_t *data, size_t size)
{
	const struct pyc_version *pv;
	struct pyc_header h;
	unsigned char again[PYC_HEADER_MAX];
	size_t n;
	int r = pyc_header_parse(fmt, data, size, &h);

	if (r == PYC_PARSE_SHORT) {
		if (size >= fmt->header_len)
			abort();
		return;
	}
	pv = pyc_version_of_magic(pyc_magic_number(h.magic));
	if (pv && (pv->header_len != PYC_HEADER_LEN_36 && pv->header_len != PYC_HEADER_LEN))
		abort();
	if (r == PYC_PARSE_BAD_FLAGS) {
		if (!(h.flags & ~(uint32_t)PYC_FLAGS_KNOWN))
			abort();
		return;
	}
	if (r != 0 || h.len != fmt->header_len)
		abort();
	if (h.kind == PYC_KIND_TIMESTAMP && h.flags == 0) {
		struct pyc_format f = *fmt;

		memcpy(f.magic, h.magic, PYC_MAGIC_LEN);
		n = pyc_header_timestamp(&f, again, h.mtime32, h.size32);
	} else if (h.kind != PYC_KIND_TIMESTAMP) {
		struct pyc_format f = *fmt;

		memcpy(f.magic, h.magic, PYC_MAGIC_LEN);
		n = pyc_header_hash(&f, again, h.flags, h.hash);
	} else {
		return; /* flags 2: a timestamp pyc no writer makes */
	}
	if (n != h.len || memcmp(again, data, n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		unsigned char magic[4];
		size_t hlen;
		int minor, pypy, hash_kind;
	} kinds[] = {
		{ { 0x33, 0x0d, 0x0d, 0x0a }, 12, 6, 0, 0 },
		{ { 0xa7, 0x0d, 0x0d, 0x0a }, 16, 11, 0, SOURCE_HASH_SIPHASH13 },
		{ { 0x50, 0x01, 0x0d, 0x0a }, 16, 9, 1, SOURCE_HASH_SIPHASH24 },
		{ { 0x55, 0x0d, 0x0d, 0x0a }, 16, 8, 0, SOURCE_HASH_SIPHASH24 },
		{ { 0xcb, 0x0d, 0x0d, 0x0a }, 16, 12, 0, SOURCE_HASH_SIPHASH13 },
		{ { 0xf3, 0x0d, 0x0d, 0x0a }, 16, 13, 0, SOURCE_HASH_SIPHASH13 },
	};
	struct target t;
	struct source s;
	struct stat st;
	char detail[512], *name, *tag = NULL, *source = NULL;
	unsigned char hdr[PYC_HEADER_MAX];
	enum pyc_status status;
	int k, want_mode, fd;

	if (!dir[0])
		setup();
	if (size < 1)
		return 0;
	k = data[0] % 6;
	want_mode = (const int[]){ -1, 0, 1, 3 }[data[0] / 8 % 4];
	data++;
	size--;

	memset(&t, 0, sizeof(t));
	memcpy(t.fmt.magic, kinds[k].magic, 4);
	t.fmt.header_len = kinds[k].hlen;
	t.major = 3;
	t.minor = kinds[k].minor;
	t.implementation = kinds[k].pypy ? "pypy" : "cpython";
	t.display = "fuzz";
	t.has_hash_pycs = kinds[k].hash_kind != 0;
	t.hash_kind = kinds[k].hash_kind;

	fd = open(pyc_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	if (stat(src_path, &st) < 0)
		abort();
	memset(&s, 0, sizeof(s));
	s.path = src_path;
	s.size = (uint64_t)st.st_size;
	s.mtime_sec = st.st_mtim.tv_sec;
	s.mtime_nsec = st.st_mtim.tv_nsec;
	s.mode = st.st_mode;

	detail[0] = 'x';
	status = verify_pyc(&t, pyc_path, &s, want_mode, detail, sizeof(detail));
	if ((int)status < 0 || status >= PYC_NSTATUS || !memchr(detail, '\0', sizeof(detail)))
		abort();
	if (!pyc_status_name(status))
		abort();

	pyc_header_is_fresh(&t.fmt, data, size, 0x12345678, size);
	pyc_header_timestamp(&t.fmt, hdr, pyc_mtime32(s.mtime_sec, s.mtime_nsec), s.size);
	if (!pyc_header_is_fresh(&t.fmt, hdr, t.fmt.header_len,
				 pyc_mtime32(s.mtime_sec, s.mtime_nsec), s.size))
		abort();

	check_header(&t.fmt, data, size);

	name = malloc(size + 1);
	memcpy(name, data, size);
	name[size] = '\0';
	if (pycache_name_parts(name, &tag, &source) == 0 && (!tag || !source))
		abort();
	free(tag);
	free(source);
	free(pyc_legacy_source(name));
	free(name);
	return 0;
}
