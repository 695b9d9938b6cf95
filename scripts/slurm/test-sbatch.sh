#!/usr/bin/env bash
# Runs deploy/embed-corpus.sbatch and deploy/verify-corpus.sbatch under a real Slurm: a one-node
# cluster on this machine (Debian's slurm-wlm and munge, installed if missing; run as root),
# configured and started here, stopped on exit. With all-MiniLM-L6-v2 from the seeded hub cache
# on the CPU and a generated corpus of $RECORDS records, as the files' headers document:
#
#   1. the 8-task array and a verify job after it (`--dependency=afterany`);
#   2. task 3 cancelled (`scancel`) once it has written a checkpoint, task 5 requeued
#      (`scontrol requeue`) the same way: the requeued task resumes in the same job and appends
#      to its log;
#   3. the first verify must fail (shard 3 is incomplete);
#   4. task 3 rerun alone (`sbatch --array=3`) and verified again: must pass;
#   5. the Parquet output read back with pyarrow: every input id exactly once.
#
# Exits non-zero on any failure. Everything lives in one folder (default a new /tmp/rembed-slurm.*,
# removed at the end unless KEEP=1 or it failed): its own munge socket and key, its own slurm.conf
# (SLURM_CONF) and ports, so a Slurm or munge already on the machine is left alone.
#
#   scripts/slurm/test-sbatch.sh    # 65-80 s on 2 cores once embed_corpus is built
#   RECORDS=8000 KEEP=1 scripts/slurm/test-sbatch.sh
#
# Settings: RECORDS (4000), BIN (default: builds target/release/examples/embed_corpus),
# SLURM_PORT (first of two ports, 16817), TEST_TIMEOUT (480 s for the jobs, from submission),
# WORK (the folder), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
records=${RECORDS:-4000}
port=${SLURM_PORT:-16817}
timeout_s=${TEST_TIMEOUT:-480} # for the Slurm jobs, from their submission
started=$(date +%s)
deadline=$((started + 3600)) # set again at the submission

say() { echo "[test-sbatch $(($(date +%s) - started))s] $*" >&2; }
fail() {
    say "FAILED: $*"
    exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: slurmd starts jobs as their user"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }
fi
python3 -c 'import pyarrow' 2>/dev/null || {
    say "installing pyarrow"
    python3 -m pip install -q pyarrow
}

if [ -z "${BIN:-}" ]; then
    say "building embed_corpus"
    cargo build --release --features job --example embed_corpus 2>&1 | tail -1 >&2
    BIN="${CARGO_TARGET_DIR:-$repo/target}/release/examples/embed_corpus"
fi
[ -x "$BIN" ] || fail "no binary at $BIN"
python3 scripts/seed_hub_cache.py "$repo/target/hub-cache" >/dev/null

work=${WORK:-$(mktemp -d /tmp/rembed-slurm.XXXXXX)}
mkdir -p "$work"/{etc,munge,state,spool,log,run,dev}
pids=()
cleanup() {
    local rc=$?
    set +e
    # Jobs first (slurmd's step daemons outlive slurmd), then the daemons, newest first.
    if [ -n "${SLURM_CONF:-}" ]; then
        scancel --quiet --full --name=embed-corpus,verify-corpus 2>/dev/null
        for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    if [ "$rc" != 0 ]; then
        say "daemon logs (last lines):"
        tail -n 15 "$work"/log/*.log >&2 2>/dev/null
        say "kept $work for inspection"
    elif [ "${KEEP:-0}" = 1 ]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- munge, on its own socket --------------------------------------------------------------
socket="$work/munge/munge.socket"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --foreground --force --socket="$socket" --key-file="$work/munge/munge.key" \
    --pid-file="$work/run/munged.pid" --seed-file="$work/munge/seed" \
    --log-file="$work/log/munged.log" >"$work/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null || fail "munge does not work"

# --- slurm.conf for this node, as it is ------------------------------------------------------
host=$(hostname -s)
node=$(slurmd -C | head -1) # NodeName=... CPUs=... RealMemory=...
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
cat >"$work/etc/slurm.conf" <<EOF
ClusterName=rembedtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
# No cgroups or systemd in a container: processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=5
# Stand-in GPUs, so the sbatch file's --gres=gpu:1 is satisfied as written.
GresTypes=gpu
${node/NodeName=$host/NodeName=$host NodeAddr=127.0.0.1 Gres=gpu:$cpus} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# Slurm drops GPUs without a device file; these stand-ins are /dev/null's device numbers.
for ((i = 0; i < cpus; i++)); do
    mknod "$work/dev/gpu$i" c 1 3 2>/dev/null || touch "$work/dev/gpu$i"
done
echo "NodeName=$host Name=gpu File=$work/dev/gpu[0-$((cpus - 1))]" >"$work/etc/gres.conf"
export SLURM_CONF="$work/etc/slurm.conf"
slurmctld -D -c >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.3
done
[ "$state" = idle ] || fail "node $host is '${state:-unknown}', not idle"
say "slurm up: $node"

# --- a corpus ----------------------------------------------------------------------------------
mkdir -p "$work/run-dir/logs"
python3 - "$records" "$work/corpus.jsonl" <<'EOF'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
words = ("ferry tent saturday climbing river bread window garden letter music coffee train "
         "morning winter harbour mountain paper lamp story bridge").split()
with open(path, "w") as f:
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
        f.write(json.dumps({"chunk_id": f"c{i:06d}", "text": f"record {i}: {text}"}) + "\n")
EOF

# The job's settings, passed on by sbatch from this environment as deploy/ documents.
export BIN INPUT="$work/corpus.jsonl" OUTPUT="$work/vectors" MODEL=all-minilm-l6-v2 \
    DEVICE=cpu DTYPE=f32 CHECKPOINT_EVERY=25 \
    HF_HUB_CACHE="$repo/target/hub-cache" HF_HUB_OFFLINE=1 RAYON_NUM_THREADS=1
cd "$work/run-dir"
# Sized for this node: one CPU and 1 GB per task instead of 8 CPUs and 32 GB.
small=(--cpus-per-task=1 --mem=1G)
sbatch_file="$repo/deploy/embed-corpus.sbatch"
verify_file="$repo/deploy/verify-corpus.sbatch"

task_state() { # JOB_TASK -> RUNNING, PENDING, COMPLETED, ... (or nothing once forgotten)
    scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1
}
job_done() { # JOBID -> success when no task of it is pending or running
    ! squeue -h -j "$1" -o %T 2>/dev/null | grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUE'
}
wait_jobs() { # JOBID... ; gives up at the test's deadline
    local id
    for id in "$@"; do
        until job_done "$id"; do
            (($(date +%s) < deadline)) || fail "jobs still running after ${timeout_s}s: $(squeue -h)"
            sleep 1
        done
    done
}
shard_parts() { # INDEX -> part files written so far by shard INDEX of 8
    find "$OUTPUT" -maxdepth 1 -name "part-s$(printf %04d "$1")of0008-*.parquet" 2>/dev/null | wc -l
}
# Interrupts one task with COMMAND once it has written two checkpoints, while it is still running.
interrupt_mid_run() { # JOBID INDEX COMMAND...
    local job=$1 index=$2
    shift 2
    while :; do
        (($(date +%s) < deadline)) || fail "task $index never ran in ${timeout_s}s"
        state=$(task_state "${job}_$index")
        if [ "$state" = RUNNING ] && [ "$(shard_parts "$index")" -ge 2 ]; then
            "$@" "${job}_$index"
            say "$* ${job}_$index after $(shard_parts "$index") checkpoints"
            return
        fi
        case "$state" in COMPLETED | FAILED) fail "task $index ended ($state) before it could be interrupted: raise RECORDS" ;; esac
        sleep 0.1
    done
}

say "submitting the array and its verify job ($records records, 8 shards)"
deadline=$(($(date +%s) + timeout_s))
job=$(sbatch --parsable "${small[@]}" "$sbatch_file")
verify1=$(sbatch --parsable --dependency=afterany:"$job" "$verify_file")
interrupt_mid_run "$job" 3 scancel
interrupt_mid_run "$job" 5 scontrol requeue
# Slurm holds a requeued job back for about two minutes; the test need not wait for that. But
# not at once either: slurmd refuses a credential issued in the second the old one was revoked.
for _ in $(seq 100); do [ "$(task_state "${job}_5")" = PENDING ] && break; sleep 0.2; done
sleep 3
scontrol update JobId="${job}_5" StartTime=now
wait_jobs "$job" "$verify1"

for i in 0 1 2 4 5 6 7; do
    state=$(task_state "${job}_$i")
    [ "$state" = COMPLETED ] || fail "task $i is $state: $(cat "logs/embed-corpus-${job}_$i.log")"
done
state=$(task_state "${job}_3")
[ "$state" = CANCELLED ] || fail "task 3 is $state, not CANCELLED"
starts=$(grep -c "job ${job}_5 on" "logs/embed-corpus-${job}_5.log")
[ "$starts" = 2 ] || fail "requeued task 5's log shows $starts starts, not 2 (log not appended?)"
grep -q "(restart 1)" "logs/embed-corpus-${job}_5.log" || fail "task 5 was not restarted"
state=$(task_state "$verify1")
[ "$state" = FAILED ] || fail "verify with shard 3 cancelled is $state, not FAILED: $(cat "logs/verify-corpus-$verify1.log")"
say "array done; task 3 cancelled, task 5 requeued and resumed; verify says NOT OK as it must"

rerun=$(sbatch --parsable --array=3 "${small[@]}" "$sbatch_file")
verify2=$(sbatch --parsable --dependency=afterany:"$rerun" "$verify_file")
wait_jobs "$rerun" "$verify2"
state=$(task_state "${rerun}_3")
[ "$state" = COMPLETED ] || fail "rerun of task 3 is $state: $(cat "logs/embed-corpus-${rerun}_3.log")"
state=$(task_state "$verify2")
[ "$state" = COMPLETED ] || fail "verify after the rerun is $state: $(cat "logs/verify-corpus-$verify2.log")"
grep -q "): shard 3/8 of" "logs/embed-corpus-${rerun}_3.log" || fail "the rerun did not run shard 3"
say "rerun of task 3 done; verify OK"

python3 - "$INPUT" "$OUTPUT" <<'EOF'
import collections, json, sys
import pyarrow.parquet as pq
inp, out = sys.argv[1], sys.argv[2]
want = [json.loads(line)["chunk_id"] for line in open(inp)]
table = pq.read_table(out)
got = collections.Counter(table.column("id").to_pylist())
missing = set(want) - set(got)
doubled = [i for i, n in got.items() if n > 1]
extra = set(got) - set(want)
print(f"[test-sbatch] {len(want)} input ids, {table.num_rows} rows, {len(missing)} missing, "
      f"{len(doubled)} duplicated, {len(extra)} unknown", file=sys.stderr)
sys.exit(0 if not missing and not doubled and not extra and table.num_rows == len(want) else 1)
EOF
say "PASSED: all $records ids exactly once"
