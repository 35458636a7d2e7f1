#!/bin/bash
#SBATCH --job-name=avvp
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --signal=USR2@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
#
# Train avvp_dist on SLURM: srun starts one training process per task; rank and world
# come from SLURM_PROCID / SLURM_NTASKS, the rendezvous is the first node of the
# allocation at the address SLURM reaches it by (its NodeAddr: node names need not
# resolve), resolved once per job, on a port picked by the job id, exported to every task.
# Before training, every rank checks that it sees the run folder and the shards, and the
# job stops naming the node that does not. Threads per task: --cpus-per-task. The same
# script from one node to many (tested on a real two-node SLURM: README, "Multi-node").
#
#   sbatch [sbatch options] slurm/train.sh [CONFIG.yaml] [key=value ...]
#
#   sbatch --nodes=4 slurm/train.sh recipes/configs/llp.yaml data.shards=/data/llp_shards
#   sbatch --gpus-per-node=4 --ntasks-per-node=4 --cpus-per-task=8 slurm/train.sh ...
#        GPUs only when asked for (one task per GPU): a CPU node is never asked for any; each rank
#        binds cuda:SLURM_LOCALID, or device 0 where --gpus-per-task=1 shows each task its own (README)
#   slurm/train.sh --dry-run [--nodes N] [--ntasks-per-node N] [--cpus-per-task N]
#        [--gpus-per-node G] [--gpus-per-task 1] [--nodelist 'gpu[01-04]'] [CONFIG] [key=value ...]
#        no cluster needed: prints the srun command and each task's environment per node
#
# Preemption and time limits: SLURM sends SIGUSR2 120 s before the end (--signal); every
# rank saves its part of a checkpoint at the next step and exits with code 3 (rank 0 leaves
# RUN_DIR/PREEMPTED); this script then requeues the job, which resumes from that checkpoint
# (train.resume=auto; the run folder is keyed by the job id, which a requeue keeps).
# SIGTERM (scancel, or SLURM's own preemption, which requeues by itself) also saves a
# checkpoint; the ranks exit with code 143, rank 0 leaves RUN_DIR/TERMINATED, and this script
# does not requeue.
# Environment: RUN_DIR (default runs/<job name>-<job id>), PYTHON (default: python on PATH).
# Logs: the batch output (slurm-<name>-<id>.out where submitted), and per task
# RUN_DIR/logs/<job id>-task<rank>.log.
set -uo pipefail

DRY_RUN=0
if [ "${1:-}" = --dry-run ]; then
  DRY_RUN=1; shift
  nodes=2 tpn=2 cpus=1 gpus=0 gpt=0 nodelist=""
  while [[ "${1:-}" == --* ]]; do
    [ $# -ge 2 ] || { echo "slurm/train.sh: $1 needs a value" >&2; exit 2; }
    case $1 in
      --nodes) nodes=$2 ;;
      --ntasks-per-node) tpn=$2 ;;
      --cpus-per-task) cpus=$2 ;;
      --gpus-per-node) gpus=$2 ;;
      --gpus-per-task) gpt=$2 ;;
      --nodelist) nodelist=$2 ;;
      *) echo "slurm/train.sh: unknown dry-run option $1" >&2; exit 2 ;;
    esac
    shift 2
  done
  # the allocation sbatch would give: what the job's environment holds on every node
  export SLURM_JOB_ID=${SLURM_JOB_ID:-4242} SLURM_JOB_NAME=${SLURM_JOB_NAME:-avvp} SLURM_NNODES=$nodes \
    SLURM_NTASKS_PER_NODE=$tpn SLURM_NTASKS=$((nodes * tpn)) SLURM_CPUS_PER_TASK=$cpus \
    SLURM_JOB_NODELIST=${nodelist:-node[01-$(printf %02d "$nodes")]} SLURM_SUBMIT_DIR=$PWD
  if [ "$gpus" != 0 ]; then export SLURM_GPUS_PER_NODE=$gpus; fi
  if [ "$gpt" != 0 ]; then export SLURM_GPUS_PER_TASK=$gpt; fi
fi
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "slurm/train.sh: not inside a SLURM job: submit it with sbatch, or check it with --dry-run" >&2
  exit 2
fi

cd "${SLURM_SUBMIT_DIR:-$PWD}" || exit 2  # sbatch runs a copy of this script: paths are relative to where it was submitted
CONFIG=recipes/configs/llp_synth.yaml
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then CONFIG=$1; shift; fi
RUN_DIR=${RUN_DIR:-runs/${SLURM_JOB_NAME:-avvp}-${SLURM_JOB_ID}}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# this script is the launcher: rank, world and rendezvous come from SLURM (SLURM_PROCID,
# SLURM_NTASKS, first host of SLURM_JOB_NODELIST, a port from the job id), never from
# variables another launcher left in the submitting shell (sbatch exports it)
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE GROUP_RANK ROLE_RANK MASTER_ADDR MASTER_PORT

cmd=(srun --kill-on-bad-exit=1 --open-mode=append --output="$RUN_DIR/logs/%j-task%t.log"
     "$PYTHON" -m avvp_dist.cli train --config "$CONFIG" run_dir="$RUN_DIR" train.resume=auto "$@")

if [ "$DRY_RUN" = 1 ]; then  # no cluster: the host list is expanded by avvp_dist's own parser
  exec "$PYTHON" -m avvp_dist.launch.slurm_plan -- "${cmd[@]}"
fi
# the rendezvous, once for the whole job: the first node's NodeAddr, as SLURM expands the host
# list and reaches the node (avvp_dist/launch/rendezvous.py)
MASTER_ADDR=$("$PYTHON" -m avvp_dist.launch.rendezvous) || exit 2
export MASTER_ADDR MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))

mkdir -p "$RUN_DIR/logs"
say() { echo "[slurm/train.sh $(date +%H:%M:%S)] $*"; }
say "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): $SLURM_NTASKS task(s) on $SLURM_JOB_NODELIST; rendezvous $MASTER_ADDR:$MASTER_PORT (first node's NodeAddr); run folder $RUN_DIR"
say "${cmd[*]}"
rm -f "$RUN_DIR/PREEMPTED" "$RUN_DIR/TERMINATED"
"${cmd[@]}"
rc=$?
# the tasks exit with code 3 after a preemption checkpoint, but srun --kill-on-bad-exit may
# kill the last of them while they exit: the trainer's PREEMPTED file is what says it
if [ -f "$RUN_DIR/PREEMPTED" ]; then
  say "every rank saved a checkpoint after the preemption signal ($(head -n 1 "$RUN_DIR/PREEMPTED")): requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  say "scontrol requeue failed: resubmit with RUN_DIR=$RUN_DIR to resume"; exit 3
elif [ -f "$RUN_DIR/TERMINATED" ]; then  # not rc 143 alone: a task SIGTERM killed unsaved exits so too
  say "stopped by SIGTERM after a checkpoint; not requeued (resume with RUN_DIR=$RUN_DIR, train.resume=auto)"
  exit 143
elif [ $rc = 0 ]; then
  say "training finished; outputs in $RUN_DIR"
else
  say "training failed: srun exit code $rc (srun names the task above; task logs in $RUN_DIR/logs/)"
  exit "$rc"
fi
