#!/usr/bin/env bash
# Start a throw-away single-node SLURM (22.05 from Debian) on loopback, for the profile
# tests in tests/slurm/. Idempotent: a second call with the cluster up only reports.
#
#   bash .ci/slurm/start.sh        # installs packages if missing (needs root + apt)
#   export SLURM_CONF=/tmp/crrg-slurm/etc/slurm.conf   # printed at the end; also in env.sh
#   bash .ci/slurm/stop.sh         # ends exactly the daemons this script started
#
# Besides the Debian packages, everything it writes lives in one state dir
# ($CRRG_SLURM_STATE, default /tmp/crrg-slurm): configs, munge key and socket, MariaDB
# datadir, spool, logs, and pids/ with one pid file per daemon it started. Its daemons use
# their own ports, socket and datadir, so a real SLURM, munge or MariaDB on the machine is
# left alone. The one file outside: /etc/slurm/slurm.conf, SLURM's default config path,
# becomes a link to this cluster's config when (and only when) no such file exists, since
# job steps look there; stop.sh removes the link again.
# Runs with no systemd: every daemon is started in the foreground, in the background of
# this script (setsid), and its pid recorded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${CRRG_SLURM_STATE:-/tmp/crrg-slurm}"
CLUSTER="${CRRG_SLURM_CLUSTER:-crrg}"
ACCOUNT="${CRRG_SLURM_ACCOUNT:-crrg}"
PARTITION="${CRRG_SLURM_PARTITION:-debug}"
DB_PORT="${CRRG_SLURM_DB_PORT:-13306}"
# Ports: off the SLURM defaults (6817-6819) so a site's own SLURM on this host is not hit.
CTLD_PORT="${CRRG_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${CRRG_SLURM_SLURMD_PORT:-16818}"
DBD_PORT="${CRRG_SLURM_DBD_PORT:-16819}"
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

log() { printf '[slurm-start %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"

export SLURM_CONF="$STATE/etc/slurm.conf"

# A recorded daemon is alive when its pid runs that very program (not a zombie, not a
# reused pid after a reboot).
pid_alive() {
    local f="$STATE/pids/$1.pid" pid
    [[ -f "$f" ]] || return 1
    pid="$(cat "$f")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$1" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# --- already up? --------------------------------------------------------------------
if pid_alive slurmctld && pid_alive slurmd && pid_alive slurmdbd \
    && sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
    log "already running (state dir $STATE)"
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
fi
if [[ -d "$STATE/pids" ]] && compgen -G "$STATE/pids/*.pid" >/dev/null; then
    log "a partial or stale cluster is recorded in $STATE: stopping it first"
    CRRG_SLURM_STATE="$STATE" bash "$HERE/stop.sh"
fi

# --- packages -------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get"
    log "installing ${missing[*]}"
    t0=$SECONDS
    # Debian's maintainer scripts would start the daemons; keep them from doing so.
    policy_made=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_made=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    ((policy_made)) && rm -f /usr/sbin/policy-rc.d
    log "installed in $((SECONDS - t0)) s"
fi

# --- fresh state dir ------------------------------------------------------------------
t_start=$SECONDS
rm -rf "$STATE"
mkdir -p "$STATE"/{etc,pids,log,spool/ctld,spool/d,munge,mysql,run}
chmod 755 "$STATE"
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_TOTAL_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
REAL_MEM_MB=$((MEM_TOTAL_MB * 9 / 10)) # below the total, or slurmd drains the node

# munge: own key and socket, run as the munge user (munged refuses root-owned keys)
chown munge:munge "$STATE/munge"
chmod 700 "$STATE/munge"
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$STATE/munge/munge.key"
chmod 400 "$STATE/munge/munge.key"
chmod 711 "$STATE/munge" # root and job steps reach the socket; munged checks the dir
MUNGE_SOCKET="$STATE/munge/munge.socket"

render() { # template -> file, substituting @VAR@ from the environment
    local src="$1" dst="$2"
    sed -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@HOST@|$HOST|g" -e "s|@CPUS@|$CPUS|g" \
        -e "s|@REAL_MEM_MB@|$REAL_MEM_MB|g" -e "s|@STATE@|$STATE|g" \
        -e "s|@PARTITION@|$PARTITION|g" -e "s|@DB_PORT@|$DB_PORT|g" \
        -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" "$src" >"$dst"
}
render "$HERE/slurm.conf.in" "$STATE/etc/slurm.conf"
render "$HERE/gres.conf.in" "$STATE/etc/gres.conf"
render "$HERE/slurmdbd.conf.in" "$STATE/etc/slurmdbd.conf"
render "$HERE/my.cnf.in" "$STATE/etc/my.cnf"
chmod 600 "$STATE/etc/slurmdbd.conf" # slurmdbd insists (it holds the DB password)
printf 'export SLURM_CONF=%s\n' "$SLURM_CONF" >"$STATE/env.sh"
# Job steps need the config at SLURM's default path too: the plugin's job step drops
# every SLURM_* variable (SLURM_CONF included) before its nested srun. A link, only where
# no SLURM config of the machine's own is in the way.
ETC_CONF=/etc/slurm/slurm.conf
if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$SLURM_CONF" ]]; then
    :
elif [[ -e "$ETC_CONF" || -L "$ETC_CONF" ]]; then
    die "$ETC_CONF exists and is not this test cluster's: refusing to replace a real SLURM config"
else
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" "$ETC_CONF"
    log "linked $ETC_CONF -> $SLURM_CONF"
fi

start_bg() { # name, command...: start in its own session, record the pid
    local name="$1"
    shift
    setsid "$@" >>"$STATE/log/$name.out" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
    log "started $name (pid $!)"
}

wait_for() { # description, seconds, command...: retry (each try capped at 10 s) until it passes
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        timeout 10 "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "timed out after ${secs} s waiting for $what; logs in $STATE/log:"
    tail -n 20 "$STATE"/log/* >&2 || true
    return 1
}

# MariaDB: own datadir, TCP on loopback only
mariadb-install-db --defaults-file="$STATE/etc/my.cnf" --user=root \
    --auth-root-authentication-method=socket >"$STATE/log/mariadb-install.out" 2>&1 \
    || { tail -n 30 "$STATE/log/mariadb-install.out"; die "mariadb-install-db failed"; }
start_bg mariadbd mariadbd --defaults-file="$STATE/etc/my.cnf" --user=root
wait_for "mariadb" 60 mariadb --defaults-file="$STATE/etc/my.cnf" -e 'select 1' || die "mariadb did not start"
mariadb --defaults-file="$STATE/etc/my.cnf" <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'crrg-ci-only';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'crrg-ci-only';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

start_bg munged setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
wait_for "munged" 20 bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'" || die "munged did not start"

start_bg slurmdbd slurmdbd -D
wait_for "slurmdbd" 60 sacctmgr -n list cluster || die "slurmdbd did not answer"
sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true

start_bg slurmctld slurmctld -D -i
start_bg slurmd slurmd -D
wait_for "the node to be idle" 90 bash -c "sinfo -h -o '%T' | grep -qx idle" || die "node never idle: $(sinfo -N -o '%N %T %E' 2>&1)"
sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=crrg-ci Organization=crrg >/dev/null 2>&1 || true
sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
wait_for "sacct" 30 sacct -n -X -S now-1hour || die "sacct does not answer"

log "SLURM up in $((SECONDS - t_start)) s: node $HOST ($CPUS CPUs, ${REAL_MEM_MB} MB, gres gpu:1), partition $PARTITION, account $ACCOUNT"
sinfo -o '%P %N %T %c %m %G'
echo "export SLURM_CONF=$SLURM_CONF"
