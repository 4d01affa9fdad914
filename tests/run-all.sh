#!/bin/sh
# Runs every test suite of `make test` and ends with one line
# "N passed, N failed" (the sum over the suites); exits non-zero when any
# test failed. Called by the Makefile with HIKYAKU and B (build dir) set.
#   unit     cmocka binaries in $B/tests/
#   golden   compiler and formatter output compared with tests/golden/
#   examples the test blocks of every examples/**/*.hk
#   doc      the examples in doc/*.md and doc/tutorial/
#   editors  vim, Emacs and TextMate grammars (tests/editors/run.sh)
#   e2e      tests/e2e/test_*.py: hikyaku serve with real clients
#   fuzz     replay of stored fuzzing regressions
set -u
HIKYAKU=${HIKYAKU:-build/hikyaku}
B=${B:-build/default}
total_pass=0
total_fail=0
failed_suites=""

count() { # suite pass fail
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	[ "$3" -gt 0 ] && failed_suites="$failed_suites $1"
	printf '== %s: %s passed, %s failed\n' "$1" "$2" "$3"
}

vg=""
[ "${VALGRIND:-}" = 1 ] && vg="valgrind -q --error-exitcode=99 --leak-check=full --suppressions=tests/unit/valgrind-iconv.supp"

# unit tests (cmocka): one binary per module
for t in "$B"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out=$($vg "$t" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^\[  (FAILED|ERROR) |^\[   LINE' || true
	p=$(printf '%s\n' "$out" | grep -c '^\[       OK \]')
	f=$(printf '%s\n' "$out" | grep '^\[  FAILED  \] test_' | sort -u | wc -l)
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	count "unit/$name" "$p" "$f"
done

# golden tests
out=$(HIKYAKU="$HIKYAKU" tests/golden/run.sh 2>&1); rc=$?
printf '%s\n' "$out" | grep -v '^PASS' || true
p=$(printf '%s\n' "$out" | grep -c '^PASS')
f=$(printf '%s\n' "$out" | grep -c '^FAIL')
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
count golden "$p" "$f"

# examples: every test block
p=0; f=0
for hk in $(find examples -name '*.hk' | sort); do
	out=$($vg "$HIKYAKU" test "$hk" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^FAIL|^    |error' || true
	p=$((p + $(printf '%s\n' "$out" | grep -c '^PASS')))
	ff=$(printf '%s\n' "$out" | grep -c '^FAIL')
	[ $rc -ne 0 ] && [ "$ff" -eq 0 ] && ff=1 && echo "examples: $hk: exit $rc"
	f=$((f + ff))
done
count examples "$p" "$f"

# doc: every example in the documentation checks (and passes its tests)
out=$(doc/check-examples.sh "$HIKYAKU" 2>&1); rc=$?
printf '%s\n' "$out" | grep '^FAIL' || true
p=$(printf '%s\n' "$out" | grep -c '^PASS')
f=$(printf '%s\n' "$out" | grep -c '^FAIL')
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
count doc-examples "$p" "$f"

# stdlib: every library compiles without warnings
p=0; f=0
for hk in stdlib/*.hk; do
	if out=$("$HIKYAKU" check "$hk" 2>&1) && [ -z "$out" ]; then p=$((p + 1)); else f=$((f + 1)); echo "stdlib: $hk:"; echo "$out"; fi
done
count stdlib "$p" "$f"

# editors
if [ -x tests/editors/run.sh ]; then
	out=$(tests/editors/run.sh 2>&1); rc=$?
	printf '%s\n' "$out" | grep '^FAIL' || true
	p=$(printf '%s\n' "$out" | grep -c '^PASS')
	f=$(printf '%s\n' "$out" | grep -c '^FAIL')
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	count editors "$p" "$f"
fi

# end to end: real servers on 127.0.0.1 and real clients
p=0; f=0
for t in tests/e2e/test_*.py; do
	[ -f "$t" ] || continue
	out=$(HIKYAKU="$HIKYAKU" /usr/bin/python3 "$t" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^FAIL|^SKIP|Traceback|Error' || true
	p=$((p + $(printf '%s\n' "$out" | grep -c '^PASS')))
	ff=$(printf '%s\n' "$out" | grep -c '^FAIL')
	[ $rc -ne 0 ] && [ "$ff" -eq 0 ] && ff=1 && echo "e2e: $t: exit $rc"
	f=$((f + ff))
done
count e2e "$p" "$f"

# fuzz regressions: every stored input through the same entry points
if [ -x tests/fuzz/replay.sh ]; then
	out=$(HIKYAKU="$HIKYAKU" B="$B" tests/fuzz/replay.sh 2>&1); rc=$?
	printf '%s\n' "$out" | grep '^FAIL' || true
	p=$(printf '%s\n' "$out" | grep -c '^PASS')
	f=$(printf '%s\n' "$out" | grep -c '^FAIL')
	[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
	count fuzz-replay "$p" "$f"
fi

[ -n "$failed_suites" ] && echo "failing suites:$failed_suites"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
