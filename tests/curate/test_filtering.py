import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import invoke, run_cli

from nctool.cli import filter as filter_cli
from nctool.curate.filtering import SCORE_COLUMNS, filter_file, filter_pairs, read_scores, unlabelled_note
from nctool.data.decisions import DecisionStore, export_decisions
from nctool.errors import NctoolError
from nctool.metrics import detection_table, label_table
from nctool.schema import NOISE_SHARE_KEY, row_hashes, write_table

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


def train_hashes() -> np.ndarray:
    return row_hashes(dataset().iloc[:6])


def rrsitr_scores() -> pd.DataFrame:
    return pd.DataFrame({"pair_id": TRAIN, "row_hash": train_hashes(),
                         "reliability": [0.95, 0.01, 0.5, 0.005, 0.92, 0.3],
                         "label": ["clean", "noisy", "ambiguous", "noisy", "clean", "ambiguous"],
                         "detector": "rrsitr", "loss": [1.0, 25.0, 9.0, 30.0, 2.0, 12.0]})


def two_detectors() -> pd.DataFrame:
    similarity = pd.DataFrame({"pair_id": TRAIN, "row_hash": train_hashes(),
                               "reliability": [0.6, 0.4, 0.7, 0.3, 0.65, 0.62],
                               "label": ["clean", "noisy", "clean", "noisy", "clean", "clean"],
                               "detector": "similarity", "similarity": [0.2, -0.2, 0.4, -0.4, 0.3, 0.24]})
    return pd.concat([rrsitr_scores(), similarity], ignore_index=True)


def test_drops_noisy_and_passes_unscored_splits_through():
    result = filter_pairs(dataset(), rrsitr_scores())
    assert result.kept["pair_id"].tolist() == ["p0", "p2", "p4", "p5", "p6", "p7", "p8", "p9"]
    assert result.dropped["pair_id"].tolist() == ["p1", "p3"]
    assert list(result.kept.columns) == [*dataset().columns, "row_hash", "reliability", "label", "detector", "loss"]
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


def decisions() -> pd.DataFrame:
    """keep p1 (labelled noisy), drop p0 (clean), fix p3 (noisy), drop p6 (val, not scored)."""
    return pd.DataFrame({"pair_id": ["p0", "p1", "p3", "p6"], "action": ["drop", "keep", "fix", "drop"],
                         "new_caption": [None, None, "caption 3, fixed", None], "time": "2026-01-01T00:00:00.000+00:00",
                         "reviewer": "ann"})


def test_decisions_override_the_detector():
    result = filter_pairs(dataset(), rrsitr_scores(), decisions=decisions())
    assert result.kept["pair_id"].tolist() == ["p1", "p2", "p3", "p4", "p5", "p7", "p8", "p9"]
    assert result.dropped["pair_id"].tolist() == ["p0", "p6"]
    kept = result.kept.set_index("pair_id")
    assert kept.loc["p3", ["caption", "caption_original", "decision", "label"]].tolist() == \
        ["caption 3, fixed", "caption 3", "fix", "noisy"]
    assert kept.loc[["p1", "p2"], "decision"].tolist() == ["keep", None]
    assert kept.loc[["p1", "p2"], "caption_original"].tolist() == [None, None]
    assert result.decisions == {"keep": 1, "drop": 2, "fix": 1}
    summary = {(row["split"], row["label"]): row for row in result.summary}
    assert [summary["train", label]["decisions"] for label in ("clean", "ambiguous", "noisy", "all")] == [1, 0, 2, 3]
    assert (summary["val", "unscored"]["kept"], summary["val", "unscored"]["dropped"],
            summary["val", "unscored"]["decisions"]) == (1, 1, 1)
    assert filter_pairs(dataset(), rrsitr_scores(), decisions=decisions().iloc[:0]).dropped["pair_id"].tolist() == \
        ["p1", "p3"]  # no decisions: the detector alone
    assert filter_pairs(dataset(), rrsitr_scores()).decisions is None


@pytest.mark.parametrize("scores, options, message", [
    (rrsitr_scores(), {"decisions": decisions().assign(pair_id=["zz", "p1", "p3", "p6"])},
     r"decisions: 1 pair id\(s\) are not in the dataset \(e.g. 'zz'\)"),
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


def test_scores_of_another_version_of_the_data_are_refused():
    # same pair ids, but p1 and p3 traded captions (another noise draw): the scores judged other pairs
    other = dataset()
    other.loc[[1, 3], "caption"] = other.loc[[3, 1], "caption"].to_numpy()
    with pytest.raises(NctoolError, match=r"scores: pair 'p1' was scored with another image or caption than the "
                                          r"dataset holds \(2 of 6 scored pairs differ\).*score this one with "
                                          r"`nctool score`") as error:
        filter_pairs(other, rrsitr_scores())
    assert "\n" not in str(error.value)


def test_detection_table_per_detector():
    truth = dataset().set_index("pair_id")["noisy"]
    rrsitr, similarity = detection_table(two_detectors(), truth)
    # rrsitr ranks both noisy pairs (p1, p3) below every clean one and labels exactly them noisy
    assert rrsitr == {"detector": "rrsitr", "clean": 2, "ambiguous": 2, "noisy": 2, "auroc": 1.0, "auprc": 1.0,
                      "precision": 1.0, "recall": 1.0, "f1": 1.0}
    # similarity: noise scores 0.6 (p1) and 0.7 (p3) above all four clean ones (0.3-0.4)
    assert similarity["detector"] == "similarity" and similarity["auroc"] == 1.0 and similarity["noisy"] == 2
    flipped = two_detectors().assign(reliability=lambda f: 1 - f["reliability"])
    assert [row["auroc"] for row in detection_table(flipped, truth)] == [0.0, 0.0]
    assert detection_table(rrsitr_scores()) == [{"detector": "rrsitr", "clean": 2, "ambiguous": 2, "noisy": 2}]
    assert [(row["label"], row["count"]) for row in label_table(rrsitr_scores(), truth)] == \
        [("clean", 2), ("ambiguous", 2), ("noisy", 2)]
    assert label_table(rrsitr_scores()) == []
    with pytest.raises(NctoolError, match="truth: no `noisy` value for scored pair 'p0'"):
        detection_table(rrsitr_scores(), truth.drop("p0"))


def test_read_scores_refuses_a_file_without_row_hashes(tmp_path):
    write_table(rrsitr_scores().drop(columns="row_hash"), tmp_path / "old.parquet")
    with pytest.raises(NctoolError, match="no column 'row_hash'.*score the dataset again with `nctool score`"):
        read_scores(tmp_path / "old.parquet")
    assert list(SCORE_COLUMNS) == ["pair_id", "row_hash", "reliability", "label", "detector"]


@pytest.fixture
def files(tmp_path):
    write_table(dataset(), tmp_path / "data.parquet")
    write_table(two_detectors(), tmp_path / "scores.parquet")
    return tmp_path


@pytest.mark.parametrize("out, dropped, message", [
    ("data.parquet", None, "data.parquet: is also an input of this command"),
    ("scores.parquet", None, "scores.parquet: is also an input of this command"),
    ("folder", None, "folder: is a folder; give a file path"),
    ("kept.parquet", "data.parquet", "data.parquet: is also an input of this command"),
    ("kept.parquet", "folder", "folder: is a folder; give a file path"),
    ("kept.parquet", "kept.parquet", "given for both the kept and the dropped pairs"),
    ("decisions.parquet", None, "decisions.parquet: is also an input of this command"),
    ("kept.parquet", "decisions.parquet", "decisions.parquet: is also an input of this command"),
])
def test_filter_file_refuses_outputs_before_work(files, out, dropped, message):
    (files / "folder").mkdir()
    write_table(decisions(), files / "decisions.parquet")
    before = {name: (files / name).read_bytes() for name in ("data.parquet", "scores.parquet", "decisions.parquet")}
    with pytest.raises(NctoolError, match=message) as error:
        filter_file(files / "data.parquet", files / "scores.parquet", out=files / out,
                    dropped=files / dropped if dropped else None, detector="rrsitr",
                    decisions=files / "decisions.parquet")
    assert "\n" not in str(error.value)
    assert {name: (files / name).read_bytes() for name in before} == before  # the inputs are untouched
    assert not (files / "kept.parquet").exists() and list((files / "folder").iterdir()) == []


def test_filter_file_writes_kept_and_dropped(files):
    result = filter_file(files / "data.parquet", files / "scores.parquet", out=files / "kept.parquet",
                         dropped=files / "dropped.parquet", detector="similarity")
    assert (result["kept"], result["dropped"]) == (8, 2) and result["dropped_out"] == str(files / "dropped.parquet")
    assert pd.read_parquet(files / "dropped.parquet")["pair_id"].tolist() == ["p1", "p3"]
    assert len(pd.read_parquet(files / "kept.parquet")) == 8 and result["summary"][-1]["label"] == "unscored"
    assert result["decisions"] is None


STATED = {"method": "decoys", "estimate": 0.825, "low": 0.546, "high": 0.859, "pinned": False, "noisy": 0}


@pytest.mark.parametrize("stated, why", [
    (STATED, "its noise share's interval, 54.6-85.9 %, is too wide to pin"),
    ({**STATED, "pinned": True}, "no set of its pairs reached the precision `score --noisy-from` asked"),
    ({**STATED, "estimate": None, "low": None, "high": None}, "it had too few pairs to state a noise share"),
])
def test_a_detector_that_labelled_no_pair_noisy_says_why(stated, why):
    assert unlabelled_note(stated, "rrsitr") == (f"rrsitr labelled no pair noisy ({why}), so --drop noisy dropped "
                                                 f"nothing (docs/labels.md); try another detector (e.g. "
                                                 f"rrsitr-attributes) or --min-reliability")
    assert unlabelled_note({**stated, "in_sample": 1.0}, "rrsitr").endswith(
        "try out-of-fold scores (`nctool train --folds 3`), another detector (e.g. rrsitr-attributes) or "
        "--min-reliability")
    assert unlabelled_note({**stated, "noisy": 12}, "rrsitr") is None  # it did label some
    assert unlabelled_note({**stated, "method": "mixture"}, "loss-gmm") is None and unlabelled_note(None, "x") is None


def test_filter_file_says_why_nothing_was_dropped(files):
    none_noisy = rrsitr_scores().assign(label="ambiguous")
    write_table(none_noisy, files / "unpinned.parquet", metadata={NOISE_SHARE_KEY: json.dumps({"rrsitr": STATED})})
    result = filter_file(files / "data.parquet", files / "unpinned.parquet", out=files / "kept.parquet")
    assert result["dropped"] == 0 and result["notes"] == [unlabelled_note(STATED, "rrsitr")]
    kept_all = filter_file(files / "data.parquet", files / "unpinned.parquet", out=files / "kept.parquet",
                           drop=["ambiguous"])
    assert kept_all["dropped"] == 6 and kept_all["notes"] == []  # noisy pairs were not asked for


def test_filter_file_applies_a_decision_store(files):
    with DecisionStore(files / "scores.decisions.sqlite", reviewer="ann") as store:
        store.record("p3", "fix", new_caption="caption 3, fixed")
        store.record("p0", "drop")
    result = filter_file(files / "data.parquet", files / "scores.parquet", out=files / "kept.parquet",
                         detector="rrsitr", decisions=files / "scores.decisions.sqlite")
    assert result["decisions"] == {"keep": 0, "drop": 1, "fix": 1}
    kept = pd.read_parquet(files / "kept.parquet").set_index("pair_id")
    assert "p0" not in kept.index and "p1" not in kept.index
    assert kept.loc["p3", ["caption", "caption_original", "decision"]].tolist() == \
        ["caption 3, fixed", "caption 3", "fix"]


def test_filter_flags_reach_the_library(monkeypatch):
    calls = []
    applied = {"keep": 2, "drop": 1, "fix": 1}
    monkeypatch.setattr(filter_cli, "filter_file", lambda *args, **kwargs: calls.append((args, kwargs)) or
                        {"out": "k.parquet", "dropped_out": "d.parquet", "kept": 3, "dropped": 1,
                         "summary": [{"split": "train", "label": "all", "kept": 3, "dropped": 1}],
                         "decisions": applied if kwargs["decisions"] else None})
    result = invoke("filter", "data.parquet", "--scores", "s.parquet", "--out", "k.parquet", "--drop", "noisy",
                    "--drop", "ambiguous", "--min-reliability", "0.3", "--detector", "loss-gmm",
                    "--dropped", "d.parquet", "--decisions", "s.decisions.sqlite")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert [str(a) for a in args] == ["data.parquet", "s.parquet"]
    assert {k: str(v) if k in ("out", "dropped", "decisions") else v for k, v in kwargs.items()} == {
        "out": "k.parquet", "dropped": "d.parquet", "drop": ["noisy", "ambiguous"], "min_reliability": 0.3,
        "detector": "loss-gmm", "decisions": "s.decisions.sqlite"}
    assert "kept 3 pairs -> k.parquet; dropped 1 -> d.parquet" in result.output
    assert "applied 4 decisions (keep 2, drop 1, fix 1)" in result.output
    calls.clear()
    result = invoke("filter", "data.parquet", "--scores", "s.parquet", "--out", "k.parquet")
    assert result.exit_code == 0 and "decisions" not in result.output
    assert calls[0][1] == {"out": calls[0][1]["out"], "dropped": None, "drop": ["noisy"], "min_reliability": None,
                           "detector": None, "decisions": None}
    assert invoke("filter", "d", "--scores", "s", "--out", "k", "--drop", "bad").exit_code == 2
    assert invoke("filter", "d", "--scores", "s", "--out", "k", "--detector", "clip").exit_code == 2


def test_filter_cli(files):
    """The one end-to-end run of `nctool filter` (a subprocess, as a user runs it)."""
    with DecisionStore(files / "scores.decisions.sqlite", reviewer="ann") as store:
        store.record("p2", "keep")
        store.record("p3", "fix", new_caption="caption 3, fixed")
        store.record("p9", "drop")
    export_decisions(files / "scores.decisions.sqlite", files / "decisions.parquet")
    result = run_cli("filter", files / "data.parquet", "--scores", files / "scores.parquet",
                     "--detector", "rrsitr", "--drop", "noisy", "--drop", "ambiguous", "--decisions",
                     files / "decisions.parquet", "--out", files / "clean.parquet",
                     "--dropped", files / "dropped.parquet")
    assert result.returncode == 0, result.stderr
    assert "noisy share kept" in result.stdout and "unscored" in result.stdout
    assert "applied 3 decisions (keep 1, drop 1, fix 1)" in result.stdout
    kept, dropped = pd.read_parquet(files / "clean.parquet"), pd.read_parquet(files / "dropped.parquet")
    assert kept["pair_id"].tolist() == ["p0", "p2", "p3", "p4", "p6", "p7", "p8"]
    assert kept["caption"].tolist()[2] == "caption 3, fixed" and kept["caption_original"].tolist()[2] == "caption 3"
    assert dropped["pair_id"].tolist() == ["p1", "p5", "p9"] and np.allclose(dropped["loss"].iloc[:2], [25, 12])
    assert kept["image"].iloc[0] == {"bytes": None, "path": "i0.png"}
