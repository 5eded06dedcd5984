#!/usr/bin/env bash
# Filtered retrain against vanilla and the oracle (issue 17), on the cells of a `finetuned_grid.sh` folder. For each
# noise seed at RATE: vanilla (InfoNCE on the noisy pairs) and oracle (InfoNCE on the truly clean pairs) fine-tuned
# from the demo's base, and filtered (the `finetune` recipe's RRSITR on the pairs DETECTOR did not label noisy in the
# cell's score file ft-NAME{SUFFIX}.scores.parquet; default: the out-of-fold one). Prints test mR and the share of the
# vanilla-to-oracle gap that filtering closed.
#   bash benchmarks/filtered_retrain.sh DEMO_FOLDER WORK_FOLDER [RATE] [SEEDS] [KIND] [SUFFIX] [DETECTOR]
set -euo pipefail
DEMO=$1 WORK=$2 RATE=${3:-0.8} SEEDS=${4:-42 43 44} KIND=${5:-caption-shuffle} SUFFIX=${6--folds3} DETECTOR=${7:-rrsitr}
export HF_HUB_OFFLINE=1
BASE=$DEMO/base/run/best.pt
for seed in $SEEDS; do
  name=$KIND-$RATE-s$seed
  noisy=$WORK/synth.$name.parquet
  out=$WORK/retrain-$name
  mkdir -p "$out"
  [ -f "$out/oracle.parquet" ] || .venv/bin/python - "$noisy" "$out/oracle.parquet" <<'PY'
import sys
from nctool.schema import image_root, read_table, write_table
frame = read_table(sys.argv[1])
write_table(frame[~frame["noisy"].astype(bool)], sys.argv[2], image_root=image_root(sys.argv[1]))  # as `bench` does
PY
  kept=$out/filtered-$DETECTOR$SUFFIX.parquet
  [ -f "$kept" ] || .venv/bin/nctool filter "$noisy" --scores "$WORK/ft-$name$SUFFIX.scores.parquet" \
      --detector "$DETECTOR" --drop noisy --out "$kept" > /dev/null
  for run in vanilla oracle "filtered-$DETECTOR$SUFFIX"; do
    case $run in
      vanilla) data=$noisy loss=(--loss infonce) ;;
      oracle) data=$out/oracle.parquet loss=(--loss infonce) ;;
      *) data=$kept loss=() ;;
    esac
    [ -f "$out/$run/results.json" ] || .venv/bin/nctool train "$data" --recipe finetune "${loss[@]}" \
        --set model.pretrained="$BASE" --out "$out/$run" > "$out/$run.log" 2>&1
  done
  .venv/bin/python - "$out" "$DETECTOR$SUFFIX" "$kept" "$name" <<'PY'
import json
import sys
from nctool.schema import read_table
out, tag, kept, name = sys.argv[1:]
mr = {run: json.load(open(f"{out}/{run}/results.json"))["test"]["mr"] for run in ("vanilla", "oracle", f"filtered-{tag}")}
train = read_table(kept, columns=["split", "noisy"])
train = train[train["split"] == "train"]
vanilla, oracle, filtered = mr.values()
print(f"{name} vanilla {vanilla:.2f} oracle {oracle:.2f} filtered ({tag}) {filtered:.2f}: "
      f"{100 * (filtered - vanilla) / (oracle - vanilla):.0f} % of the gap; kept {len(train)} train pairs, "
      f"{100 * train['noisy'].mean():.0f} % noisy", flush=True)
PY
done
