#!/usr/bin/env bash
# Category noise, fine-tuned (issue 19): for each rate and noise seed, noise the demo's clean data, fine-tune
# from the demo's base with the `finetune` recipe, score with every detector (random decoys), print AUROCs.
#   bash benchmarks/hard_noise_finetuned.sh DEMO_FOLDER WORK_FOLDER      (DEMO_FOLDER: what `nctool demo --out` left)
set -euo pipefail
DEMO=$1 WORK=$2
export HF_HUB_OFFLINE=1
BASE=$DEMO/base/run/best.pt
mkdir -p "$WORK"
for rate in 0.2 0.4 0.6; do
  for seed in 42 43 44; do
    name=category-$rate-s$seed
    noisy=$WORK/synth.category-$rate-s$seed.parquet
    [ -f "$noisy" ] || .venv/bin/nctool inject "$DEMO/data/synth.parquet" --kind category --rate $rate --seed $seed \
        --out "$WORK" > /dev/null
    out=$WORK/ft-$name
    [ -f "$out/best.pt" ] || .venv/bin/nctool train "$noisy" --recipe finetune --set model.pretrained="$BASE" \
        --out "$out" > "$out.log" 2>&1
    .venv/bin/python - "$noisy" "$out" "$name" <<'PY'
import sys
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
noisy, out, name = sys.argv[1:]
result = score(noisy, out=f"{out}/scores.parquet", model=ModelSource(checkpoint=f"{out}/best.pt"), detectors=["all"],
               options={"scene_decoys": False})
print(name, " ".join(f"{row['detector']} {row['auroc']:.3f}" for row in result["detectors"]), flush=True)
PY
  done
done
