#!/usr/bin/env bash
# Issue 10's GPU measurements in one command, sized for one lease of the device machine (about
# 8 minutes of work; each part has its own time limit, so one slow part cannot take the rest).
# Run from the repository root there. That machine has torch but not Hydra: first, here,
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       -d .whl hydra-core==1.3.8 omegaconf==2.3.1
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
# then run `bash benchmarks/device_check.sh` there with `.whl` carried. Each part's table goes to
# $OUT/<part>.md (what a part printed before its limit comes back too).
set -u
out=${OUT:-/tmp/device_check}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
PEAK=${PEAK_TFLOPS:-67}  # H100 SXM and H200: fp32 without tensor cores (TF32 is off, README)
bench="python3 benchmarks/engine_speed.py --device cuda --dtype float32"

part() {  # part NAME SECONDS COMMAND...: run it with a limit, its output into $out/NAME.md
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.md"
}

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.md"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.md"

# The default single run on the GPU machine: device=auto (what `python train.py` does) against
# forcing the GPU, 5000 steps each.
part single 120 bash -c '
  for device in auto cuda; do
    rm -rf /tmp/single_$device; start=$(date +%s.%N)
    python3 train.py device=$device train.max_steps=5000 train.loss_tol=0 train.progress=false \
      hydra.run.dir=/tmp/single_$device >/dev/null 2>&1 || echo "device=$device failed"
    loop=$(python3 -c "import json; print(json.load(open(\"/tmp/single_$device/metrics.json\"))[\"wall_time_s\"])")
    echo "| python train.py device=$device train.max_steps=5000 | $(echo "$(date +%s.%N) - $start" | bc) s | loop $loop s |"
  done'
# Loops at 10⁶ and 10⁷ runs × 10⁴ steps (eager, and the entry-wise loss compiled).
part loops_1e6 150 $bench --parts loops --runs 1000000 --steps 10000 --compile \
  --steppers entry fused_entry reference
part loops_1e7 150 $bench --parts loops --runs 10000000 --steps 10000 --compile \
  --steppers entry fused_entry
# The whole process at 10⁶ runs × 10⁴ steps (10⁷ runs would spend minutes writing runs.csv).
part processes_1e6 90 $bench --parts processes --runs 1000000 --steps 10000
part init_1e7 40 $bench --parts init --inits 10000000
# Mid-size: 10³ runs of 100×100 completion at depth 3.
part mid 60 $bench --parts mid --mid-runs 1000 --mid-steps 2000 --peak-tflops "$PEAK"
ls "$out"
