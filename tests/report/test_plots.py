import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nctool.errors import NctoolError
from nctool.report import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    truth = np.arange(60) % 4 == 0
    loss = np.where(truth, 15 + 3 * rng.random(60), 6 * rng.random(60))
    loss[0] = 500.0  # a long tail, to be clipped
    return truth, loss


def assert_only_png(path, folder):
    """path is a readable PNG of plausible size, and the only file in folder (no temp left)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert 400 <= width <= 2000 and 300 <= height <= 1000
    assert [p.name for p in folder.iterdir()] == [path.name]


@pytest.mark.parametrize("with_truth", [True, False])
def test_loss_histogram(tmp_path, pairs, with_truth):
    truth, loss = pairs
    path = plots.loss_histogram(loss, truth if with_truth else None, 5.0, 12.0, tmp_path / "hist.png")
    assert path == tmp_path / "hist.png"
    assert_only_png(path, tmp_path)


def test_roc_pr_curves(tmp_path, pairs):
    truth, loss = pairs
    path = plots.roc_pr_curves(truth, {"rrsitr": loss, "random": np.linspace(0, 1, 60)}, tmp_path / "rp.png")
    assert_only_png(path, tmp_path)


def test_mr_and_detection_vs_noise(tmp_path):
    rates = [0.0, 0.2, 0.5]
    mr = pd.DataFrame({"method": ["infonce"] * 3 + ["rrsitr"] * 3, "noise_rate": rates * 2,
                       "mr": [60, 50, 35, 61, 58, 52], "mr_std": [1, 1, 2, 1, 1, 1]})
    path = plots.mr_vs_noise(mr, tmp_path / "mr.png")
    assert_only_png(path, tmp_path)
    path.unlink()
    detection = pd.DataFrame({"detector": ["rrsitr"] * 3 + ["similarity"] * 3, "noise_rate": rates * 2,
                              "auroc": [np.nan, 0.9, 0.85, np.nan, 0.8, 0.75],
                              "auprc": [np.nan, 0.7, 0.8, np.nan, 0.5, 0.6]})
    path = plots.detection_vs_noise(detection, tmp_path / "det.png")
    assert_only_png(path, tmp_path)


@pytest.mark.parametrize("call, message", [
    (lambda d: plots.loss_histogram([1.0, 2.0], [True], 1, 2, d), "noisy_truth"),
    (lambda d: plots.loss_histogram([], None, 1, 2, d), "loss"),
    (lambda d: plots.loss_histogram([1.0, np.nan], None, 1, 2, d), "loss"),
    (lambda d: plots.loss_histogram([1.0, 2.0], None, 3, 2, d), "g1"),
    (lambda d: plots.roc_pr_curves([True, False], {"a": [0.1, 0.2, 0.3]}, d), "scores_by_detector['a']"),
    (lambda d: plots.roc_pr_curves([True, True], {"a": [0.1, 0.2]}, d), "noisy_truth"),
    (lambda d: plots.roc_pr_curves([True, False], {}, d), "scores_by_detector"),
    (lambda d: plots.mr_vs_noise(pd.DataFrame(), d), "table"),
    (lambda d: plots.mr_vs_noise(pd.DataFrame({"method": ["a"], "noise_rate": [0.1]}), d), "mr"),
    (lambda d: plots.mr_vs_noise(pd.DataFrame({"method": ["a"], "noise_rate": ["20%"], "mr": [50.0]}), d),
     "noise_rate"),
    (lambda d: plots.detection_vs_noise(
        pd.DataFrame({"detector": ["a", "a"], "noise_rate": [0.1, 0.1], "auroc": [0.8, 0.9]}), d), "repeated"),
])
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, call, message):
    with pytest.raises(NctoolError, match=re.escape(message)) as error:
        call(tmp_path / "out.png")
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, pairs, monkeypatch):
    dest = tmp_path / "hist.png"
    dest.write_bytes(b"old")

    def broken_savefig(self, path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError):
        plots.loss_histogram(pairs[1], None, 5.0, 12.0, dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["hist.png"]
