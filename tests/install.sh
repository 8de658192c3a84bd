#!/bin/bash
# make install into a scratch DESTDIR: exactly the expected files land;
# the installed binaries run from there with the installed configuration
# and answer a classify request; the configuration and a generated token
# are 0640 and the token is never overwritten; the units rate 2.x or
# better with systemd-analyze security; an edited configuration survives a
# reinstall and an uninstall; make uninstall removes everything else.
. "${top_srcdir:-.}/tests/cluster-lib.sh"
[ -x "$PIPENETD" ] || skip_all "$PIPENETD is not built"
[ -z "$W" ] || skip_all "not under qemu: the install tree is the build machine's"
need_tool curl curl

root=$TMP/root
make -s -C "$top_builddir" install DESTDIR="$root" >"$TMP/install.log" 2>&1
ok $? "make install DESTDIR=... succeeds"
eval "$(make -s --no-print-directory -C "$top_builddir" pn-print-dirs 2>/dev/null)"

expected=$(printf '%s\n' \
	"$bindir/pipenet" "$bindir/pipenetd" \
	"$pkgdatadir/models/mobilenetv2_cifar10.safetensors" \
	"$pkgdatadir/models/mobilenetv2_cifar10_32.safetensors" \
	"$pkgdatadir/models/mobilenetv2_cifar10-int8.safetensors" \
	"$pkgdatadir/models/mobilenetv2_cifar10_32-int8.safetensors" \
	"$pkgdatadir/samples/README" "$pkgdatadir/samples/cifar10/test_every10th.bin" \
	"$pkgdatadir/samples/cifar10/batches.meta.txt" \
	$(for c in airplane automobile bird cat deer dog frog horse ship truck; do
		echo "$pkgdatadir/samples/cifar10/jpeg/$c/0000.jpg"; done) \
	"$pkgdatadir/web/index.html" "$pkgdatadir/web/style.css" \
	$(for m in main util api charts pipeline plan runs stream forms; do
		echo "$pkgdatadir/web/$m.mjs"; done) \
	"$sysconfdir/pipenet/pipenet.json" "$sysconfdir/pipenet/token" \
	"$systemdunitdir/pipenetd.service" "$systemdunitdir/pipenetd@.service" \
	"$mandir/man1/pipenet.1" "$mandir/man8/pipenetd.8" | sort)
got=$(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | sort)
[ "$got" = "$expected" ]
ok $? "exactly the expected $(echo "$expected" | wc -l) files are installed"
[ "$got" = "$expected" ] || diff <(echo "$expected") <(echo "$got") | sed 's/^/# /'

grep -q "^ExecStart=$bindir/pipenetd --config \${CREDENTIALS_DIRECTORY}/pipenet.json" \
	"$root$systemdunitdir/pipenetd.service" &&
	grep -q "^LoadCredential=pipenet.json:$sysconfdir/pipenet/pipenet.json$" \
		"$root$systemdunitdir/pipenetd.service" &&
	grep -q "^LoadCredential=token:$sysconfdir/pipenet/token$" \
		"$root$systemdunitdir/pipenetd.service"
ok $? "the unit runs the installed daemon with the installed configuration and token"
conf=$root$sysconfdir/pipenet/pipenet.json
tok=$root$sysconfdir/pipenet/token
modes="$(stat -c %a "$conf") $(stat -c %a "$tok")"
[ "$modes" = "640 640" ]
ok $? "the configuration and the token file are 0640 ($modes)"
grep -Eqx '[0-9a-f]{64}' "$tok" && [ "$(wc -l <"$tok")" = 1 ]
ok $? "the token is 64 hex digits from /dev/urandom"
grep -q "\"token_file\": \"$sysconfdir/pipenet/token\"" "$conf"
ok $? "the installed configuration reads it through token_file"
grep -q "^BindReadOnlyPaths=-$pkgdatadir/samples:/var/lib/pipenet/samples$" \
	"$root$systemdunitdir/pipenetd.service" && grep -q '^StateDirectory=pipenet$' \
	"$root$systemdunitdir/pipenetd.service" && [ -d "$root$pkgdatadir/samples/cifar10" ]
ok $? "the coordinator's unit mounts the installed samples into its state directory"
cp "$tok" "$TMP/token.first"
make -s -C "$top_builddir" install DESTDIR="$root" >>"$TMP/install.log" 2>&1
cmp -s "$tok" "$TMP/token.first"
ok $? "reinstalling keeps the token"

# The units' sandbox, rated offline (the daemon need not run).
if ! command -v systemd-analyze >/dev/null; then
	ok 1 "systemd-analyze is not installed (apt-get install systemd)"
else
	for u in pipenetd.service pipenetd@.service; do
		out=$(cd "$root$systemdunitdir" && systemd-analyze security --offline=yes \
			--root="$root" "$root$systemdunitdir/$u" 2>&1)
		score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
		[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 3.0) }'
		ok $? "systemd-analyze security --offline=yes rates $u ${score:-?} (2.x or better)"
		[ -n "$score" ] || echo "$out" | tail -5 | sed 's/^/# /'
		bad=$(echo "$out" | grep -E "$u:[0-9]+: ")
		[ -z "$bad" ]
		ok $? "systemd parses every line of $u${bad:+: $bad}"
	done
fi
grep -q '^Type=notify' "$root$systemdunitdir/pipenetd.service" &&
	grep -q '^DynamicUser=yes' "$root$systemdunitdir/pipenetd.service"
ok $? "the unit is Type=notify and runs as a dynamic unprivileged user"

# The installed programs, from the scratch root. Paths compiled in point
# at the real prefix, so the model and web root are given explicitly.
model=$root$pkgdatadir/models/mobilenetv2_cifar10_32.safetensors
jpeg=$top_srcdir/tests/fuzz/corpus/jpeg/rgb32.jpg
out=$("$root$bindir/pipenet" classify --model "$model" --data "$jpeg" 2>&1)
echo "$out" | grep -q '^images 1$'
ok $? "installed pipenet classifies a JPEG"
samples=$root$pkgdatadir/samples/cifar10
out=$("$root$bindir/pipenet" classify --model "$model" --data "$samples/test_every10th.bin" 2>&1)
echo "$out" | grep -q '^images 1000$' && echo "$out" | grep -q '^accuracy 0\.[89]'
ok $? "installed pipenet classifies the installed sample: $(echo $out | grep -o 'images [0-9]* accuracy [0-9.]*')"
out=$("$root$bindir/pipenet" classify --model "$model" --data "$samples/jpeg" 2>&1)
echo "$out" | grep -q '^images 10$'
ok $? "installed pipenet classifies the installed JPEG per class: $(echo $out | grep -o 'images [0-9]* accuracy [0-9.]*')"

PIPENETD=$root$bindir/pipenetd
start c --config "$conf" --role coordinator --stages "" --token-file "$tok" \
	--model "$model" --web-root "$root$pkgdatadir/web"
ok $? "installed pipenetd starts with the installed configuration"
start s --config "$conf" --role stage --stages "" --token-file "$tok" --model "$model"
ok $? "and as a stage with the template unit's arguments"
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X POST \
	-H 'Content-Type: image/jpeg' --data-binary "@$jpeg" "http://127.0.0.1:$PORT_c/api/v1/classify")
[ "$STATUS" = 401 ]
ok $? "without the generated token, classify is refused ($STATUS)"
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 60 -X POST \
	-H "Authorization: Bearer $(cat "$tok")" \
	-H 'Content-Type: image/jpeg' --data-binary "@$jpeg" "http://127.0.0.1:$PORT_c/api/v1/classify")
[ "$STATUS" = 200 ] && grep -q '"class"' "$TMP/reply"
ok $? "POST /api/v1/classify answers with classes ($STATUS: $(head -c 200 "$TMP/reply"))"
STATUS=$(curl -s -o "$TMP/reply" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT_c/")
[ "$STATUS" = 200 ] && grep -qi '<html' "$TMP/reply"
ok $? "the dashboard is served from the installed web root ($STATUS)"

# An administrator's edit survives reinstall and uninstall.
echo '{"log_level": "debug"}' >"$root$sysconfdir/pipenet/pipenet.json"
make -s -C "$top_builddir" install DESTDIR="$root" >>"$TMP/install.log" 2>&1
grep -q debug "$root$sysconfdir/pipenet/pipenet.json"
ok $? "reinstalling keeps an edited configuration"
make -s -C "$top_builddir" uninstall DESTDIR="$root" >>"$TMP/install.log" 2>&1
left=$(cd "$root" && find . -type f | sed 's|^\.||' | sort | tr '\n' ' ')
[ "$left" = "$sysconfdir/pipenet/pipenet.json $sysconfdir/pipenet/token " ]
ok $? "make uninstall removes everything but the edited configuration and its token (left: $left)"
rm -f "$root$sysconfdir/pipenet/pipenet.json" "$root$sysconfdir/pipenet/token"
make -s -C "$top_builddir" install DESTDIR="$root" >>"$TMP/install.log" 2>&1 &&
	make -s -C "$top_builddir" uninstall DESTDIR="$root" >>"$TMP/install.log" 2>&1
left=$(cd "$root" && find . -type f)
[ -z "$left" ]
ok $? "install then uninstall leaves no file"
tap_end
