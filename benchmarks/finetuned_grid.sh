#!/usr/bin/env bash
# The fine-tune regime's detection grid (issues 17, 19): for each rate and noise seed, noise the demo's clean data,
# fine-tune from the demo's base with the `finetune` recipe (or, with FOLDS, K models on image-disjoint folds,
# each pair scored by the one that did not train on it), score with every detector (random decoys) into
# WORK_FOLDER/ft-NAME.scores.parquet, print AUROCs.
#   bash benchmarks/finetuned_grid.sh DEMO_FOLDER WORK_FOLDER [KIND] [RATES] [SEEDS] [FOLDS]
#   (DEMO_FOLDER: what `nctool demo --out` left; defaults: category "0.2 0.4 0.6" "42 43 44", no folds)
set -euo pipefail
DEMO=$1 WORK=$2 KIND=${3:-category} RATES=${4:-0.2 0.4 0.6} SEEDS=${5:-42 43 44} FOLDS=${6:-}
export HF_HUB_OFFLINE=1
BASE=$DEMO/base/run/best.pt
mkdir -p "$WORK"
for rate in $RATES; do
  for seed in $SEEDS; do
    name=$KIND-$rate-s$seed${FOLDS:+-folds$FOLDS}
    noisy=$WORK/synth.$KIND-$rate-s$seed.parquet
    [ -f "$noisy" ] || .venv/bin/nctool inject "$DEMO/data/synth.parquet" --kind "$KIND" --rate "$rate" --seed "$seed" \
        --out "$WORK" > /dev/null
    out=$WORK/ft-$name
    [ -f "$out/best.pt" ] || [ -f "$out/folds.json" ] || .venv/bin/nctool train "$noisy" --recipe finetune \
        --set model.pretrained="$BASE" ${FOLDS:+--folds "$FOLDS"} --out "$out" > "$out.log" 2>&1
    .venv/bin/python - "$noisy" "$out" "$name" <<'PY'
import sys
from pathlib import Path
from nctool.detect.detectors import detector_names
from nctool.detect.measure import ModelSource
from nctool.detect.score import score
noisy, out, name = sys.argv[1:]
folds = Path(out, "folds.json").exists()  # neighbors mixes embeddings across images: refused out of fold
model = ModelSource(checkpoint=out if folds else f"{out}/best.pt")
detectors = [d for d in detector_names() if d != "neighbors"] if folds else ["all"]
result = score(noisy, out=f"{out}.scores.parquet", model=model, detectors=detectors, options={"scene_decoys": False})
print(name, " ".join(f"{row['detector']} {row['auroc']:.3f}" for row in result["detectors"]), flush=True)
PY
  done
done
