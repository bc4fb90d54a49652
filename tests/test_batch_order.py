"""The batch order of training (models/train.py ``epoch_order``; docs/training.md).

Properties: every epoch's order is a permutation of the training set that is a function of (seed, epoch) only
— equal for equal pairs whatever PyTorch's global random state, different across epochs and across seeds
(also for the pairs (s, e + 1) and (s + 1, e)), and drawn without touching that global state (the dropout
masks' stream); ``train`` presents the examples of epoch e in exactly that order, in batches of
``batch_size`` with a shorter last one, every example exactly once per epoch, and a resumed run presents the
same batches as an uninterrupted one.
"""
import numpy as np
import torch

from models.data import Dataset
from models.train import RunConfig, epoch_order, train

N, CLASSES, BATCH = 23, 3, 5  # 23 = 4 batches of 5 and one of 3


def test_epoch_order_is_a_permutation_of_seed_and_epoch():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    orders = {(s, e): epoch_order(N, s, e) for s in range(4) for e in range(4)}
    assert torch.equal(torch.get_rng_state(), before)  # the global stream (dropout's) is untouched
    torch.manual_seed(123)  # another global state: the same orders
    for (s, e), o in orders.items():
        assert o.dtype == torch.int64 and sorted(o.tolist()) == list(range(N)), (s, e)
        assert torch.equal(o, epoch_order(N, s, e)), (s, e)
    # 16 pairs, 16 different permutations: across epochs, across seeds, and (s, e+1) is not (s+1, e)
    assert len({tuple(o.tolist()) for o in orders.values()}) == len(orders)
    assert sorted(epoch_order(1, 5, 2).tolist()) == [0]


def _dataset():
    """Training image i holds the number i in its first pixel, so that a batch names its examples."""
    x = np.zeros((N, 1, 2, 2), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(N)
    y = (np.arange(N) % CLASSES).astype(np.int64)
    xv = np.zeros((6, 1, 2, 2), dtype=np.float32)
    yv = (np.arange(6) % CLASSES).astype(np.int64)
    return Dataset("ids", [str(c) for c in range(CLASSES)], x, y, xv, yv, None, None)


def _recording(batches):
    def step(net, x, y, loss_fn, lr, decay):
        batches.append(x[:, 0, 0, 0].round().long().tolist())
        return torch.zeros((), dtype=torch.float64), torch.zeros((len(y), CLASSES))
    return step


def _config(**kw):
    return RunConfig(**{**dict(net="full 3; output", data="ids", epochs=3, batch_size=BATCH, lr=0.1, seed=7), **kw})


def _per_epoch(batches):
    per = len(range(0, N, BATCH))
    return [sum(batches[e * per:(e + 1) * per], []) for e in range(len(batches) // per)], per


def test_train_presents_each_epoch_in_its_order_every_example_once(tmp_path):
    """Epoch e's batches, in order, are epoch_order(n, seed, e) cut into batch_size pieces (the last one
    shorter); a run of another seed sees other orders; a run stopped after 2 epochs and resumed to 3 presents
    in epoch 3 the batches of the uninterrupted run's epoch 3."""
    ds = _dataset()
    batches = []
    train(_config(), dataset=ds, step=_recording(batches))
    epochs, per = _per_epoch(batches)
    assert [len(b) for b in batches[:per]] == [5, 5, 5, 5, 3]
    assert len(epochs) == 3
    for e, ids in enumerate(epochs):
        assert sorted(ids) == list(range(N)), e  # every example exactly once
        assert ids == epoch_order(N, 7, e).tolist(), e
    other = []
    train(_config(seed=8), dataset=ds, step=_recording(other))
    assert _per_epoch(other)[0] != epochs
    first, rest = [], []
    train(_config(epochs=2), tmp_path / "run", dataset=ds, step=_recording(first))
    train(_config(epochs=3), tmp_path / "run", dataset=ds, step=_recording(rest), resume=True)
    assert first + rest == batches
