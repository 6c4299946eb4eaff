#!/usr/bin/env bash
# Stop the test SLURM started by .ci/slurm/start.sh: ends exactly the pids it recorded in
# $CRRG_SLURM_STATE/pids (default /tmp/crrg-slurm), newest daemon first. Keeps the state
# dir (logs) for inspection; start.sh wipes it on the next start.
set -uo pipefail
STATE="${CRRG_SLURM_STATE:-/tmp/crrg-slurm}"
log() { printf '[slurm-stop %(%H:%M:%S)T] %s\n' -1 "$*"; }

[[ -d "$STATE/pids" ]] || log "nothing recorded in $STATE/pids: no daemon to stop"
# Alive and still the program recorded (a pid reused after a reboot is left alone).
alive() { # pid, program name
    [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]] \
        && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}
for name in slurmd slurmctld slurmdbd munged mariadbd; do
    f="$STATE/pids/$name.pid"
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 60); do
            alive "$pid" "$name" || break
            sleep 0.25
        done
        if alive "$pid" "$name"; then
            log "$name (pid $pid) ignored TERM for 15 s: KILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$f"
done
# The /etc/slurm/slurm.conf link start.sh made, if it still points into the state dir.
ETC_CONF=/etc/slurm/slurm.conf
if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$STATE/etc/slurm.conf" ]]; then
    rm -f "$ETC_CONF"
    log "removed the $ETC_CONF link"
fi
exit 0
