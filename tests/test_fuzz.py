"""Fuzzing the two parsers of user input (Hypothesis): the network notation and the data files.

Whatever the input (random text, a valid specification with random edits, a valid file of any supported
format truncated or with bytes overwritten), the result is either a normal return or a one-line SpecError /
DataError: never another exception, a traceback, or a hang (each example runs under an alarm)."""
import contextlib
import gzip
import io
import signal
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.data import DataError, load
from models.network import Network
from models.spec import PRESETS, SpecError, parse, resolve
from test_data import cifar_members, idx_bytes, tree_members, write_fashion

# The same 60 examples on every run (derandomize) and no example database written into the checkout; to
# explore further, run with e.g. ``--hypothesis-seed=N`` after removing derandomize.
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def alarm(seconds=20):
    """Fail (instead of hanging) if the block runs longer than ``seconds``."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s: the input made the parser hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def one_line(exc):
    msg = str(exc)
    assert msg and "\n" not in msg, repr(msg)
    return msg


# ------------------------------------------------------------------------------------------ the notation

TOKENS = ["conv", "local", "full", "maxpool", "drop", "sum", "output", "stride", "x", ";", " ", ".", ",",
          "3", "2x2", "3x3", "5x5", "0", "1", "8", "16", ".5", "-1", "1e3", "\t", "\n", "é", "99999999999999999999"]


@st.composite
def mutated_specs(draw):
    """A preset or a small valid network, with a few random edits at the token or character level."""
    base = draw(st.sampled_from(list(PRESETS.values()) + [
        "conv 4 3x3; maxpool 3; full 10; output", "local 2 2x2; conv 2 3x3; sum; drop .3; output",
        "full 8; output", "output"]))
    text = base
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "swap", "cut"]))
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 6)))
        piece = draw(st.sampled_from(TOKENS) | st.text(max_size=3))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "replace":
            text = text[:i] + piece + text[j:]
        elif op == "swap":
            parts = text.split(";")
            a, b = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
            parts[a], parts[b] = parts[b], parts[a]
            text = ";".join(parts)
        else:
            text = text[:i]
    return text


def _parse_or_spec_error(text):
    with alarm():
        try:
            return resolve(text)[1]
        except SpecError as e:
            one_line(e)
            return None


@FAST
@given(st.text(max_size=80) | st.lists(st.sampled_from(TOKENS), max_size=12).map("".join))
def test_random_text_parses_or_gives_a_one_line_spec_error(text):
    _parse_or_spec_error(text)


@FAST
@given(mutated_specs())
def test_mutated_specs_parse_and_build_or_give_a_one_line_spec_error(text):
    layers = _parse_or_spec_error(text)
    if layers is None:
        return
    if any(s.units > 64 or s.kernel > 9 for s in layers):
        return  # valid but large: building it only costs memory
    with alarm():
        try:
            net = Network(text, (3, 9, 9), 4, seed=0)
        except SpecError as e:
            one_line(e)
            return
        out = net(torch.rand(2, 3, 9, 9))
    assert out.shape == (2, 4)


@pytest.mark.parametrize("bad", [None, 3, b"full 3; output", ["output"]])
def test_a_specification_that_is_not_text_is_a_spec_error(bad):
    with pytest.raises(SpecError, match="must be text"):
        resolve(bad)
    with pytest.raises(SpecError):
        parse(bad)


# ------------------------------------------------------------------------------------------ data files

@st.composite
def corrupted(draw, blob: bytes):
    """``blob`` truncated, with a stretch overwritten, with bytes inserted, or with one byte flipped."""
    op = draw(st.sampled_from(["truncate", "overwrite", "insert", "flip"]))
    i = draw(st.integers(0, max(len(blob) - 1, 0)))
    if op == "truncate":
        return blob[:i]
    if op == "flip":
        return blob[:i] + bytes([blob[i] ^ draw(st.integers(1, 255))]) + blob[i + 1:]
    junk = draw(st.binary(min_size=1, max_size=16))
    if op == "insert":
        return blob[:i] + junk + blob[i:]
    return blob[:i] + junk + blob[i + len(junk):]


def _load_or_data_error(name, path, **kw):
    with alarm():
        try:
            return load(name, data_dir=str(path), cache=False, **kw)
        except DataError as e:
            one_line(e)
            return None


def _tmp():
    return tempfile.TemporaryDirectory(prefix="asymhebb-fuzz-")


# Fashion-MNIST: the four IDX files, gzip-compressed; corrupt one file's compressed bytes or its IDX payload
_rng = np.random.default_rng(0)
with tempfile.TemporaryDirectory() as _d:
    write_fashion(Path(_d), _rng, gz=True)
    FASHION = {p.name: p.read_bytes() for p in Path(_d).iterdir()}
FASHION_NAMES = sorted(FASHION)


@FAST
@given(st.sampled_from(FASHION_NAMES), st.booleans(), st.data())
def test_corrupt_fashion_idx_gz_is_a_one_line_data_error(victim, payload, data):
    files = dict(FASHION)
    if payload:  # a well-formed gzip of a corrupt IDX file (wrong magic, sizes, length)
        files[victim] = gzip.compress(data.draw(corrupted(gzip.decompress(files[victim]))))
    else:
        files[victim] = data.draw(corrupted(files[victim]))
    with _tmp() as d:
        for name, blob in files.items():
            (Path(d) / name).write_bytes(blob)
        _load_or_data_error("fashion-mnist", d, val_size=5)


def test_a_pickle_error_spanning_two_lines_is_still_a_one_line_data_error():
    """Found by the fuzzer: a corrupt pickle whose UnpicklingError message has a line break."""
    members = dict(CIFAR_MEMBERS, data_batch_1=CIFAR_MEMBERS["data_batch_1"].replace(b"q\x01X", b"q\x01P", 1))
    with _tmp() as d:
        folder = Path(d) / CIFAR_FOLDER
        folder.mkdir()
        for m, b in members.items():
            (folder / m).write_bytes(b)
        with pytest.raises(DataError, match="persistent") as e:
            load("cifar10", data_dir=str(folder), cache=False, val_size=2)
        one_line(e.value)


def test_idx_payload_that_claims_a_huge_shape_is_refused_quickly():
    files = dict(FASHION)
    x = idx_bytes(np.zeros((2, 2, 2)))
    files["train-images-idx3-ubyte.gz"] = gzip.compress(x[:4] + np.array([2**31 - 1] * 3, ">i4").tobytes())
    with _tmp() as d:
        for name, blob in files.items():
            (Path(d) / name).write_bytes(blob)
        with alarm(10), pytest.raises(DataError):
            load("fashion-mnist", data_dir=d, cache=False, val_size=5)


# CIFAR: the official python archive (tar.gz) and the extracted folder of pickles
CIFAR_MEMBERS, _ = cifar_members(np.random.default_rng(1), "cifar10", n=4)
CIFAR_FOLDER = "cifar-10-batches-py"


def _tar_bytes(members, mode="w:gz"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


CIFAR_TAR = _tar_bytes({f"{CIFAR_FOLDER}/{m}": b for m, b in CIFAR_MEMBERS.items()})


@FAST
@given(st.sampled_from(["compressed", "tar", "pickle"]), st.sampled_from(sorted(CIFAR_MEMBERS)), st.data())
def test_corrupt_cifar_archive_is_a_one_line_data_error(layer, member, data):
    if layer == "compressed":
        blob = data.draw(corrupted(CIFAR_TAR))
    elif layer == "tar":  # a well-formed gzip of a corrupt tar
        blob = gzip.compress(data.draw(corrupted(gzip.decompress(CIFAR_TAR))))
    else:  # a well-formed archive holding one corrupt pickle
        members = dict(CIFAR_MEMBERS, **{member: data.draw(corrupted(CIFAR_MEMBERS[member]))})
        blob = _tar_bytes({f"{CIFAR_FOLDER}/{m}": b for m, b in members.items()})
    with _tmp() as d:
        path = Path(d) / "cifar-10-python.tar.gz"
        path.write_bytes(blob)
        _load_or_data_error("cifar10", path, val_size=2)


@FAST
@given(st.sampled_from(sorted(CIFAR_MEMBERS)), st.data())
def test_corrupt_cifar_folder_is_a_one_line_data_error(member, data):
    with _tmp() as d:
        folder = Path(d) / CIFAR_FOLDER
        folder.mkdir()
        for m, b in CIFAR_MEMBERS.items():
            (folder / m).write_bytes(data.draw(corrupted(b)) if m == member else b)
        _load_or_data_error("cifar10", folder, val_size=2)


# Image trees: a folder of PNG/JPEG files and the same tree as tar / tar.gz / tar.xz
TREE, _ = tree_members(np.random.default_rng(2), {"train": ["a", "b"], "test": ["a", "b"]}, n=2)
TREE_JPEG, _ = tree_members(np.random.default_rng(3), {"train": ["a", "b"]}, fmt="JPEG", n=2)
TREE_TARS = {mode: _tar_bytes(TREE, mode) for mode in ("w", "w:gz", "w:xz")}
SUFFIX = {"w": ".tar", "w:gz": ".tar.gz", "w:xz": ".tar.xz"}


@FAST
@given(st.sampled_from([TREE, TREE_JPEG]), st.data())
def test_corrupt_image_in_a_tree_folder_is_a_one_line_data_error(tree, data):
    victim = data.draw(st.sampled_from(sorted(tree)))
    with _tmp() as d:
        for name, blob in tree.items():
            p = Path(d) / "tree" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data.draw(corrupted(blob)) if name == victim else blob)
        _load_or_data_error("images", Path(d) / "tree", val_size=1)


@FAST
@given(st.sampled_from(sorted(TREE_TARS)), st.data())
def test_corrupt_image_tree_archive_is_a_one_line_data_error(mode, data):
    with _tmp() as d:
        path = Path(d) / ("tree" + SUFFIX[mode])
        path.write_bytes(data.draw(corrupted(TREE_TARS[mode])))
        _load_or_data_error("images", path, val_size=1)
