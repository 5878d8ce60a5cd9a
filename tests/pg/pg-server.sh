#!/usr/bin/env bash
# pg-server.sh: a throwaway PostgreSQL server for tests, from Debian's packages.
#
#   pg-server.sh start [--watch-pid PID]
#       Installs the server if needed, creates a cluster in a new temporary directory owned
#       by an unprivileged user, starts it on 127.0.0.1 (a free port) and on a unix socket
#       inside that directory, creates the role and database `portcullis` (trust auth, no
#       password) and prints on stdout, one per line:
#           DATABASE_URL=postgres://portcullis@127.0.0.1:PORT/portcullis?sslmode=disable
#           PG_TEST_DIR=/tmp/portcullis-pg.XXXXXX
#           PG_TEST_SOCKET_URL=postgres://portcullis@%2Ftmp%2Fportcullis-pg.XXXXXX:PORT/portcullis
#           PG_BINDIR=/usr/lib/postgresql/NN/bin
#       Everything else goes to stderr. With --watch-pid, a detached watcher stops the
#       server and removes the directory once PID has exited (a test binary that dies
#       without calling `stop` leaves nothing behind).
#   pg-server.sh stop DIR
#       Stops the server started in DIR (immediately: it is throwaway) and removes DIR.
#   pg-server.sh install
#       Only makes sure the server binaries are present.
#
# Environment: PG_TEST_TMPDIR (default /tmp) is where the directory is created; it must be
# traversable by the unprivileged user. PG_TEST_USER overrides the user when run as root
# (default: `postgres` when it exists, else `nobody`).
#
# The Rust tests start one cluster per test binary through this script
# (portcullis-test-upstreams' `postgres` module) and make a database per test in it.
#
# Safe to run several times at once: the install is serialized by a lock file, each
# cluster has its own directory and socket, and a port clash on start is retried.
set -euo pipefail

PROG=${0##*/}
MARKER=.portcullis-pg-server
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Settings in the environment that would steer our client calls elsewhere.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGDATA PGOPTIONS PGSERVICE PGPASSFILE \
      PGSERVICEFILE PGSSLMODE 2>/dev/null || true

find_bindir() {
    # Newest major version first.
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
        if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres && -x $d/psql ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 126
    fi
}

install_server() {
    find_bindir >/dev/null && return 0
    if [[ $EUID -ne 0 ]] && ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
        die "PostgreSQL server binaries are not installed (no initdb under /usr/lib/postgresql/*/bin) \
and this user can neither install them (not root, no password-less sudo). Run as root: \
apt-get install -y postgresql"
    fi
    # One installer at a time; the others wait here and then find the binaries present.
    local lock=/run/lock/portcullis-pg-install.lock
    [[ -d /run/lock && -w /run/lock ]] || lock=${PG_TEST_TMPDIR:-/tmp}/portcullis-pg-install.lock
    exec 9>>"$lock"
    flock -w 900 9 || die "timed out waiting for another install of PostgreSQL (lock $lock)"
    if find_bindir >/dev/null; then exec 9>&-; return 0; fi

    log "installing PostgreSQL from Debian's packages (apt-get install -y postgresql)"
    local started=$SECONDS policy=/usr/sbin/policy-rc.d made_policy=
    # The package creates a cluster `main` and would start it on port 5432; forbid starting
    # services for the length of the install (invoke-rc.d and deb-systemd-invoke honour
    # policy-rc.d). We never use that cluster, so it may stay, stopped.
    if [[ ! -e $policy ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && made_policy=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get
        -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold -y -q)
    local rc=0
    # Without package lists apt knows no `postgresql`: update first when they are missing.
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null && \
       ! compgen -G '/var/lib/apt/lists/*_Packages.*' >/dev/null; then
        as_root "${apt[@]}" update >&2 || log "apt-get update failed; trying the install anyway"
    fi
    as_root "${apt[@]}" install --no-install-recommends postgresql >&2 || {
        # Stale lists (a package version no longer served): update once and retry.
        as_root "${apt[@]}" update >&2 && as_root "${apt[@]}" install --no-install-recommends postgresql >&2
    } || rc=$?
    if [[ -n $made_policy ]]; then as_root rm -f "$policy" || true; fi
    exec 9>&-
    [[ $rc -eq 0 ]] || die "apt-get install postgresql failed (exit $rc)"
    find_bindir >/dev/null || die "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
    log "installed PostgreSQL in $((SECONDS - started)) s"
}

# Runs a command as the unprivileged owner of the cluster.
run_as() {
    local user=$1; shift
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u "$user" -- "$@"
    else
        su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
    fi
}

pick_user() {
    if [[ $EUID -ne 0 ]]; then id -un; return; fi
    if [[ -n ${PG_TEST_USER:-} ]]; then printf '%s\n' "$PG_TEST_USER"; return; fi
    if id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

random_port() {
    # Below the kernel's ephemeral range (32768-60999 on Linux), so an outgoing connection's
    # local port never takes it between the pick and the bind.
    local lo=20000 hi=32000
    echo $(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) ))
}

port_in_use() {
    # Best effort; the bind itself is the real test.
    if command -v ss >/dev/null; then
        ss -Htln "sport = :$1" 2>/dev/null | grep -q .
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

start() {
    local watch_pid=
    while [[ $# -gt 0 ]]; do
        case $1 in
            --watch-pid) watch_pid=${2:?--watch-pid needs a PID}; shift 2 ;;
            *) die "unknown argument to start: $1" ;;
        esac
    done
    local t0=$SECONDS
    install_server
    local bindir user base dir
    bindir=$(find_bindir)
    user=$(pick_user)
    base=${PG_TEST_TMPDIR:-/tmp}
    dir=$(mktemp -d "$base/portcullis-pg.XXXXXX")
    # From here on a failure removes the directory (and the server, if it started).
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then cleanup_failed "$dir"; fi' EXIT
    printf 'bindir=%q\nuser=%q\n' "$bindir" "$user" > "$dir/$MARKER"
    if [[ $EUID -eq 0 ]]; then chown "$user" "$dir"; fi
    chmod 700 "$dir"
    cd "$dir"   # the unprivileged user may not be able to enter the caller's directory

    run_as "$user" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # Throwaway settings: durability off, loopback and a private socket only.
    cat >> "$dir/data/postgresql.conf" <<EOF

# pg-server.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
log_min_messages = warning
EOF

    local port attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$(random_port)
        port_in_use "$port" && continue
        if run_as "$user" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" \
                -w -t 60 start >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        if grep -qiE 'could not (bind|create any TCP/IP)|address already in use|lock file .* already exists' \
                "$dir/server.log" 2>/dev/null; then
            log "port $port was taken; trying another"
            port=
            : > "$dir/server.log"
            continue
        fi
        cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
        die "pg_ctl start failed"
    done
    [[ -n ${port:-} ]] || die "found no free port after 10 attempts"
    printf 'port=%q\n' "$port" >> "$dir/$MARKER"

    run_as "$user" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres \
        -d postgres >&2 <<'SQL' || die "creating the role and database failed"
CREATE ROLE portcullis LOGIN CREATEDB;
CREATE DATABASE portcullis OWNER portcullis;
SQL

    if [[ -n $watch_pid ]]; then
        # Detached from our stdout/stderr so that a caller reading our output sees EOF.
        nohup setsid bash "$(readlink -f "$0")" __watch "$watch_pid" "$dir" \
            </dev/null >>"$dir/watch.log" 2>&1 &
        printf 'watcher=%q\n' "$!" >> "$dir/$MARKER"
    fi
    trap - EXIT
    log "started PostgreSQL $("$bindir/postgres" -V | awk '{print $3}') as $user in $dir on 127.0.0.1:$port in $((SECONDS - t0)) s"
    local enc=${dir//\//%2F}
    printf 'DATABASE_URL=postgres://portcullis@127.0.0.1:%s/portcullis?sslmode=disable\n' "$port"
    printf 'PG_TEST_DIR=%s\n' "$dir"
    printf 'PG_TEST_SOCKET_URL=postgres://portcullis@%s:%s/portcullis\n' "$enc" "$port"
    printf 'PG_BINDIR=%s\n' "$bindir"
}

cleanup_failed() {
    local dir=$1
    log "start failed; removing $dir"
    stop_dir "$dir" || true
}

# Whether a process runs: a zombie does not count (the postmaster is re-parented to PID 1,
# which may reap it a while later; in some containers PID 1 reaps lazily or never).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

stop_dir() {
    local dir=$1 bindir= user= port= watcher=
    [[ -f $dir/$MARKER ]] || die "$dir was not made by $PROG (no $MARKER): refusing to touch it"
    # shellcheck disable=SC1090
    source "$dir/$MARKER"
    if [[ -f $dir/data/postmaster.pid ]]; then
        cd /
        local pid
        pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || pid=
        if ! run_as "$user" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop \
                >/dev/null 2>&1 && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            log "pg_ctl stop failed; sending SIGQUIT to postmaster $pid"
            kill -QUIT "$pid" 2>/dev/null || true
        fi
        # pg_ctl returns once postmaster.pid is gone, a moment before the process exits:
        # wait for it, so that a caller that checks for leftover processes finds none.
        if [[ -n $pid ]]; then
            local i
            for i in $(seq 100); do alive "$pid" || break; sleep 0.05; done
            if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    fi
    if [[ -n $watcher && $watcher != "$$" && $watcher =~ ^[0-9]+$ ]]; then
        kill "$watcher" 2>/dev/null || true
    fi
    rm -rf -- "$dir"
}

stop() {
    local dir=${1:?usage: $PROG stop DIR}
    [[ -d $dir ]] || { log "$dir does not exist; nothing to stop"; return 0; }
    dir=$(cd "$dir" && pwd -P)
    stop_dir "$dir"
    log "stopped and removed $dir"
}

watch() {
    local pid=$1 dir=$2
    while kill -0 "$pid" 2>/dev/null && [[ -d $dir ]]; do sleep 1; done
    if [[ -d $dir ]]; then
        # Not the watcher's own pid in the marker: stop_dir must not kill us mid-way.
        sed -i '/^watcher=/d' "$dir/$MARKER" 2>/dev/null || true
        stop_dir "$dir"
    fi
}

case ${1:-} in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    install) install_server; log "server binaries: $(find_bindir)" ;;
    __watch) shift; watch "$@" ;;
    *) die "usage: $PROG start [--watch-pid PID] | stop DIR | install" ;;
esac
