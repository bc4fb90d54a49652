"""Run states of an experiment matrix (models/experiments.py ``run_state``, ``load_results``; docs/experiments.md).

Properties, on run directories written by the trainer itself: a run with fewer epochs than the matrix asks
(one fewer included) is ``partial`` with its epoch count, is not loaded as a result, and is finished by a
resume into ``done``; a finished run is loaded with all its rows; a directory that holds a run of other
settings — any setting that identifies a run, nested circuit settings included — is refused by both, naming
the setting, while the settings that say only where or how long a run computes (device, data path, epochs,
evaluation batch size) are not held against it.
"""
import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from models.data import Dataset
from models.experiments import MatrixError, Run, load_results, run_state
from models.train import RunConfig, train

EPOCHS = 3


def _dataset():
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 3, 3)).astype(np.float32)
    y = (np.arange(20) % 3).astype(np.int64)
    return Dataset("tiny", ["0", "1", "2"], x, y, x[:6], y[:6], None, None)


def _run(seed=0, **kw):
    config = RunConfig(net="full 4; output", rule="urfb", data="digits", epochs=EPOCHS, batch_size=5, lr=0.1,
                       seed=seed, **kw)
    return Run(row="tiny", protocol="urfb", seed=seed, dataset="digits", config=config)


def test_a_run_one_epoch_short_is_partial_not_loaded_and_resumes_to_done(tmp_path):
    ds = _dataset()
    short, whole = _run(0), _run(1)
    assert run_state(short, tmp_path) == ("new", 0)
    train(replace(short.config, epochs=EPOCHS - 1), short.path(tmp_path), dataset=ds)  # stopped one epoch early
    train(whole.config, whole.path(tmp_path), dataset=ds)
    assert run_state(short, tmp_path) == ("partial", EPOCHS - 1)
    assert run_state(whole, tmp_path) == ("done", EPOCHS)
    loaded = load_results([short, whole], tmp_path)
    assert set(loaded) == {whole.key}
    assert [r["epoch"] for r in loaded[whole.key]["metrics"]] == list(range(1, EPOCHS + 1))
    train(short.config, short.path(tmp_path), dataset=ds, resume=True)
    assert run_state(short, tmp_path) == ("done", EPOCHS)
    assert set(load_results([short, whole], tmp_path)) == {short.key, whole.key}


@pytest.mark.parametrize("setting,value", [("lr", 0.05), ("batch_size", 4), ("net", "full 5; output"),
                                           ("rule", "frfb"), ("slope", 1.0), ("train_subset", 10),
                                           ("connectivity", 0.5), ("circuit.M", 20.0), ("circuit.order",
                                                                                         "simultaneous")])
def test_a_run_directory_of_other_settings_is_refused_by_run_state_and_load_results(tmp_path, setting, value):
    run = _run()
    train(run.config, run.path(tmp_path), dataset=_dataset())
    saved = asdict(run.config)
    if setting.startswith("circuit."):
        saved["circuit"][setting.split(".")[1]] = value
    else:
        saved[setting] = value
    (run.path(tmp_path) / "config.json").write_text(json.dumps(saved))
    top = setting.split(".")[0]
    for call in (lambda: run_state(run, tmp_path), lambda: load_results([run], tmp_path)):
        with pytest.raises(MatrixError, match=rf"holds a run with other settings \({top}: ") as e:
            call()
        assert "\n" not in str(e.value)


def test_where_and_how_long_a_run_computes_does_not_make_it_another_run(tmp_path):
    run = _run()
    train(run.config, run.path(tmp_path), dataset=_dataset())
    saved = asdict(replace(run.config, device="cuda", data_dir="/elsewhere", epochs=EPOCHS + 2, eval_batch_size=7,
                           data="images"))
    (run.path(tmp_path) / "config.json").write_text(json.dumps(saved))
    assert run_state(run, tmp_path) == ("done", EPOCHS)
    assert set(load_results([run], tmp_path)) == {run.key}
