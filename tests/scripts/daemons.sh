#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A command that leaves daemons no group kill or session sweep can see: one
# setsid() escapee and one classic double-forked daemon, both ignoring
# SIGTERM and detached from stdio as daemons are, plus a setpgid escapee
# that the sweep still catches. Usage: daemons.sh PIDFILE
pidfile=$1
: > "$pidfile"
stubborn='$SIG{TERM} = "IGNORE"; exec "sleep", 1000'
setsid sh -c 'echo $$ >> "$1"; exec perl -e "$2"' escapee "$pidfile" "$stubborn" \
    < /dev/null > /dev/null 2>&1 &
sh -c 'setsid sh -c "echo \$\$ >> \"\$1\"; exec perl -e \"\$2\"" daemon "$1" "$2" & exit 0' \
    x "$pidfile" "$stubborn" < /dev/null > /dev/null 2>&1
perl -e 'setpgrp(0, 0); exec @ARGV' sh -c 'echo $$ >> "$1"; exec sleep 1000' pgrp "$pidfile" &
while [ "$(wc -l < "$pidfile")" -lt 3 ]; do sleep 0.05; done
