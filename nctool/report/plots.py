"""Figures for reports: pure functions that each write one PNG atomically and return its path.

Matplotlib is used through ``Figure`` objects only (no pyplot, no global backend switch, no
display), so these functions are safe in headless runs and in threads. Colours come from the
Okabe-Ito palette, which stays distinguishable under the common colour-vision deficiencies:
clean is blue, noisy is orange/vermillion. Every function takes a ``title``; "" leaves the
figure untitled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from nctool.errors import NctoolError
from nctool.metrics import detection_metrics
from nctool.schema import atomic_path

DPI = 120
CLEAN, AMBIGUOUS, NOISY = "#0072B2", "#999999", "#D55E00"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
TAIL_QUANTILE = 0.99


# ---------------------------------------------------------------- shared helpers


def _figure(title: str, ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A titled figure with ``ncols`` side-by-side axes: (figure, list of axes)."""
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = list(fig.subplots(1, ncols, squeeze=False)[0])
    if title:
        fig.suptitle(title, fontweight="bold")
    for ax in axes:
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, axes


def _save(fig: Figure, dest: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``dest`` atomically; return the path."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return dest


def _vector(name: str, values, dtype=float) -> np.ndarray:
    """A non-empty 1-D array of finite values (for floats), else NctoolError."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1 or array.size == 0:
        raise NctoolError(f"{name}: needs a non-empty 1-D array, got shape {array.shape}; pass one value per pair")
    if dtype is float and not np.isfinite(array).all():
        raise NctoolError(f"{name}: has {int((~np.isfinite(array)).sum())} NaN/inf values; drop those pairs first")
    return array


def _same_length(name: str, array: np.ndarray, expected: int) -> None:
    if array.size != expected:
        raise NctoolError(f"{name}: has {array.size} values but there are {expected} pairs; pass one per pair")


def _table(name: str, table, required: tuple[str, ...]) -> pd.DataFrame:
    """Check that ``table`` is a non-empty DataFrame holding ``required`` columns."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise NctoolError(f"{name}: needs a non-empty pandas DataFrame with columns {', '.join(required)}")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise NctoolError(f"{name}: missing column(s) {', '.join(missing)}; "
                          f"it has {', '.join(map(str, table.columns))}")
    not_numeric = [column for column in required[1:] if not pd.api.types.is_numeric_dtype(table[column])]
    if not_numeric:
        raise NctoolError(f"{name}: column(s) {', '.join(not_numeric)} must be numeric (noise_rate as a fraction)")
    if table.duplicated(subset=list(required[:2])).any():
        raise NctoolError(f"{name}: repeated ({required[0]}, {required[1]}) rows; average over seeds first")
    return table


def _lines_vs_rate(ax, table: pd.DataFrame, group: str, value: str, std: str | None) -> None:
    """One marked line per ``group`` of ``value`` against noise rate, with error bars from ``std``."""
    for i, (name, rows) in enumerate(table.groupby(group, sort=False)):
        rows = rows.sort_values("noise_rate")
        ax.errorbar(
            rows["noise_rate"], rows[value], yerr=rows[std] if std else None,
            label=str(name), color=PALETTE[i % len(PALETTE)], marker=MARKERS[i % len(MARKERS)],
            markersize=5, linewidth=1.6, capsize=3,
        )
    rates = np.sort(table["noise_rate"].unique())
    ax.set_xticks(rates, [f"{100 * rate:g}%" for rate in rates])
    ax.set_xlabel("noise rate")


# ---------------------------------------------------------------- figures


def loss_histogram(loss, noisy_truth, g1: float, g2: float, dest: str | os.PathLike,
                   title: str = "Per-pair loss and the RRSITR split") -> Path:
    """Histogram of per-pair loss with the clean / ambiguous / noisy bins of thresholds g1 <= g2.

    With ``noisy_truth`` (bool per pair) the bars are stacked clean (blue) and noisy (orange);
    with None they are one colour. Dashed lines mark g1 and g2 (tick labels on the top axis)
    and light bands shade the three bins. A long right tail (the top 1% stretching the axis by
    over a quarter) is cut at the 99th percentile, or at g2 if that is higher: the pairs beyond
    the cut are counted in the last bar and the x label says how many.
    """
    loss = _vector("loss", loss)
    if noisy_truth is not None:
        noisy_truth = _vector("noisy_truth", noisy_truth, dtype=bool)
        _same_length("noisy_truth", noisy_truth, loss.size)
    if not (np.isfinite(g1) and np.isfinite(g2) and g1 <= g2):
        raise NctoolError(f"g1, g2: need finite thresholds with g1 <= g2, got g1={g1}, g2={g2}")

    low, high = float(loss.min()), float(loss.max())
    cut = float(np.quantile(loss, TAIL_QUANTILE, method="lower"))  # a real loss, even for few pairs
    long_tail = high - cut > 0.25 * (cut - low)  # the top 1% would stretch the axis by over a quarter
    right = max(cut if long_tail else high, g2)  # losses above it are counted in the last bar
    beyond = int((loss > right).sum())
    pad = 0.04 * (right - min(low, g1) or 1.0)
    x_low, x_high = min(low, g1) - pad, right + pad
    edges = np.linspace(x_low, right, min(60, max(10, int(np.sqrt(loss.size)))) + 1)
    shown = np.minimum(loss, right)

    fig, (ax,) = _figure(title)
    for start, stop, colour in ((x_low, g1, CLEAN), (g1, g2, AMBIGUOUS), (g2, x_high, NOISY)):
        ax.axvspan(start, stop, color=colour, alpha=0.08, linewidth=0)
    if noisy_truth is None:
        ax.hist(shown, bins=edges, color=CLEAN, edgecolor="white", linewidth=0.4, label=f"all pairs (n={loss.size})")
    else:
        groups = [(shown[~noisy_truth], CLEAN, "truly clean"), (shown[noisy_truth], NOISY, "truly noisy")]
        groups = [(values, colour, f"{label} (n={values.size})") for values, colour, label in groups if values.size]
        ax.hist([g[0] for g in groups], bins=edges, stacked=True, color=[g[1] for g in groups],
                label=[g[2] for g in groups], edgecolor="white", linewidth=0.4)
    for g in (g1, g2):
        ax.axvline(g, color="#333333", linestyle="--", linewidth=1.2)
    thresholds = ax.secondary_xaxis("top")
    if g1 == g2:
        thresholds.set_xticks([g1], [f"g1 = g2 = {g1:.3g}"])
    else:
        thresholds.set_xticks([g1, g2], [f"g1 = {g1:.3g} ", f" g2 = {g2:.3g}"])
        for tick_label, side in zip(thresholds.get_xticklabels(), ("right", "left")):  # never overlap
            tick_label.set_horizontalalignment(side)
    thresholds.tick_params(length=0)

    ax.set_xlim(x_low, x_high)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # headroom for the bin names
    for name, start, stop in (("clean", x_low, g1), ("ambiguous", g1, g2), ("noisy", g2, x_high)):
        if stop - start > 0.12 * (x_high - x_low):  # skip names that would not fit their band
            ax.text((start + stop) / 2, 0.97, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=9, style="italic", color="#444444")
    xlabel = "per-pair loss"
    if beyond:
        xlabel += f"  (long tail: {beyond} pair{'s' * (beyond > 1)} above {right:.3g} counted in the last bar)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("pairs")
    ax.legend(loc="best", bbox_to_anchor=(0, 0, 1, 0.9), fontsize=8, framealpha=0.9)  # below the bin names
    return _save(fig, dest)


def roc_pr_curves(noisy_truth, scores_by_detector: dict, dest: str | os.PathLike,
                  title: str = "Noise detection: ROC and precision-recall") -> Path:
    """ROC (left) and precision-recall (right) curves, one per detector; noisy = positive.

    ``scores_by_detector`` maps a detector name to its noise scores (higher = more likely
    noisy), one per pair. AUROC and AUPRC in the legends come from
    ``nctool.metrics.detection_metrics``, so they match the tables.
    """
    truth = _vector("noisy_truth", noisy_truth, dtype=bool)
    if not 0 < truth.sum() < truth.size:
        raise NctoolError("noisy_truth: needs both clean and noisy pairs to draw ROC/PR curves")
    if not scores_by_detector:
        raise NctoolError("scores_by_detector: is empty; pass at least one {detector: noise scores}")
    scores = {}
    for name, values in scores_by_detector.items():
        scores[name] = _vector(f"scores_by_detector[{name!r}]", values)
        _same_length(f"scores_by_detector[{name!r}]", scores[name], truth.size)

    fig, (roc_ax, pr_ax) = _figure(title, ncols=2, width=5.0, height=4.4)
    for i, (name, score) in enumerate(scores.items()):
        metrics = detection_metrics(truth, score)
        colour = PALETTE[i % len(PALETTE)]
        fpr, tpr, _ = roc_curve(truth, score)
        roc_ax.plot(fpr, tpr, color=colour, linewidth=1.6, label=f"{name} ({metrics['auroc']:.3f})")
        precision, recall, _ = precision_recall_curve(truth, score)
        pr_ax.plot(recall, precision, color=colour, linewidth=1.6, drawstyle="steps-post",
                   label=f"{name} ({metrics['auprc']:.3f})")
    base_rate = truth.mean()
    roc_ax.plot([0, 1], [0, 1], color="#888888", linestyle=":", linewidth=1.2, label="chance (0.500)")
    pr_ax.axhline(base_rate, color="#888888", linestyle=":", linewidth=1.2, label=f"base rate ({base_rate:.3f})")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC",
               xlim=(0, 1), ylim=(0, 1.01))
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    roc_ax.legend(title="detector (AUROC)", loc="lower right", fontsize=8, title_fontsize=8)
    pr_ax.legend(title="detector (AUPRC)", loc="lower left", fontsize=8, title_fontsize=8)
    return _save(fig, dest)


def mr_vs_noise(table: pd.DataFrame, dest: str | os.PathLike,
                title: str = "Retrieval quality vs noise rate") -> Path:
    """Mean recall mR (%) against noise rate, one line per ``method``.

    ``table`` has one row per (method, noise_rate) with columns ``method``, ``noise_rate``
    (a fraction), ``mr``, and optionally ``mr_std`` (drawn as error bars).
    """
    table = _table("table", table, ("method", "noise_rate", "mr"))
    fig, (ax,) = _figure(title)
    _lines_vs_rate(ax, table, "method", "mr", "mr_std" if "mr_std" in table.columns else None)
    ax.set_ylabel("mR (mean of R@1/5/10 both ways, %)")
    ax.legend(title="method", fontsize=8, title_fontsize=8)
    return _save(fig, dest)


def detection_vs_noise(table: pd.DataFrame, dest: str | os.PathLike,
                       title: str = "Noise detection vs noise rate") -> Path:
    """AUROC (and AUPRC, in a second panel when the column exists) against noise rate, one
    line per ``detector``. ``table`` has columns ``detector``, ``noise_rate``, ``auroc`` and
    optionally ``auprc``; points with NaN (e.g. rate 0, one class only) are left out.
    """
    table = _table("table", table, ("detector", "noise_rate", "auroc"))
    panels = [("auroc", "AUROC")] + ([("auprc", "AUPRC")] if "auprc" in table.columns else [])
    fig, axes = _figure(title, ncols=len(panels), width=5.0 if len(panels) > 1 else 6.0)
    rates = np.sort(table["noise_rate"].unique())
    for ax, (column, label) in zip(axes, panels):
        _lines_vs_rate(ax, table, "detector", column, None)
        if column == "auroc":  # chance is 0.5: zoom in above it
            ax.axhline(0.5, color="#888888", linestyle=":", linewidth=1.2, label="chance")
            ax.set_ylim(min(0.45, table[column].min() - 0.03), 1.01)
        else:  # a random score's average precision is the share of noisy pairs
            ax.plot(rates, rates, color="#888888", linestyle=":", linewidth=1.2, label="chance (= noise rate)")
            ax.set_ylim(0, 1.01)
        ax.set_ylabel(label)
        if len(panels) > 1:
            ax.set_title(label)
        ax.legend(title="detector", fontsize=8, title_fontsize=8, loc="lower right")
    return _save(fig, dest)
