#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for `make test-slurm`: munged, slurmctld and slurmd on
# localhost, configured under $SLURM_LOCAL (default target/slurm-local), all as the current user.
#   scripts/slurm-local.sh start   install (Debian: slurm-wlm, munge) if missing, start, wait for the node
#   scripts/slurm-local.sh stop    stop the daemons this script started
#   scripts/slurm-local.sh env     print the exports a client needs (SLURM_CONF)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${SLURM_LOCAL:-$root/target/slurm-local}"
conf="$dir/slurm.conf"

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
  mkdir -p "$dir"/{state,spool,log,munge}
  local host cpus mem user
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
  user="$(id -un)"
  cat > "$conf" <<CONF
ClusterName=repro-local
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install
  stop >/dev/null  # daemons a killed test left behind
  write_conf
  if [ ! -s "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" 2>/dev/null
    chmod 400 "$dir/munge/munge.key"
  fi
  munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munge.seed" --force
  # The daemons find munge's socket through the auth options.
  echo "AuthInfo=socket=$dir/munge/munge.socket" >> "$conf"
  export SLURM_CONF="$conf"
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 1 60); do
    if sinfo -h -o "%T" 2>/dev/null | grep -qE "^idle"; then
      echo "slurm-local: node $(hostname -s) idle; export SLURM_CONF=$conf"
      return
    fi
    sleep 1
  done
  echo "slurm-local: the node did not come up; logs in $dir/log" >&2
  tail -n 20 "$dir/log/"*.log >&2 || true
  exit 1
}

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  echo "slurm-local: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
