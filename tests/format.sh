#!/bin/sh
# Style is checked, not left to review: every C file must be as
# clang-format (with the project's .clang-format) would write it.
cf=${CLANG_FORMAT:-$(command -v clang-format || command -v clang-format-14)}
if [ -z "$cf" ]; then
	echo "1..0 # SKIP clang-format is not installed (apt-get install clang-format)"
	exit 0
fi
cd "${top_srcdir:-.}" || exit 1
n=0
bad=0
for f in kernels/*.[ch] daemon/*.[ch] tests/*.[ch]; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	if "$cf" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "ok $n - $f is formatted"
	else
		echo "not ok $n - $f differs from clang-format's output (run: clang-format -i $f)"
		bad=$((bad + 1))
	fi
done
echo "1..$n"
[ "$bad" -eq 0 ]
