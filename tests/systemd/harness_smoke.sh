#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Proves the harness starts a working systemd manager twice and leaves nothing behind.
# Exit status 77 means skipped (CTest SKIP_RETURN_CODE).
set -euo pipefail

HARNESS=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/harness.sh
DIR=
PID=

skip() {
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cleanup() {
    if [[ -n $PID ]]; then
        "$HARNESS" stop "$PID" || true
    fi
    if [[ -n $DIR ]]; then
        rm -rf "$DIR"
    fi
}

((EUID == 0)) || skip "needs root to create namespaces and a cgroup"
grep -qw cgroup2 /proc/self/mounts || skip "no cgroup2 file system is mounted"
[[ -x /lib/systemd/systemd ]] || skip "systemd is not installed"
command -v dbus-daemon >/dev/null || skip "dbus-daemon is not installed"
unshare --pid --fork --mount --uts --ipc --net --cgroup true 2>/dev/null ||
    skip "unshare of pid, mount, uts, ipc, net and cgroup namespaces is not permitted"

trap cleanup EXIT
DIR=$(mktemp -d /tmp/sessreap-harness-smoke.XXXXXX)

for round in 1 2; do
    PID=$("$HARNESS" start "$DIR/state") || fail "round $round: start failed"
    echo "round $round: manager pid $PID"
    cg=$(sed -n 1p "/run/sessreap-harness/$PID")

    # The manager answers over the system bus, not only on its private socket.
    version=$("$HARNESS" exec "$PID" -- busctl --system call org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.DBus.Properties Get ss \
        org.freedesktop.systemd1.Manager Version) || fail "busctl call failed"
    echo "manager version: $version"

    "$HARNESS" exec "$PID" -- systemctl --no-pager list-units >/dev/null ||
        fail "systemctl list-units failed"

    # A transient scope really holds the command: its cgroup names the scope.
    "$HARNESS" exec "$PID" -- systemd-run --scope --quiet --unit=smoke-$round.scope \
        sh -c "grep -qx '0::/system.slice/smoke-$round.scope' /proc/self/cgroup && sleep 1" ||
        fail "systemd-run --scope did not run the command in its scope"

    # The exit status of the command comes back through exec.
    rc=0
    "$HARNESS" exec "$PID" -- sh -c 'exit 42' || rc=$?
    ((rc == 42)) || fail "exec passed back exit status $rc, expected 42"

    "$HARNESS" exec "$PID" -- journalctl --no-pager -q -u dbus.service >/dev/null ||
        fail "journalctl inside failed"

    "$HARNESS" stop "$PID" || fail "stop failed"
    [[ ! -d /proc/$PID ]] || fail "manager $PID still exists after stop"
    [[ ! -e $cg ]] || fail "cgroup $cg still exists after stop"
    [[ ! -e /run/sessreap-harness/$PID ]] || fail "registry entry left for $PID"
    PID=
done
echo "PASS"
