"""The notebook's figure: training and validation loss by epoch (or, for one-pass fits, the figures).

Both curves are mean squared errors, as the notebook plotted them: the training loss
is the MSE of centred ratings (plus the model's penalty) and validation is RMSE squared.
A fit that makes one pass (closed-form models, rankers) has no curve, so the figure
shows its figures as bars instead of two lonely dots.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from movierec.training import Epoch


def loss_plot(history: list[Epoch], title: str, metrics: dict | None = None) -> bytes:
    """PNG of train loss and validation MSE per epoch; bars of the run's figures when there is no curve."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    curve = [h for h in history if h.train_loss is not None]
    if len(curve) >= 2:
        losses = [(h.epoch, h.train_loss) for h in history if h.train_loss is not None]
        ax.plot(*zip(*losses, strict=True), marker="o", label="train loss (MSE)")
        val = [(h.epoch, h.val_rmse**2) for h in history if h.val_rmse is not None]
        if val:
            ax.plot(*zip(*val, strict=True), marker="o", label="validation MSE")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean squared error")
        ax.grid(alpha=0.3)
        ax.legend()
    else:
        _bars(ax, _figures(curve, metrics or {}))
        title = f"{title} (one pass: no curve)"
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _figures(curve: list[Epoch], metrics: dict) -> list[tuple[str, float]]:
    """The figures a one-pass run has: its errors as MSE, else its lists' ranking metrics."""
    out: list[tuple[str, float]] = []
    if curve:
        last = curve[-1]
        if last.train_loss is not None:
            out.append(("train MSE", last.train_loss))
        if last.val_rmse is not None:
            out.append(("validation MSE", last.val_rmse**2))
    for key, label in (("test_rmse", "test MSE"), ("baseline_rmse", "baseline test MSE")):
        if metrics.get(key) is not None:
            out.append((label, metrics[key] ** 2))
    if not out:
        for key, label in (("ranking", "NDCG@10, these lists"), ("ranking_popular", "NDCG@10, most popular")):
            if metrics.get(key):
                out.append((label, metrics[key]["ndcg"]))
    return out


def _bars(ax, figures: list[tuple[str, float]]) -> None:  # noqa: ANN001
    labels = [name for name, _ in figures]
    values = [value for _, value in figures]
    bars = ax.barh(labels[::-1], values[::-1], color="#1f5fbf")
    for bar, value in zip(bars, values[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.4f}", va="center")
    ax.set_xlim(0, max(values, default=1.0) * 1.25 or 1.0)
    ax.grid(alpha=0.3, axis="x")
