#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: sessreap-host runs a command that leaves escapees behind, then
# shows that every one of them is gone. Usage: demo.sh PATH/TO/sessreap-host
set -eu
host=$1
here=$(cd "$(dirname "$0")" && pwd)
pidfile=$(mktemp /tmp/sessreap-demo.XXXXXX)
trap 'rm -f "$pidfile"' EXIT

echo "== sessreap-host runs a command whose children escape its process group:"
echo "   2 children in its group, 2 setpgid() escapees with a child each, and"
echo "   one escapee that ignores SIGTERM. The command then exits with status 3."
echo
set +e
SESSREAP_DEMO=1 "$host" run --verbose --grace 500 -- sh "$here/escapees.sh" "$pidfile" 3 2>&1
status=$?
set -e
echo
echo "== sessreap-host exited with status $status (the command's own)."
echo "== What is left of the command's processes:"
left=0
for pid in $(cat "$pidfile"); do
    if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
        echo "   pid $pid is STILL ALIVE: $(cat /proc/$pid/comm)"
        left=$((left + 1))
    else
        echo "   pid $pid: gone"
    fi
done
if [ "$left" -ne 0 ]; then
    echo "== FAILED: $left process(es) survived" >&2
    exit 1
fi
echo "== All $(wc -l < "$pidfile") escapees were reaped."
