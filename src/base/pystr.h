/*
 * pystr.h - Python's text for paths and OSErrors, as compileall prints it.
 *
 * compileall prints paths with {!r} and an OSError with its class, errno
 * and strerror; prepyc's compileall style must print the same bytes.
 * py_repr_path() is repr() of a str made from the path's bytes with
 * os.fsdecode() (UTF-8, surrogateescape): the quote Python picks, the
 * escapes of backslash and the quote, \t \n \r, and \xNN / \uNNNN /
 * \UNNNNNNNN for what str.isprintable() rejects (close enough: the
 * controls, separators, format characters and private use it rejects;
 * an undecodable byte as \udcNN).
 *
 * Both functions are pure (no I/O), thread-safe, and return a new string
 * the caller frees.
 */
#ifndef PYSTR_H
#define PYSTR_H

/* repr(os.fsdecode(path)). */
char *py_repr_path(const char *path);

/*
 * "PermissionError: [Errno 13] Permission denied: 'path'": the class
 * Python gives an OSError of errno `err`, the errno, strerror(err), and
 * py_repr_path(path).
 */
char *py_oserror(int err, const char *path);

#endif
