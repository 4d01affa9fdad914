#!/bin/sh
# Hostile rule files too big to commit: generated here into a temporary
# directory, then `hikyaku check` must end quickly (TIME_LIMIT seconds) with
# the located diagnostics (or the clear error) stored in
# tests/golden/lang/hostile/NAME.err, never crash or hang. Also runs the
# test blocks of tests/hostile/*.hk (`hikyaku test`), e.g. a catastrophic
# regex on a long subject that must end within its budget.
#
# usage: HIKYAKU=build/hikyaku tests/golden/lang/gen-hostile.sh [--update]
# Prints one PASS/FAIL line per case (counted by tests/run-all.sh); exits
# non-zero on a failure.
set -u
HIKYAKU=${HIKYAKU:-build/hikyaku}
case "$HIKYAKU" in /*) ;; *) HIKYAKU=$PWD/$HIKYAKU ;; esac
TIME_LIMIT=${TIME_LIMIT:-20}
update=0
[ "${1:-}" = "--update" ] && update=1
here=$(cd "$(dirname "$0")" && pwd)
expected="$here/hostile"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NO_COLOR=1
fail=0

# gen NAME: writes $tmp/NAME.hk
gen() {
	case "$1" in
	parens-10000) # 10,000 nested parentheses, one per line
		awk 'BEGIN { print "on deliver {"; printf "    rule \"p\" when "
			for (i = 0; i < 10000; i++) print "("
			printf "subject is \"x\""
			for (i = 0; i < 10000; i++) print ")"
			print " {\n        keep\n    }\n}" }' ;;
	not-10000) # 10,000 `not`
		awk 'BEGIN { print "on deliver {"; printf "    rule \"n\" when "
			for (i = 0; i < 10000; i++) print "not"
			print "tls {\n        keep\n    }\n}" }' ;;
	or-100000) # a 100,000-term `or` chain
		awk 'BEGIN { print "on deliver {"; printf "    rule \"o\" when subject is \"x\""
			for (i = 1; i < 100000; i++) printf "\n        or subject is \"x\""
			print " {\n        keep\n    }\n}" }' ;;
	and-or-100000) # 100,000 terms alternating `and` and `or`
		awk 'BEGIN { print "on deliver {"; printf "    rule \"o\" when size > 0"
			for (i = 1; i < 100000; i++) printf "\n        %s size > %d", i % 2 ? "and" : "or", i % 7
			print " {\n        keep\n    }\n}" }' ;;
	if-nested-10000) # 10,000 nested `if`
		awk 'BEGIN { print "on deliver {\n    rule \"i\" {"
			for (i = 0; i < 10000; i++) print "if size > 1 {"
			print "keep"
			for (i = 0; i < 10000; i++) print "} else {\ndiscard\n}"
			print "    }\n}" }' ;;
	else-if-10000) # an `else if` chain 10,000 long
		awk 'BEGIN { print "on deliver {\n    rule \"e\" {\n        if size > 0 {\n            keep"
			for (i = 1; i < 10000; i++) printf "        } else if size > %d {\n            keep\n", i
			print "        }\n    }\n}" }' ;;
	brackets-10000) # 10,000 nested list brackets
		awk 'BEGIN { print "const l = "; for (i = 0; i < 10000; i++) print "["
			printf "\"x\""; for (i = 0; i < 10000; i++) print "]" }' ;;
	header-10000) # header header header ... "X"
		awk 'BEGIN { print "on deliver {"; printf "    rule \"h\" when "
			for (i = 0; i < 10000; i++) print "header"
			print "\"X\" is \"y\" {\n        keep\n    }\n}" }' ;;
	rules-70000) # more rules than a program can hold (65,535)
		awk 'BEGIN { print "on deliver {"
			for (i = 0; i < 70000; i++) printf "    rule \"r%d\" when size > %d {\n        stop\n    }\n", i, i % 10
			print "}" }' ;;
	string-5mb) # over the 4 MB source limit
		awk 'BEGIN { printf "on deliver {\n    rule \"s\" when subject is \""
			s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			for (i = 0; i < 5 * 1024 * 1024 / 100; i++) printf "%s", substr(s, 1, 100)
			print "\" {\n        keep\n    }\n}" }' ;;
	string-4mb) # just under the 4 MB source limit: one string over the 1 MB token limit
		awk 'BEGIN { printf "on deliver {\n    rule \"s\" when subject is \""
			s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			for (i = 0; i < int(4 * 1024 * 1024 / 100) - 2; i++) printf "%s", substr(s, 1, 100)
			print "\" {\n        keep\n    }\n}" }' ;;
	string-1mb-ok) # a file just under 4 MB that compiles: a string just under 1 MB, and comments
		awk 'BEGIN { printf "on deliver {\n    rule \"s\" when body contains \""
			s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			for (i = 0; i < int(1024 * 1024 / 100) - 2; i++) printf "%s", substr(s, 1, 100)
			print "\" {\n        keep\n    }\n}"
			for (i = 0; i < int(3 * 1024 * 1024 / 100) - 4; i++) print "#", substr(s, 1, 97) }' ;;
	long-line-errors) # one line of almost 4 MB with an error every few bytes: the output stays small
		awk 'BEGIN { s = ";;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;"
			for (i = 0; i < int(4 * 1024 * 1024 / 100) - 2; i++) printf "%s", s
			print "" }' ;;
	esac >"$tmp/$1.hk"
}

cases="parens-10000 not-10000 or-100000 and-or-100000 if-nested-10000 else-if-10000 brackets-10000
header-10000 rules-70000 string-5mb string-4mb string-1mb-ok long-line-errors"
for c in $cases; do
	gen "$c"
	# relative name, so the messages do not depend on the temporary path
	(cd "$tmp" && timeout "$TIME_LIMIT" "$HIKYAKU" check "$c.hk" >"$c.out" 2>&1; echo "exit $?" >>"$c.out")
	rc=$(tail -n 1 "$tmp/$c.out")
	if [ "$rc" != "exit 0" ] && [ "$rc" != "exit 1" ]; then
		echo "FAIL: hostile $c: check crashed or took more than ${TIME_LIMIT}s ($rc)"
		fail=1
		continue
	fi
	if [ $update = 1 ]; then
		cp "$tmp/$c.out" "$expected/$c.err"
		echo "PASS: hostile $c (updated)"
	elif cmp -s "$expected/$c.err" "$tmp/$c.out"; then
		echo "PASS: hostile $c"
	else
		echo "FAIL: hostile $c"
		if [ -f "$expected/$c.err" ]; then diff -u "$expected/$c.err" "$tmp/$c.out" | head -20; else echo "  missing $expected/$c.err"; fi
		fail=1
	fi
done

# test blocks of hostile scripts (budgets at run time)
for f in "$here"/../../hostile/*.hk "$here"/../../hostile/*/*.hk; do
	[ -f "$f" ] || continue
	n=$(basename "$f")
	out=$(cd "$(dirname "$f")" && timeout "$TIME_LIMIT" "$HIKYAKU" test "$n" 2>&1)
	rc=$?
	p=$(printf '%s\n' "$out" | grep -c '^PASS')
	if [ $rc -eq 0 ] && [ "$p" -gt 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL'; then
		echo "PASS: hostile ${f#"$here"/../../} ($p test blocks)"
	else
		echo "FAIL: hostile ${f#"$here"/../../} (exit $rc)"
		printf '%s\n' "$out" | head -20
		fail=1
	fi
done
exit $fail
