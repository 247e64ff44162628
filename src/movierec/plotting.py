"""The notebook's figure: training and validation loss by epoch."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402


def loss_plot(history: list[dict], title: str) -> bytes:
    """PNG of train loss (MSE of centred ratings) and validation MSE per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train loss (MSE)")
    val = [(h["epoch"], h["val_rmse"] ** 2) for h in history if h.get("val_rmse") is not None]
    if val:
        ax.plot(*zip(*val, strict=True), marker="o", label="validation MSE")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
