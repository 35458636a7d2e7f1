#!/usr/bin/env bash
# A real two-node SLURM on one machine, in one private folder, for tests and for trying
# the launchers on a machine without a cluster: munged, a private MariaDB, slurmdbd
# (accounting, which submitit needs to see job states), slurmctld and two slurmd (nodes n1
# and n2, CPUs=2 each, so that 1 node x 2 tasks and 2 nodes x 1 task both fit), all on
# private ports, no systemd, as root. Debian's slurm-wlm is built with multiple-slurmd:
# each slurmd is started with `-N NODE` and has its own port, spool folder, pid and log.
# Both nodes' NodeAddr is 127.0.0.1; their names do not resolve (a rendezvous must use the
# NodeAddr, as slurm/train.sh does). A node whose slurmd stops answering is marked down
# after SlurmdTimeout=30 s; a requeued job may start again 11 s after the requeue
# (cred_expire=10), and the scheduler looks every 5 s (bf_interval=5; 30 s by default). Nothing here runs unless asked: the test suite starts it under
# CI (CI=true) or with AVVP_TEST_SLURM=1, never on its own.
#
#   slurm/local_cluster.sh install            apt-get the packages (slurm-wlm munge slurmdbd mariadb-server)
#   slurm/local_cluster.sh start DIR          start everything under DIR; waits until both nodes are idle
#   slurm/local_cluster.sh stop DIR           cancel jobs, then stop by pid file: both slurmd, slurmctld,
#                                             slurmdbd, the database, munged last
#   slurm/local_cluster.sh restart-node DIR NODE
#                                             SIGKILL that node's slurmd (if any) and start it again;
#                                             waits until slurmctld sees it answer
#   slurm/local_cluster.sh status DIR         sinfo and squeue
#   source DIR/env.sh                         point sbatch/srun/squeue/sacct at it (SLURM_CONF)
#
# Ports: AVVP_SLURM_PORT_BASE (default 26817) and the four after it.
set -euo pipefail

usage() { sed -n '2,25p' "$0" >&2; exit 2; }
cmd=${1:-}; D=${2:-}; NODE=${3:-}
[ -n "$cmd" ] || usage
BASE=${AVVP_SLURM_PORT_BASE:-26817}
P_CTLD=$BASE P_N1=$((BASE + 1)) P_DBD=$((BASE + 2)) P_DB=$((BASE + 3)) P_N2=$((BASE + 4))
NODES="n1 n2"
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
  local host mem
  host=$(hostname -s)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=$((mem * 4 / 10))  # each node offers 40% of the machine's memory
  cat >"$D/etc/slurm.conf" <<EOF
ClusterName=avvp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$P_CTLD
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket,cred_expire=10
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.%n.log
SlurmdTimeout=30
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
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
NodeName=n1 NodeAddr=127.0.0.1 Port=$P_N1 CPUs=2 RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 Port=$P_N2 CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
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
  for p in $P_CTLD $P_N1 $P_DBD $P_DB $P_N2; do port_free "$p" || die "port $p is in use (set AVVP_SLURM_PORT_BASE)"; done
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
  for n in $NODES; do mkdir -p "$D/spool/$n"; slurmd -f "$SLURM_CONF" -N "$n"; done
  wait_for "$WAIT_S" "both nodes to be idle" all_idle
  log "up in $D: $(sinfo -h -o '%P %D nodes %T, %c cpus each') (source $D/env.sh)"
}

all_idle() { [ "$(sinfo -h -N -o '%N %T' | sort -u | tr '\n' ' ')" = "n1 idle n2 idle " ]; }

restart_node() {
  need_dir
  export SLURM_CONF=$D/etc/slurm.conf
  [[ " $NODES " == *" $NODE "* ]] || die "no node '$NODE' (nodes: $NODES)"
  local f="$D/run/slurmd.$NODE.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then kill -9 "$(cat "$f")"; fi
  rm -f "$f"
  slurmd -f "$SLURM_CONF" -N "$NODE"
  wait_for "$WAIT_S" "node $NODE to answer" bash -c "sinfo -h -n $NODE -o %T | grep -qv '\*'"
  log "node $NODE restarted: $(sinfo -h -n "$NODE" -o %T)"
}

stop_pid() {  # stop_pid NAME: TERM, wait, KILL
  local f="$D/run/$1.pid" pid t=0
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null || true  # a frozen node (a node-loss test) must hear the TERM
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
  for n in $NODES; do stop_pid "slurmd.$n"; done
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
  restart-node) restart_node ;;
  status) status ;;
  *) usage ;;
esac
