#!/bin/sh
# `make run`: starts `hikyaku serve` on the embedded default configuration
# (SMTP 2525, submission 2587, SMTPS 2465, POP3 2110, POP3S 2995, IMAP 2143,
# IMAPS 2993 on 127.0.0.1; state in ./var; a
# self-signed certificate generated on first start). On the first run it
# creates a demo domain with two users and prints how to try it.
set -eu
HIKYAKU=${1:-build/hikyaku}
STATE=${HIKYAKU_STATE:-var}
export HIKYAKU_STATE="$STATE"
mkdir -p "$STATE"
if [ ! -f "$STATE/accounts.gdbm" ]; then
	pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-14)
	"$HIKYAKU" domain add demo.test >/dev/null
	printf '%s\n' "$pw" | "$HIKYAKU" user add taro@demo.test --stdin >/dev/null
	printf '%s\n' "$pw" | "$HIKYAKU" user add hanako@demo.test --stdin >/dev/null
	"$HIKYAKU" alias add team@demo.test taro@demo.test hanako@demo.test >/dev/null
	mkdir -p "$STATE/domains/demo.test/users/taro" "$STATE/rules"
	cp examples/warpmail-discard/personal.hk "$STATE/domains/demo.test/users/taro/personal.hk"
	cp examples/smtp-policy/global.hk "$STATE/rules/global.hk"
	printf '%s\n' "$pw" >"$STATE/demo-password"
	chmod 600 "$STATE/demo-password"
	echo "Created the demo domain demo.test: users taro@demo.test and hanako@demo.test,"
	echo "alias team@demo.test; password in $STATE/demo-password."
fi
echo
echo "Try it (another terminal):"
echo "  swaks --server 127.0.0.1:2525 --to taro@demo.test --from friend@example.org"
echo "  swaks --server 127.0.0.1:2587 -tls --auth PLAIN --auth-user taro@demo.test \\"
echo "        --auth-password \"\$(cat $STATE/demo-password)\" --from taro@demo.test --to hanako@demo.test"
echo "  ls $STATE/domains/demo.test/users/*/Maildir/new/"
echo "  curl -k pop3s://127.0.0.1:2995/1 -u \"taro@demo.test:\$(cat $STATE/demo-password)\""
echo "  curl -k \"imaps://127.0.0.1:2993/INBOX;UID=1\" -u \"taro@demo.test:\$(cat $STATE/demo-password)\""
echo "The rule-language demo (checks and dry-runs every example): scripts/run-demo.sh"
echo
# The demo listens on unprivileged ports and keeps its state in ./var, so
# it runs as whoever starts it; as root, say so rather than refuse
# (a real deployment sets `user`: doc/admin.md).
allow=
if [ "$(id -u)" -eq 0 ]; then
	echo "(running as root: the demo keeps root; a real deployment sets \`user\`, see doc/admin.md)"
	allow=--allow-root
fi
exec "$HIKYAKU" serve --state "$STATE" $allow
