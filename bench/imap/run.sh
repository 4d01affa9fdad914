#!/bin/bash
# bench/imap/run.sh HIKYAKU - IMAP and POP3 of `hikyaku serve` against
# Dovecot on the same 10,000-message Maildir, with the anchor's clients, in
# one sitting (`make bench-imap`).
#
#   1. our server on free 127.0.0.1 ports (imap, pop3), state under
#      $(dirname HIKYAKU)/bench-imap/var: domain bench.test, user u10k
#      whose INBOX is the anchor's tools/gen_maildir.py mailbox (10,000
#      messages, 45 MB), and users u0001..u1000 (empty) for the idle test;
#   2. client/imap_bench.py (login, SELECT, FETCH 1:* meta, FETCH 1:*
#      BODY.PEEK[], two SEARCHes) in three states:
#        first  the mailbox as gen_maildir.py wrote it: our first sync ever
#               gives every message a UID and renames its file (,U=)
#        cold   our index deleted (hikyaku-uidlist*): rebuilt from the
#               names, which already carry their UIDs
#        warm   nothing changed since the last session
#      then client/pop3_bench.py (LIST, UIDL, RETR of all 10,000) cold and
#      warm, and client/imap_idle.py with IDLE_CONNS (1,000) sessions logged
#      in with INBOX selected: RSS and PSS of our single process, marginal
#      per connection;
#   3. the anchor's own run.sh, phases "idle imap pop3", on Dovecot in a
#      sandbox of its own (ANCHOR_ROOT, free ports: it never touches another
#      anchor sandbox on this machine); needs root (Postfix's master);
#   4. the table (bench/imap/table.py): both servers, every row.
#
# Knobs (environment): REPS (3: repetitions of every IMAP/POP3 state),
# IDLE_CONNS (1000), IDLE_REPS (1), ANCHOR_RUN (1; 0: our side only, the
# table then shows RESULTS.md's numbers), ANCHOR (/work/shared/bench/anchor),
# ANCHOR_ROOT (/tmp/hikyaku-bench-imap-anchor), PERF (0; 1: `perf record -g`
# on our server during one warm and one first-sync session, report in
# bench-imap/perf-*.txt), PYTHON (/usr/bin/python3).
# Output: $(dirname HIKYAKU)/bench-imap/ (results/raw/*.jsonl, summary.md).
# The anchor's files are only read and executed, never changed.
set -euo pipefail

[ $# = 1 ] || { echo "usage: bench/imap/run.sh path/to/hikyaku" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)
HIKYAKU=$BIN/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ANCHOR=${ANCHOR:-/work/shared/bench/anchor}
PYTHON=${PYTHON:-/usr/bin/python3}
: "${REPS:=3}" "${IDLE_CONNS:=1000}" "${IDLE_REPS:=1}" "${ANCHOR_RUN:=1}" "${PERF:=0}"
: "${ANCHOR_ROOT:=/tmp/hikyaku-bench-imap-anchor}"
OUT=$BIN/bench-imap
STATE=$OUT/var
RAW=$OUT/results/raw
DOMAIN=bench.test
BIG=u10k
BIG_COUNT=10000
IDLE_FMT=u%04d
# our passwords need 8+ characters; the anchor's "benchpw" has 7
PASSWORD=benchpw-hikyaku

fail() { echo "bench-imap: FAILED: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*" >&2; }
addf() { "$PYTHON" -c 'import json,sys
d=json.loads(sys.stdin.read()); d.update(a.split("=",1) for a in sys.argv[1:]); print(json.dumps(d))' "$@"; }

[ -x "$HIKYAKU" ] || fail "$HIKYAKU is not built"
[ -f "$ANCHOR/client/imap_bench.py" ] || fail "no anchor harness at $ANCHOR"
if [ "$ANCHOR_RUN" = 1 ] && [ "$(id -u)" != 0 ]; then
	fail "the Dovecot side (anchor run.sh) needs root; ANCHOR_RUN=0 runs ours alone"
fi

# 1. state, users, the mailbox, the server
rm -rf "$OUT"
mkdir -p "$OUT" "$STATE" "$RAW"
SPID=
stop_server() {
	if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
		kill -TERM "$SPID"
		for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID"
	fi
	[ -z "$SPID" ] || wait "$SPID" 2>/dev/null || true
	SPID=
}
trap stop_server EXIT

read -r P_IMAP P_POP3 < <("$PYTHON" -c '
import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])')
cat > "$OUT/hikyaku.conf" <<EOF
hostname mail.bench.test
state_dir $STATE
listen imap 127.0.0.1:$P_IMAP
listen pop3 127.0.0.1:$P_POP3
# the anchor's clients log in without TLS, as they do against Dovecot
allow_plaintext_auth yes
EOF
"$HIKYAKU" domain add "$DOMAIN" --state "$STATE" >/dev/null
adduser() { printf '%s\n' "$PASSWORD" | "$HIKYAKU" user add "$1@$DOMAIN" --stdin --state "$STATE" >/dev/null; }
adduser "$BIG"
log "users: $BIG and $IDLE_CONNS idle-test users ($(printf "$IDLE_FMT" 1)..)"
for i in $(seq 1 "$IDLE_CONNS"); do adduser "$(printf "$IDLE_FMT" "$i")"; done

MD=$STATE/domains/$DOMAIN/users/$BIG/Maildir
PRISTINE=$OUT/maildir-pristine
log "mailbox: tools/gen_maildir.py, $BIG_COUNT messages"
"$PYTHON" "$ANCHOR/tools/gen_maildir.py" "$PRISTINE" "$BIG_COUNT"
# as the anchor (Maildir++ INBOX of a fresh account: just new/ cur/ tmp/)
fresh_mailbox() { rm -rf "$MD"; mkdir -p "$(dirname "$MD")"; cp -a "$PRISTINE" "$MD"; sync; }
drop_index() { rm -f "$MD"/hikyaku-uidlist*; }
fresh_mailbox

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
ALLOW_ROOT=
[ "$(id -u)" -eq 0 ] && ALLOW_ROOT=--allow-root
"$HIKYAKU" serve --config "$OUT/hikyaku.conf" $ALLOW_ROOT >"$OUT/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$P_IMAP") 2>/dev/null && break
	kill -0 "$SPID" 2>/dev/null || { cat "$OUT/serve.log"; fail "server exited"; }
	sleep 0.1
done
log "server pid $SPID, imap 127.0.0.1:$P_IMAP, pop3 127.0.0.1:$P_POP3, state $STATE"
{
	echo "date=$(date -u +%FT%TZ) kernel=$(uname -r) cpus=$(nproc)"
	grep -m1 'model name' /proc/cpuinfo
	echo "hikyaku=$("$HIKYAKU" version | head -1) commit=$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo ?)"
	echo "dovecot=$(dovecot --version 2>/dev/null || echo none)"
	echo "REPS=$REPS IDLE_CONNS=$IDLE_CONNS IDLE_REPS=$IDLE_REPS"
} > "$OUT/run-info.txt"

imap_one() { # state rep
	log "imap hikyaku $1 rep=$2"
	"$PYTHON" "$ANCHOR/client/imap_bench.py" --port "$P_IMAP" --user "$BIG@$DOMAIN" \
		--password "$PASSWORD" --server-pid "$SPID" --expect-messages "$BIG_COUNT" --label "$1" \
		| addf phase=imap state="$1" rep="$2" >> "$RAW/imap.jsonl" || fail "imap $1 (see $RAW/imap.jsonl)"
}
pop3_one() { # state rep
	log "pop3 hikyaku $1 rep=$2"
	"$PYTHON" "$ANCHOR/client/pop3_bench.py" --port "$P_POP3" --user "$BIG@$DOMAIN" \
		--password "$PASSWORD" --server-pid "$SPID" --expect-messages "$BIG_COUNT" --label "$1" \
		| addf phase=pop3 state="$1" rep="$2" >> "$RAW/pop3.jsonl" || fail "pop3 $1 (see $RAW/pop3.jsonl)"
}

# 2. our phases, in the anchor's order: idle first, on the freshly started
# server (a heap already grown by the 10,000-message sessions would hide
# what the idle sessions cost), then IMAP, then POP3.
for rep in $(seq 1 "$IDLE_REPS"); do
	log "idle hikyaku $IDLE_CONNS sessions rep=$rep"
	"$PYTHON" "$ANCHOR/client/imap_idle.py" --port "$P_IMAP" --domain "$DOMAIN" --user-fmt "$IDLE_FMT" \
		--password "$PASSWORD" --connections "$IDLE_CONNS" --server-pid "$SPID" --label hikyaku \
		| addf phase=idle rep="$rep" >> "$RAW/idle.jsonl" || fail "idle (see $RAW/idle.jsonl)"
	kill -0 "$SPID" 2>/dev/null || fail "server died holding $IDLE_CONNS sessions"
done

# The first session of each rep is our first sync ever
# (fresh copy of the generated Maildir), then the index is deleted (cold),
# then two warm sessions, as the anchor runs cold, warm, warm.
for rep in $(seq 1 "$REPS"); do
	fresh_mailbox; imap_one first "$rep"
	drop_index; imap_one cold "$rep"
	imap_one warm "$rep"; imap_one warm "$rep"
done
for rep in $(seq 1 "$REPS"); do
	drop_index; pop3_one cold "$rep"
	pop3_one warm "$rep"
done
# optional profile: where our server's time goes, warm and first sync
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
	for st in warm first; do
		[ "$st" = first ] && fresh_mailbox
		perf record -g -o "$OUT/perf-$st.data" -p "$SPID" 2>/dev/null &
		PP=$!
		sleep 0.5
		"$PYTHON" "$ANCHOR/client/imap_bench.py" --port "$P_IMAP" --user "$BIG@$DOMAIN" \
			--password "$PASSWORD" --label "perf-$st" > "$OUT/perf-$st.json" || true
		kill -INT "$PP"; wait "$PP" 2>/dev/null || true
		perf report -i "$OUT/perf-$st.data" --no-children --percent-limit 1 --stdio 2>/dev/null \
			| grep -v '^$' | head -150 > "$OUT/perf-$st.txt" || true
	done
fi
stop_server
trap - EXIT
grep -ciE 'error|fatal|panic' "$OUT/serve.log" > "$OUT/serve-errors.txt" || true

# 3. Dovecot in the same sitting, by the anchor's own script
ANCHOR_RES=
if [ "$ANCHOR_RUN" = 1 ]; then
	read -r A_SMTP A_SINK A_LMTP A_IMAP A_POP3 < <("$PYTHON" -c '
import socket
ss=[socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])')
	log "anchor (Dovecot): run.sh idle imap pop3 in $ANCHOR_ROOT"
	ANCHOR_RES=$OUT/anchor-results
	BENCH_ROOT=$ANCHOR_ROOT SMTP_PORT=$A_SMTP SINK_PORT=$A_SINK LMTP_PORT=$A_LMTP \
	IMAP_PORT=$A_IMAP POP3_PORT=$A_POP3 REPS=$REPS RESULTS_DIR=$ANCHOR_RES PYTHON=$PYTHON \
		"$ANCHOR/run.sh" idle imap pop3 >"$OUT/anchor.log" 2>&1 \
		|| { tail -20 "$OUT/anchor.log" >&2; fail "anchor run (see $OUT/anchor.log)"; }
	BENCH_ROOT=$ANCHOR_ROOT "$ANCHOR/stop.sh" --clean --quiet >/dev/null 2>&1 || true
fi

# 4. table
"$PYTHON" "$HERE/table.py" "$OUT" ${ANCHOR_RES:+"$ANCHOR_RES"} | tee "$OUT/summary.md"
