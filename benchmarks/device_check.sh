#!/usr/bin/env bash
# The engine's GPU measurements in one command, sized for a short loan of a GPU machine: the
# parts' limits add up to 6.5 minutes, and each part is killed at its own, so one slow part
# cannot take the others. `bash benchmarks/device_check.sh [PART ...]` runs the parts named
# (default: all engine parts, in the order below), so a part that failed can be run again alone.
# `bash benchmarks/device_check.sh arora` runs the four full-size Arora et al. (2019) presets
# (Figs. 1-3 and sensing; device=auto puts their jobs on the GPU), 7.5 minutes in all.
# Run from the repository root there. That machine has torch but not Hydra: first, here,
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       -d .whl hydra-core==1.3.8 omegaconf==2.3.1
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
# then run this there with `.whl` carried. Each part's table goes to $OUT/<part>.md (what a part
# printed before its limit comes back too).
set -u
out=${OUT:-/tmp/device_check}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import hydra, omegaconf" || { echo "no Hydra here: carry .whl (see above)"; exit 1; }
export PYTHONUNBUFFERED=1
PEAK=${PEAK_TFLOPS:-67}  # H100 SXM and H200: fp32 without tensor cores (TF32 is off, docs/precision.md)
bench="python3 benchmarks/engine_speed.py --device cuda --dtype float32"

part() {  # part NAME SECONDS COMMAND...: its output into $out/NAME.md, killed at its limit
  local name=$1 limit=$2  # (KILL: a train.py stopped by SIGTERM would write its files on)
  shift 2
  echo "== $name (limit ${limit}s)"
  timeout -s KILL "$limit" "$@" 2>&1 | tee "$out/$name.md"
}

single() {  # the default run on the GPU machine: device=auto (what `python train.py` does)
  for device in auto cuda; do  # against forcing the GPU, 5000 steps each
    rm -rf "/tmp/single_$device"
    start=$(python3 -c "import time; print(time.time())")
    python3 train.py "device=$device" train.max_steps=5000 train.loss_tol=0 \
      train.progress=false "hydra.run.dir=/tmp/single_$device" >/dev/null 2>&1 \
      || echo "device=$device failed"
    python3 - "$device" "$start" <<'EOF'
import json, sys, time
device, start = sys.argv[1], float(sys.argv[2])
loop = json.load(open(f"/tmp/single_{device}/metrics.json"))["wall_time_s"]
print(f"| python train.py device={device} train.max_steps=5000 | {time.time() - start:.1f} s "
      f"| loop {loop:.2f} s |")
EOF
  done
}

run_part() {
  case $1 in
    gpu) nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.md"
         python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$out/gpu.md" ;;
    single) part single 45 bash -c single ;;
    mid) part mid 45 $bench --parts mid --mid-runs 1000 --mid-steps 2000 --peak-tflops "$PEAK" ;;
    loops_1e6) part loops_1e6 90 $bench --parts loops --runs 1000000 --steps 10000 --compile \
                 --steppers entry fused_entry reference ;;
    loops_1e7) part loops_1e7 100 $bench --parts loops --runs 10000000 --steps 10000 --compile \
                 --steppers entry fused_entry ;;
    processes_1e6) part processes_1e6 80 $bench --parts processes --runs 1000000 --steps 10000 ;;
    init_1e7) part init_1e7 30 $bench --parts init --inits 10000000 ;;
    arora_completion) part arora_completion 120 bash -c "preset arora2019_completion" ;;
    arora_dynamics) part arora_dynamics 60 bash -c "preset arora2019_dynamics" ;;
    arora_observations) part arora_observations 120 bash -c "preset arora2019_observations" ;;
    arora_sensing) part arora_sensing 150 bash -c "preset arora2019_sensing" ;;
    *) echo "unknown part $1" ;;
  esac
}

preset() {  # preset NAME: a full Arora et al. (2019) preset, its wall time and every job's status
  rm -rf "/tmp/$1"
  start=$(python3 -c "import time; print(time.time())")
  python3 train.py "experiment=$1" train.progress=false "hydra.sweep.dir=/tmp/$1" \
    >"/tmp/$1.log" 2>&1 || echo "$1: a job did not finish (see its summary)"
  python3 - "$1" "$start" <<'EOF'
import json, pathlib, sys, time
name, start = sys.argv[1], float(sys.argv[2])
print(f"| {name} | {time.time() - start:.0f} s |")
for m in sorted(pathlib.Path(f"/tmp/{name}").glob("*/metrics.json")):
    r = json.loads(m.read_text())
    print(f"|   job {m.parent.name} | {r.get('status')} | {r.get('wall_time_s', 0):.1f} s |")
EOF
}

export -f single preset
if [ "${1:-}" = arora ]; then
  set -- arora_completion arora_dynamics arora_observations arora_sensing
fi
parts=${*:-gpu single mid loops_1e6 loops_1e7 processes_1e6 init_1e7}
for name in $parts; do
  run_part "$name"
done
ls "$out"
