#!/usr/bin/env bash
# A real single-node SLURM in one private folder, for tests and for trying the launchers
# on a machine without a cluster: munged, a private MariaDB, slurmdbd (accounting, which
# submitit needs to see job states), slurmctld and slurmd, all on private ports, no
# systemd, as root. Nothing here runs unless asked: the test suite starts it under CI
# (CI=true) or with AVVP_TEST_SLURM=1, never on its own.
#
#   slurm/local_cluster.sh install        apt-get the packages (slurm-wlm munge slurmdbd mariadb-server)
#   slurm/local_cluster.sh start DIR      start everything under DIR; waits until the node is idle
#   slurm/local_cluster.sh stop DIR       cancel jobs, then stop by pid file: slurmd, slurmctld,
#                                         slurmdbd, the database, munged last
#   slurm/local_cluster.sh status DIR     sinfo and squeue
#   source DIR/env.sh                     point sbatch/srun/squeue/sacct at it (SLURM_CONF)
#
# Ports: AVVP_SLURM_PORT_BASE (default 26817) and the three after it.
set -euo pipefail

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
cmd=${1:-}; D=${2:-}
[ -n "$cmd" ] || usage
BASE=${AVVP_SLURM_PORT_BASE:-26817}
P_CTLD=$BASE P_SLURMD=$((BASE + 1)) P_DBD=$((BASE + 2)) P_DB=$((BASE + 3))
WAIT_S=${AVVP_SLURM_WAIT_S:-60}

log() { echo "[local_cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

need_dir() {
  [ -n "$D" ] || usage
  D=$(mkdir -p "$D" && cd "$D" && pwd)
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local t=0
  until "$@" >/dev/null 2>&1; do
    sleep 0.5; t=$((t + 1))
    if [ $t -ge $((limit * 2)) ]; then die "timed out after ${limit}s waiting for $what (logs in $D/log)"; fi
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install() {
  [ "$(id -u)" = 0 ] || die "install needs root (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge slurmdbd mariadb-server >/dev/null
  log "installed: $(slurmctld -V)"
}

write_configs() {
  local host node mem
  host=$(hostname -s)
  node=$(slurmd -C | head -n 1)
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 8 / 10))/" <<<"$node")
  cat >"$D/etc/slurm.conf" <<EOF
ClusterName=avvp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$P_CTLD
SlurmdPort=$P_SLURMD
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MailProg=/bin/true
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$P_DBD
AccountingStoragePass=$D/munge/munge.socket
JobAcctGatherType=jobacct_gather/linux
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$D/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$P_DBD
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$P_DB
StorageUser=slurm
StoragePass=avvp-local
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$D/etc/slurmdbd.conf"
  echo "export SLURM_CONF=$D/etc/slurm.conf" >"$D/env.sh"
}

start() {
  need_dir
  for b in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sinfo; do
    command -v "$b" >/dev/null || die "$b not found: run '$0 install' first (apt, as root)"
  done
  [ ! -e "$D/run/slurmctld.pid" ] || die "$D already holds a cluster (stop it first)"
  for p in $P_CTLD $P_SLURMD $P_DBD $P_DB; do port_free "$p" || die "port $p is in use (set AVVP_SLURM_PORT_BASE)"; done
  mkdir -p "$D"/{etc,state,spool,log,run,db,munge,munge-key}
  chmod 755 "$D" "$D/munge"  # munged refuses a socket folder others cannot traverse
  chmod 700 "$D/munge-key"
  head -c 1024 /dev/urandom >"$D/munge-key/munge.key"
  chmod 400 "$D/munge-key/munge.key"
  write_configs
  export SLURM_CONF=$D/etc/slurm.conf

  munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge-key/munge.key" \
    --pid-file="$D/run/munged.pid" --seed-file="$D/munge-key/munge.seed" --log-file="$D/log/munged.log"
  wait_for 10 munged test -S "$D/munge/munge.socket"

  mariadb-install-db --user=root --datadir="$D/db" --auth-root-authentication-method=normal \
    >"$D/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $D/log/mariadb-install.log)"
  nohup mariadbd --user=root --datadir="$D/db" --port="$P_DB" --bind-address=127.0.0.1 \
    --socket="$D/run/mysqld.sock" --pid-file="$D/run/mariadbd.pid" --log-error="$D/log/mariadb.log" \
    >/dev/null 2>&1 &
  wait_for "$WAIT_S" "the database" mariadb --socket="$D/run/mysqld.sock" -u root -e "SELECT 1"
  mariadb --socket="$D/run/mysqld.sock" -u root -e \
    "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'avvp-local';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

  slurmdbd  # daemonises; reads slurmdbd.conf from the folder of SLURM_CONF
  wait_for "$WAIT_S" slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster avvp >/dev/null 2>&1 || true

  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  wait_for "$WAIT_S" "the node to be idle" bash -c '[ "$(sinfo -h -o %T | head -n 1)" = idle ]'
  log "up in $D: $(sinfo -h -o '%P %D %T %c cpus') (source $D/env.sh)"
}

stop_pid() {  # stop_pid NAME: TERM, wait, KILL
  local f="$D/run/$1.pid" pid t=0
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $t -lt 40 ]; do sleep 0.25; t=$((t + 1)); done
    if kill -0 "$pid" 2>/dev/null; then log "$1 ($pid) did not stop: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

stop() {
  need_dir
  export SLURM_CONF=$D/etc/slurm.conf
  if [ -f "$D/run/slurmctld.pid" ] && command -v squeue >/dev/null; then
    local ids t=0
    ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      timeout 10 scancel $ids 2>/dev/null || true
      while [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null || true)" ] && [ $t -lt 60 ]; do sleep 0.5; t=$((t + 1)); done
    fi
  fi
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid slurmdbd
  stop_pid mariadbd
  stop_pid munged  # last: slurmstepd needs it to finish
  log "stopped $D"
}

status() {
  need_dir
  export SLURM_CONF=$D/etc/slurm.conf
  sinfo; squeue
}

case $cmd in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
