#!/bin/sh
# Style is checked, not left to review: every C file must be as
# clang-format (with the project's .clang-format) would write it.
cd "${top_srcdir:-.}" || exit 1
. tests/need.sh
cf=${CLANG_FORMAT:-$(command -v clang-format || command -v clang-format-14)}
[ -n "$cf" ] || need_tool clang-format clang-format
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
