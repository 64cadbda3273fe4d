#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs a real systemd manager as PID 1 of private namespaces, for tests only.
#
#   harness.sh start DIR [--owner PID]
#                                     start a manager, state under DIR; prints its pid;
#                                     with --owner it is stopped once PID exits
#   harness.sh exec PID [--scope] -- CMD...
#                                     run CMD inside its namespaces; exit status passed
#                                     through; --scope runs CMD in a transient scope
#   harness.sh stop PID               kill it, remove its cgroup, verify nothing is left
#   harness.sh status PID             exit 0 when the manager answers on D-Bus
#
# The manager sees the host's root file system with /etc, /usr and /var read-only,
# private /run, /dev, /tmp is shared; PID, mount, UTS, IPC, network and cgroup
# namespaces are its own, so nothing it does reaches the host's processes.
# Everything needs root and only Debian's systemd, dbus and util-linux.
set -euo pipefail

readonly TARGET=sessreap-harness.target
readonly REGISTRY=/run/sessreap-harness
readonly START_TIMEOUT_S=${SESSREAP_HARNESS_TIMEOUT:-20}
readonly SYSTEMD_BIN=${SESSREAP_SYSTEMD:-/lib/systemd/systemd}
# The manager's own messages; "console" ones are not kept anywhere useful.
readonly LOG_TARGET=${SESSREAP_HARNESS_LOG_TARGET:-journal}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF

die() {
    echo "harness: $*" >&2
    exit 1
}

# The first cgroup2 mount of the host; the manager's cgroup is made below it.
cgroup2_mount() {
    local _src mnt fstype _rest
    while read -r _src mnt fstype _rest; do
        if [[ $fstype == cgroup2 ]]; then
            echo "$mnt"
            return 0
        fi
    done </proc/self/mounts
    return 1
}

# Our own cgroup2 path ("0::PATH" in /proc/self/cgroup).
own_cgroup2_path() {
    local line
    while read -r line; do
        if [[ $line == 0::* ]]; then
            echo "${line#0::}"
            return 0
        fi
    done </proc/self/cgroup
    return 1
}

write_units() {
    local units=$1

    mkdir -p "$units"
    cat >"$units/$TARGET" <<'EOF'
[Unit]
Description=sessreap test harness
DefaultDependencies=no
Wants=dbus.socket dbus.service systemd-journald.socket systemd-journald-dev-log.socket
Wants=systemd-journald.service
After=dbus.socket dbus.service systemd-journald.service
EOF
    cat >"$units/dbus.socket" <<'EOF'
[Unit]
Description=D-Bus system bus socket
DefaultDependencies=no

[Socket]
ListenStream=/run/dbus/system_bus_socket
EOF
    cat >"$units/dbus.service" <<'EOF'
[Unit]
Description=D-Bus system bus
DefaultDependencies=no
Requires=dbus.socket
After=dbus.socket systemd-journald.socket

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation
EOF
    cat >"$units/systemd-journald.socket" <<'EOF'
[Unit]
Description=Journal sockets
DefaultDependencies=no

[Socket]
ListenStream=/run/systemd/journal/stdout
ListenDatagram=/run/systemd/journal/socket
SocketMode=0666
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=8M
Service=systemd-journald.service
EOF
    cat >"$units/systemd-journald-dev-log.socket" <<'EOF'
[Unit]
Description=Journal socket for /dev/log
DefaultDependencies=no

[Socket]
ListenDatagram=/run/systemd/journal/dev-log
Symlinks=/dev/log
SocketMode=0666
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=8M
Service=systemd-journald.service
EOF
    cat >"$units/systemd-journald.service" <<'EOF'
[Unit]
Description=Journal service
DefaultDependencies=no
Requires=systemd-journald.socket
After=systemd-journald.socket systemd-journald-dev-log.socket

[Service]
Type=notify
Sockets=systemd-journald.socket systemd-journald-dev-log.socket
ExecStart=/lib/systemd/systemd-journald
FileDescriptorStoreMax=4224
EOF
    # Transient units started over the system bus land here by default.
    cat >"$units/system.slice" <<'EOF'
[Unit]
Description=System slice
DefaultDependencies=no
EOF
}

# Runs as PID 1 of the new namespaces: builds the mount table, then becomes systemd.
init_main() {
    local dir=$1 dev

    hostname sessreap-harness

    # A fresh read-only sysfs without the host's cgroup v1 mounts below it, and
    # our cgroup namespace's own cgroup2 tree where systemd expects it.
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup

    # Root in the initial user namespace could write kernel tunables here.
    mount --bind /proc/sys /proc/sys
    mount -o remount,bind,ro /proc/sys
    if [[ -e /proc/sysrq-trigger ]]; then
        mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
        mount -o remount,bind,ro /proc/sysrq-trigger
    fi

    # /dev is assembled on a staging tmpfs, then moved over the host's.
    dev=$dir/dev
    mkdir -p "$dev"
    mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$dev"
    local node
    for node in null zero full random urandom tty; do
        touch "$dev/$node"
        mount --bind "/dev/$node" "$dev/$node"
    done
    # The manager writes its status to the console; a log file keeps it.
    touch "$dev/console"
    mount --bind "$dir/console.log" "$dev/console"
    mkdir -p "$dev/pts" "$dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$dev/pts"
    ln -s pts/ptmx "$dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
    mount --move "$dev" /dev

    mount -t tmpfs -o mode=755,nosuid,nodev,size=64m tmpfs /run

    # The host's files stay as they are: journald would write to /var/log/journal.
    local d
    for d in /etc /usr /var; do
        mount --bind "$d" "$d"
        mount -o remount,bind,ro "$d"
    done
    if [[ -d /var/log/journal ]]; then
        mount -t tmpfs -o mode=2755,size=64m tmpfs /var/log/journal
    fi

    export container=sessreap-harness
    export SYSTEMD_UNIT_PATH=$dir/units
    export SYSTEMD_GENERATOR_PATH=$dir/empty
    export SYSTEMD_ENVIRONMENT_GENERATOR_PATH=$dir/empty
    exec "$SYSTEMD_BIN" --system --unit="$TARGET" --log-target="$LOG_TARGET" \
        --log-level=info --show-status=no
}

# The pid of the only child of the unshare process, once it exists.
child_of() {
    local parent=$1 children deadline
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        [[ -d /proc/$parent ]] || return 1
        children=$(cat "/proc/$parent/task/$parent/children" 2>/dev/null || true)
        if [[ -n $children ]]; then
            echo "${children%% *}"
            return 0
        fi
        sleep 0.02
    done
    return 1
}

enter() {
    local pid=$1
    shift
    nsenter -t "$pid" -p -m -C -n -u -i "$@"
}

# Exit 0 when the manager answers over D-Bus and its target is reached.
probe() {
    local pid=$1
    enter "$pid" busctl --system --timeout=2 call org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.DBus.Peer Ping >/dev/null 2>&1 &&
        enter "$pid" systemctl is-active --quiet "$TARGET" >/dev/null 2>&1
}

registry_read() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] || die "not a pid: '$pid'"
    [[ -f $REGISTRY/$pid ]] || die "no manager with pid $pid was started by this harness"
    # Lines: cgroup directory, state directory, pid of the unshare parent.
    mapfile -t REC <"$REGISTRY/$pid"
}

# Field 22 of /proc/PID/stat, the start time: tells a pid from a later reuse of it.
start_time() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    echo "${fields[19]}"
}

# Stops the manager once its owner exits, so a test killed on timeout leaks nothing.
watch_owner() {
    local pid=$1 owner=$2 since
    since=$(start_time "$owner") || since=gone
    while [[ $(start_time "$owner" || echo gone) == "$since" && $since != gone ]]; do
        [[ -e $REGISTRY/$pid ]] || return 0
        sleep 1
    done
    [[ -e $REGISTRY/$pid ]] && stop_main "$pid"
}

start_main() {
    local dir cgroot own cg upid pid deadline owner=
    [[ $# -eq 1 || ($# -eq 3 && $2 == --owner) ]] || die "usage: start DIR [--owner PID]"
    [[ $# -eq 3 ]] && owner=$3
    [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "not a pid: '$owner'"
    ((EUID == 0)) || die "start needs root"
    mkdir -p "$1"
    dir=$(readlink -f "$1")
    cgroot=$(cgroup2_mount) || die "no cgroup2 mount found"
    own=$(own_cgroup2_path) || die "no cgroup2 line in /proc/self/cgroup"
    [[ $own == /* && $own != *..* ]] || die "own cgroup2 path '$own' is outside our view"
    cg=${cgroot}${own%/}/sessreap-harness-$$-$(date +%s%N)
    mkdir -p "$REGISTRY"

    rm -rf "$dir/units" "$dir/empty"
    write_units "$dir/units"
    mkdir -p "$dir/empty"
    : >"$dir/console.log"
    : >"$dir/manager.log"
    mkdir "$cg" || die "cannot create cgroup '$cg'"

    # The subshell moves itself into the new cgroup, then becomes unshare, whose
    # cgroup namespace is rooted there. setsid keeps the caller's terminal
    # signals away from it.
    (
        echo "$BASHPID" >"$cg/cgroup.procs"
        exec setsid unshare --pid --fork --mount --uts --ipc --net --cgroup \
            --propagation private --mount-proc -- "$SELF" _init "$dir"
    ) </dev/null >>"$dir/manager.log" 2>&1 &
    upid=$!

    if ! pid=$(child_of "$upid"); then
        rmdir "$cg" 2>/dev/null || true
        die "manager did not start; see $dir/manager.log"
    fi
    printf '%s\n%s\n%s\n' "$cg" "$dir" "$upid" >"$REGISTRY/$pid"
    echo "$pid" >"$dir/manager.pid"

    deadline=$((SECONDS + START_TIMEOUT_S))
    until probe "$pid"; do
        if [[ ! -d /proc/$pid ]] || ((SECONDS >= deadline)); then
            if [[ -d /proc/$pid ]]; then
                echo "harness: manager $pid did not answer within ${START_TIMEOUT_S}s" >&2
            else
                echo "harness: manager $pid exited during start" >&2
            fi
            tail -n 30 "$dir/manager.log" "$dir/console.log" >&2 || true
            stop_main "$pid" >&2 || true
            exit 1
        fi
        sleep 0.05
    done

    if [[ -n $owner ]]; then
        # Detached, and with no fd of the caller's: a caller reading our output
        # up to end of file must not wait for the watcher.
        setsid "$SELF" _watch "$pid" "$owner" </dev/null >>"$dir/manager.log" 2>&1 &
    fi
    echo "$pid"
}

# Removes a cgroup tree bottom-up; the kernel refuses while a member is alive.
remove_cgroup_tree() {
    local cg=$1 sub
    [[ -d $cg ]] || return 0
    while IFS= read -r sub; do
        rmdir "$sub" 2>/dev/null || return 1
    done < <(find "$cg" -mindepth 1 -type d | sort -r)
    rmdir "$cg" 2>/dev/null
}

stop_main() {
    local pid=$1 cg dir upid deadline
    registry_read "$pid"
    cg=${REC[0]} dir=${REC[1]} upid=${REC[2]}

    # SIGKILL to PID 1 of a PID namespace kills every process in it (pid_namespaces(7)).
    # Check it is still ours: the pid must still be in our cgroup tree.
    if [[ -d /proc/$pid ]] && grep -q "sessreap-harness-" "/proc/$pid/cgroup" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi

    deadline=$((SECONDS + 10))
    while [[ -d /proc/$pid || -d /proc/$upid ]] && ((SECONDS < deadline)); do
        sleep 0.05
    done
    [[ -d /proc/$pid ]] && die "manager $pid still alive after SIGKILL"
    until remove_cgroup_tree "$cg"; do
        ((SECONDS < deadline)) || die "cgroup '$cg' still busy: $(find "$cg" -name cgroup.procs \
            -exec cat {} + 2>/dev/null | tr '\n' ' ')"
        sleep 0.05
    done
    rm -f "$REGISTRY/$pid" "$dir/manager.pid"
    rmdir "$REGISTRY" 2>/dev/null || true
}

exec_main() {
    local pid=$1 scope=0 cg
    shift
    registry_read "$pid"
    cg=${REC[0]}
    if [[ ${1:-} == --scope ]]; then
        scope=1
        shift
    fi
    [[ ${1:-} == -- ]] || die "usage: exec PID [--scope] -- CMD..."
    shift
    [[ $# -gt 0 ]] || die "usage: exec PID [--scope] -- CMD..."
    [[ -d /proc/$pid ]] || die "manager $pid is not running"

    # A process may only move between cgroups inside its cgroup namespace, so
    # it enters the manager's tree (init.scope) before entering the namespace.
    echo "$BASHPID" >"$cg/init.scope/cgroup.procs"
    if ((scope)); then
        exec nsenter -t "$pid" -p -m -C -n -u -i -- systemd-run --scope --quiet --collect \
            --unit="harness-exec-$$-$RANDOM" -- "$@"
    fi
    exec nsenter -t "$pid" -p -m -C -n -u -i -- "$@"
}

status_main() {
    local pid=$1
    registry_read "$pid"
    probe "$pid"
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
    start) start_main "$@" ;;
    stop) [[ $# -eq 1 ]] || die "usage: stop PID"; stop_main "$1" ;;
    exec) [[ $# -ge 1 ]] || die "usage: exec PID [--scope] -- CMD..."; exec_main "$@" ;;
    status) [[ $# -eq 1 ]] || die "usage: status PID"; status_main "$1" ;;
    _init) init_main "$@" ;;
    _watch) watch_owner "$@" ;;
    *) die "usage: harness.sh start DIR | exec PID [--scope] -- CMD... | stop PID | status PID" ;;
    esac
}

main "$@"
