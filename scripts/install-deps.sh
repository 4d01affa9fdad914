#!/bin/sh
# Install the Debian 12 packages Hikyaku needs to build and test, and only
# those that are missing, so `make run` and `make test` stay fast once a
# machine is set up. Runs apt-get as root, or through sudo when available.
#
# usage: scripts/install-deps.sh [build|test]
set -eu

build_pkgs="build-essential pkg-config libssl-dev libevent-dev libc-ares-dev
libjansson-dev libpcre2-dev libgdbm-dev libcrypt-dev libidn-dev libcmocka-dev
re2c lemon"
# test adds: clang (libFuzzer), valgrind (callgrind in make bench), vim and
# emacs (their syntax files are loaded by tests), python3 for the e2e tools.
test_pkgs="$build_pkgs clang libclang-rt-14-dev valgrind vim-nox emacs-nox
python3 openssl curl python3-dnslib python3-yaml swaks libnet-ssleay-perl libauthen-sasl-perl libdigest-hmac-perl
fetchmail isync mutt"

case "${1:-build}" in
build) want=$build_pkgs ;;
test)  want=$test_pkgs ;;
*) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
