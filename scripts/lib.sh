# scripts/lib.sh: shared by scripts/test, scripts/demo and bench/*.
#
# Provides: package bootstrap from Debian's archive, a build, a private
# server installation with this checkout's salesmgmt in it, and a throwaway
# cluster run as the postgres user on a Unix socket in a temporary folder.
#
# Why a private installation: `make install` into the system tree would
# make concurrent checkouts (and a DBA's own install) overwrite each other.
# PostgreSQL finds its share and lib folders relative to its own binaries,
# so a copy of the binaries next to links to the system's files, plus this
# checkout's extension files, is a complete server that runs this build.

# SM_PG_MAJOR: the PostgreSQL major version to build and test against.
# 15 is Debian 12's own server; 17 and 18 are built once from Debian's
# source packages into /var/cache/salesmgmt/pg-MAJOR by scripts/build-pg.
SM_PG_MAJOR=${SM_PG_MAJOR:-15}
if [ "$SM_PG_MAJOR" = 15 ]; then
    SM_SYS_BIN=/usr/lib/postgresql/$SM_PG_MAJOR/bin
    SM_SYS_LIB=/usr/lib/postgresql/$SM_PG_MAJOR/lib
    SM_SYS_SHARE=/usr/share/postgresql/$SM_PG_MAJOR
    SM_PG_PACKAGES="postgresql-$SM_PG_MAJOR postgresql-server-dev-$SM_PG_MAJOR postgresql-$SM_PG_MAJOR-pgtap
 postgresql-$SM_PG_MAJOR-cron"
else
    SM_PG_PREFIX=${SM_PG_CACHE:-/var/cache/salesmgmt}/pg-$SM_PG_MAJOR
    SM_SYS_BIN=$SM_PG_PREFIX/bin
    SM_SYS_LIB=$SM_PG_PREFIX/lib/postgresql
    SM_SYS_SHARE=$SM_PG_PREFIX/share/postgresql
    # the command-line tools (psql for pg_prove's default) and build tools
    SM_PG_PACKAGES="postgresql-client-15"
fi
SM_PG_CONFIG=$SM_SYS_BIN/pg_config
SM_PACKAGES="$SM_PG_PACKAGES
 libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libcurl4-openssl-dev libssl-dev
 make gcc bc nginx-light openssl sqlsmith python3 wrk"

sm_log() { printf '== %s\n' "$*" >&2; }
sm_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install whatever of SM_PACKAGES is missing (root only).
sm_ensure_packages() {
    local missing=() p
    for p in $SM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || sm_die "missing packages (${missing[*]}); run as root or install them"
    sm_log "installing ${missing[*]}"
    # A package's postinst must not start services on this machine.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
}

# The server tree of SM_PG_MAJOR: built once (root) unless it is Debian's.
sm_ensure_server() {
    sm_ensure_packages
    [ "$SM_PG_MAJOR" = 15 ] && return 0
    "$SM_ROOT/scripts/build-pg" "$SM_PG_MAJOR" || sm_die "could not build PostgreSQL $SM_PG_MAJOR"
}

# sm_build [extra make args]: build this checkout (warnings are errors).
# Objects built for another major version are cleaned first.
sm_build() {
    local stamp=$SM_ROOT/.sm-built-for
    if [ "$(cat "$stamp" 2>/dev/null)" != "$SM_PG_MAJOR" ]; then
        make -s -C "$SM_ROOT" PG_CONFIG="$SM_PG_CONFIG" clean >&2
        echo "$SM_PG_MAJOR" > "$stamp"
    fi
    make -s -C "$SM_ROOT" PG_CONFIG="$SM_PG_CONFIG" SM_EXTRA_CFLAGS="${SM_EXTRA_CFLAGS:--Werror}" "$@" >&2
}

# sm_private_install DIR: a server tree in DIR that runs this build.
sm_private_install() {
    local dir=$1 f
    local bin=$dir$SM_SYS_BIN lib=$dir$SM_SYS_LIB share=$dir$SM_SYS_SHARE
    rm -rf "$dir"
    mkdir -p "$bin" "$lib/bitcode" "$share/extension"
    cp -a "$SM_SYS_BIN"/. "$bin"/
    for f in "$SM_SYS_LIB"/*; do
        case ${f##*/} in salesmgmt*|bitcode) ;; *) ln -s "$f" "$lib/" ;; esac
    done
    for f in "$SM_SYS_LIB"/bitcode/*; do
        [ -e "$f" ] || continue
        case ${f##*/} in salesmgmt*) ;; *) ln -s "$f" "$lib/bitcode/" ;; esac
    done
    for f in "$SM_SYS_SHARE"/*; do
        case ${f##*/} in extension) ;; *) ln -s "$f" "$share/" ;; esac
    done
    for f in "$SM_SYS_SHARE"/extension/*; do
        case ${f##*/} in salesmgmt*) ;; *) ln -s "$f" "$share/extension/" ;; esac
    done
    make -s -C "$SM_ROOT" PG_CONFIG="$SM_PG_CONFIG" install DESTDIR="$dir" >&2
    chmod -R a+rX "$dir"
    SM_BIN=$bin
}

# sm_start_cluster DIR [postgresql.conf lines...]: initdb and start a
# cluster in DIR (owned by postgres), listening only on a socket in DIR.
# A DIR/data that already holds a cluster is started without initdb.
# Exports PGHOST, PGPORT, PGUSER, PGDATA for clients.
sm_start_cluster() {
    local dir=$1; shift
    mkdir -p "$dir"; chown postgres: "$dir"; chmod 755 "$dir"
    # a data directory already there (a benchmark's cached data set) is
    # started as it is; the settings below are appended again and win
    [ -f "$dir/data/PG_VERSION" ] ||
        runuser -u postgres -- "$SM_BIN/initdb" -D "$dir/data" -A trust -U postgres \
            --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; sm_die "initdb failed"; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = 5432"
        echo "shared_preload_libraries = 'salesmgmt'"
        echo "fsync = off"
        echo "max_worker_processes = 16"
        echo "log_min_messages = warning"
        printf '%s\n' "$@"
    } >> "$dir/data/postgresql.conf"
    # SM_SERVER_ENV: extra NAME=VALUE words for the server's environment
    # (scripts/asan preloads AddressSanitizer's runtime this way)
    runuser -u postgres -- env ${SM_SERVER_ENV:-} "$SM_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -n 30 "$dir/server.log" >&2; sm_die "server did not start"; }
    export PGHOST=$dir PGPORT=5432 PGUSER=postgres PGDATA=$dir/data
    SM_CLUSTER_DIR=$dir
}

sm_stop_cluster() {
    [ -n "${SM_CLUSTER_DIR:-}" ] && [ -f "$SM_CLUSTER_DIR/data/postmaster.pid" ] || return 0
    runuser -u postgres -- "$SM_BIN/pg_ctl" -D "$SM_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}
