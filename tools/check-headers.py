#!/usr/bin/env python3
"""check-headers.py - do the header comments still match the code?

A header's top comment is the module's manual (ARCHITECTURE.md, STYLE.md):
it must name only functions that exist, with their real signatures.  This
checks the comments of every src/**/*.h and the top comment of every
src/**/*.c against the functions declared or defined in src/:

  - every `name(` in a comment (a call or a mention, `name()`) must name a
    function declared or defined in src/, a function-like macro, a function
    pointer parameter or member of the same file (`fn(ctx, i)`), or, as a
    shorthand, the tail of a function of the same file (`start()` for
    target_probe_start()); names after `.` or `->` (`marshal.dumps()`,
    `ops->next()`), C keywords, well-known libc/POSIX functions, Python
    builtins and the CPython C API (Py*) are skipped;
  - a call written with arguments, `name(a, b)`, must have as many as the
    declaration has parameters (at least as many as its fixed ones when it
    is variadic; `name(...)` is not counted);
  - a function written out in a comment as a definition or prototype
    (`static void check_one(void *ctx, size_t i) { ... }`) must match the
    declaration when it is a project function, and, when an example passes
    it to a project function, the function pointer parameter it is given to;
  - a family written `prefix_*` (`cmd_*`) must match at least one function.

A deliberate mention of something that is not a function of the project
(an algorithm written as a function, `SipHash(k0, k1, m)`) goes in
tools/check-headers.allow, one `NAME  reason` per line; an entry that is no
longer needed is itself reported.

Usage: tools/check-headers.py [--allow FILE] [SRC]   (SRC: src/ beside tools/)
Prints one `FILE:LINE: message` per finding; exit status 1 when there is
one, 2 on a usage error, else 0.  Python 3.8+, standard library only.
"""

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

C_KEYWORDS = set('''
    auto break case char const continue default do double else enum extern
    float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn
    _Static_assert _Thread_local alignof alignas bool defined
    __attribute__ __typeof__ typeof __builtin_expect offsetof
'''.split())

# Type names a parameter or a return type may start with, besides the
# project's own typedefs and `struct X`.
C_TYPES = set('''
    void char short int long float double signed unsigned const volatile
    struct enum union _Bool bool size_t ssize_t off_t mode_t pid_t uid_t gid_t
    time_t dev_t ino_t nlink_t uint8_t uint16_t uint32_t uint64_t int8_t
    int16_t int32_t int64_t uintptr_t intptr_t ptrdiff_t FILE DIR va_list
    static inline extern
'''.split())

# Well-known C library and POSIX functions (and macros used as functions):
# a comment may name them freely.
LIBC = set('''
    abort abs access alarm atexit atoi atol bsearch calloc chdir chmod chown
    clock_gettime close closedir creat dirfd dup dup2 dup3 environ execl
    execle execlp execv execve execvp execvpe exit _exit fchmod fchown fclose
    fcntl fdatasync fdopen fdopendir feof ferror fflush fgets fileno flock
    fopen fork fprintf fputc fputs fread free freopen fscanf fseek fstat
    fstatat fsync ftell ftruncate futimens fwrite getcwd getenv geteuid getpid
    getppid getrlimit getuid isatty isalnum isalpha isdigit isprint isspace
    kill link linkat localtime lseek lstat malloc memchr memcmp memcpy memmem
    memmove memset mkdir mkdirat mkdtemp mkostemp mkstemp mmap munmap nanosleep
    open openat opendir perror pipe pipe2 poll posix_spawn posix_spawnp
    posix_spawn_file_actions_addclose posix_spawn_file_actions_adddup2
    posix_spawn_file_actions_addopen posix_spawn_file_actions_destroy
    posix_spawn_file_actions_init posix_spawnattr_init posix_spawnattr_destroy
    posix_spawnattr_setsigdefault posix_spawnattr_setsigmask
    posix_spawnattr_setflags pread printf putc putchar puts pwrite qsort raise
    read readdir readlink readlinkat readv realloc realpath remove rename
    renameat rewinddir rmdir select setenv setlocale setrlimit sigaction
    sigaddset sigemptyset sigfillset signal sigprocmask snprintf sprintf
    stat statvfs strcat strchr strcmp strcpy strcspn strdup strerror strftime
    strlen strncat strncmp strncpy strndup strnlen strrchr strspn strstr
    strtod strtok strtol strtoll strtoul strtoull symlink sysconf system time
    tolower toupper umask uname unlink unlinkat unsetenv usleep utime
    utimensat vfprintf vsnprintf vsprintf wait waitpid write writev
    pthread_create pthread_join pthread_detach pthread_self pthread_sigmask
    pthread_mutex_init pthread_mutex_destroy pthread_mutex_lock
    pthread_mutex_unlock pthread_cond_init pthread_cond_destroy
    pthread_cond_wait pthread_cond_signal pthread_cond_broadcast pthread_once
    atomic_fetch_add atomic_load atomic_store assert errno va_start va_end
    va_arg va_copy gets mktemp
'''.split())

# Python names that header comments use when they say what Python does
# (`compile()`, `repr()`, `int(st_mtime)`); dotted names are skipped anyway.
PYTHON = set('''
    compile exec eval repr print open hash int str bytes bytearray float len
    isinstance issubclass type object tuple list dict set frozenset range
    iter next sorted ord chr hex divmod round min max sum any all getattr
    setattr hasattr id input format isprintable isidentifier encode decode
    join split strip startswith endswith replace dumps loads load dump
    cache_from_source source_from_cache source_hash makedirs walk listdir
    scandir fspath fsencode fsdecode
'''.split())

TOKEN_RE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
IDENT_PAREN_RE = re.compile(r'\b([A-Za-z_]\w*)\s*\(')
MENTION_RE = re.compile(r'([A-Za-z_]\w*)\(')
GLOB_RE = re.compile(r'(?<![\w.*])([A-Za-z_]\w*_)\*(?![\w*])')
DEFINE_RE = re.compile(r'^[ \t]*#[ \t]*define[ \t]+(\w+)(\(([^)]*)\))?', re.M)
PARAM_FNPTR_RE = re.compile(r'\(\s*\*\s*(\w+)\s*\)\s*\(')


class Func:
    """A function (or function-like macro, or function pointer) and its parameters."""

    def __init__(self, name, path, line, ret, params, kind):
        self.name, self.path, self.line, self.ret, self.kind = name, path, line, ret, kind
        self.variadic = bool(params) and params[-1] == '...'
        self.params = params[:-1] if self.variadic else params

    def arity(self):
        return ('%d or more' if self.variadic else '%d') % len(self.params)

    def accepts(self, n):
        return n >= len(self.params) if self.variadic else n == len(self.params)

    def where(self, cwd):
        return '%s:%d' % (show(self.path, cwd), self.line)


def show(path, cwd):
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith('..') else rel


def line_of(text, pos):
    return text.count('\n', 0, pos) + 1


def blank(s):
    """Spaces for every character but newlines (offsets and lines are kept)."""
    return re.sub(r'[^\n]', ' ', s)


def match_paren(text, i):
    """Index of the ')' closing the '(' at text[i], or -1."""
    depth = 0
    quote = None
    j = i
    while j < len(text):
        c = text[j]
        if quote:
            if c == '\\':
                j += 1
            elif c == quote:
                quote = None
        elif c in '"':
            quote = c
        elif c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
            if depth == 0:
                return j if c == ')' else -1
        j += 1
    return -1


def split_top(s):
    """Split at the commas outside (), [], {} and quotes."""
    parts, depth, cur, quote = [], 0, [], None
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            if c == '\\' and i + 1 < len(s):
                cur.append(c)
                i += 1
                c = s[i]
            elif c == quote:
                quote = None
        elif c in '"\'':
            # a quote inside a word (don't, the file's) is prose, not a literal
            if c == '"' or not (i > 0 and s[i - 1].isalnum()):
                quote = c
        elif c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        elif c == ',' and depth == 0:
            parts.append(''.join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    parts.append(''.join(cur).strip())
    return parts


def parse_params(s):
    """Parameter strings of a declaration's list: [] for (void) and ()."""
    s = ' '.join(s.split())
    if s in ('', 'void'):
        return []
    return split_top(s)


def norm_type(param):
    """A parameter's type without its name: 'const char **argv' -> 'const char**',
    'void (*fn)(void *ctx, size_t i)' -> 'void(*)(void*,size_t)'."""
    param = ' '.join(param.split())
    if param == '...':
        return param
    m = PARAM_FNPTR_RE.search(param)
    if m:
        close = match_paren(param, m.end() - 1)
        inner = param[m.end():close] if close > 0 else ''
        ret = norm_type(param[:m.start()] + ' x')
        return '%s(*)(%s)' % (ret, ','.join(norm_type(p) for p in parse_params(inner)))
    param = re.sub(r'\[[^\]]*\]', '*', param)  # arrays decay
    toks = [t for t in re.findall(r'\w+|\*', param) if t not in ('static', 'inline', 'extern')]
    words = [t for t in toks if t != '*']
    last = toks[-1] if toks else ''
    # the name is the last word when something besides qualifiers and a
    # struct/enum tag is left before it
    if last not in ('*',) and last not in C_TYPES and len(words) >= 2 and \
            not (len(toks) >= 2 and toks[-2] in ('struct', 'enum', 'union')):
        toks.pop()
    out = ''
    for t in toks:
        if t == '*':
            out += '*'
        else:
            out += (' ' if out and out[-1] != '*' else (' ' if out else '')) + t
    return out.replace(' *', '*').strip()


def signature(ret, params):
    return '%s(%s)' % (norm_type(ret + ' x'), ','.join(norm_type(p) for p in params))


class Tree:
    def __init__(self):
        self.funcs = {}     # name -> [Func] (functions and function-like macros)
        self.locals = {}    # path -> {name: [Func]}: function pointer params and members
        self.typedefs = set()
        self.files = []     # (path, text, blanked code, [(start, end)] of comments)

    def add(self, f):
        if f.kind == 'pointer':
            self.locals.setdefault(f.path, {}).setdefault(f.name, []).append(f)
        else:
            fs = self.funcs.setdefault(f.name, [])
            fs.append(f)
            # the header's declaration first: it is the one messages point at
            fs.sort(key=lambda g: (not g.path.endswith('.h'), g.kind == 'def'))


def scan_file(tree, path):
    with open(path, encoding='utf-8', errors='replace') as fh:
        text = fh.read()
    comments = []
    pieces, last = [], 0
    for m in TOKEN_RE.finditer(text):
        pieces.append(text[last:m.start()])
        tok = m.group(0)
        if tok.startswith('/*') or tok.startswith('//'):
            comments.append((m.start(), m.end()))
            pieces.append(blank(tok))
        else:
            pieces.append(tok[0] + blank(tok[1:-1]) + tok[-1])
        last = m.end()
    pieces.append(text[last:])
    code = ''.join(pieces)
    tree.files.append((path, text, code, comments))

    # preprocessor lines: function-like macros, then out of the way
    for m in DEFINE_RE.finditer(code):
        if m.group(2) is not None:
            params = parse_params(m.group(3))
            tree.add(Func(m.group(1), path, line_of(code, m.start(1)), '', params, 'macro'))

    def drop_directive(m):
        return blank(m.group(0))
    code = re.sub(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', drop_directive, code, flags=re.M)

    # file-scope statements, split at ';', '{' and '}' outside braces; in
    # the braces of a struct or union, its members
    stack, start = [], 0
    for i, c in enumerate(code):
        if c == '{':
            if not stack:
                scan_decl(tree, path, code, start, i, True)
            in_struct = re.search(r'\b(struct|union)\b[^()=]*$', code[start:i]) is not None
            stack.append(in_struct or (bool(stack) and stack[-1]))
            start = i + 1
        elif c == '}':
            if stack:
                stack.pop()
            start = i + 1
        elif c == ';':
            if not stack:
                scan_decl(tree, path, code, start, i, False)
            elif stack[-1]:
                scan_member(tree, path, code, start, i)
            start = i + 1
    return text


def scan_decl(tree, path, code, start, end, is_def):
    stmt = code[start:end]
    if not stmt.strip():
        return
    words = stmt.split()
    if words[0] == 'typedef':
        m = re.search(r'(\w+)\s*(\[[^\]]*\]\s*)*$', stmt)
        if m:
            tree.typedefs.add(m.group(1))
        return
    if '=' in stmt:
        return
    for m in IDENT_PAREN_RE.finditer(stmt):
        name = m.group(1)
        if name in C_KEYWORDS or name.startswith('__') or name.isupper():
            continue  # an attribute or a macro standing for one (NORETURN, PRINTF_LIKE)
        before = stmt[:m.start()]
        before_clean = re.sub(r'\b[A-Z_][A-Z0-9_]*\b(\s*\([^()]*\))?',
                              lambda a: a.group(0) if a.group(0) in C_TYPES else ' ', before)
        if not re.match(r'^[\w\s*]*$', before_clean) or not re.search(r'\w', before_clean):
            return
        close = match_paren(stmt, m.end() - 1)
        if close < 0:
            return
        params = parse_params(stmt[m.end():close])
        line = line_of(code, start + m.start(1))
        tree.add(Func(name, path, line, before_clean, params, 'def' if is_def else 'decl'))
        for p in params:
            scan_pointer(tree, path, p, line)
        return


def scan_member(tree, path, code, start, end):
    stmt = code[start:end]
    if '(' in stmt:
        scan_pointer(tree, path, stmt, line_of(code, start + len(stmt) - len(stmt.lstrip())))


def scan_pointer(tree, path, decl, line):
    """A function pointer (parameter or struct member): callable by name in comments."""
    m = PARAM_FNPTR_RE.search(decl)
    if m:
        close = match_paren(decl, m.end() - 1)
        if close > 0:
            tree.add(Func(m.group(1), path, line, decl[:m.start()],
                          parse_params(decl[m.end():close]), 'pointer'))


def top_comment(text, comments):
    """The comment a .c file starts with (blank lines aside), as a list."""
    if comments and not text[:comments[0][0]].strip():
        return comments[:1]
    return []


def comment_body(raw):
    """A comment's text with the markers of its lines blanked (offsets kept)."""
    body = re.sub(r'^/\*|\*/$|^//', lambda m: ' ' * len(m.group(0)), raw)
    return re.sub(r'(\n[ \t]*)\*', lambda m: m.group(1) + ' ', body)


EXAMPLE_DEF_RE = re.compile(
    r'(?<![\w.>])((?:(?:static|inline|const|unsigned|signed|struct|enum|union)\s+)*'
    r'[A-Za-z_]\w*[\s*]+)([A-Za-z_]\w*)\(')


def looks_like_decl(tree, ret, params):
    """Is `RET name(PARAMS)` in a comment a prototype rather than prose?"""
    def typeword(s):
        w = re.match(r'\s*(\w+)', s)
        return bool(w) and (w.group(1) in C_TYPES or w.group(1) in tree.typedefs)
    if not typeword(ret):
        return False
    for p in params:
        if p != '...' and not (typeword(p) and (len(re.findall(r'\w+', p)) >= 2 or p == 'void')):
            return False
    return True


class Checker:
    def __init__(self, tree, allow, cwd):
        self.tree, self.allow, self.cwd = tree, allow, cwd
        self.findings = []
        self.allow_used = set()
        self.names = set(tree.funcs)

    def report(self, path, line, msg):
        self.findings.append((show(path, self.cwd), line, msg))

    def check_comment(self, path, text, start, end):
        body = comment_body(text[start:end])
        local = dict(self.tree.locals.get(path, {}))
        file_funcs = [f for fs in self.tree.funcs.values() for f in fs if f.path == path]

        # example definitions and prototypes first: their names are known below
        examples = {}
        for m in EXAMPLE_DEF_RE.finditer(body):
            open_ = m.end() - 1
            close = match_paren(body, open_)
            if close < 0:
                continue
            params = parse_params(body[open_ + 1:close])
            ret = m.group(1)
            if not looks_like_decl(self.tree, ret, params):
                continue
            name = m.group(2)
            ex = Func(name, path, line_of(text, start + m.start(2)), ret, params, 'example')
            examples[name] = ex
            self.check_example_decl(ex)

        for m in MENTION_RE.finditer(body):
            name = m.group(1)
            pre = body[max(0, m.start() - 2):m.start()]
            if pre.endswith('.') or pre == '->' or pre == '::' or pre.endswith('%'):
                continue
            line = line_of(text, start + m.start())
            close = match_paren(body, m.end() - 1)
            args = None
            if close > 0:
                inner = ' '.join(body[m.end():close].split())
                args = [] if inner == '' else split_top(inner)
            if name in examples and examples[name].line == line:
                continue  # the example's own definition
            cands = self.tree.funcs.get(name) or local.get(name)
            if cands is None and name in examples:
                cands = [examples[name]]
            if cands:
                if args and args != ['...']:
                    self.check_call(path, line, name, args, cands, examples)
                continue
            if self.skipped(name):
                continue
            if name in self.allow:
                self.allow_used.add(name)
                continue
            if any(f.name.endswith('_' + name) for f in file_funcs):
                continue  # start() for target_probe_start() beside it
            self.report(path, line, '%s() names no function of src/ (no declaration, definition '
                        'or function-like macro; a deliberate mention goes in check-headers.allow)'
                        % name)

        for m in GLOB_RE.finditer(body):
            prefix = m.group(1)
            if any(n.startswith(prefix) for n in self.names):
                continue
            if prefix + '*' in self.allow:
                self.allow_used.add(prefix + '*')
                continue
            self.report(path, line_of(text, start + m.start()),
                        '%s* names no function of src/ (none starts with %s)' % (prefix, prefix))

    def skipped(self, name):
        return (name in C_KEYWORDS or name in LIBC or name in PYTHON or
                re.match(r'_?Py[A-Z]', name) is not None or
                (name.startswith('exec') and name[4:] in ('', 'l', 'le', 'lp', 'v', 've', 'vp',
                                                          'vpe')) or
                name.startswith('pthread_'))

    def check_call(self, path, line, name, args, cands, examples):
        if not any(f.accepts(len(args)) for f in cands):
            decl = cands[0]
            self.report(path, line, '%s() called with %d argument%s, declared with %s (%s)'
                        % (name, len(args), '' if len(args) == 1 else 's', decl.arity(),
                           decl.where(self.cwd)))
            return
        # a function of the example passed where a function pointer is expected
        for f in cands:
            if not f.accepts(len(args)):
                continue
            for i, a in enumerate(args):
                if a not in examples or i >= len(f.params):
                    continue
                want = f.params[i]
                m = PARAM_FNPTR_RE.search(want)
                if not m:
                    continue
                ex = examples[a]
                got = signature(ex.ret, ex.params)
                expect = norm_type(want).replace('(*)', '', 1)
                if got != expect:
                    self.report(path, ex.line, '%s is passed to %s() as %s, but its signature '
                                '%s is not %s (%s)' % (a, name, m.group(1), got, expect,
                                                       f.where(self.cwd)))
            return

    def check_example_decl(self, ex):
        real = [f for f in self.tree.funcs.get(ex.name, ()) if f.kind in ('decl', 'def')]
        if not real:
            return
        got = signature(ex.ret, ex.params + (['...'] if ex.variadic else []))
        wants = [signature(f.ret, f.params + (['...'] if f.variadic else [])) for f in real]
        if got not in wants:
            self.report(ex.path, ex.line, '%s written as %s, declared as %s (%s)'
                        % (ex.name, got, wants[0], real[0].where(self.cwd)))


def load_allow(path, cwd):
    """{name: line} from the allowlist, and the findings of the file itself."""
    allow, findings = {}, []
    if path is None or not os.path.exists(path):
        return allow, findings
    with open(path, encoding='utf-8') as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                findings.append((show(path, cwd), n, '%s: an entry needs a reason' % parts[0]))
            allow[parts[0]] = n
    return allow, findings


def run(src, allow_path, cwd=None):
    cwd = cwd or os.getcwd()
    tree = Tree()
    paths = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.endswith(('.c', '.h')):
                paths.append(os.path.join(dirpath, fn))
    for p in paths:
        scan_file(tree, p)
    allow, findings = load_allow(allow_path, cwd)
    checker = Checker(tree, allow, cwd)
    checker.findings.extend(findings)
    for path, text, code, comments in tree.files:
        chosen = comments if path.endswith('.h') else top_comment(text, comments)
        for start, end in chosen:
            checker.check_comment(path, text, start, end)
    for name, n in sorted(allow.items(), key=lambda kv: kv[1]):
        if name not in checker.allow_used:
            checker.report(allow_path, n, '%s is allowed but no comment needs it any more' % name)
    return checker.findings, len(paths)


def main(argv=None):
    ap = argparse.ArgumentParser(description='check that header comments name real functions '
                                 'with their real signatures')
    ap.add_argument('src', nargs='?', default=os.path.join(os.path.dirname(HERE), 'src'),
                    help='source root (default: src/ beside tools/)')
    ap.add_argument('--allow', default=os.path.join(HERE, 'check-headers.allow'),
                    help='allowlist, NAME REASON per line (default: tools/check-headers.allow)')
    args = ap.parse_args(argv)
    if not os.path.isdir(args.src):
        print('check-headers: error: cannot open \'%s\': not a directory' % args.src,
              file=sys.stderr)
        return 2
    findings, nfiles = run(args.src, args.allow)
    for path, line, msg in findings:
        print('%s:%d: %s' % (path, line, msg))
    if not nfiles:
        print('check-headers: error: no .c or .h file under \'%s\'' % args.src, file=sys.stderr)
        return 2
    return 1 if findings else 0


if __name__ == '__main__':
    sys.exit(main())
