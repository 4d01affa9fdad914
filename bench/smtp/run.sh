#!/bin/bash
# bench/smtp/run.sh HIKYAKU - end-to-end SMTP benchmark of `hikyaku serve`
# with the anchor's own clients (`make bench-smtp`).
#
#   1. smtp-source (Debian's postfix package) is installed if missing, with no
#      postfix service started (policy-rc.d exits 101, debconf "No
#      configuration"), as the anchor's install.sh does; needs root then;
#   2. a server on free 127.0.0.1 ports with its state under
#      $(dirname HIKYAKU)/bench-smtp/var: domain bench.test, users
#      u001..u200, each with bench/rules20.hk as personal.hk;
#   3. the anchor's payloads (tools/gen_messages.py);
#   4. the anchor's client/bench_server.sh, phase smtp, against our server:
#      smtp-source lanes, one connection per message, completion watched in
#      the Maildir tree with inotify, server CPU from /proc;
#   5. 1,000 idle sessions (connect, 220, EHLO, 250, stay idle): RSS;
#   6. a short profile run: user/system CPU split and `strace -c -f`;
#   7. the table (bench/smtp/table.py), next to the anchor's RESULTS.md
#      numbers, or next to an anchor run of the same size when
#      ANCHOR_RESULTS=dir/with/raw/smtp.jsonl is given.
#
# Knobs (environment): N (2000 messages per cell), REPS (1), SIZES ("4k
# 100k"), CONCS ("1 20"), SESSIONS (1000), PROFILE (1: step 6),
# PROFILE_N (1000), ANCHOR (/work/shared/bench/anchor), ANCHOR_RESULTS,
# PYTHON (/usr/bin/python3), DNS_SERVER (stub: bench/smtp/stubdns.py
# answers the SPF queries on loopback; system: the machine's resolver).
# Output: $(dirname HIKYAKU)/bench-smtp/.
# The anchor's files are only read and executed, never changed.
set -euo pipefail

[ $# = 1 ] || { echo "usage: bench/smtp/run.sh path/to/hikyaku" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)
HIKYAKU=$BIN/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
ANCHOR=${ANCHOR:-/work/shared/bench/anchor}
PYTHON=${PYTHON:-/usr/bin/python3}
: "${N:=2000}" "${REPS:=1}" "${SIZES:=4k 100k}" "${CONCS:=1 20}"
: "${SESSIONS:=1000}" "${PROFILE:=1}" "${PROFILE_N:=1000}" "${ANCHOR_RESULTS:=}"
OUT=$BIN/bench-smtp
STATE=$OUT/var
DOMAIN=bench.test
NUSERS=200
# our passwords need 8+ characters; the anchor's "benchpw" has 7 (SMTP to
# the MX listener does not log in, so the password is not used here)
PASSWORD=benchpw-hikyaku

fail() { echo "bench-smtp: FAILED: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }

[ -x "$HIKYAKU" ] || fail "$HIKYAKU is not built"
[ -x "$ANCHOR/client/bench_server.sh" ] || fail "no anchor harness at $ANCHOR"

# 1. smtp-source, without letting the package start Postfix
if ! [ -x /usr/sbin/smtp-source ]; then
	[ "$(id -u)" = 0 ] || fail "smtp-source missing: run as root to install postfix, or install it"
	log "installing postfix (smtp-source) with no service start"
	if ! grep -q 'exit 101' /usr/sbin/policy-rc.d 2>/dev/null; then
		printf '#!/bin/sh\n# no service starts from package scripts (benchmark)\nexit 101\n' \
			> /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
	fi
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix >&2
	[ -x /usr/sbin/smtp-source ] || fail "postfix installed but no /usr/sbin/smtp-source"
fi

# 2. state, users, rules, server
rm -rf "$OUT"
mkdir -p "$OUT" "$STATE"
SPID=; DPID=
stop_server() {
	if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
		kill -TERM "$SPID"
		for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID"
	fi
	[ -z "$SPID" ] || wait "$SPID" 2>/dev/null || true
	if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; DPID=; fi
}
trap stop_server EXIT
# SPF at MAIL FROM queries DNS: a loopback stub answers (stubdns.py), so the
# run does not depend on the machine's resolver; DNS_SERVER=system keeps it
if [ "${DNS_SERVER:-stub}" = stub ]; then
	"$PYTHON" "$HERE/stubdns.py" "$OUT/dns.port" &
	DPID=$!
	for _ in $(seq 1 50); do [ -s "$OUT/dns.port" ] && break; sleep 0.1; done
	DNS_LINE="dns_server 127.0.0.1:$(cat "$OUT/dns.port")"
	echo "SPF DNS: loopback stub (bench/smtp/stubdns.py, NXDOMAIN for everything)" > "$OUT/dns-mode.txt"
else
	DPID=; DNS_LINE=
	echo "SPF DNS: the machine's resolver ($(awk '/^nameserver/{print $2; exit}' /etc/resolv.conf))" > "$OUT/dns-mode.txt"
fi
read -r P_MX P_SUB P_SMTPS < <("$PYTHON" -c '
import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])')
cat > "$OUT/hikyaku.conf" <<EOF
hostname mail.bench.test
state_dir $STATE
listen mx 127.0.0.1:$P_MX
listen submission 127.0.0.1:$P_SUB
listen smtps 127.0.0.1:$P_SMTPS
$DNS_LINE
EOF
log "users: $DOMAIN u001..u$(printf %03d $NUSERS), personal.hk = bench/rules20.hk"
"$HIKYAKU" domain add "$DOMAIN" --state "$STATE" >/dev/null
USERS_DIR=$STATE/domains/$DOMAIN/users
for i in $(seq 1 $NUSERS); do
	u=$(printf 'u%03d' "$i")
	printf '%s\n' "$PASSWORD" | "$HIKYAKU" user add "$u@$DOMAIN" --stdin --state "$STATE" >/dev/null
	mkdir -p "$USERS_DIR/$u"
	cp "$ROOT/bench/rules20.hk" "$USERS_DIR/$u/personal.hk"
done
"$HIKYAKU" check "$ROOT/bench/rules20.hk" >/dev/null || fail "bench/rules20.hk does not compile"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# as root (CI machines), the benchmark keeps root: its state is a scratch folder
ALLOW_ROOT=
[ "$(id -u)" -eq 0 ] && ALLOW_ROOT=--allow-root
"$HIKYAKU" serve --config "$OUT/hikyaku.conf" $ALLOW_ROOT >"$OUT/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$P_MX") 2>/dev/null && break
	kill -0 "$SPID" 2>/dev/null || { cat "$OUT/serve.log"; fail "server exited"; }
	sleep 0.1
done
log "server pid $SPID, mx 127.0.0.1:$P_MX, state $STATE"

# 3. payloads
"$PYTHON" "$ANCHOR/tools/gen_messages.py" "$OUT/data"

# 4. the anchor's client, smtp phase. Our Maildirs are
# $USERS_DIR/<user>/Maildir/{new,cur,.Folder/new,...}: maildir_watch.py
# watches every directory below MAILDIR_ROOT and counts files in any new/ or
# cur/, skipping tmp/, so it needs no adapting. The wipe removes whole
# Maildirs (the server recreates them and the folders on the next
# delivery), like the anchor's own wipe; personal.hk stays.
mkdir -p "$USERS_DIR"
WIPE="find '$USERS_DIR' -mindepth 2 -maxdepth 2 -name Maildir -exec rm -rf {} +; sync"
log "smtp phase: N=$N REPS=$REPS SIZES=$SIZES CONCS=$CONCS"
LABEL=hikyaku HOST=127.0.0.1 SMTP_PORT=$P_MX DOMAIN=$DOMAIN USERS=$NUSERS \
PASSWORD=$PASSWORD MAILDIR_ROOT=$USERS_DIR SERVER_PIDS=$SPID WIPE_CMD=$WIPE \
MSG_DIR=$OUT/data N=$N REPS=$REPS SIZES=$SIZES CONCS=$CONCS OUT=$OUT/results \
PYTHON=$PYTHON "$ANCHOR/client/bench_server.sh" smtp || fail "smtp phase (see $OUT/results/raw/smtp.jsonl)"
kill -0 "$SPID" 2>/dev/null || fail "server died during the smtp phase"

# 5. idle sessions
log "$SESSIONS idle sessions"
bash -c "$WIPE"
"$PYTHON" "$HERE/sessions.py" --port "$P_MX" --server-pid "$SPID" \
	--connections "$SESSIONS" > "$OUT/sessions.json" || log "sessions: not all sessions OK (see $OUT/sessions.json)"
cat "$OUT/sessions.json" >&2
kill -0 "$SPID" 2>/dev/null || fail "server died holding $SESSIONS sessions"

# 6. profile: user/system split, then syscalls (strace slows the server, so
# its run is not a throughput number)
if [ "$PROFILE" = 1 ]; then
	cpu() { awk '{print $14, $15}' "/proc/$SPID/stat"; }
	load() {
		"$PYTHON" "$ANCHOR/client/smtp_load.py" --port "$P_MX" --domain "$DOMAIN" \
			--users $NUSERS --msg-dir "$OUT/data" --size 4k --messages "$1" \
			--concurrency 20 --maildir-root "$USERS_DIR" --server-pid "$SPID" --label "$2"
	}
	bash -c "$WIPE"; load $NUSERS warmup >/dev/null
	read -r u0 s0 < <(cpu)
	load "$PROFILE_N" split > "$OUT/profile-split.json"
	read -r u1 s1 < <(cpu)
	"$PYTHON" - "$u0" "$s0" "$u1" "$s1" "$PROFILE_N" > "$OUT/profile-cpu.txt" <<'EOF'
import os, sys
u0, s0, u1, s1, n = map(int, sys.argv[1:])
hz = os.sysconf("SC_CLK_TCK")
print("4k, concurrency 20, %d messages: user %.3f ms/msg, system %.3f ms/msg"
      % (n, 1000 * (u1 - u0) / hz / n, 1000 * (s1 - s0) / hz / n))
EOF
	cat "$OUT/profile-cpu.txt" >&2
	if command -v strace >/dev/null; then
		strace -c -f -o "$OUT/strace-c.txt" -p "$SPID" &
		SPROF=$!
		sleep 1
		load "$PROFILE_N" strace > "$OUT/profile-strace.json" || true
		kill -INT "$SPROF"; wait "$SPROF" 2>/dev/null || true
		head -25 "$OUT/strace-c.txt" >&2
	fi
fi

# 7. table
stop_server
trap - EXIT
grep -cE '\[deliver\].*: [45][0-9][0-9]' "$OUT/serve.log" > "$OUT/deliver-errors.txt" || true
"$PYTHON" "$HERE/table.py" "$OUT" ${ANCHOR_RESULTS:+"$ANCHOR_RESULTS"} | tee "$OUT/summary.md"
