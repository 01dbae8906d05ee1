#!/usr/bin/env bash
# The benchmark on a lent GPU, in the minutes a session has left after the folklore sitting (the
# machine stays warm about 30 s after a call: start this one at once):
#
#   python -m benchmarks.carry            # here, first: also assembles .carry-bench/ (the MNIST files)
#   device run (carry [".carry/cat", ".carry/whl", ".carry-bench"], timeout_s: the device time left
#   less a minute):  bash benchmarks/gpu_bench.sh --budget SECONDS
#
# Runs `python -m benchmarks.bench --device cuda` on the carried cat photos and MNIST files, sections
# packed, train, memory, precision and members in that order (what the H100 run of 2026-11-27 left
# unmeasured first, then train: its DCGAN rows ran eagerly, their step not captured; members last, the
# one measured in full); none starts past --budget seconds (a later --sections replaces the order), and
# bench.json is rewritten after each, so a call stopped by its timeout still returns what finished.
# Writes to $OUT: bench.json, RESULTS.md (benchmarks/RESULTS.md with this run appended) and bench.log.
# Back here: cp $OUT/RESULTS.md benchmarks/RESULTS.md; cp $OUT/bench.json benchmarks/bench-cuda.json
# (a call its timeout stopped returns no RESULTS.md: python -m benchmarks.bench --from-json
# $OUT/bench.json appends what finished to benchmarks/RESULTS.md).
# Extra arguments go to the bench: with CARRY, BENCH_CARRY and OUT set, --device cpu --toy is the
# CPU rehearsal that tests/test_bench.py runs.
# The trials section (trials/hour of one small study at 1, 2, 4, 8 workers) runs study.run and so needs
# optuna and mlflow: it goes with the 50-trial study's carry (benchmarks/gpu_study.sh), not this one's:
#   device run (carry [".carry/cat", ".whl", ".carry-study"]):  NEEDS="torch_fidelity optuna mlflow" WHEELS=.whl \
#       bash benchmarks/gpu_bench.sh --budget SECONDS --sections trials --domain-weights .carry-study/domain.pt
set -euo pipefail
source "$(dirname "$0")/device_env.sh"
BENCH_CARRY=${BENCH_CARRY:-.carry-bench}
root=${BENCH_DATA:-/tmp/bench-data}  # the bench's --data-root: pets/cat and MNIST/raw
mkdir -p "$root/pets"
ln -sfn "$(realpath "$CARRY/cat")" "$root/pets/cat"
if [ -d "$BENCH_CARRY/MNIST" ]; then ln -sfn "$(realpath "$BENCH_CARRY/MNIST")" "$root/MNIST"; fi  # not for trials
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
python3 -m benchmarks.bench --device cuda --sections packed,train,memory,precision,members --data-root "$root" \
    --json "$OUT/bench.json" --results "$OUT/RESULTS.md" "$@" 2>&1 | tee "$OUT/bench.log"
