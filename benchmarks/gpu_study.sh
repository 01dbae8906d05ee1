#!/usr/bin/env bash
# The 50-trial DCGAN study of issue "On the GPU", timed, as one device command per sitting; a sitting
# continues the study the earlier ones left in the repository:
#
#   ../shared/tools/offline-wheels .whl    # here, once: optuna, mlflow, torch-fidelity and their needs (35 MiB)
#   python -m benchmarks.carry --study     # here: assembles .carry-study/ and checks this call's 64 MiB
#   device run (carry [".carry/cat", ".whl", ".carry-study"], timeout_s 570):
#       bash benchmarks/gpu_study.sh --budget 470
#   back here: python -m benchmarks.study_clock --save $OUT   (the stores and this sitting's record into
#       benchmarks/gpu-study/, where it went into benchmarks/RESULTS.md)
#
# What it runs: `python -m study.run --trials 50 --model dcgan --data CATS --limit 2000` (the full preset:
# budgets up to 1,000 epochs, FID/KID every 50 epochs, median pruning), without horizon runs or report,
# stopped by SIGTERM after --budget seconds: the trial it interrupts is failed and retried, from scratch,
# by the next sitting (its checkpoints do not travel). Scored with the domain extractor (a cat-vs-dog
# classifier trained here, carried as .carry-study/domain.pt) rather than Inception: the optuna and mlflow
# wheels (35 MiB) and the packed Inception file (35 MiB) do not travel together, so this study's FID is a
# timing study's, not the folklore's measurement. Before it starts it unpacks benchmarks/gpu-study/
# stores.tar.xz (the earlier sittings' Optuna and MLflow stores) when there is one.
# Writes to $OUT: stores.tar.xz (optuna.db and mlflow.db, ~180 bytes per trained epoch once compressed; no
# artifacts: no sample grids, no checkpoints, no copy of the classifier, which every sitting carries),
# sitting.json (benchmarks.study_clock's record: wall, budget, exit status, device, where the time went),
# study.log. Extra arguments go to study.run after the script's own (a later flag wins, e.g. --workers 4):
# with CARRY, STUDY_CARRY, STUDY_WORK, STUDY_PREVIOUS and OUT set, `--budget S --device cpu --limit 32
# --epochs 2 ...` is the CPU rehearsal that tests/test_gpu_study.py runs.
set -euo pipefail
NEEDS="torch_fidelity optuna mlflow" WHEELS=${WHEELS:-.whl}
source "$(dirname "$0")/device_env.sh"
budget=470
if [ "${1:-}" = "--budget" ]; then budget=$2; shift 2; fi
STUDY_CARRY=${STUDY_CARRY:-.carry-study}
previous=${STUDY_PREVIOUS:-benchmarks/gpu-study/stores.tar.xz}
work=${STUDY_WORK:-/tmp/gpu-study}  # the same path on every sitting: MLflow keeps artifact paths absolute
rm -rf "$work" && mkdir -p "$work"
if [ -f "$previous" ]; then tar -C "$work" -xJf "$previous"; fi
name=${STUDY_NAME:-dcgan-cats-50}
start=$(date +%s.%N)
set +e
timeout --signal=TERM --kill-after=30 "$budget" python3 -m study.run --trials 50 --model dcgan --data "$CARRY/cat" \
    --limit 2000 --preset full --metrics fid,kid --extractor domain --domain-weights "$STUDY_CARRY/domain.pt" \
    --study-name "$name" --storage "sqlite:///$work/optuna.db" --tracking-uri "sqlite:///$work/mlflow.db" \
    --checkpoints "$work/checkpoints" --confirm-top 0 --no-report --no-progress "$@" 2>&1 | tee "$OUT/study.log"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
if [ -f "$work/optuna.db" ] && [ -f "$work/mlflow.db" ]; then  # else stopped before it made them: nothing new
    (cd "$work" && tar -cJf "$OUT/stores.tar.xz" optuna.db mlflow.db)
fi
python3 -m benchmarks.study_clock --record "$OUT/sitting.json" --started "$start" --ended "$end" --budget "$budget" \
    --exit-status "$rc" --storage "sqlite:///$work/optuna.db" --tracking-uri "sqlite:///$work/mlflow.db" \
    --study-name "$name"
