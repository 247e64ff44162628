"""Optimisers, chosen by name from the training config.

``sgd`` follows TensorFlow 2.0's Keras SGD, which the original notebook ran: dense
gradients get the usual momentum update, while sparse (embedding) gradients update only
the rows in the batch: a row's velocity decays and moves it only when the row is used.
PyTorch's own SGD would turn a sparse gradient's momentum dense, moving every row of
the table at every step; that changes the model's results, not only its speed.

``adam`` is lazy the same way for sparse gradients (as ``torch.optim.SparseAdam`` and
TensorFlow's LazyAdam): a row's moments decay only when the row is in the batch. Dense
Adam would rewrite every row of every table at every step, 10.6M parameters for an
ML-20M-sized ``mf``: 179 s an epoch on 2 cores, against 20 s lazily, with the same
accuracy on ml-latest-small (bench/NOTES.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from movierec.errors import ConfigError

OPTIMIZERS = ("sgd", "adam")


class SGD(torch.optim.Optimizer):
    """SGD with momentum; sparse gradients update (and decay the velocity of) their rows only.

    Update, per touched row (all rows for dense gradients):
    ``v = momentum * v + g``; ``w = w - lr * v`` (Keras's ``v = m v - lr g; w += v`` for a constant lr).
    Repeated rows in a batch are summed first, as Keras did.
    """

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    self._sparse_step(p, p.grad.coalesce(), lr, m, wd)
                    continue
                g = p.grad if wd == 0 else p.grad + wd * p
                if m:
                    buf = self.state[p].get("momentum")
                    if buf is None:
                        buf = self.state[p]["momentum"] = torch.zeros_like(p)
                    buf.mul_(m).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
        return None

    def _sparse_step(self, p: Tensor, grad: Tensor, lr: float, m: float, wd: float) -> None:
        rows, g = grad.indices()[0], grad.values()
        if wd:
            g = g + wd * p[rows]
        if m:
            buf = self.state[p].get("momentum")
            if buf is None:
                buf = self.state[p]["momentum"] = torch.zeros_like(p)
            v = buf[rows].mul_(m).add_(g)
            buf[rows] = v
            g = v
        # The rows are unique (coalesced): a gather and a scatter. index_add_ would loop over the
        # rows one small op at a time on CPU (157 us a step at batch 1024, against 15 us).
        p[rows] = p[rows] - lr * g


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` for dense gradients; sparse gradients update their rows' moments only.

    Per touched row, with the parameter's step count t (every step that gave it a gradient):
    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``w = w - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``, torch's own formula.
    Repeated rows in a batch are summed first.
    """

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        sparse: list[Tensor] = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    self._sparse_step(p, p.grad.coalesce(), group)
                    sparse.append(p)
        # The dense ones go to torch's Adam, which must not see the sparse gradients.
        grads = [p.grad for p in sparse]
        for p in sparse:
            p.grad = None
        super().step(closure)
        for p, g in zip(sparse, grads, strict=True):
            p.grad = g
        return None

    def _sparse_step(self, p: Tensor, grad: Tensor, group: dict) -> None:
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = float(state["step"])
        rows, g = grad.indices()[0], grad.values()
        if wd:
            g = g + wd * p[rows]
        # Gathers and scatters of the (unique) rows (index_add_ would loop over them on CPU),
        # each step written as torch's Adam writes it, so a table whose every row is in every
        # batch moves exactly as under torch's Adam.
        m = state["exp_avg"][rows].lerp_(g, 1 - b1)
        v = state["exp_avg_sq"][rows].mul_(b2).addcmul_(g, g, value=1 - b2)
        state["exp_avg"][rows] = m
        state["exp_avg_sq"][rows] = v
        denom = (v.sqrt_() / (1 - b2**t) ** 0.5).add_(eps)
        p[rows] = p[rows].addcdiv_(m, denom, value=-lr / (1 - b1**t))


def make_optimizer(name: str, params: list[Tensor], lr: float, momentum: float, weight_decay: float):
    """The optimiser called ``name`` over ``params``."""
    if name == "sgd":
        return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
