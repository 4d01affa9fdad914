#!/bin/sh
# `make run` until the servers exist: checks every example rule file and
# dry-runs it on the sample messages, printing what would happen to each
# message in the language's own words. Nothing is sent or stored.
set -u
HIKYAKU=${1:-build/hikyaku}
samples=examples/samples
echo "Hikyaku $("$HIKYAKU" version | cut -d' ' -f2-) - rule language demo"
echo "(the SMTP, POP3 and IMAP servers come with the next issues; this run shows"
echo " what the rules in examples/ decide for the messages in $samples/)"
status=0
for hk in $(find examples -name '*.hk' | sort); do
	echo
	echo "=================================================================="
	echo "$hk"
	sed -n '1,/^$/p' "$hk" | grep '^#' | sed 's/^/  /'
	echo "------------------------------------------------------------------"
	if ! "$HIKYAKU" check "$hk"; then
		status=1
		continue
	fi
	case "$hk" in
	*/retention/*)
		# retention rules run on stored mail, not on arriving mail
		"$HIKYAKU" test "$hk" || status=1
		continue ;;
	esac
	# the sample messages this example's tests use, plus its own test blocks
	msgs=$(grep -o 'samples/[A-Za-z0-9_.-]*\.eml' "$hk" | sort -u | sed "s|^|examples/|")
	[ -n "$msgs" ] && { "$HIKYAKU" test "$hk" $msgs || status=1; }
	"$HIKYAKU" test "$hk" || status=1
done
echo
[ $status -eq 0 ] && echo "All examples checked and their tests passed." || echo "Some examples failed (see above)."
exit $status
