"""The optimisers' lazy sparse updates (SGD with Keras's momentum, Adam) against hand-computed or torch's."""

from __future__ import annotations

import torch

from movierec.optim import SGD, Adam


def _embedding_step(emb: torch.nn.Embedding, opt: torch.optim.Optimizer, rows: list[int]) -> None:
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


def test_adam_on_rows_in_every_batch_is_torchs_adam():
    torch.manual_seed(0)
    sparse = torch.nn.Embedding(3, 4, sparse=True)
    dense = torch.nn.Embedding(3, 4, sparse=False)
    dense.load_state_dict(sparse.state_dict())
    ours = Adam(sparse.parameters(), lr=0.05, weight_decay=0.01)
    theirs = torch.optim.Adam(dense.parameters(), lr=0.05, weight_decay=0.01)
    for step in range(5):
        rows = torch.tensor([0, 1, 2, step % 3])  # every row, one of them twice
        for emb, opt in ((sparse, ours), (dense, theirs)):
            opt.zero_grad()
            (emb(rows) ** 2).sum().backward()
            opt.step()
    assert torch.equal(sparse.weight, dense.weight)


def test_adam_leaves_rows_outside_the_batch_and_their_moments_alone():
    emb = torch.nn.Embedding(3, 1, sparse=True)
    torch.nn.init.zeros_(emb.weight)
    opt = Adam(emb.parameters(), lr=0.1)
    _embedding_step(emb, opt, [0, 1])
    moments = opt.state[emb.weight]["exp_avg"].clone(), opt.state[emb.weight]["exp_avg_sq"].clone()
    before = emb.weight.detach().clone()
    _embedding_step(emb, opt, [1])
    assert emb.weight[0] == before[0] and emb.weight[2] == 0  # not in the batch: not moved
    assert opt.state[emb.weight]["exp_avg"][0] == moments[0][0]  # nor decayed
    assert opt.state[emb.weight]["exp_avg_sq"][0] == moments[1][0]
    # Row 1, gradient 1 at steps 1 and 2: m = 0.19, v = 0.001999; with step 2's bias corrections,
    # the move is 0.1 * (0.19 / 0.19) / (sqrt(0.001999 / 0.001999) + 1e-8) = 0.1 each step.
    torch.testing.assert_close(emb.weight[1, 0], torch.tensor(-0.2))


def test_adam_mixes_sparse_and_dense_parameters():
    torch.manual_seed(1)
    emb, lin = torch.nn.Embedding(5, 2, sparse=True), torch.nn.Linear(2, 1)
    lin_ref = torch.nn.Linear(2, 1)
    lin_ref.load_state_dict(lin.state_dict())
    untouched = emb.weight[2].detach().clone()
    ours = Adam([*emb.parameters(), *lin.parameters()], lr=0.01)
    theirs = torch.optim.Adam(lin_ref.parameters(), lr=0.01)
    for rows in ([0, 3], [3, 4], [1]):
        x = emb(torch.tensor(rows))
        ours.zero_grad()
        theirs.zero_grad()
        lin(x).sum().backward()
        lin_ref(x.detach()).sum().backward()
        ours.step()
        theirs.step()
    assert torch.equal(lin.weight, lin_ref.weight) and torch.equal(lin.bias, lin_ref.bias)
    assert emb.weight.grad is not None and emb.weight.grad.is_sparse  # handed back as it came
    assert torch.equal(emb.weight[2], untouched)  # row 2 was never in a batch
