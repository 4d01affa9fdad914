#!/usr/bin/env bash
# Checks the editor support in editors/ with the real editors and engine:
#   vim     headless vim loads editors/vim on sample.hk     (vim-test.vim)
#   emacs   emacs --batch byte-compiles and uses the mode   (emacs-test.el)
#   textmate vscode-textmate + vscode-oniguruma tokenize    (textmate/test.js)
# The positions and expected groups/faces/scopes are in expectations.txt.
#
# Stdout: exactly one "PASS: ..." or "FAIL: ..." line per check.  Anything
# else (tool output, the closing count) goes to stderr.  Exits 1 if any check
# failed.  A missing vim/emacs is installed with apt-get when running as root
# (set HK_NO_INSTALL=1 to prevent that); missing node_modules are installed
# with `npm ci`.
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
DIR=tests/editors
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passes=0
fails=0

pass() { echo "PASS: $*"; passes=$((passes + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# collect SUITE OUTFILE STATUS: forward the check lines of one suite.
collect() {
  local suite=$1 file=$2 status=$3 n=0 nfail=0 line
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      PASS:*) echo "$line"; passes=$((passes + 1)); n=$((n + 1)) ;;
      FAIL:*) echo "$line"; fails=$((fails + 1)); n=$((n + 1)); nfail=$((nfail + 1)) ;;
      *) printf '%s\n' "$line" >&2 ;;
    esac
  done < "$file"
  if [ "$n" -eq 0 ]; then
    fail "$suite: no checks ran (exit status $status)"
  elif [ "$status" -ne 0 ] && [ "$nfail" -eq 0 ]; then
    fail "$suite: exited with status $status after $n checks"
  fi
}

# ensure COMMAND DEBIAN-PACKAGE [TEST...]: COMMAND present (and TEST true).
ensure() {
  local cmd=$1 pkg=$2
  shift 2
  if command -v "$cmd" >/dev/null 2>&1 && "$@"; then return 0; fi
  if [ -z "${HK_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing $pkg for $cmd" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$pkg"; } >&2 2>&1
  fi
  command -v "$cmd" >/dev/null 2>&1 && "$@"
}
vim_has_syntax() { vim --version 2>/dev/null | grep -q '+syntax'; }

# ------------------------------------------------------------------ vim
if ensure vim vim-nox vim_has_syntax; then
  : > "$TMP/vim.out"
  HK_ROOT=$ROOT HK_OUT=$TMP/vim.out timeout 120 \
    vim -N -u NONE -i NONE -n -es -S "$DIR/vim-test.vim" < /dev/null > "$TMP/vim.log" 2>&1
  status=$?
  cat "$TMP/vim.log" >&2
  collect vim "$TMP/vim.out" "$status"
else
  fail "vim: no vim with +syntax (apt-get install vim-nox)"
fi

# ---------------------------------------------------------------- emacs
if ensure emacs emacs-nox true; then
  timeout 120 emacs --batch -Q -l "$DIR/emacs-test.el" < /dev/null > "$TMP/emacs.out" 2> "$TMP/emacs.log"
  status=$?
  grep -v -e '^Indenting region' -e '^$' "$TMP/emacs.log" >&2
  collect emacs "$TMP/emacs.out" "$status"
else
  fail "emacs: emacs not found (apt-get install --no-install-recommends emacs-nox)"
fi

# ------------------------------------------------------------- textmate
TM=$DIR/textmate
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  fail "textmate: node and npm are needed"
else
  ready=1
  if [ ! -d "$TM/node_modules/vscode-textmate" ] || [ ! -d "$TM/node_modules/vscode-oniguruma" ]; then
    if (cd "$TM" && npm ci --no-audit --no-fund) > "$TMP/npm.log" 2>&1; then
      pass "textmate: npm ci installed vscode-textmate and vscode-oniguruma from package-lock.json"
    else
      cat "$TMP/npm.log" >&2
      fail "textmate: npm ci in $TM failed (log on stderr)"
      ready=0
    fi
  fi
  if [ "$ready" = 1 ]; then
    timeout 120 node "$TM/test.js" < /dev/null > "$TMP/tm.out" 2> "$TMP/tm.log"
    status=$?
    cat "$TMP/tm.log" >&2
    collect textmate "$TMP/tm.out" "$status"
  fi
fi

echo "editors: $passes passed, $fails failed" >&2
[ "$fails" -eq 0 ]
