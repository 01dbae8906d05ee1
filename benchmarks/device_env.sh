# Sourced by the device commands (gpu_sitting.sh, gpu_bench.sh, gpu_study.sh): the repository root as working
# folder, the carried wheels installed where the device lacks a module of $NEEDS (it has torch, not
# torch-fidelity, optuna or mlflow), the repository on PYTHONPATH, a cache of its own, $OUT made, and the GPU
# named in the log.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARRY=${CARRY:-.carry}
WHEELS=${WHEELS:-$CARRY/whl}  # the folder of wheels to install from
NEEDS=${NEEDS:-torch_fidelity}  # the modules the command imports that the device may lack
: "${OUT:?set OUT to the output folder}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
site=${SITTING_SITE:-/tmp/sitting-site}
if ! python3 -c "import ${NEEDS// /, }" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WHEELS"/*.whl
    export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
export GAN_STUDY_CACHE=${GAN_STUDY_CACHE:-/tmp/gan-study-cache}
mkdir -p "$OUT"
nvidia-smi -L 2>/dev/null || true
