"""Evaluate a saved run (``sims/train.py`` or ``sims/reproduce.py``) on every split of a data source.

Loads the run's ``config.json`` and ``checkpoint.pt`` (the weights after its last finished epoch), rebuilds
its network and prints the error and the loss (the run's own: softmax cross-entropy for ``bp``, the hinge
loss of eq. 4 otherwise) on the training, validation and test splits, with dropout off. The data source
defaults to the run's own, with the run's seed, validation size and training subset, so the numbers equal
the last row of the run's ``metrics.jsonl`` for the validation and test splits. Another source (e.g. a test
set as an image tree ``test/<class>/*.jpg`` that holds no training images) is given with ``--data`` and
``--data-dir``; its number of classes and image shape must match the run's.

    python sims/evaluate.py runs/cpu/runs/simpnet/urfb-s0
    python sims/evaluate.py RUN_DIR --data images --data-dir cifar10-test-jpeg.tar --json errors.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from models.data import DataError, load  # noqa: E402
from models.train import RunDirError, build_network, evaluate, load_config, make_loss  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run directory (config.json, checkpoint.pt)")
    p.add_argument("--data", default=None, help="data set (default: the run's)")
    p.add_argument("--data-dir", default=None, help="folder or archive of the data set (default: the run's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=1000, help="evaluation batch size")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def evaluate_run(run_dir, data=None, data_dir=None, device="cpu", batch_size=1000) -> dict:
    """``{split: {"error", "loss", "n"}}`` of the run's last checkpoint on every non-empty split."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.exists():
        raise RunDirError(f"{ckpt} not found: the run has not finished an epoch yet")
    same_source = data is None and data_dir is None
    ds = load(data or cfg.data, data_dir=data_dir if not same_source else cfg.data_dir,
              val_size=cfg.val_size, seed=cfg.seed, train_subset=cfg.train_subset if same_source else None)
    state = torch.load(ckpt, map_location=device, weights_only=False)
    shape = next(iter(v for v in (ds.x_train, ds.x_test) if v is not None and len(v))).shape[1:]
    net = build_network(cfg, shape, len(ds.classes))
    try:
        net.load_state_dict(state["model"])
    except RuntimeError:
        raise DataError(f"the data set has {len(ds.classes)} classes of images {tuple(shape)}, which the network "
                        f"of {run_dir} was not trained on: evaluate on data of the run's kind") from None
    net.to(device)
    mu = cfg.mu if cfg.mu is not None else 1.0 / (len(ds.classes) - 1)
    loss_fn = make_loss(cfg.rule, mu)
    dtype = getattr(torch, cfg.dtype)
    out = {}
    for split, (x, y) in ds.splits().items():
        if len(y) == 0:
            continue
        xt = torch.as_tensor(x, dtype=dtype).to(device)
        yt = torch.as_tensor(y, dtype=torch.long).to(device)
        loss, err = evaluate(net, xt, yt, loss_fn, batch_size)
        out[split] = {"error": err, "loss": loss, "n": int(len(y))}
    return {"run": str(run_dir), "epoch": state["epoch"], "data": ds.summary(), "splits": out}


def main(argv=None) -> int:
    a = parse_args(argv)
    res = evaluate_run(a.run_dir, a.data, a.data_dir, a.device, a.batch_size)
    print(f"{res['run']} after epoch {res['epoch']} on {res['data']}")
    for split, r in res["splits"].items():
        print(f"  {split:<6} error {100 * r['error']:6.2f}%   loss {r['loss']:.4f}   ({r['n']} images)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


def run() -> int:
    try:
        return main()
    except (DataError, RunDirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
