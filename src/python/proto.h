/*
 * proto.h - the frames the core and its workers exchange over pipes.
 *
 * Every message is a frame:  length:u32le  payload[length]
 * (length counts the payload only and is at most PROTO_MAX_FRAME).
 *
 * Core -> worker (the worker's fd 3):
 *   compile  = 'C' id:u32le optimize:i32le dfile_len:u32le dfile source
 *              dfile is the bytes of co_filename (os.fsdecode'd by the worker),
 *              source is the rest of the payload, the file's raw bytes.
 *   End of input (the core closing the pipe) tells the worker to exit.
 *
 * Worker -> core (the worker's fd 4):
 *   hello    = 'H' version:u32le                      once, at startup
 *   code     = 'K' id:u32le marshalled-code           compile succeeded
 *   error    = 'E' id:u32le kind-len:u8 kind message  compile failed: kind is
 *              the exception's class name, message the formatted error (UTF-8)
 *   warning  = 'W' id:u32le body                      zero or more before K/E
 *   body     = flags:u8 filename lineno category message line
 *              filename, lineno, category, message: each n:u32le then n bytes;
 *              line: the rest.  The parts of the warnings module's
 *              formatwarning with (message, category, filename, lineno, line), as
 *              the worker's interpreter made them (str() of each, UTF-8 with
 *              backslashreplace): flags bit 0 (PROTO_WARN_AT_DFILE) when
 *              filename is the dfile compiled with, bit 1
 *              (PROTO_WARN_HAS_LINE) when the source has a non-empty line
 *              `lineno` (then `line` is that line stripped as str.strip()
 *              does, else empty); other bits are 0.  The core renders the
 *              text (proto_format_warning()) and decides whether the line is
 *              shown: compileall's warning shows it when linecache finds
 *              the file, i.e. when filename is the dfile and it exists.
 *              A body alone (without 'W' and id) is how the cache keeps a
 *              warning (cachephase.h).
 *
 * The worker's stdout and stderr (one pipe, the core's to read): whatever the
 * interpreter prints while compiling a file, then, before that file's K or
 * E, PROTO_OUTPUT_MARK, so that the core knows where one file's output ends
 * whatever order it reads the two pipes in.
 *
 * proto_decode() is pure and total: any byte string either decodes or is
 * rejected with -1; it never reads out of bounds (it is a fuzz target).
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define PROTO_VERSION 2
#define PROTO_MAX_FRAME (1u << 30)
#define PROTO_OUTPUT_MARK "\0prepyc:end-of-output\0"
#define PROTO_OUTPUT_MARK_LEN (sizeof(PROTO_OUTPUT_MARK) - 1)

enum proto_type {
	PROTO_HELLO = 'H',
	PROTO_COMPILE = 'C',
	PROTO_CODE = 'K',
	PROTO_ERROR = 'E',
	PROTO_WARNING = 'W',
};

enum {
	PROTO_WARN_AT_DFILE = 1 << 0,
	PROTO_WARN_HAS_LINE = 1 << 1,
};

/* A warning's parts (see the grammar); none NUL-terminated. */
struct proto_warning {
	unsigned flags;             /* PROTO_WARN_AT_DFILE | PROTO_WARN_HAS_LINE */
	const char *filename, *lineno, *category, *message, *line;
	size_t filename_len, lineno_len, category_len, message_len, line_len;
};

struct proto_msg {
	enum proto_type type;
	uint32_t id;        /* all but hello */
	uint32_t version;   /* hello */
	int32_t optimize;   /* compile */
	const char *dfile;  /* compile; not NUL-terminated */
	size_t dfile_len;
	const char *kind;   /* error; not NUL-terminated */
	size_t kind_len;
	const char *data;   /* compile: source; code: marshal data; error: message; warning: body */
	size_t data_len;
	struct proto_warning warn; /* warning: the body's parts */
};

/*
 * Start a compile frame at the end of `out` and return where it starts; the
 * caller appends the source bytes, then calls proto_end_frame() to fill in
 * the length.  This lets a source be read straight into the frame.
 */
size_t proto_begin_compile(struct strbuf *out, uint32_t id, int32_t optimize,
			   const char *dfile, size_t dfile_len);
/* 0, or -1 if the frame grew beyond PROTO_MAX_FRAME. */
int proto_end_frame(struct strbuf *out, size_t start);

/* Append a whole compile frame (length prefix included) to `out`. */
void proto_add_compile(struct strbuf *out, uint32_t id, int32_t optimize,
		       const char *dfile, size_t dfile_len, const char *source,
		       size_t source_len);

/*
 * Look for one complete frame at the start of buf[0..len).  Returns the
 * number of bytes it occupies (prefix included) and fills `payload` and
 * `payload_len`; 0 if more bytes are needed; -1 if the length is invalid.
 */
long proto_frame(const char *buf, size_t len, const char **payload, size_t *payload_len);

/* Decode one payload into `msg` (pointing into `payload`); 0 or -1. */
int proto_decode(const char *payload, size_t len, struct proto_msg *msg);

/* Decode a warning's body (pointing into `body`); 0 or -1 (bad lengths, unknown flags). */
int proto_decode_warning(const char *body, size_t len, struct proto_warning *w);

/* Append the body of warning `w` to `out` (what proto_decode_warning() reads back). */
void proto_add_warning(struct strbuf *out, const struct proto_warning *w);

/*
 * Append the text Python 3.6-3.15's warnings.formatwarning gives `w`
 * with `filename` (len bytes) in place of w->filename:
 *   "%s:%s: %s: %s\n" % (filename, lineno, category, message)
 * then, when `show_line` and w has a line, "  %s\n" % line.
 */
void proto_format_warning(struct strbuf *out, const struct proto_warning *w,
			  const char *filename, size_t len, int show_line);

#endif
