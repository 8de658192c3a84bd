#!/bin/bash
# The cluster token, with real processes on loopback: every combination
# of tokens on the coordinator and the stages ends in a run that completes
# (the same token, or none) or fails within 10 s naming the stage and the
# token mismatch, which /api/v1/cluster and /metrics show as `refused`; a
# stage's result frame refused with 401 is recorded, not sent again; a
# coordinator started before its stages makes a run wait for them, and is
# not ready until it has reached them; a daemon listening beyond loopback
# without a token warns.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
need_cluster
T=tok-$$
SAMPLES=64
SHA32=$(sha256sum "$MODEL32" | cut -d' ' -f1)

# tapi TOKEN METHOD HOST:PORT PATH [BODY]: as api, with the bearer TOKEN
# when it is not empty.
tapi() {
	local tok=$1 data=() auth=()
	shift
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	[ $# -ge 4 ] && data=(--data-binary "$4")
	STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X "$1" "${auth[@]}" \
		-H 'Content-Type: application/json' "${data[@]}" "http://$2$3")
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
has() { [ "${1#*"$2"}" != "$1" ]; } # TEXT PIECE
stop() {                            # NAME...: SIGTERM, and wait for the exit
	local n pid
	for n in "$@"; do
		eval "pid=\$PID_$n"
		kill -TERM "$pid" 2>/dev/null
		timeout 20 tail -s 0.1 --pid="$pid" -f /dev/null
		wait "$pid" 2>/dev/null
	done
}

# A coordinator whose only stage never comes: ready once it counts as down.
start cz --role coordinator --model "$MODEL32" --stages 127.0.0.1:9 || exit 1
api GET 127.0.0.1:$PORT_cz /api/v1/ready
ok "$([ "$STATUS" = 503 ] && has "$(jget .reason)" "127.0.0.1:9 not reached yet"; echo $?)" \
	"a coordinator whose stage was not reached yet is not ready: $STATUS $(jget .reason)"
t_cz=$(now)

# tokens CASE STAGE1_TOKEN STAGE2_TOKEN COORD_TOKEN: a cluster started with
# them (a run posted as soon as the coordinator listens); RUN_STATE, the
# run in $TMP/run.json, the seconds to its end in RUN_SECS, the cluster in
# $TMP/cluster.json, the metrics in $TMP/metrics.
tokens() {
	local k=$1 a1=() a2=() ac=()
	[ -n "$2" ] && a1=(--token "$2")
	[ -n "$3" ] && a2=(--token "$3")
	[ -n "$4" ] && ac=(--token "$4")
	start ${k}1 --role stage --model "$MODEL32" "${a1[@]}" &&
		start ${k}2 --role stage --model "$MODEL32" "${a2[@]}" || return 1
	eval "S1=127.0.0.1:\$PORT_${k}1 S2=127.0.0.1:\$PORT_${k}2"
	start ${k}c --role coordinator --model "$MODEL32" "${ac[@]}" --stages "$S1,$S2" || return 1
	eval "C=127.0.0.1:\$PORT_${k}c"
	local t0
	t0=$(now)
	tapi "$4" POST $C /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": $SAMPLES}"
	[ "$STATUS" = 201 ] || diag "POST /api/v1/runs: $STATUS $(cat "$TMP/reply")"
	wait_run $C "$(jget .id)" 60
	RUN_SECS=$(secs "$t0" "$(now)")
	cp "$TMP/reply" "$TMP/run.json"
	api GET $C /api/v1/cluster
	cp "$TMP/reply" "$TMP/cluster.json"
	curl -s --max-time 30 "http://$C/metrics" >"$TMP/metrics"
	diag "$k: run $RUN_STATE in $RUN_SECS s, $(rj .images_done) images; error: $(rj .error); note: $(rj .split_note)"
}
cj() { $W "$JGET" "$1" <"$TMP/cluster.json"; }
rj() { $W "$JGET" "$1" <"$TMP/run.json"; }
metric() { grep -F "$1" "$TMP/metrics" | awk '{ print $2 }'; } # SERIES: its value

# judge_ok CASE: the run completed on both stages, both up.
judge_ok() {
	check "$1: the run completes on both stages" \
		[ "$RUN_STATE" = done -a "$(rj .images_done)" = $SAMPLES -a \
		"$(rj .epochs[-1].stages)" = "[\"$S1\",\"$S2\"]" ]
	check "$1: both stages up in /api/v1/cluster and /metrics" \
		[ "$(cj .stages[0].state)" = up -a "$(cj .stages[1].state)" = up -a \
		"$(metric "pipenet_stage_state{stage=\"$S1\",state=\"up\"}")" = 1 -a \
		"$(metric "pipenet_stage_up{stage=\"$S2\"}")" = 1 ]
}
# judge_refused CASE WHY: the run failed within 10 s naming both stages
# and the token mismatch (WHY), and both show as refused.
judge_refused() {
	local err
	err=$(rj .error)
	ok "$([ "$RUN_STATE" = failed ] && awk -v s="$RUN_SECS" 'BEGIN { exit !(s < 10) }'; echo $?)" \
		"$1: the run fails within 10 s ($RUN_STATE after $RUN_SECS s)"
	ok "$(has "$err" "stage $S1 refused: token mismatch: $2" && has "$err" "stage $S2 refused"; echo $?)" \
		"$1: its error names the stages and the token mismatch: $err"
	ok "$([ "$(cj .stages[0].state)" = refused -a "$(cj .stages[1].state)" = refused ] &&
		has "$(cj .stages[0].reason)" "token mismatch: $2"; echo $?)" \
		"$1: /api/v1/cluster shows the stages refused: $(cj .stages[0].reason)"
	check "$1: /metrics shows them refused, not up" \
		[ "$(metric "pipenet_stage_state{stage=\"$S1\",state=\"refused\"}")" = 1 -a \
		"$(metric "pipenet_stage_state{stage=\"$S2\",state=\"refused\"}")" = 1 -a \
		"$(metric "pipenet_stage_up{stage=\"$S1\"}")" = 0 ]
}

tokens none "" "" ""
judge_ok "no token anywhere"
stop nonec none1 none2

tokens same $T $T $T
judge_ok "the same token everywhere"
stop samec same1 same2

tokens conly "" "" $T
judge_refused "a token on the coordinator only" "the stage has no token but the coordinator has one"
stop conlyc conly1 conly2

tokens sonly $T $T ""
judge_refused "tokens on the stages only" "the stage has a token but the coordinator has none"
stop sonlyc sonly1 sonly2

tokens diff $T $T other-$T
judge_refused "another token on the stages" "the stage's token is not the coordinator's"
stop diffc diff1 diff2

# One stage with the token, one without: the run goes on the first, and
# says why the second is left out.
tokens mix $T "" $T
check "one stage without the token: the run completes on the other" \
	[ "$RUN_STATE" = done -a "$(rj .images_done)" = $SAMPLES -a "$(rj .epochs[-1].stages)" = "[\"$S1\"]" ]
check "the run names the stage left out and why: $(rj .split_note)" \
	has "$(rj .split_note)" "$S2 refused: token mismatch"
check "the cluster shows it refused, the other up" \
	[ "$(cj .stages[0].state)" = up -a "$(cj .stages[1].state)" = refused ]
stop mixc mix1 mix2

# The stages and the coordinator agree, but the logits go to an address
# (--advertise) with another token: the 401s on the stages' frames are
# seen in their counters, and the run fails naming them, not hanging.
start ax --role coordinator --model "$MODEL32" --token other-$T &&
	start a1 --role stage --model "$MODEL32" --token $T &&
	start a2 --role stage --model "$MODEL32" --token $T || exit 1
S1=127.0.0.1:$PORT_a1
S2=127.0.0.1:$PORT_a2
start ac --role coordinator --model "$MODEL32" --token $T --stages "$S1,$S2" \
	--advertise 127.0.0.1:$PORT_ax || exit 1
sleep 0.5
t0=$(now)
tapi $T POST 127.0.0.1:$PORT_ac /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": $SAMPLES, \"split\": [8]}"
wait_run 127.0.0.1:$PORT_ac "$(jget .id)" 60
secs=$(secs "$t0" "$(now)")
err=$(jget .error)
diag "logits refused with 401: run $RUN_STATE after $secs s: $err; epochs: $(jget .epochs)"
ok "$([ "$RUN_STATE" = failed ] && awk -v s="$secs" 'BEGIN { exit !(s < 10) }'; echo $?)" \
	"logits refused with 401: the run fails within 10 s ($RUN_STATE after $secs s)"
ok "$(has "$err" "stage $S2 refused: token mismatch: 127.0.0.1:$PORT_ax refused a frame with 401" &&
	has "$err" "stage $S1 refused: token mismatch"; echo $?)" \
	"logits refused with 401: the error names the stages and the token mismatch"
api GET 127.0.0.1:$PORT_ac /api/v1/cluster
check "logits refused with 401: the cluster shows both stages refused" \
	[ "$(jget .stages[0].state)" = refused -a "$(jget .stages[1].state)" = refused ]
stop ac ax a1 a2

# A stage without the token sends results to a coordinator with one: the
# 401 is recorded as the stage's last error, once (not sent again as if
# the coordinator were busy).
start lc --role coordinator --model "$MODEL32" --token $T --stages 127.0.0.1:9 &&
	start l1 --role stage --model "$MODEL32" || exit 1
tapi "" PUT 127.0.0.1:$PORT_l1 /v1/stage "{\"run\": 1, \"first\": 0, \"last\": 19, \"batch\": 8, \"next\": \"127.0.0.1:$PORT_lc\", \"model_sha256\": \"$SHA32\"}"
check "a stage without a token takes a plan from anyone: $STATUS" [ "$STATUS" = 200 ]
errors_4xx() { curl -s --max-time 30 "http://127.0.0.1:$PORT_lc/metrics" | grep -F 'kind="http_4xx"' | awk '{ print $2 }'; }
before=$(errors_4xx)
$W "$top_builddir/tests/make-frame" 1 0 0 u8 8 32 32 3 >"$TMP/frame.bin"
frame=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/octet-stream' \
	--data-binary "@$TMP/frame.bin" "http://127.0.0.1:$PORT_l1/v1/frames")
for i in $(seq 300); do
	tapi "" GET 127.0.0.1:$PORT_l1 /v1/stage
	[ "$(jget .out_failed)" -ge 1 ] 2>/dev/null && break
	sleep 0.1
done
sleep 1 # time for a resend, were there one
after=$(errors_4xx)
le=$(jget .last_error)
diag "frame $frame; the stage: out_failed $(jget .out_failed), out_unauthorized $(jget .out_unauthorized), last_error: $le; the coordinator's 4xx answers: $before, then $after"
ok "$([ "$(jget .out_unauthorized)" = 1 -a "$(jget .out_failed)" = 1 ] &&
	has "$le" "token mismatch: 127.0.0.1:$PORT_lc refused a frame with 401"; echo $?)" \
	"the stage records the 401 on its results as a token mismatch"
check "the refused frame was sent once" [ "$((after - before))" = 1 ]
stop lc l1

# The coordinator starts before its stages (on ports known in advance): a
# run posted at once waits for them and completes on both; the coordinator
# is not ready until it has reached them.
start b1 --role stage --model "$MODEL32" && start b2 --role stage --model "$MODEL32" || exit 1
P1=$PORT_b1
P2=$PORT_b2
stop b1 b2
start bc --role coordinator --model "$MODEL32" --stages "127.0.0.1:$P1,127.0.0.1:$P2" || exit 1
B=127.0.0.1:$PORT_bc
api POST $B /api/v1/runs "{\"dataset\": \"$DATA\", \"samples\": $SAMPLES, \"split\": [8]}"
post=$STATUS
waiting=$(jget .waiting)
id=$(jget .id)
api GET $B /api/v1/ready
ready=$STATUS
reason=$(jget .reason)
api GET $B /api/v1/cluster
diag "POST: $post, waiting: $waiting; ready: $ready ($reason); cluster: $(jget .stages[0].state) $(jget .stages[0].reason)"
ok "$([ "$post" = 201 ] && has "$waiting" "127.0.0.1:$P1 not reached yet"; echo $?)" \
	"a run posted before the stages answer is taken (201) and says it waits"
ok "$([ "$ready" = 503 ] && has "$reason" "not reached yet"; echo $?)" \
	"the coordinator is not ready until it has reached its stages"
check "the cluster shows the stages unknown, not down" \
	[ "$(jget .stages[0].state)" = unknown -a "$(jget .stages[1].state)" = unknown ]
sleep 1
start b1 --role stage --model "$MODEL32" --listen 127.0.0.1:$P1 &&
	start b2 --role stage --model "$MODEL32" --listen 127.0.0.1:$P2 || exit 1
wait_run $B "$id" 60
diag "run $RUN_STATE: $(jget .images_done) images on $(jget .epochs[-1].stages); error: $(jget .error)"
check "the run waited for the stages and completed on both" \
	[ "$RUN_STATE" = done -a "$(jget .images_done)" = $SAMPLES -a \
	"$(jget .epochs[-1].stages)" = "[\"127.0.0.1:$P1\",\"127.0.0.1:$P2\"]" -a "$(jget .waiting)" = null ]
api GET $B /api/v1/ready
check "the coordinator is ready once it has reached them: $STATUS" [ "$STATUS" = 200 ]
stop bc b1 b2

# The coordinator whose stage never came: down after the wait, then ready.
for i in $(seq 300); do
	api GET 127.0.0.1:$PORT_cz /api/v1/ready
	[ "$STATUS" = 200 ] && break
	sleep 0.1
done
ready_s=$(secs "$t_cz" "$(now)")
api GET 127.0.0.1:$PORT_cz /api/v1/cluster
ok "$([ "$(jget .stages[0].state)" = down ] && has "$(jget .stages[0].reason)" "health check"; echo $?)" \
	"a stage never reached counts as down after a while ($(jget .stages[0].reason)); the coordinator is then ready"
diag "ready $ready_s s after the first check"
stop cz

# Listening beyond loopback without a token: a warning naming the risk.
start open --role stage --model "$MODEL32" --listen 0.0.0.0:0 || exit 1
start shut --role stage --model "$MODEL32" --listen 0.0.0.0:0 --token $T || exit 1
check "listening on 0.0.0.0 without a token warns: $(grep -o 'without a token.*' "$TMP/open.log")" \
	grep -q 'without a token: anyone on the network .* can start runs, send frames' "$TMP/open.log"
check "with a token, or on loopback, no warning" \
	sh -c "! grep -q 'without a token' '$TMP/shut.log' '$TMP/none1.log' '$TMP/nonec.log'"
tap_end
