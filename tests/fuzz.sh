#!/bin/sh
# Every fuzz target in turn. In a --enable-fuzzing build (clang, libFuzzer,
# ASan+UBSan) each one fuzzes for PIPENET_FUZZ_SECONDS (default 30) from a
# copy of its seed corpus; otherwise it replays the seed corpus. A crash,
# leak, sanitizer report or hang fails the test.
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
seconds=${PIPENET_FUZZ_SECONDS:-30}
n=0
fail=0
for target in safetensors jpeg frame config json; do
	n=$((n + 1))
	bin=$top_builddir/tests/fuzz-$target
	corpus=$top_srcdir/tests/fuzz/corpus/$target
	work=$(mktemp -d)
	cp "$corpus"/* "$work"/
	if [ "${PN_FUZZING:-no}" = yes ]; then
		how="fuzzed for ${seconds}s"
		$PN_TEST_WRAPPER "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 "$work" >"$work.log" 2>&1
	else
		how="seed corpus replayed"
		$PN_TEST_WRAPPER "$bin" "$work" >"$work.log" 2>&1
	fi
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "ok $n - fuzz-$target: $how, $(grep -E 'ran [0-9]+ inputs|stat::number_of_executed_units' "$work.log" | tail -1)"
	else
		echo "not ok $n - fuzz-$target: $how, exit $rc"
		sed 's/^/# /' "$work.log" | tail -40
		fail=1
	fi
	rm -rf "$work" "$work.log"
done
echo "1..$n"
exit $fail
