#!/bin/sh
# bench/fsync/run.sh [REPS=3] [SECONDS=3]: the fsync strategy benchmark
# (fsync_batch.c, raw system calls) and the store benchmark (store_bench.c,
# through runtime/store.h), one JSON line per run on stdout. Cells are
# interleaved within each repetition so a slow period of the (shared,
# noisy) disk hits every strategy alike. Works in $TMPDIR (or /tmp): point
# it at the file system the store will live on. Builds into
# build/fsync-bench/ (the library with `make BUILD_DIR=build/fsync-bench`).
# Results and method: bench/fsync/README.md.
set -eu
REPS=${1:-3}
SECS=${2:-3}
B=build/fsync-bench
make -s BUILD_DIR=$B $B/libhikyaku.a >&2
PKGS="libpcre2-8 libssl libcrypto jansson"
cc -O2 -Wall -Wextra -pthread -o "$B/fsync_batch" bench/fsync/fsync_batch.c
cc -O2 -Wall -Wextra -pthread -D_GNU_SOURCE -Iruntime -o "$B/store_bench" bench/fsync/store_bench.c \
	"$B/libhikyaku.a" $(pkg-config --libs $PKGS) -lpthread
DIR=$(mktemp -d "${TMPDIR:-/tmp}/hk-fsync.XXXXXX")
trap 'rm -rf "$DIR"' EXIT

raw="single:1:1:1:0 single:1:8:1:0 single:1:20:1:0
each:16:1:16:0 sfr:16:1:16:0 syncfs:1:1:1:0 syncfs:4:1:4:0 syncfs:16:1:16:0 syncfs:64:1:16:0
one:16:1:16:0 syncfs:16:4:16:0 each:16:4:16:0
single:1:8:1:50 syncfs:16:1:16:50 syncfs:64:1:16:50"
api="deliver:1:1:fsync:0 deliver:4:1:fsync:0 deliver:20:1:fsync:0
committer:1:1:syncfs:1 committer:4:1:syncfs:1 committer:20:1:syncfs:1
committer:4:1:syncfs:4 committer:20:1:syncfs:4 committer:20:1:fsync:4
batch:1:20:syncfs:0 batch:1:20:fsync:0 deliver:1:20:fsync:0"

r=1
while [ "$r" -le "$REPS" ]; do
	for c in $raw; do
		IFS=: read -r s b t d n <<EOC
$c
EOC
		"$B/fsync_batch" "$DIR/x" "$s" "$b" "$t" "$d" "$SECS" 4096 "$n"
		rm -rf "$DIR/x"
	done
	for c in $api; do
		IFS=: read -r m t rc sy ct <<EOC
$c
EOC
		"$B/store_bench" "$DIR/var" "$m" "$t" "$rc" "$sy" "$SECS" 4096 "$ct"
	done
	rm -rf "$DIR/var" # the 200 mailboxes are made once per repetition
	r=$((r + 1))
done
