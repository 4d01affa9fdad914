#!/bin/bash
# Runs every libFuzzer binary in DIR (DIR/fuzz_*) for SECONDS each, over a
# copy of its seed corpus tests/fuzz/corpus/<target>/ (so the repository's
# corpus does not grow), with the dictionary tests/fuzz/<target>.dict when
# there is one. Every crash, timeout, out-of-memory or leak artifact is
# copied to tests/fuzz/crashes/<target>/ (replayed by make check) and the
# script exits non-zero. The dictionary may also be named fuzz_<target>.dict.
#
# usage: tests/fuzz/run.sh DIR SECONDS [TARGET...]
#   FUZZ_JOBS=N   run N targets at once (default 1; one core each)
#   FUZZ_KEEP=1   keep the work directory (grown corpora, logs)
#   FUZZ_WORK=DIR use DIR as the work directory and keep it (corpora grow
#                 from run to run, outside the repository)
set -u
dir=${1:?usage: run.sh DIR SECONDS [TARGET...]}
secs=${2:?usage: run.sh DIR SECONDS [TARGET...]}
shift 2
jobs=${FUZZ_JOBS:-1}
here=$(cd "$(dirname "$0")" && pwd)
fail=0
if [ -n "${FUZZ_WORK:-}" ]; then
	work=$FUZZ_WORK # reused: the corpora grow from run to run
	mkdir -p "$work"
	FUZZ_KEEP=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/hk-fuzz.XXXXXX")
fi
rm -f "$work"/result.*
cleanup() { [ "${FUZZ_KEEP:-}" = 1 ] || [ $fail -ne 0 ] || rm -rf "$work"; }
trap cleanup EXIT

max_len() { # target
	case "$1" in
	lexer) echo 16384 ;;
	compile) echo 16384 ;;
	bc_verify) echo 65536 ;;
	mime) echo 262144 ;;
	*) echo 65536 ;;
	esac
}

run_one() { # binary
	bin=$1
	name=$(basename "$bin")
	t=${name#fuzz_}
	w="$work/$t"
	rm -rf "$w/artifacts"
	mkdir -p "$w/corpus" "$w/artifacts"
	if [ -d "$here/corpus/$t" ]; then
		cp -r "$here/corpus/$t/." "$w/corpus/"
	fi
	dict=()
	[ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
	[ -f "$here/$name.dict" ] && dict=("-dict=$here/$name.dict")
	"$bin" "$w/corpus" "${dict[@]}" -max_total_time="$secs" -max_len="$(max_len "$t")" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$w/artifacts/" >"$w/log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+.*(DONE|pulse)' "$w/log" | tail -1)
	arts=$(find "$w/artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
	if [ "$arts" -gt 0 ] || [ $rc -ne 0 ]; then
		mkdir -p "$here/crashes/$t"
		find "$w/artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) \
			-exec cp {} "$here/crashes/$t/" \;
		echo "FAIL: $t (exit $rc, $arts artifacts copied to tests/fuzz/crashes/$t/): $stats"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_)|runtime error' "$w/log" | head -5 | sed 's/^/    /'
		echo "    log: $w/log"
		return 1
	fi
	echo "PASS: $t ${secs}s: $stats"
	return 0
}

bins=()
if [ $# -gt 0 ]; then
	for t in "$@"; do bins+=("$dir/fuzz_${t#fuzz_}"); done
else
	for b in "$dir"/fuzz_*; do [ -x "$b" ] && [ -f "$b" ] && bins+=("$b"); done
fi
[ ${#bins[@]} -gt 0 ] || { echo "run.sh: no fuzz binaries in $dir" >&2; exit 2; }

running=0
pids=()
for b in "${bins[@]}"; do
	if [ ! -x "$b" ]; then echo "FAIL: $b: not built"; fail=1; continue; fi
	if [ "$jobs" -le 1 ]; then
		run_one "$b" || fail=1
		continue
	fi
	run_one "$b" >"$work/result.$(basename "$b")" &
	pids+=($!)
	running=$((running + 1))
	if [ $running -ge "$jobs" ]; then
		wait "${pids[0]}" || fail=1
		pids=("${pids[@]:1}")
		running=$((running - 1))
	fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$jobs" -gt 1 ] && cat "$work"/result.* 2>/dev/null
{ [ "${FUZZ_KEEP:-}" = 1 ] || [ $fail -ne 0 ]; } && echo "work directory (kept): $work"
exit $fail
