#!/bin/bash
# scripts/install-deps against what the build, the demo and the tests
# use: every tool they run (each need_tool TOOL PACKAGE in tests/ and
# scripts/, and the table below of those run without one) is on PATH and
# comes from a package install-deps --print --test names, or that one of
# them depends on, or that every Debian system has (Essential or Priority
# required); the libraries the build links come from such packages too;
# on x86_64 the cross compilers' C libraries are named (tests/cross-check
# --print-packages agrees); every named package is installed; no test
# skips for a missing package. A last check removes packages from the
# list and sees the same code report them, so this test can fail.
set -u
top_srcdir=$(cd "${top_srcdir:-.}" && pwd)
cd "$top_srcdir" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pn-deps.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
n=0
bad=0
ok() { # STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		bad=$((bad + 1))
	fi
}

# TOOL PACKAGE: run by the build, the demo or the tests without a
# need_tool of their own.
direct="make build-essential
cc build-essential
autoreconf autoconf
automake automake
pkg-config pkg-config
curl curl
git git
clang clang
qemu-aarch64 qemu-user
qemu-arm qemu-user
awk mawk
perl perl-base
flock util-linux
taskset util-linux
timeout coreutils
sha256sum coreutils
cmp diffutils
tar tar
dpkg-query dpkg
apt-get apt"
if [ "$(uname -m)" = x86_64 ]; then
	direct="$direct
aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf"
fi
# ... and those the scripts check for with need_tool (a literal tool and
# package only: tests/cross-check's own are checked below).
needed=$(for f in tests/*.sh tests/bench-* tests/cross-check scripts/*; do
	case $f in tests/deps.sh | tests/need.sh) continue ;; esac
	grep -v '^[[:space:]]*#' "$f" | grep -o 'need_tool [^ ;|&]* [^ ;|&#]*'
done | grep -v '\$' | awk '{print $2, $3}' | sort -u)
tools=$(printf '%s\n%s\n' "$direct" "$needed" | sort -u)

scripts/install-deps --print --test >"$TMP/list"
ok $? "scripts/install-deps --print --test prints the list ($(wc -l <"$TMP/list") packages)"
scripts/install-deps --print >"$TMP/build"
comm -13 <(sort "$TMP/list") <(sort "$TMP/build") >"$TMP/extra"
ok "$([ -s "$TMP/build" ] && [ ! -s "$TMP/extra" ]; echo $?)" \
	"--print (build and demo, $(wc -l <"$TMP/build") packages) is part of --print --test"
badname=$(grep -v -x '[a-z0-9][a-z0-9+.-]*' "$TMP/list")
ok "$([ -z "$badname" ]; echo $?)" "one package name a line${badname:+ (not names: $badname)}"

# What every Debian system has.
dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' |
	awk '$2 == "yes" || $3 == "required" {print $1}' | sort -u >"$TMP/base"

# closure LIST OUT: the packages of LIST, those they depend on (Depends
# and Pre-Depends, recursively, no recommends), and the base system.
closure() {
	# shellcheck disable=SC2046
	{
		cat "$1" "$TMP/base"
		apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
			--no-breaks --no-replaces --no-enhances $(cat "$1") 2>/dev/null | grep -v '^ '
	} | sed 's/:.*//' | sort -u >"$2"
}

# owner PATH: the package dpkg says PATH comes from (usrmerge and
# alternatives tried), or nothing.
owner() {
	local p
	for p in "$1" "$(readlink -f "$1")" "${1#/usr}"; do
		dpkg-query -S "$p" 2>/dev/null | sed -n '1s/[:,].*//p' | grep . && return 0
	done
	return 0
}

# check_tools LIST: for the list of install-deps, one result per tool;
# for another, the packages found missing only, in $TMP/missing.
check_tools() {
	local list=$1 tool pkg path from why
	closure "$list" "$TMP/closure"
	: >"$TMP/missing"
	while read -r tool pkg; do
		[ -n "$tool" ] || continue
		why=
		if ! grep -qx "$pkg" "$list" "$TMP/base"; then
			why="$pkg is not in the list"
			echo "$pkg" >>"$TMP/missing"
		fi
		case $tool in
		/*) path=$tool && [ -e "$path" ] || path= ;;
		*) path=$(command -v "$tool") ;;
		esac
		if [ -z "$path" ]; then
			why="$why${why:+; }$tool is not on PATH"
		else
			from=$(owner "$path")
			if [ -z "$from" ]; then
				why="$why${why:+; }dpkg knows no package with $path"
			elif ! grep -qx "$from" "$TMP/closure"; then
				why="$why${why:+; }$path comes from $from, which nothing in the list brings"
				echo "$from" >>"$TMP/missing"
			fi
		fi
		if [ "$list" = "$TMP/list" ]; then
			ok "$([ -z "$why" ]; echo $?)" \
				"$tool: ${path:-?} from ${from:-?}, package $pkg${why:+: $why}"
		fi
	done <<<"$tools"
}
check_tools "$TMP/list"

# The libraries the build links, by their pkg-config files.
for mod in libevent jansson libjpeg; do
	pc=$(pkg-config --variable=pcfiledir "$mod" 2>/dev/null)/$mod.pc
	from=$(owner "$pc")
	grep -qx "${from:-none}" "$TMP/closure"
	ok $? "library $mod: $pc from ${from:-no package}, brought by the list"
done

# check_cross LIST: on x86_64, the cross compilers' C libraries and
# tests/cross-check's own packages are in LIST; those missing go to
# $TMP/missing.
check_cross() {
	local list=$1 arch pkgs miss p
	: >"$TMP/missing"
	[ "$(uname -m)" = x86_64 ] || return 0
	for arch in aarch64 armhf; do
		pkgs=$(bash tests/cross-check "$arch" --print-packages)
		miss=$(for p in $pkgs; do grep -qx "$p" "$list" || echo "$p"; done)
		[ -n "$miss" ] && echo "$miss" >>"$TMP/missing"
		[ "$list" = "$TMP/list" ] && ok "$([ -n "$pkgs" ] && [ -z "$miss" ]; echo $?)" \
			"tests/cross-check $arch needs $(echo $pkgs), all in the list${miss:+; missing: $(echo $miss)}"
	done
	for p in libc6-dev-arm64-cross libc6-dev-armhf-cross; do
		grep -qx "$p" "$list" || echo "$p" >>"$TMP/missing"
		[ "$list" = "$TMP/list" ] && ok "$(grep -qx "$p" "$list"; echo $?)" \
			"$p (the cross compiler's C library) is in the list"
	done
	return 0
}
check_cross "$TMP/list"

# Every named package is installed (npm may come with nodejs).
notin=
while read -r p; do
	[ "$p" = npm ] && command -v npm >/dev/null && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		notin="$notin $p"
done <"$TMP/list"
ok "$([ -z "$notin" ]; echo $?)" "every listed package is installed${notin:+ (not:$notin; run scripts/install-deps --test)}"

# No test skips for a missing package (they fail through need_tool).
skips=$(grep -n -E '(skip_all|SKIP|skip) .*(not installed|apt-get install|[Dd]ebian package)' \
	tests/*.sh tests/cross-check 2>/dev/null)
ok "$([ -z "$skips" ]; echo $?)" "no test skips for a missing package${skips:+: $skips}"

# The checks above can fail: without two of its packages the list is
# found short by the same code.
grep -v -x -e git -e libc6-dev-arm64-cross -e curl "$TMP/list" >"$TMP/short"
tools="git git
curl curl"
check_tools "$TMP/short"
got=$(sort -u "$TMP/missing" | tr '\n' ' ')
ok "$([ "$got" = "curl git " ]; echo $?)" "a list without curl and git is reported short of them (got: $got)"
if [ "$(uname -m)" = x86_64 ]; then
	check_cross "$TMP/short"
	got=$(sort -u "$TMP/missing" | tr '\n' ' ')
	ok "$([ "$got" = "libc6-dev-arm64-cross " ]; echo $?)" \
		"a list without libc6-dev-arm64-cross is reported short of it (got: $got)"
fi

echo "1..$n"
[ "$bad" = 0 ]
