"""Peak memory and time of reading every image of a file through the word tagger (`score --tagger`'s image pass).

    nctool synth --images 20000 --out /tmp/k/synth20k.parquet
    nctool train-tagger DEMO/data/synth.parquet --out /tmp/k/tagger.pt --epochs 1     # any tagger will do
    /usr/bin/time -f "peak RSS %M KB" .venv/bin/python benchmarks/tagger_memory.py /tmp/k/tagger.pt \
        /tmp/k/synth20k.parquet

Prints the pairs, the images read, the seconds `image_word_probabilities` took and a checksum of the readings (the
sum of the probabilities, to compare versions by); the peak RSS comes from `/usr/bin/time`.
"""

from __future__ import annotations

import sys
import time

from nctool.model.tagger import image_word_probabilities, load_tagger
from nctool.schema import read_table


def main() -> None:
    tagger_path, data_path = sys.argv[1:]
    tagger = load_tagger(tagger_path)
    image_ids = read_table(data_path, columns=["image_id"])["image_id"].to_numpy()
    start = time.perf_counter()
    words = image_word_probabilities(tagger, data_path, image_ids)
    print(f"{len(image_ids)} pairs, {len(set(image_ids))} images read in {time.perf_counter() - start:.1f} s; "
          f"checksum {float(words.probability.sum()):.4f}")


if __name__ == "__main__":
    main()
