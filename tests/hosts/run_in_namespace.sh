#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs a test command as PID 1's child in a private PID namespace with its own
# /proc, so that whatever it kills cannot be outside it. Exits 77 (skipped)
# when that is not possible here.
if [ "$(id -u)" != 0 ]; then
    echo "skipped: needs root for a private PID namespace" >&2
    exit 77
fi
if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
    echo "skipped: unshare --pid --fork --mount-proc is not permitted here" >&2
    exit 77
fi
# A private /run too, so that launch records the test writes stay in here.
exec unshare --pid --fork --mount-proc --kill-child \
    sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && exec "$@"' run-in-namespace "$@"
