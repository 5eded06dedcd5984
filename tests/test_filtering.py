import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_cli
from nctool.errors import NctoolError
from nctool.filtering import filter_pairs, read_scores
from nctool.schema import write_table

TRAIN = [f"p{i}" for i in range(6)]


def dataset() -> pd.DataFrame:
    """10 pairs: p0-p5 train (p1, p3 truly noisy), p6-p7 val, p8-p9 test."""
    return pd.DataFrame({
        "pair_id": [f"p{i}" for i in range(10)],
        "image_id": [f"i{i // 2}" for i in range(10)],
        "image": [{"bytes": None, "path": f"i{i // 2}.png"} for i in range(10)],
        "caption": [f"caption {i}" for i in range(10)],
        "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 2,
        "noisy": [False, True, False, True, False, False, False, False, False, False],
    })


def rrsitr_scores() -> pd.DataFrame:
    return pd.DataFrame({"pair_id": TRAIN, "reliability": [0.95, 0.01, 0.5, 0.005, 0.92, 0.3],
                         "label": ["clean", "noisy", "ambiguous", "noisy", "clean", "ambiguous"],
                         "detector": "rrsitr", "loss": [1.0, 25.0, 9.0, 30.0, 2.0, 12.0]})


def two_detectors() -> pd.DataFrame:
    similarity = pd.DataFrame({"pair_id": TRAIN, "reliability": [0.6, 0.4, 0.7, 0.3, 0.65, 0.62],
                               "label": ["clean", "noisy", "clean", "noisy", "clean", "clean"],
                               "detector": "similarity", "similarity": [0.2, -0.2, 0.4, -0.4, 0.3, 0.24]})
    return pd.concat([rrsitr_scores(), similarity], ignore_index=True)


def test_drops_noisy_and_passes_unscored_splits_through():
    result = filter_pairs(dataset(), rrsitr_scores())
    assert result.kept["pair_id"].tolist() == ["p0", "p2", "p4", "p5", "p6", "p7", "p8", "p9"]
    assert result.dropped["pair_id"].tolist() == ["p1", "p3"]
    assert list(result.kept.columns) == [*dataset().columns, "reliability", "label", "detector", "loss"]
    kept = result.kept.set_index("pair_id")
    assert kept.loc["p2", "loss"] == 9.0 and kept.loc["p2", "caption"] == "caption 2"
    assert kept.loc[["p6", "p9"], "label"].isna().all() and kept.loc[["p6", "p9"], "reliability"].isna().all()
    summary = {(row["split"], row["label"]): row for row in result.summary}
    assert list(summary) == [("train", "clean"), ("train", "ambiguous"), ("train", "noisy"), ("train", "all"),
                             ("val", "unscored"), ("test", "unscored")]
    assert summary["train", "all"] == {"split": "train", "label": "all", "kept": 4, "dropped": 2,
                                       "noisy share kept": 0.0, "noisy share dropped": 1.0}
    assert summary["train", "noisy"]["noisy share kept"] is None
    assert (summary["val", "unscored"]["kept"], summary["val", "unscored"]["dropped"]) == (2, 0)


def test_drop_ambiguous_and_min_reliability():
    result = filter_pairs(dataset(), rrsitr_scores(), drop=["noisy", "ambiguous"])
    assert result.dropped["pair_id"].tolist() == ["p1", "p2", "p3", "p5"]
    result = filter_pairs(dataset(), rrsitr_scores(), drop=[], min_reliability=0.93)
    assert result.dropped["pair_id"].tolist() == ["p1", "p2", "p3", "p4", "p5"]
    assert "p6" in result.kept["pair_id"].tolist()  # unscored rows never fall under the reliability bar


def test_picks_one_detector_of_a_long_scores_table():
    result = filter_pairs(dataset(), two_detectors(), detector="similarity")
    assert result.dropped["pair_id"].tolist() == ["p1", "p3"]
    assert "similarity" in result.kept and "loss" not in result.kept  # only the chosen detector's evidence
    assert (result.kept["detector"].dropna() == "similarity").all()


def test_score_columns_replace_the_datasets():
    data = dataset().assign(label="old", reliability=1.0)
    kept = filter_pairs(data, rrsitr_scores()).kept.set_index("pair_id")
    assert kept.loc["p0", "label"] == "clean" and pd.isna(kept.loc["p6", "label"])
    assert list(kept.columns).count("label") == 1


@pytest.mark.parametrize("scores, options, message", [
    (two_detectors(), {}, r"scores: hold several detectors \(rrsitr, similarity\); pick one with --detector"),
    (rrsitr_scores(), {"detector": "neighbors"}, "detector 'neighbors': not in the scores file, which holds rrsitr"),
    (pd.concat([rrsitr_scores(), rrsitr_scores().iloc[:1]]), {}, "pair_id 'p0' appears more than once"),
    (pd.concat([rrsitr_scores(), rrsitr_scores().iloc[:1].assign(pair_id="zz")]), {},
     r"scores: 1 pair id\(s\) are not in the dataset \(e.g. 'zz'\)"),
    (rrsitr_scores().iloc[1:], {}, r"scores: 1 row\(s\) of the scored split\(s\) train have no score \(e.g. 'p0'\)"),
    (rrsitr_scores(), {"drop": ["bad"]}, "drop 'bad': not a label; choose from clean, ambiguous, noisy"),
    (rrsitr_scores(), {"min_reliability": 1.5}, r"min reliability 1.5: outside \[0, 1\]"),
    (rrsitr_scores().assign(label="maybe"), {}, "column 'label' has values"),
])
def test_mismatched_inputs_are_one_line_errors(scores, options, message):
    with pytest.raises(NctoolError, match=message) as error:
        filter_pairs(dataset(), scores, **options)
    assert "\n" not in str(error.value)


def test_filter_cli(tmp_path):
    write_table(dataset(), tmp_path / "data.parquet")
    write_table(two_detectors(), tmp_path / "scores.parquet")
    assert len(read_scores(tmp_path / "scores.parquet")) == 12
    result = run_cli("filter", tmp_path / "data.parquet", "--scores", tmp_path / "scores.parquet",
                     "--detector", "rrsitr", "--drop", "noisy", "--drop", "ambiguous",
                     "--out", tmp_path / "clean.parquet", "--dropped", tmp_path / "dropped.parquet")
    assert result.returncode == 0, result.stderr
    assert "noisy share kept" in result.stdout and "unscored" in result.stdout
    kept, dropped = pd.read_parquet(tmp_path / "clean.parquet"), pd.read_parquet(tmp_path / "dropped.parquet")
    assert kept["pair_id"].tolist() == ["p0", "p4", "p6", "p7", "p8", "p9"]
    assert dropped["pair_id"].tolist() == ["p1", "p2", "p3", "p5"] and np.allclose(dropped["loss"], [25, 9, 30, 12])
    assert kept["image"].iloc[0] == {"bytes": None, "path": "i0.png"}
    result = run_cli("filter", tmp_path / "data.parquet", "--scores", tmp_path / "scores.parquet",
                     "--out", tmp_path / "other.parquet")
    assert result.returncode == 2 and "pick one with --detector" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "other.parquet").exists()
