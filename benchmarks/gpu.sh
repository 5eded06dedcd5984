#!/usr/bin/env bash
# GPU checks for nctool, in one go (under 10 minutes on one H100; offline, random or freshly trained weights).
#
#   bash benchmarks/gpu.sh [WORKDIR]
#
# Run from a checkout with .venv (or with nctool installed by `pip install -e .`) on a CUDA machine.
# Measures, each step writing into WORKDIR (default: a new folder under /tmp), logs in WORKDIR/logs:
#   1. data:     nctool synth (GPU_BENCH_IMAGES images, default 2000: 8,000 train pairs) + nctool inject 40 %
#   2. train:    AMP (bf16) train steps/s of ViT-B-32 at batch 100 (benchmarks/train_speed.py), peak GPU memory
#   3. score:    `score` pairs/s against the encoder forward alone, ViT-B-32, rsitmd recipe (local term on)
#                (benchmarks/score_speed.py --device cuda), peak GPU memory
#   4. detectors: every detector's CUDA path: a quick nctool-tiny checkpoint (nctool train, 2 epochs), then
#                `nctool score --detector all --device cuda --suggest 5`, the same on the CPU (agreement), and
#                `--detector neighbors --neighbor-index faiss --device cuda` when faiss is installed
#   5. train fp32: the same as 2 without AMP (for the speed-up), last: skipped when time runs short
# and prints one table. Exits 2 (one line) when there is no CUDA device; a failed step shows as FAILED in
# the table (its log tail is printed) and makes the script exit 1 after the table.
# Knobs: GPU_BENCH_IMAGES (2000), GPU_BENCH_BUDGET (seconds for all steps, 540), GPU_BENCH_DEVICE (cuda).
set -euo pipefail

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=$(command -v python3 || command -v python); fi
if ! "$PY" -c 'import nctool' 2>/dev/null; then
    echo "gpu.sh: nctool is not importable with $PY; create .venv or run 'pip install -e .' first" >&2
    exit 1
fi
DEVICE=${GPU_BENCH_DEVICE:-cuda}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu.sh: no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine" >&2
    exit 2
fi

WORK=${1:-$(mktemp -d /tmp/nctool-gpu.XXXXXX)}
mkdir -p "$WORK/logs" "$WORK/data"
WORK=$(cd "$WORK" && pwd)
IMAGES=${GPU_BENCH_IMAGES:-2000}
BUDGET=${GPU_BENCH_BUDGET:-540}
STATUS="$WORK/status.tsv"
: >"$STATUS"
START=$SECONDS
NCTOOL=("$PY" -m nctool)
DATA="$WORK/data/noisy/synth.caption-shuffle-0.4-s42.parquet"
echo "gpu.sh: work folder $WORK, python $PY, budget ${BUDGET}s"

# step NAME TIMEOUT_S COMMAND...: runs COMMAND with its output in logs/NAME.log, within what is left of BUDGET
step() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - (SECONDS - START))) began=$SECONDS rc=0
    if ((left < 20)); then
        printf '%s\tSKIPPED (time budget)\t0\n' "$name" >>"$STATUS"
        echo "gpu.sh: $name skipped: ${left}s of the budget left"
        return 0
    fi
    ((limit > left)) && limit=$left
    echo "gpu.sh: $name (limit ${limit}s) ..."
    timeout --kill-after=10 "$limit" "$@" >"$WORK/logs/$name.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        printf '%s\tok\t%d\n' "$name" $((SECONDS - began)) >>"$STATUS"
    else
        printf '%s\tFAILED (rc %d%s)\t%d\n' "$name" "$rc" "$( ((rc == 124 || rc == 137)) && echo ', timed out')" \
            $((SECONDS - began)) >>"$STATUS"
        echo "gpu.sh: $name FAILED (rc $rc); last lines of $WORK/logs/$name.log:" >&2
        tail -n 15 "$WORK/logs/$name.log" >&2 || true
    fi
}
ok() { grep -q "^$1	ok	" "$STATUS"; }

"$PY" - >"$WORK/env.txt" 2>&1 <<'EOF' || true
import torch, nctool
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

# 1. data
step synth 150 "${NCTOOL[@]}" synth --images "$IMAGES" --seed 3 --out "$WORK/data/synth.parquet" --overwrite
if ok synth; then
    step inject 90 "${NCTOOL[@]}" inject "$WORK/data/synth.parquet" --kind caption-shuffle --rate 0.4 \
        --out "$WORK/data/noisy" --overwrite
fi

# 2. AMP training speed, ViT-B-32, batch 100
step train-amp 150 "$PY" benchmarks/train_speed.py --model ViT-B-32 --device "$DEVICE" --amp --batch 100 \
    --steps 30 --json "$WORK/train-amp.json"

if ok inject; then
    # 3. score against the forward alone, ViT-B-32 with the local term (the zero-shot default recipe)
    step score-speed 300 "$PY" benchmarks/score_speed.py "$DATA" --model ViT-B-32 --recipe rsitmd --rounds 3 \
        --device "$DEVICE" --detector similarity --detector rrsitr --detector all --json "$WORK/score-speed.json"

    # 4. every detector's CUDA path, on a quickly trained nctool-tiny (so the scores mean something)
    step train-tiny 150 "${NCTOOL[@]}" train "$DATA" --out "$WORK/tiny" --recipe demo --epochs 2 --device "$DEVICE"
    if ok train-tiny; then
        step detectors-cuda 120 "${NCTOOL[@]}" score "$DATA" --checkpoint "$WORK/tiny/best.pt" --detector all \
            --device "$DEVICE" --suggest 5 --out "$WORK/scores-cuda.parquet"
        step detectors-cpu 180 "${NCTOOL[@]}" score "$DATA" --checkpoint "$WORK/tiny/best.pt" --detector all \
            --device cpu --out "$WORK/scores-cpu.parquet"
        if "$PY" -c 'import faiss' 2>/dev/null; then
            step neighbors-faiss-cuda 120 "${NCTOOL[@]}" score "$DATA" --checkpoint "$WORK/tiny/best.pt" \
                --detector neighbors --neighbor-index faiss --device "$DEVICE" --out "$WORK/scores-faiss.parquet"
        else
            printf 'neighbors-faiss-cuda\tSKIPPED (faiss not installed)\t0\n' >>"$STATUS"
        fi
    fi
fi

# 5. the same training without AMP, for the speed-up (lowest priority)
step train-fp32 120 "$PY" benchmarks/train_speed.py --model ViT-B-32 --device "$DEVICE" --batch 100 \
    --steps 20 --json "$WORK/train-fp32.json"

# the table
"$PY" - "$WORK" "$DATA" <<'EOF' | tee "$WORK/table.md"
import json, sys
from pathlib import Path

work, data = Path(sys.argv[1]), sys.argv[2]
status = {}
for line in (work / "status.tsv").read_text().splitlines():
    name, state, seconds = line.split("\t")
    status[name] = f"{state}, {seconds} s" if state == "ok" else state
rows = []


def row(check, result, step):
    rows.append((check, result, status.get(step, "not run") if step else ""))


def load(name):
    path = work / name
    return json.loads(path.read_text()) if path.exists() else None


env = (work / "env.txt").read_text().strip() if (work / "env.txt").exists() else "?"
row("GPU", env.splitlines()[-1] if env else "?", "")
for tag, step in (("AMP (bf16)", "train-amp"), ("fp32", "train-fp32")):
    result = load(f"{step}.json")
    for loss in ("infonce", "rrsitr"):
        r = (result or {}).get("losses", {}).get(loss)
        row(f"train ViT-B-32, batch 100, {tag}, {loss}",
            f"{r['steps_per_s']:.2f} steps/s ({r['pairs_per_s']:,.0f} pairs/s), peak GPU {r['peak_gpu_mib']:,.0f} MiB"
            if r else "-", step)
speed = load("score-speed.json")
if speed:
    median, pairs = speed["median"], speed["pairs"]
    forward = median["forward"][0]
    row(f"forward alone, ViT-B-32, {pairs:,} pairs (wall)", f"{pairs / forward:,.0f} pairs/s", "score-speed")
    for name in ("similarity", "rrsitr", "all"):
        wall = median.get(f"score --detector {name}", [None])[0]
        if wall:
            row(f"score --detector {name} (end to end, wall)",
                f"{pairs / wall:,.0f} pairs/s, {forward / wall:.0%} of the forward", "score-speed")
    row("peak GPU memory, score_speed process (it holds every forward output at once; `score` streams)",
        f"{speed['peak_gpu_mib']:,.0f} MiB", "score-speed")
else:
    row("score vs forward alone, ViT-B-32", "-", "score-speed")

try:
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    truth = pd.read_parquet(data, columns=["pair_id", "noisy"]).set_index("pair_id")["noisy"]
    frames = {dev: pd.read_parquet(work / f"scores-{dev}.parquet") for dev in ("cuda", "cpu", "faiss")
              if (work / f"scores-{dev}.parquet").exists()}
except Exception as error:  # the table still prints
    frames, truth = {}, None
    row("detector comparison", f"could not read the scores: {error}", "detectors-cuda")
cuda = frames.get("cuda")
if cuda is not None:
    for name, part in cuda.groupby("detector", sort=True):
        part = part.set_index("pair_id")
        auroc = roc_auc_score(truth.loc[part.index], -part["reliability"])
        text = f"AUROC {auroc:.4f}"
        if "cpu" in frames:
            cpu = frames["cpu"][frames["cpu"]["detector"] == name].set_index("pair_id").loc[part.index]
            rho = spearmanr(part["reliability"], cpu["reliability"]).statistic
            same = (part["label"] == cpu["label"]).mean()
            text += (f"; vs CPU: AUROC {roc_auc_score(truth.loc[part.index], -cpu['reliability']):.4f}, "
                     f"Spearman {rho:.4f}, same label {same:.1%}")
        if name == "neighbors" and "faiss" in frames:
            faiss = frames["faiss"].set_index("pair_id").loc[part.index]
            text += f"; faiss max |diff| {(faiss['reliability'] - part['reliability']).abs().max():.2e}"
        row(f"detector {name} on CUDA (nctool-tiny, 2 epochs)", text, "detectors-cuda")
    if "suggested_captions" in cuda:
        flagged = cuda["suggested_captions"].notna().mean()
        row("score --suggest 5 on CUDA", f"{flagged:.1%} of rows carry suggestions", "detectors-cuda")
else:
    row("detectors on CUDA", "-", "detectors-cuda")

print("\n| check | result | step |\n|---|---|---|")
for check, result, state in rows:
    print(f"| {check} | {result} | {state} |")
print(f"\nsteps: " + ", ".join(f"{k}: {v}" for k, v in status.items()))
EOF

echo "gpu.sh: done in $((SECONDS - START)) s; table in $WORK/table.md, logs in $WORK/logs"
if grep -q "FAILED" "$STATUS"; then exit 1; fi
