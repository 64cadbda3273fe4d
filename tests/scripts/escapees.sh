#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A session leader that leaves escapees behind, for tests and the demo.
# Usage: escapees.sh PIDFILE [EXIT_STATUS]
# Starts 2 children in its own process group, 2 escapees that leave the
# group with setpgid() (each with a child of its own) and one escapee that
# ignores SIGTERM; writes their 7 pids to PIDFILE, then exits.
pidfile=$1
status=${2:-0}
: > "$pidfile"

sleep 300 & echo $! >> "$pidfile"
sleep 300 & echo $! >> "$pidfile"
for i in 1 2; do
    perl -e 'setpgrp(0, 0); exec @ARGV' sh -c \
        'sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; wait' escapee "$pidfile" &
done
# It reports its own pid once it has left the group and ignores SIGTERM, so
# the leader cannot exit while it is still half set up.
perl -e '$SIG{TERM} = "IGNORE"; setpgrp(0, 0);
    open(my $f, ">>", $ARGV[0]) or die; print $f "$$\n"; close($f);
    exec "sleep", 300' "$pidfile" &

# Leave only once every pid is written.
while [ "$(wc -l < "$pidfile")" -lt 7 ]; do sleep 0.05; done
if [ -n "${SESSREAP_DEMO:-}" ]; then
    echo "== The command's session just before it exits (note the process groups):"
    ps -o pid,pgid,sid,stat,args -s $$
fi
exit "$status"
