#!/bin/sh
# check-examples.sh - checks every rule example in the documentation with
# the real tool, so the docs cannot drift from the language.
#
#   doc/check-examples.sh [HIKYAKU]      (default: build/hikyaku)
#
# Every fenced block that opens with ```hk in doc/*.md is a complete rule
# file. A first line "# file: NAME.hk" names the temporary file (and so the
# layer: personal.hk, settings.hk, domain.hk, anything else = operator).
# Each block must pass `hikyaku check` with no diagnostics at all, and a
# block with test blocks must pass `hikyaku test`. The files in
# doc/tutorial/ are checked and tested the same way. Blocks that show
# mistakes on purpose are fenced as ```text, not ```hk.
# Run from the repository root. Ends with "N passed, N failed".
set -u
HIKYAKU=${1:-build/hikyaku}
case $HIKYAKU in /*) ;; *) HIKYAKU=$PWD/$HIKYAKU ;; esac
STDLIB=$PWD/stdlib
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

check_one() { # label dir file
	label=$1 dir=$2 file=$3
	out=$(cd "$dir" && "$HIKYAKU" check --stdlib "$STDLIB" "$file" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		echo "FAIL: $label: hikyaku check"
		printf '%s\n' "$out" | sed 's/^/    /'
		fail=$((fail + 1))
		return
	fi
	if grep -q '^test "' "$dir/$file"; then
		out=$(cd "$dir" && "$HIKYAKU" test --stdlib "$STDLIB" "$file" 2>&1)
		if [ $? -ne 0 ]; then
			echo "FAIL: $label: hikyaku test"
			printf '%s\n' "$out" | sed 's/^/    /'
			fail=$((fail + 1))
			return
		fi
	fi
	echo "PASS: $label"
	pass=$((pass + 1))
}

n=0
for md in doc/*.md; do
	[ -f "$md" ] || continue
	# split the ```hk blocks into numbered files: NNN<TAB>start-line
	awk -v dir="$tmp" -v md="$md" '
		/^```hk[ \t]*$/ { inb = 1; n++; start = NR; name = "example.hk"; first = 1; buf = ""; next }
		inb && /^```[ \t]*$/ {
			d = dir "/" md "-" n; gsub(/\//, "_", d); d = dir "/" substr(d, length(dir) + 2)
			system("mkdir -p \"" d "\"")
			printf "%s", buf > (d "/" name); close(d "/" name)
			print d "\t" name "\t" start
			inb = 0; next
		}
		inb {
			if (first && $0 ~ /^# file: [A-Za-z0-9_.-]+\.hk[ \t]*$/) { name = $3 }
			first = 0
			buf = buf $0 "\n"
		}
	' "$md" > "$tmp/list"
	while IFS='	' read -r d name start; do
		n=$((n + 1))
		check_one "$md:$start" "$d" "$name"
	done < "$tmp/list"
done

for hk in $(find doc/tutorial -name '*.hk' 2>/dev/null | sort); do
	check_one "$hk" "$(dirname "$hk")" "$(basename "$hk")"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
