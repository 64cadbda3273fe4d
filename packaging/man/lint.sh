#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks that man pages render without a single warning, with mandoc -Tlint
# and with groff -ww -z -man, whichever are installed.
# Usage: lint.sh PAGE...   Exits 1 on any message, 77 when neither tool is there.
set -u
status=0
tools=0
for page in "$@"; do
    if command -v mandoc >/dev/null 2>&1; then
        tools=1
        # -W style: report everything mandoc knows about, down to style.
        out=$(mandoc -Tlint -W style "$page" 2>&1)
        if [ -n "$out" ]; then
            printf '%s\n' "$out"
            status=1
        fi
    fi
    if command -v groff >/dev/null 2>&1; then
        tools=1
        out=$(groff -ww -z -man -t "$page" 2>&1)
        if [ -n "$out" ]; then
            printf '%s\n' "$out"
            status=1
        fi
    fi
done
if [ "$tools" = 0 ]; then
    echo "skipped: neither mandoc nor groff is installed" >&2
    exit 77
fi
[ "$status" = 0 ] && echo "man pages lint clean: $*"
exit "$status"
