"""``curves.png`` (loss and accuracy per epoch) and ``confusion.png`` as PNG bytes (matplotlib, Agg)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from contracts import EpochMetrics  # noqa: E402


def curves_png(history: Sequence[EpochMetrics]) -> bytes:
    """Two panels: cross-entropy and accuracy per epoch, training and (if any) validation."""
    epochs = [m.epoch for m in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, title in ((ax_loss, "loss", "cross-entropy"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [getattr(m, f"train_{key}") for m in history], "o-", label="train")
        val = [getattr(m, f"val_{key}") for m in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "o-", label="validation")
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    """Confusion matrix with counts in the cells (labels shown up to 30 classes)."""
    counts = confusion_matrix(y_true, y_pred, len(labels))
    size = min(3 + 0.45 * len(labels), 14)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    if len(labels) <= 30:
        ticks = np.arange(len(labels))
        ax.set_xticks(ticks, labels, rotation=90 if max(map(len, labels)) > 2 else 0)
        ax.set_yticks(ticks, labels)
        limit = counts.max() / 2
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > limit else "black")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set(xlabel="predicted", ylabel="true", title=f"{title} (accuracy {accuracy:.2%})")
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
