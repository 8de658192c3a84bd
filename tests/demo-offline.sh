#!/bin/bash
# The main job on a fresh machine offline: scripts/demo in a copy of the
# checkout as a clone has it (tracked and new files, no build output, no
# data/), whose parent has no shared/, with the download host unreachable
# (PIPENET_CIFAR_URL on a closed local port), using the programs of this
# build (--build). It must run the shipped 1,000-image sample, say so and
# how many images, cap --samples 2000 to them, suggest scripts/get-cifar10
# in one line, download nothing, report an accuracy, and leave no daemon
# behind. scripts/get-cifar10 says in one line that the host cannot be
# reached.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
[ -x "$PIPENETD" ] || skip_all "$PIPENETD is not built"
[ -z "$W" ] || skip_all "not under qemu: the demo runs the build machine's programs"
need_tool curl curl
need_tool git git
git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1 ||
	skip_all "$top_srcdir is not a git checkout (a release tarball): nothing to clone"

copy=$TMP/fresh/pipenet
mkdir -p "$copy"
(cd "$top_srcdir" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$copy" -xf -
ok $? "a copy of the checkout in $copy, without ../shared ($([ -e "$copy/../shared" ] && echo present || echo absent))"
check "the copy has no data/ and carries the sample" \
	[ ! -e "$copy/data" -a -f "$copy/samples/cifar10/test_every10th.bin" ]

# The 224 model as a user runs it; the 32 one where everything is slow.
model=()
[ "$SLOW" = 1 ] && model=(--model "$copy/models/mobilenetv2_cifar10_32.safetensors")
(cd "$TMP" && PIPENET_CIFAR_URL=http://127.0.0.1:9/cifar-10-binary.tar.gz \
	timeout 900 "$copy/scripts/demo" --build "$top_builddir" --listen 127.0.0.1:0 \
	--samples 2000 --no-sequential "${model[@]}") >"$TMP/demo.out" 2>&1
rc=$?
ok $rc "scripts/demo completes offline without ../shared (exit $rc)"
[ $rc = 0 ] || sed 's/^/# /' "$TMP/demo.out" | tail -40

sample=$copy/samples/cifar10/test_every10th.bin
check "it says it runs the shipped sample, 1000 of its 1000 images" \
	grep -qF "data: $sample, the sample shipped in samples/cifar10: 1000 of its 1000 images" "$TMP/demo.out"
check "it caps --samples 2000 to the 1000 the sample holds" \
	grep -qF "test_every10th.bin holds 1000 images: running 1000, not 2000" "$TMP/demo.out"
n=$(grep -c 'scripts/get-cifar10' "$TMP/demo.out")
check "one line suggests scripts/get-cifar10 for the full set ($n)" [ "$n" = 1 ]
acc=$(sed -n 's/^throughput .* accuracy \([0-9.]*\) %$/\1/p' "$TMP/demo.out")
check "it reports the accuracy of 1000 images: ${acc:-none} %" \
	awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 80 && a <= 100) }'
check "1000 / 1000 images done" grep -q ' 1000 / 1000 images ' "$TMP/demo.out"
tried=$(grep -i -e 'download[^s]' -e 'cannot reach' "$TMP/demo.out")
check "nothing was downloaded or tried (no data/, no download message)${tried:+: $tried}" \
	[ ! -e "$copy/data" -a -z "$tried" ]
# (the brackets keep grep from finding itself)
left=$(grep -la "$copy/[m]odels" /proc/[0-9]*/cmdline 2>/dev/null)
check "no daemon of the demo is left running${left:+: $left}" [ -z "$left" ]
diag "$(grep -E '^(data|throughput|model)' "$TMP/demo.out")"

# get-cifar10, for the full set, with its host unreachable: one line.
PIPENET_CIFAR_URL=http://127.0.0.1:9/cifar-10-binary.tar.gz timeout 120 \
	"$copy/scripts/get-cifar10" "$TMP/cifar" >"$TMP/get.out" 2>&1
rc=$?
check "get-cifar10 with the host unreachable: exit $rc, one line: $(head -c 160 "$TMP/get.out")" \
	[ $rc != 0 -a "$(wc -l <"$TMP/get.out")" = 1 ] &&
	grep -q 'cannot reach the host' "$TMP/get.out"
check "... and leaves nothing behind" [ ! -e "$TMP/cifar" ]
tap_end
