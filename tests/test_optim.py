"""The SGD that reproduces Keras's sparse momentum, checked against hand-computed updates."""

from __future__ import annotations

import torch

from movierec.optim import SGD


def _embedding_step(emb: torch.nn.Embedding, opt: SGD, rows: list[int]) -> None:
    opt.zero_grad()
    emb(torch.tensor(rows)).sum().backward()  # gradient 1 per use of each row
    opt.step()


def test_sparse_rows_move_only_when_used_and_keep_their_velocity():
    emb = torch.nn.Embedding(3, 1, sparse=True)
    torch.nn.init.zeros_(emb.weight)
    opt = SGD(emb.parameters(), lr=0.1, momentum=0.9)
    _embedding_step(emb, opt, [0, 0, 1])  # row 0 used twice: its gradients are summed (2)
    assert emb.weight[:, 0].tolist() == torch.tensor([-0.2, -0.1, 0.0]).tolist()
    _embedding_step(emb, opt, [1])
    # Row 0 was not in the batch: no move, velocity kept. Row 1: v = 0.9 * 1 + 1 = 1.9.
    torch.testing.assert_close(emb.weight[:, 0], torch.tensor([-0.2, -0.1 - 0.19, 0.0]))
    _embedding_step(emb, opt, [0])
    # Row 0's velocity decays once, when it is next used: v = 0.9 * 2 + 1 = 2.8.
    torch.testing.assert_close(emb.weight[0, 0], torch.tensor(-0.2 - 0.28))


def test_dense_parameters_get_heavy_ball_momentum():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = SGD([w], lr=0.5, momentum=0.5)
    for _ in range(2):
        opt.zero_grad()
        w.grad = torch.ones(2)
        opt.step()
    # v1 = 1, w = -0.5; v2 = 0.5 + 1 = 1.5, w = -0.5 - 0.75.
    torch.testing.assert_close(w.detach(), torch.full((2,), -1.25))


def test_sparse_and_dense_agree_without_momentum():
    sparse = torch.nn.Embedding(4, 2, sparse=True)
    dense = torch.nn.Embedding(4, 2, sparse=False)
    dense.load_state_dict(sparse.state_dict())
    opts = SGD(sparse.parameters(), lr=0.3), SGD(dense.parameters(), lr=0.3)
    for emb, opt in zip((sparse, dense), opts, strict=True):
        for rows in ([0, 2, 2], [1]):
            _embedding_step(emb, opt, rows)
    torch.testing.assert_close(sparse.weight, dense.weight)
