# Sourced (sh or bash) by tests that need a tool or a library from a
# Debian package: when it is missing the test fails, naming the package
# and the command that installs it, instead of skipping or failing later
# with a compiler's or the shell's message. Call before the first TAP
# line. scripts/install-deps --print --test must name every PACKAGE given
# here (tests/deps.sh checks it).
#
#   need_tool TOOL PACKAGE     TOOL: a command on PATH, or an absolute path
#   need_package PACKAGE [WHY] the Debian package itself is installed (WHY:
#                              what it is for, said in the message)
#
# The test's name in the message is NEED_NAME, else tests/ and $0's name.

# need_fail PACKAGE WHY: one failed TAP result, and exit 1.
need_fail() {
	echo "1..1"
	echo "not ok 1 - ${NEED_NAME:-tests/${0##*/}}: $1 is not installed ($2); run scripts/install-deps --test"
	exit 1
}

need_tool() {
	case $1 in
	/*) [ -e "$1" ] && return 0 ;;
	*) command -v "$1" >/dev/null 2>&1 && return 0 ;;
	esac
	need_fail "$2" "no $1"
}

need_package() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' &&
		return 0
	need_fail "$1" "${2:-dpkg-query does not list it}"
}
