#!/bin/sh
# Golden tests: output of the compiler tools compared with stored files.
#   lang/ok/NAME.hk    -> NAME.disasm (hikyaku disasm), no errors allowed
#   lang/err/NAME.hk   -> NAME.err    (hikyaku check output, exit status 1
#                                      when the file has errors)
#   fmt/NAME.hk        -> NAME.fmt    (hikyaku fmt), and fmt of NAME.fmt
#                                      must be NAME.fmt again (idempotent)
#   bytecode/NAME.hkc  -> NAME.err    (a corrupt or foreign file is refused)
# With --update the expected files are rewritten; review the diff.
set -u
HIKYAKU=${HIKYAKU:-build/hikyaku}
case "$HIKYAKU" in /*) ;; *) HIKYAKU=$PWD/$HIKYAKU ;; esac
update=0
[ "${1:-}" = "--update" ] && update=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NO_COLOR=1
fail=0

compare() { # name expected actual
	if [ $update = 1 ]; then
		cp "$3" "$2"
		echo "PASS: $1 (updated)"
	elif [ -f "$2" ] && cmp -s "$2" "$3"; then
		echo "PASS: $1"
	else
		echo "FAIL: $1"
		if [ -f "$2" ]; then diff -u "$2" "$3" | head -40; else echo "  missing $2"; fi
		fail=1
	fi
}

for f in tests/golden/lang/ok/*.hk; do
	[ -f "$f" ] || continue
	b=${f%.hk}
	"$HIKYAKU" disasm "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL: $f does not compile"; cat "$tmp/err"; fail=1; continue
	fi
	compare "$f disasm" "$b.disasm" "$tmp/out"
done

for f in tests/golden/lang/err/*.hk; do
	[ -f "$f" ] || continue
	b=${f%.hk}
	"$HIKYAKU" check "$f" >"$tmp/out" 2>&1
	rc=$?
	echo "exit $rc" >>"$tmp/out"
	if [ $rc -gt 1 ]; then
		echo "FAIL: $f: check crashed or misbehaved (exit $rc)"; fail=1; continue
	fi
	compare "$f check" "$b.err" "$tmp/out"
done

for f in tests/golden/fmt/*.hk; do
	[ -f "$f" ] || continue
	b=${f%.hk}
	if ! "$HIKYAKU" fmt "$f" >"$tmp/out" 2>"$tmp/err"; then
		echo "FAIL: $f fmt failed"; cat "$tmp/err"; fail=1; continue
	fi
	compare "$f fmt" "$b.fmt" "$tmp/out"
	cp "$tmp/out" "$tmp/again.hk"
	"$HIKYAKU" fmt "$tmp/again.hk" >"$tmp/out2" 2>&1
	if cmp -s "$tmp/out" "$tmp/out2"; then echo "PASS: $f fmt is idempotent"; else echo "FAIL: $f fmt is not idempotent"; diff -u "$tmp/out" "$tmp/out2" | head -20; fail=1; fi
	# formatting never changes what the file means
	"$HIKYAKU" disasm "$f" 2>/dev/null | sed 's/ *; .*//' >"$tmp/d1"
	"$HIKYAKU" disasm "$tmp/again.hk" 2>/dev/null | sed 's/ *; .*//' >"$tmp/d2"
	if cmp -s "$tmp/d1" "$tmp/d2"; then echo "PASS: $f fmt keeps the bytecode"; else echo "FAIL: $f fmt changes the bytecode"; diff -u "$tmp/d1" "$tmp/d2" | head -20; fail=1; fi
done

# Stored bytecode: a compiled file loads again and runs the same; corrupt
# or foreign files are refused with a clear message (the .hkc files are
# made here from an example, since compiled files are never committed).
src=examples/warpmail-discard/personal.hk
"$HIKYAKU" compile "$src" -o "$tmp/good.hkc" 2>"$tmp/err" || { echo "FAIL: compile $src"; cat "$tmp/err"; fail=1; }
"$HIKYAKU" disasm "$src" >"$tmp/d1" 2>&1
"$HIKYAKU" disasm "$tmp/good.hkc" >"$tmp/d2" 2>&1
if cmp -s "$tmp/d1" "$tmp/d2"; then echo "PASS: bytecode round trip keeps the program"; else echo "FAIL: bytecode round trip"; diff -u "$tmp/d1" "$tmp/d2" | head; fail=1; fi
size=$(wc -c <"$tmp/good.hkc")
corrupt() { # name offset: the byte at offset is inverted
	python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[int(sys.argv[3])] ^= 0xFF; open(sys.argv[2], "wb").write(d)' \
		"$tmp/good.hkc" "$tmp/$1.hkc" "$2"
}
corrupt bad-magic 0
corrupt bad-version 4
corrupt flipped-byte $((size / 2))
corrupt flipped-checksum $((size - 1))
head -c $((size - 40)) "$tmp/good.hkc" >"$tmp/truncated.hkc"
: >"$tmp/empty.hkc"
printf 'HKBC' >"$tmp/short.hkc"
for n in bad-magic bad-version flipped-byte flipped-checksum truncated empty short; do
	(cd "$tmp" && "$HIKYAKU" disasm "$n.hkc" >out 2>&1; echo "exit $?" >>out)
	compare "bytecode $n refused" "tests/golden/bytecode/$n.err" "$tmp/out"
done

# the examples are formatted canonically
for f in $(find examples stdlib -name '*.hk' | sort); do
	if "$HIKYAKU" fmt --check "$f" >/dev/null 2>&1; then echo "PASS: $f is formatted"; else echo "FAIL: $f is not canonically formatted (run: hikyaku fmt -w $f)"; fail=1; fi
done
# hostile inputs too big to commit, generated here (deep nesting, huge
# strings, 70,000 rules, catastrophic regexes)
HIKYAKU="$HIKYAKU" tests/golden/lang/gen-hostile.sh $([ $update = 1 ] && echo --update) || fail=1
exit $fail
