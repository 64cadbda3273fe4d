#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# A command that leaves daemons no group kill or session sweep can see: one
# setsid() escapee and one classic double-forked daemon, both ignoring
# SIGTERM and detached from stdio as daemons are, plus a setpgid escapee
# that the sweep still catches. Usage: daemons.sh PIDFILE
pidfile=$1
: > "$pidfile"

# Each daemon reports its own pid only once it ignores SIGTERM, so the
# command cannot exit while one is still half set up.
daemon='$SIG{TERM} = "IGNORE";
    open(my $f, ">>", $ARGV[0]) or die; print $f "$$\n"; close($f);
    exec "sleep", 1000'
setsid perl -e "$daemon" "$pidfile" < /dev/null > /dev/null 2>&1 &
sh -c 'setsid perl -e "$1" "$2" & exit 0' double-fork "$daemon" "$pidfile" \
    < /dev/null > /dev/null 2>&1
perl -e 'setpgrp(0, 0); exec @ARGV' sh -c 'echo $$ >> "$1"; exec sleep 1000' pgrp "$pidfile" &
while [ "$(wc -l < "$pidfile")" -lt 3 ]; do sleep 0.05; done
