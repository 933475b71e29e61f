#!/bin/sh
# Install the Pyodide runtimes the end-to-end tests use as CPython 3.14 and
# 3.15 (no native build of those here), each in its own directory:
#
#     tests/pyodide/install.sh [CACHE]
#
# CACHE defaults to ${PREPYC_TEST_CACHE:-$HOME/.cache/prepyc-tests}.  For each
# version, CACHE/pyodide/VER/ gets the npm package (node_modules/pyodide), a
# copy of python.mjs (the launcher), stdlib-pyc.zip (the standard library with
# pycs, made by mkstdlib.py: 1 s a start instead of 2.7), lib/python3.X (its
# sources, the stdlib sysconfig names: the launcher's --prefix) and, last, the
# executable wrapper python3.X that the tests take for an interpreter
# (tests/e2e/support.py finds it there).  An installed version is left alone
# but for refreshing the launcher.  Needs node (18 or later) and npm; without
# them, or when npm fails (no network), it says so and exits 1: the tests
# then skip those interpreters.
set -u

here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${PREPYC_TEST_CACHE:-$HOME/.cache/prepyc-tests}}
versions="314:314.0.8:3.14 315:315.0.0-alpha.2:3.15"
# Bumped when what the installer makes changes: installations get redone.
WRAPPER_VERSION=3

say() {
	echo "pyodide: $*"
}

node=$(command -v node 2>/dev/null) || node=
if [ -z "$node" ] || ! command -v npm >/dev/null 2>&1; then
	say "node or npm not found; the Pyodide interpreters (3.14, 3.15) are skipped"
	exit 1
fi
major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
if [ "$major" -lt 18 ]; then
	say "node $("$node" --version 2>/dev/null) is older than 18; the Pyodide interpreters are skipped"
	exit 1
fi

# write_wrapper DIR PYVER [--stdlib ZIP]
write_wrapper() {
	dir=$1 pyver=$2
	shift 2
	extra=
	while [ $# -gt 1 ]; do
		extra="$extra $1 \"$2\""
		shift 2
	done
	cat >"$dir/python$pyver.tmp$$" <<EOF
#!/bin/sh
# CPython $pyver in Pyodide, as a program; written by prepyc's tests/pyodide/install.sh.
# wrapper $WRAPPER_VERSION
# The open descriptors above 2 (prepyc's worker pipes) are bridged into Python.
fds=
for fd in 3 4 5 6 7 8 9; do
	{ true >&"\$fd"; } 2>/dev/null && fds="\$fds,\$fd"
done
# Deep recursion in the compiler needs more than Node's 1 MB of native stack.
stack=\$(ulimit -s 2>/dev/null)
case \$stack in
unlimited | '') stack=4000 ;;
*) stack=\$((stack / 2)); [ "\$stack" -gt 4000 ] && stack=4000 ;;
esac
exec "$node" --stack-size="\$stack" "$dir/python.mjs" --pyodide-dir "$dir/node_modules/pyodide"$extra \\
	--executable "\$0" --fds "\$fds" -- "\$@"
EOF
	chmod +x "$dir/python$pyver.tmp$$" && mv -f "$dir/python$pyver.tmp$$" "$dir/python$pyver"
}

failed=0
for v in $versions; do
	tag=${v%%:*} rest=${v#*:}
	npmver=${rest%%:*} pyver=${rest#*:}
	dir=$cache/pyodide/$tag
	mkdir -p "$dir" || { failed=1; continue; }
	if ! cmp -s "$here/python.mjs" "$dir/python.mjs"; then
		cp "$here/python.mjs" "$dir/python.mjs.tmp$$" && mv -f "$dir/python.mjs.tmp$$" "$dir/python.mjs"
	fi
	if grep -q "^# wrapper $WRAPPER_VERSION\$" "$dir/python$pyver" 2>/dev/null &&
		[ -f "$dir/node_modules/pyodide/pyodide.mjs" ] &&
		[ -d "$dir/lib/python$pyver" ] &&
		grep -q "\"version\": \"$npmver\"" "$dir/node_modules/pyodide/package.json" 2>/dev/null; then
		continue
	fi
	rm -f "$dir/python$pyver"
	say "installing pyodide@$npmver (CPython $pyver) into $dir"
	if ! timeout 600 npm install --prefix "$dir" --no-audit --no-fund --no-save --silent \
		"pyodide@$npmver" >"$dir/npm.log" 2>&1 ||
		[ ! -f "$dir/node_modules/pyodide/pyodide.mjs" ]; then
		say "npm install pyodide@$npmver failed (see $dir/npm.log); CPython $pyver is skipped"
		failed=1
		continue
	fi
	# The plain wrapper first: it compiles the standard library zip.
	write_wrapper "$dir" "$pyver"
	if timeout 600 "$dir/python$pyver" -S -s -B "$here/mkstdlib.py" \
		"$dir/node_modules/pyodide/python_stdlib.zip" "$dir/stdlib-pyc.zip" "$dir"; then
		write_wrapper "$dir" "$pyver" --stdlib "$dir/stdlib-pyc.zip" --prefix "$dir"
	else
		say "could not precompile the standard library; CPython $pyver starts slower"
	fi
	say "CPython $pyver: $dir/python$pyver"
done
exit $failed
