#!/bin/sh
# Replays every stored fuzzing input through the same entry points as the
# fuzzers, without clang: each tests/fuzz/fuzz_<target>.c is built with
# tests/fuzz/replay_main.c against $B/libhikyaku.a into $B/fuzz-replay/
# (`make fuzz-replay` does the same; this script builds what is missing or
# stale), then runs every file of tests/fuzz/crashes/<target>/ and
# tests/fuzz/corpus/<target>/. One line per target:
#   PASS: fuzz/<target>: N crashes, M corpus files
#   FAIL: fuzz/<target>: ... (then the files that fail, one per line)
# Called by tests/run-all.sh with B (build dir) set; exits non-zero on a
# failure.
set -u
B=${B:-build/default}
CC=${CC:-cc}
cd "$(dirname "$0")/../.." || exit 2
lib="$B/libhikyaku.a"
if [ ! -f "$lib" ]; then
	echo "FAIL: fuzz: $lib not built (make first)"
	exit 1
fi

# The library's sanitizers, if any, must be linked in too.
san=""
if nm "$lib" 2>/dev/null | grep -q '__asan_'; then san="address"; fi
if nm "$lib" 2>/dev/null | grep -q '__ubsan_'; then san="${san:+$san,}undefined"; fi
sanflags=""
[ -n "$san" ] && sanflags="-fsanitize=$san -fno-sanitize-recover=all -fno-omit-frame-pointer"
pkgs="libpcre2-8 libssl libcrypto jansson libevent libevent_openssl libevent_pthreads libcares libxcrypt libidn"

# stale TARGET FILE...: true when TARGET is missing or older than a FILE
stale() {
	target=$1
	shift
	[ -f "$target" ] || return 0
	for f in "$@"; do [ "$f" -nt "$target" ] && return 0; done
	return 1
}

fail=0
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c)
	t=${name#fuzz_}
	bin="$B/fuzz-replay/$name"
	if stale "$bin" "$src" tests/fuzz/replay_main.c tests/fuzz/*.h "$lib"; then
		mkdir -p "$B/fuzz-replay"
		# shellcheck disable=SC2046,SC2086
		if ! $CC -std=c11 -D_GNU_SOURCE -O1 -g -I. -Iruntime -Ilang -Iservers -I"$B/gen/lang" $sanflags \
			$(pkg-config --cflags $pkgs 2>/dev/null) -include tests/fuzz/fuzz_target.h \
			-o "$bin" "$src" tests/fuzz/replay_main.c "$B/libhkserv.a" "$lib" $(pkg-config --libs $pkgs 2>/dev/null) -lgdbm -lpthread \
			>"$B/fuzz-replay/$name.log" 2>&1; then
			echo "FAIL: fuzz/$t: replay binary does not build (see $B/fuzz-replay/$name.log)"
			fail=1
			continue
		fi
	fi
	ncrash=0
	ncorpus=0
	for f in tests/fuzz/crashes/"$t"/* ; do [ -f "$f" ] && ncrash=$((ncrash + 1)); done
	for f in tests/fuzz/corpus/"$t"/* ; do [ -f "$f" ] && ncorpus=$((ncorpus + 1)); done
	if [ $((ncrash + ncorpus)) -eq 0 ]; then
		echo "PASS: fuzz/$t: no stored inputs"
		continue
	fi
	# One process for all the files (fast); on a failure, one per file to
	# name the culprits.
	# shellcheck disable=SC2046
	if out=$(find tests/fuzz/crashes/"$t" tests/fuzz/corpus/"$t" -type f 2>/dev/null | sort |
		xargs timeout 120 "$bin" 2>&1) && printf '%s\n' "$out" | grep -q "^replayed $((ncrash + ncorpus)) files"; then
		echo "PASS: fuzz/$t: $ncrash crashes, $ncorpus corpus files"
		continue
	fi
	echo "FAIL: fuzz/$t: $ncrash crashes, $ncorpus corpus files"
	fail=1
	find tests/fuzz/crashes/"$t" tests/fuzz/corpus/"$t" -type f 2>/dev/null | sort | while read -r f; do
		if ! o=$(timeout 60 "$bin" "$f" 2>&1); then
			echo "    $f:"
			printf '%s\n' "$o" | grep -E 'ERROR|SUMMARY|runtime error|fuzz_|Assertion|replay:' | head -3 | sed 's/^/        /'
		fi
	done
done
exit $fail
