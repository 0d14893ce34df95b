"""Figures and tables: convergence curves, confusion matrix, predictions and the Table-4 layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in tests
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    title: str = "",
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
    watched: str = "validation",
    selected: Mapping[str, int] | None = None,
) -> Path:
    """Loss and accuracy per epoch, train (solid) and `watched` (dashed), one colour per model.

    The accuracy axis spans 0 to 1, so a flat model looks flat, and `baselines` (majority and
    stratified random, on the watched set) are drawn across it: a curve under the grey lines
    has learned nothing a guess without the image would not do.
    """
    plt = _pyplot()
    fig = curves_figure(histories, title, baselines, watched, selected)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def curves_figure(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    title: str = "",
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
    watched: str = "validation",
    selected: Mapping[str, int] | None = None,
) -> Any:
    """The matplotlib figure behind plot_curves (loss axes first, accuracy second).

    `selected` (model → epoch) marks the epoch kept on validation with a vertical line.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (name, history) in enumerate(histories.items()):
        colour = colours[n % len(colours)]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            epochs = np.arange(1, len(history.get(key, [])) + 1)
            # markers: a one- or two-epoch run would otherwise draw nothing visible
            ax.plot(
                epochs,
                history.get(key, []),
                color=colour,
                marker="o",
                markersize=3,
                label=f"{name} train",
            )
            if history.get(f"val_{key}"):
                ax.plot(
                    epochs,
                    history[f"val_{key}"],
                    color=colour,
                    linestyle="--",
                    marker="o",
                    markersize=3,
                    label=f"{name} {watched}",
                )
        if selected and name in selected:
            for ax in (ax_loss, ax_acc):
                ax.axvline(selected[name], color=colour, alpha=0.4, linewidth=1)
            ax_acc.plot(
                [], [], color=colour, alpha=0.4, label=f"{name} kept: epoch {selected[name]}"
            )
    for kind, style in (("majority", ":"), ("stratified", "-.")):
        if baselines and kind in baselines:
            value = baselines[kind]["accuracy"]
            ax_acc.axhline(
                value, color="grey", linestyle=style, label=f"{kind} baseline {value:.3f}"
            )
    ax_acc.set_ylim(0.0, 1.0)
    ax_loss.set_ylim(bottom=0.0)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(f"model {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Counts with row-normalised shading (true class per row)."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    shade = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    size = 1.2 + 0.9 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                color="white" if shade[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_reliability(
    bins: Sequence[Mapping[str, Any]], ece: float | None, path: str | Path, title: str = ""
) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, counts below."""
    plt = _pyplot()
    fig, (ax, ax_n) = plt.subplots(
        2, 1, figsize=(5.2, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    accs = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
    ax.bar(centres, accs, width=width * 0.9, color="tab:blue", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy in bin")
    ax.set_title(f"{title}\nECE {ece:.3f}" if ece is not None else title, fontsize="small")
    ax.legend(fontsize="small", loc="upper left")
    ax_n.bar(centres, [b["n"] for b in bins], width=width * 0.9, color="tab:grey")
    ax_n.set_xlabel("confidence (top-class probability)")
    ax_n.set_ylabel("items")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def prediction_text(row: Mapping[str, Any]) -> str:
    """Table 4's cell: 'True: k, Predict: k' with class indices, names after."""
    return (
        f"True: {row['true']}, Predict: {row['predicted']} "
        f"({row['true_name']} → {row['predicted_name']})"
    )


def predictions_markdown(
    model: str, rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]
) -> str:
    """predictions.md: the random test items, as Table 4 shows them."""
    lines = [
        f"# {model}: {len(rows)} random test predictions",
        "",
        "Classes: " + ", ".join(f"{k} = {name}" for k, name in enumerate(class_names)),
        "",
        "| # | item | prediction | confidence |",
        "|---|---|---|---|",
    ]
    for n, row in enumerate(rows, 1):
        lines.append(f"| {n} | `{row['id']}` | {prediction_text(row)} | {row['confidence']:.2f} |")
    return "\n".join(lines) + "\n"


def compare_markdown(
    results: Sequence[Mapping[str, Any]],
    title: str,
    class_names: Sequence[str],
    baselines: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """table.md in Table 4's form: model, loss, accuracy, then the same 5 test predictions."""
    n_pred = max((len(r["predictions"]) for r in results), default=0)
    head = [
        "model",
        "test loss",
        "test accuracy (95% CI)",
        "balanced accuracy (95% CI)",
        "macro F1",
        "macro AUROC",
        "ECE",
    ] + [f"prediction {k}" for k in range(1, n_pred + 1)]
    lines = [
        "# " + title.replace("\n", "; "),
        "",
        "Classes: " + ", ".join(f"{k} = {name}" for k, name in enumerate(class_names)),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results:
        ci = r["intervals"]
        cells = [
            r["model"],
            f"{r['test_loss']:.4f}",
            f"{100 * r['test_accuracy']:.2f}% ({_pct(ci['accuracy'])})",
            f"{r['balanced_accuracy']:.3f} ({_span(ci['balanced_accuracy'])})",
            f"{r['macro_f1']:.3f}",
            "–" if r["macro_auroc"] is None else f"{r['macro_auroc']:.3f}",
            "–" if r["ece"] is None else f"{r['ece']:.3f}",
        ]
        cells += [f"True: {p['true']}, Predict: {p['predicted']}" for p in r["predictions"]]
        lines.append("| " + " | ".join(cells) + " |")
    if baselines:
        lines.append("")
        lines.append(baseline_lines(baselines))
    return "\n".join(lines) + "\n"


def baseline_lines(baselines: Mapping[str, Mapping[str, Any]]) -> str:
    """The two image-blind baselines on the same test set, in one markdown paragraph."""
    major, strat = baselines["majority"], baselines["stratified"]
    return (
        f"Baselines on this test set — majority (always {major['predicts']!r}): accuracy "
        f"{100 * major['accuracy']:.2f}%, balanced accuracy {major['balanced_accuracy']:.3f}, "
        f"macro F1 {major['macro_f1']:.3f}; stratified random (train's class shares, "
        f"expected): accuracy {100 * strat['accuracy']:.2f}%, balanced accuracy "
        f"{strat['balanced_accuracy']:.3f}, macro F1 {strat['macro_f1']:.3f}."
    )


def _pct(span: Sequence[float]) -> str:
    return f"{100 * span[0]:.1f}–{100 * span[1]:.1f}%"


def _span(span: Sequence[float]) -> str:
    return f"{span[0]:.3f}–{span[1]:.3f}"
