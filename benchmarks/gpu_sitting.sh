#!/usr/bin/env bash
# The folklore's GPU sitting as the first device command of a session with a GPU:
#
#   python -m benchmarks.carry            # here, first: assembles .carry/ and checks the 64 MiB limit
#   device run (carry [".carry"], timeout_s 570):  bash benchmarks/gpu_sitting.sh
#
# On the device (benchmarks/device_env.sh: the carried torch-fidelity wheel installed), unpacks the
# carried Inception weights (rounded to fp16, packed as byte planes by benchmarks.carry), points the
# metrics at them and runs `python -m benchmarks.gpu_sitting` on the carried photos, writing
# runs.tar.gz, timing.{json,md} and sitting.log to $OUT. Extra arguments go to the script (e.g.
# --skip dcgan-smooth-600,dcgan-paper in a later sitting). With CARRY and OUT set and --device cpu
# --toy ... it is the CPU rehearsal that tests/test_sitting.py runs. The minutes it leaves go to
# benchmarks/gpu_bench.sh.
set -euo pipefail
source "$(dirname "$0")/device_env.sh"
packed=$CARRY/inception-fid16.planes.npz
if [ -z "${GAN_STUDY_INCEPTION_WEIGHTS:-}" ] && [ -f "$packed" ]; then
    export GAN_STUDY_INCEPTION_WEIGHTS=${SITTING_WEIGHTS:-/tmp/inception-fid16.pt}
    python3 -m benchmarks.carry --unpack "$packed" --out "$GAN_STUDY_INCEPTION_WEIGHTS"
fi
python3 -m benchmarks.gpu_sitting --data "$CARRY/cat" --out "$OUT" "$@" 2>&1 | tee "$OUT/sitting.log"
