"""Image data for the experiments of §4: loaders, the validation hold-out, and a cache of decoded arrays.

The paper trains on CIFAR-10 and CIFAR-100 "without any pre-processing of the input data" and tunes on "a
held out validation set of 5000 samples" (§4). This module gives every experiment the same thing:

- ``load(name, ...)`` returns a :class:`Dataset` with ``x`` as float32 arrays ``(N, C, H, W)`` scaled to
  [0, 1] by the pixel range only (pixel / 255; digits' 4-bit intensities / 16) and ``y`` as int64 labels;
- the validation set is a class-stratified hold-out from the training split that depends only on ``seed``
  (so every learning rule of an experiment sees the same split); ``train_subset`` keeps a seeded,
  stratified subset of what remains;
- decoded ``uint8`` arrays are cached as ``.npz`` files keyed by the source files' paths, sizes and mtimes.

Data sets (``name``):

``digits``
    scikit-learn's ``load_digits`` (1,797 8×8 images, ships with the package): the embedded default. It has
    no official test split: a class-stratified test set of 360 images is held out with a fixed seed (the
    same for every ``seed``), then ``val_size`` (default 300) validation images; 1,137 train.
``fashion-mnist``
    the four IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; the default folder is the
    Debian package's (``apt-get install dataset-fashion-mnist``).
``cifar10``, ``cifar100``
    the official "python version" archives ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` or
    their extracted folders ``cifar-10-batches-py`` / ``cifar-100-python`` (CIFAR-100: fine labels).
``images``
    an image tree ``<split>/<class>/*.jpg|*.jpeg|*.png`` (split ``train``, optionally ``test``) as a
    folder or a tar archive (``.tar``, ``.tar.gz``, ``.tar.xz``, ...). Classes are the sorted names of the
    class folders of ``train``. Without ``test/`` the data set has no test split.

The CIFAR archives are Python pickles. They are treated as trusted inputs, and still read defensively:
only the expected archive members are unpickled, by ``pickle.Unpickler(encoding='bytes')`` (as the
official format requires) restricted to the few numpy globals an array needs, so a pickle naming any
other callable is rejected instead of run.

Every failure caused by the input (missing or corrupt file, wrong format, empty tree, inconsistent image
sizes, unknown name, impossible split sizes) raises :class:`DataError` with a one-line message naming the
file or cause and the fix. See ``docs/data.md``.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import importlib
import importlib.util
import io
import lzma
import os
import pickle
import posixpath
import sys
import tarfile
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "images")
DEFAULT_VAL_SIZE = {"digits": 300, "fashion-mnist": 5000, "cifar10": 5000, "cifar100": 5000, "images": 5000}
DIGITS_TEST_SIZE = 360
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_SPLITS = ("train", "test")
CACHE_VERSION = 1  # bump when the decoded arrays of any loader change

# Independent random streams of the splits: (stream, seed) seeds numpy's generator.
_STREAM_VAL, _STREAM_SUBSET, _STREAM_DIGITS_TEST = 0, 1, 2


class DataError(Exception):
    """A data set could not be loaded; the message names the file or cause and the fix.

    Always one line: an embedded message of the underlying error (e.g. an ``UnpicklingError`` spanning two
    lines) is joined into it."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


@dataclass
class Dataset:
    """Train / validation / test arrays of one data set.

    ``x_*``: float32 ``(N, C, H, W)`` in [0, 1]; ``y_*``: int64 class indices into ``classes``.
    ``x_test`` and ``y_test`` are None when the source has no test split.
    """

    name: str
    classes: list
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str = ""

    @property
    def shape(self) -> tuple:
        """``(C, H, W)`` of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def has_test(self) -> bool:
        return self.x_test is not None

    def splits(self) -> dict:
        """``{"train": (x, y), "val": (x, y)[, "test": (x, y)]}``; val may hold 0 images."""
        out = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val)}
        if self.has_test:
            out["test"] = (self.x_test, self.y_test)
        return out

    def summary(self) -> str:
        """One line: name, classes, image shape and split sizes."""
        test = f"test {len(self.y_test)}" if self.has_test else "no test split"
        shape = "x".join(str(d) for d in self.shape)
        src = f" from {self.source}" if self.source else ""
        return (f"{self.name}: {self.num_classes} classes, {shape}; train {len(self.y_train)}, "
                f"val {len(self.y_val)}, {test}{src}")


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------

def load(name: str, *, data_dir=None, val_size: int | None = None, seed: int = 0,
         train_subset: int | None = None, cache_dir=None, cache: bool = True) -> Dataset:
    """Load data set ``name`` (one of ``DATASETS``) and split it.

    data_dir: folder or archive to read (fashion-mnist: default ``FASHION_MNIST_DIR``; cifar10, cifar100,
        images: required; digits: not used).
    val_size: images held out of the training split for validation (default ``DEFAULT_VAL_SIZE[name]``;
        0 allowed), class-stratified, chosen by ``seed`` only.
    train_subset: keep this many of the remaining training images (seeded, class-stratified).
    cache_dir: folder for decoded arrays (default ``$ASYMHEBB_CACHE`` or ``~/.cache/asymhebb``);
        ``cache=False`` neither reads nor writes it.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
           "cifar-100": "cifar100"}.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}: pass --seed 0 or larger")
    if val_size is None:
        val_size = DEFAULT_VAL_SIZE[key]
    _check_count("val_size", val_size, "--val-size")
    if train_subset is not None:
        _check_count("train_subset", train_subset, "--train-subset")
        if train_subset == 0:
            raise DataError("train_subset=0 leaves no training images: pass --train-subset 1 or more")

    if key == "digits":
        if data_dir is not None:
            raise DataError(f"digits ships with scikit-learn and reads no files; drop --data-dir {data_dir}")
        raw = _digits()
    else:
        raw = _cached(key, data_dir, cache_dir if cache else False)

    x, y, scale = raw["x_train"], raw["y_train"], raw["scale"]
    if x is None:  # an image tree with only test/: nothing to train on, everything to evaluate
        empty = np.zeros((0, *raw["x_test"].shape[1:]), np.float32)
        return Dataset(name=key, classes=list(raw["classes"]), x_train=empty, y_train=np.zeros(0, np.int64),
                       x_val=empty, y_val=np.zeros(0, np.int64), x_test=_scale(raw["x_test"], scale),
                       y_test=raw["y_test"].astype(np.int64), source=raw["source"])
    n = len(y)
    if val_size >= n:
        raise DataError(f"val_size={val_size} leaves no training images out of the {n} in the training split "
                        f"of {key}: pass a smaller --val-size")
    keep, held = stratified_split(y, val_size, seed, stream=_STREAM_VAL)
    if train_subset is not None:
        if train_subset > len(keep):
            raise DataError(f"train_subset={train_subset} exceeds the {len(keep)} training images left after "
                            f"holding out {val_size} for validation: pass a smaller --train-subset")
        _, sub = stratified_split(y[keep], train_subset, seed, stream=_STREAM_SUBSET)
        keep = keep[sub]
    has_test = raw.get("x_test") is not None
    return Dataset(
        name=key,
        classes=list(raw["classes"]),
        x_train=_scale(x[keep], scale), y_train=y[keep].astype(np.int64),
        x_val=_scale(x[held], scale), y_val=y[held].astype(np.int64),
        x_test=_scale(raw["x_test"], scale) if has_test else None,
        y_test=raw["y_test"].astype(np.int64) if has_test else None,
        source=raw["source"],
    )


def stratified_split(y, n: int, seed: int, stream: int = _STREAM_VAL):
    """Split indices ``0..len(y)-1`` into ``(keep, held)``, ``len(held) == n``, class-stratified.

    Each class c with ``n_c`` members contributes ``floor(n * n_c / N)`` held indices, and the remaining
    ones go to the classes with the largest remainders (ties: lower class first), so every class's share
    is within one image of proportional. Members are drawn by a permutation per class (sorted class
    order) from ``numpy.random.default_rng([stream, seed])``: the result depends only on ``y``, ``n``,
    ``seed`` and ``stream``. Both index arrays are sorted.
    """
    y = np.asarray(y)
    N = len(y)
    if not 0 <= n <= N:
        raise DataError(f"cannot hold out {n} of {N} examples")
    if n == 0:
        return np.arange(N, dtype=np.int64), np.zeros(0, np.int64)
    classes, counts = np.unique(y, return_counts=True)
    prod = counts.astype(np.int64) * n
    quota, rem = prod // N, prod % N
    extra = n - int(quota.sum())
    order = np.lexsort((np.arange(len(classes)), -rem))  # largest remainder first, then class order
    quota[order[:extra]] += 1
    rng = np.random.default_rng([int(stream), int(seed)])
    held = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota)]
    held = np.sort(np.concatenate(held))
    mask = np.ones(N, bool)
    mask[held] = False
    return np.flatnonzero(mask), held.astype(np.int64)


def _check_count(what, value, flag):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DataError(f"{what} must be a non-negative integer, got {value!r}: fix {flag}")


def _scale(x, scale):
    out = x.astype(np.float32)
    out /= np.float32(scale)
    return out


# --------------------------------------------------------------------------------------------------
# Cache of decoded uint8 arrays
# --------------------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``$ASYMHEBB_CACHE`` if set, else ``~/.cache/asymhebb``."""
    env = os.environ.get("ASYMHEBB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "asymhebb"


def _cached(key, data_dir, cache_dir):
    """Decoded arrays of ``key`` from the cache, or decode the source and write the cache."""
    source, files, decode = _locate(key, data_dir)
    if cache_dir is False:
        return decode()
    stamp = [f"v{CACHE_VERSION}", key] + [f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}"
                                          for f, st in ((f, os.stat(f)) for f in files)]
    stamp = hashlib.sha256("\n".join(stamp).encode()).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{key}-{stamp[:20]}.npz"
    if path.exists():
        raw = _read_cache(path, stamp)
        if raw is not None:
            raw["source"] = source
            return raw
    raw = decode()
    _write_cache(path, stamp, raw)
    return raw


def _read_cache(path, stamp):
    """The cached arrays, or None (with a warning) if the file is unreadable or not for ``stamp``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["stamp"]) != stamp:
                raise ValueError("written for other source files")
            raw = {"x_train": None, "y_train": None, "classes": [str(c) for c in z["classes"]],
                   "scale": int(z["scale"]), "x_test": None, "y_test": None}
            if "x_train" in z.files:
                raw["x_train"], raw["y_train"] = z["x_train"], z["y_train"]
            if "x_test" in z.files:
                raw["x_test"], raw["y_test"] = z["x_test"], z["y_test"]
        for x, y in ((raw["x_train"], raw["y_train"]), (raw["x_test"], raw["y_test"])):
            if x is not None and (x.dtype != np.uint8 or x.ndim != 4 or y.shape != (len(x),)
                                  or y.min(initial=0) < 0 or y.max(initial=0) >= len(raw["classes"])):
                raise ValueError("arrays of the wrong shape or type")
        return raw
    except Exception as e:  # any unreadable cache is only a missed shortcut
        warnings.warn(f"ignoring unreadable cache file {path} ({type(e).__name__}: {e}); rebuilding it",
                      stacklevel=3)
        return None


def _write_cache(path, stamp, raw):
    """Write the arrays atomically (temporary file in the same folder, then ``os.replace``)."""
    arrays = {"stamp": np.array(stamp), "classes": np.array([str(c) for c in raw["classes"]]),
              "scale": np.array(raw["scale"])}
    if raw.get("x_train") is not None:
        arrays["x_train"], arrays["y_train"] = raw["x_train"], raw["y_train"]
    if raw.get("x_test") is not None:
        arrays["x_test"], arrays["y_test"] = raw["x_test"], raw["y_test"]
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is as readable as any download
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the data cache {path} ({e}); set ASYMHEBB_CACHE to a writable folder",
                      stacklevel=3)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _locate(key, data_dir):
    """``(source description, files whose stat keys the cache, decode function)`` for a data set."""
    if key == "fashion-mnist":
        return _locate_fashion(data_dir)
    if key in ("cifar10", "cifar100"):
        return _locate_cifar(key, data_dir)
    return _locate_images(data_dir)


# --------------------------------------------------------------------------------------------------
# digits (scikit-learn)
# --------------------------------------------------------------------------------------------------

def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images).astype(np.uint8)[:, None]  # integer intensities 0..16
    y = d.target.astype(np.int64)
    keep, test = stratified_split(y, DIGITS_TEST_SIZE, 0, stream=_STREAM_DIGITS_TEST)
    return {"x_train": x[keep], "y_train": y[keep], "x_test": x[test], "y_test": y[test],
            "classes": [str(c) for c in range(10)], "scale": 16, "source": "sklearn.datasets.load_digits"}


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------------------------------

_FASHION_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
                  "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _locate_fashion(data_dir):
    folder = Path(data_dir).expanduser() if data_dir is not None else Path(FASHION_MNIST_DIR)
    fix = ("install the files with `apt-get install dataset-fashion-mnist` or pass --data-dir FOLDER"
           if data_dir is None else "pass --data-dir a folder holding the four IDX files")
    if not folder.is_dir():
        raise DataError(f"Fashion-MNIST folder {folder} not found: {fix}")
    files = {}
    for part, stem in _FASHION_FILES.items():
        for cand in (folder / (stem + ".gz"), folder / stem):
            if cand.is_file():
                files[part] = cand
                break
        else:
            raise DataError(f"Fashion-MNIST file {folder / stem}.gz (or uncompressed {stem}) not found: {fix}")

    def decode():
        arr = {part: _read_idx(f) for part, f in files.items()}
        for split in ("train", "test"):
            x, y = arr["x_" + split], arr["y_" + split]
            fx, fy = files["x_" + split], files["y_" + split]
            if x.ndim != 3:
                raise DataError(f"{fx} holds a {x.ndim}-dimensional array, not images (N, H, W): "
                                "replace it with the official idx3 images file")
            if y.ndim != 1 or len(y) != len(x):
                raise DataError(f"{fy} holds labels of shape {y.shape} for the {len(x)} images of {fx}: "
                                "replace the pair with the official files")
            if y.size and y.max() >= len(FASHION_MNIST_CLASSES):
                raise DataError(f"{fy} holds label {int(y.max())}, outside 0..9: replace it with the official file")
        return {"x_train": arr["x_train"][:, None], "y_train": arr["y_train"].astype(np.int64),
                "x_test": arr["x_test"][:, None], "y_test": arr["y_test"].astype(np.int64),
                "classes": list(FASHION_MNIST_CLASSES), "scale": 255, "source": str(folder)}

    return str(folder), list(files.values()), decode


def _read_idx(path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) of unsigned bytes as a uint8 array.

    Format: two zero bytes, type code 0x08 (ubyte), number of dimensions d, d big-endian int32 sizes,
    then exactly prod(sizes) bytes.
    """
    path = Path(path)
    fix = "replace it with the official file"
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is corrupt or truncated ({type(e).__name__}: {e}): {fix}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex() or 'missing'}, "
                        f"expected 00000801 or 00000803): {fix}")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DataError(f"{path} is truncated inside its header: {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    expected = head + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(f"{path} has {len(data)} bytes but its header {dims} needs {expected} "
                        f"({'truncated' if len(data) < expected else 'trailing data'}): {fix}")
    return np.frombuffer(data, np.uint8, offset=head).reshape(dims).copy()


# --------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (official python pickle archives)
# --------------------------------------------------------------------------------------------------

_CIFAR = {
    "cifar10": {"archive": "cifar-10-python.tar.gz", "folder": "cifar-10-batches-py",
                "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
                "meta": "batches.meta", "labels": "labels", "names": "label_names", "C": 10},
    "cifar100": {"archive": "cifar-100-python.tar.gz", "folder": "cifar-100-python",
                 "train": ["train"], "test": ["test"], "meta": "meta",
                 "labels": "fine_labels", "names": "fine_label_names", "C": 100},
}

# The globals a pickled numpy array may name (protocols 2-5, numpy 1.x and 2.x, Python 2 and 3 writers).
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """``pickle.Unpickler(encoding='bytes')`` that resolves only the globals of a numpy array."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of the CIFAR format")
        if module.startswith("numpy.core.") and importlib.util.find_spec("numpy._core") is not None:
            module = "numpy._core." + module[len("numpy.core."):]
        return getattr(importlib.import_module(module), name)


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any failure to parse means the file is not the official format
        raise DataError(f"{where} is not a CIFAR python pickle ({type(e).__name__}: {e}): "
                        "use the official 'python version' archive") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where} holds a {type(obj).__name__}, not the dict of the CIFAR python format: "
                        "use the official 'python version' archive")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _locate_cifar(key, data_dir):
    spec = _CIFAR[key]
    fix = (f"pass --data-dir a folder holding {spec['archive']} or the extracted {spec['folder']}/ "
           "(the official python version from https://www.cs.toronto.edu/~kriz/cifar.html)")
    if data_dir is None:
        raise DataError(f"{key} needs its files: {fix}")
    p = Path(data_dir).expanduser()
    members = spec["train"] + spec["test"] + [spec["meta"]]
    if p.is_dir():
        if all((p / m).is_file() for m in members):
            folder = p
        elif (p / spec["folder"]).is_dir():
            folder = p / spec["folder"]
        elif (p / spec["archive"]).is_file():
            p = p / spec["archive"]
            folder = None
        else:
            raise DataError(f"no {spec['archive']} or {spec['folder']}/ in {p}: {fix}")
    elif p.is_file():
        folder = None
    else:
        raise DataError(f"{p} not found: {fix}")

    if folder is not None:
        for m in members:
            if not (folder / m).is_file():
                raise DataError(f"{folder / m} not found ({spec['folder']}/ is incomplete): "
                                f"extract {spec['archive']} again or {fix}")
        files = [folder / m for m in members]

        def read():
            return {m: (folder / m).read_bytes() for m in members}, str(folder)
    else:
        files = [p]

        def read():
            return _read_tar_members(p, spec["folder"], members, fix), str(p)

    def decode():
        blobs, where = read()
        meta = _unpickle(blobs[spec["meta"]], f"{where}: {spec['meta']}")
        names = meta.get(spec["names"])
        if not isinstance(names, (list, tuple)) or len(names) != spec["C"]:
            raise DataError(f"{where}: {spec['meta']} lacks the {spec['C']} class names '{spec['names']}': "
                            f"use the official {key} archive")
        classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
        out = {"classes": classes, "scale": 255, "source": where}
        for split in ("train", "test"):
            xs, ys = [], []
            for m in spec[split]:
                x, y = _cifar_batch(_unpickle(blobs[m], f"{where}: {m}"), spec, f"{where}: {m}")
                xs.append(x)
                ys.append(y)
            out["x_" + split], out["y_" + split] = np.concatenate(xs), np.concatenate(ys)
        return out

    return str(p if folder is None else folder), files, decode


def _cifar_batch(d, spec, where):
    fix = "use the official 'python version' archive"
    x, y = d.get("data"), d.get(spec["labels"])
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        what = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{where}: 'data' is {what}, not uint8 (N, 3072): {fix}")
    if y is None:
        raise DataError(f"{where}: no '{spec['labels']}' entry: {fix}")
    try:
        y = np.asarray(y, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: '{spec['labels']}' is not a list of integers: {fix}") from None
    if y.shape != (len(x),):
        raise DataError(f"{where}: {y.size} labels for {len(x)} images: {fix}")
    if y.size and (y.min() < 0 or y.max() >= spec["C"]):
        raise DataError(f"{where}: labels outside 0..{spec['C'] - 1}: {fix}")
    return x.reshape(-1, 3, 32, 32), y  # the official rows are the R, G, B planes, each row-major 32x32


class _TarInfo(tarfile.TarInfo):
    """Records on the archive why its member list ended (tarfile ends it silently on a bad header)."""

    @classmethod
    def fromtarfile(cls, tf):
        try:
            return super().fromtarfile(tf)
        except tarfile.HeaderError as e:
            tf.stop_reason = e
            raise


_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


def _iter_tar(path, want, fix):
    """``(name, bytes)`` of each regular member whose normalised name satisfies ``want``, streamed once.

    The archive is plain tar or gzip / bzip2 / xz compressed (told by its magic bytes). A damaged archive
    is an error, not a smaller data set: the member list must end at the tar end-of-archive block (not at
    a truncated or invalid header), and a compressed stream is read to its end-of-stream marker.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        opener = (gzip.open if magic[:2] == b"\x1f\x8b" else bz2.open if magic[:3] == b"BZh"
                  else lzma.open if magic == b"\xfd7zXZ\x00" else open)
        with opener(path, "rb") as raw:
            with tarfile.open(fileobj=raw, mode="r|", tarinfo=_TarInfo) as tf:
                tf.stop_reason = None
                for info in tf:
                    name = posixpath.normpath(info.name)
                    if info.isfile() and want(name):
                        yield name, tf.extractfile(info).read()
                stop = tf.stop_reason
            while raw.read(1 << 20):  # to the end of the (compressed) stream: checks its end marker
                pass
    except _TAR_ERRORS as e:
        raise DataError(f"{path} is not a readable tar archive or is corrupt or truncated "
                        f"({type(e).__name__}: {e}): {fix}") from None
    if type(stop).__name__ != "EOFHeaderError":
        raise DataError(f"{path} is truncated or corrupt after its last readable member ("
                        f"{stop or 'no end-of-archive block'}): download or pack the archive again, or {fix}")


def _read_tar_members(path, folder, members, fix):
    """The bytes of ``folder/<member>`` for each member, streamed once through the archive."""
    wanted = {posixpath.join(folder, m): m for m in members}
    found = {wanted[name]: blob for name, blob in _iter_tar(path, wanted.__contains__, fix)}
    missing = [m for m in members if m not in found]
    if missing:
        raise DataError(f"{path} lacks {posixpath.join(folder, missing[0])}"
                        f"{f' and {len(missing) - 1} more members' if len(missing) > 1 else ''}: {fix}")
    return found


# --------------------------------------------------------------------------------------------------
# Image trees <split>/<class>/*.jpg|png (folder or tar archive)
# --------------------------------------------------------------------------------------------------

def _tree_entry(relpath: str):
    """``(prefix, split, class)`` if ``relpath`` is ``[prefix/]<split>/<class>/<image>``, else None."""
    parts = [p for p in relpath.replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 3 or parts[-3] not in IMAGE_SPLITS or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    return "/".join(parts[:-3]), parts[-3], parts[-2]


def _locate_images(data_dir):
    fix = "pass --data-dir a folder or tar archive laid out as <split>/<class>/*.jpg|*.png"
    if data_dir is None:
        raise DataError(f"the images data set needs its files: {fix}")
    p = Path(data_dir).expanduser()
    if p.is_dir():
        entries = []
        for root, dirs, names in os.walk(p):
            dirs.sort()
            for n in sorted(names):
                rel = os.path.relpath(os.path.join(root, n), p)
                if _tree_entry(rel) is not None:
                    entries.append(rel)
        if not entries:
            raise DataError(f"no images in {p}: expected <split>/<class>/*.jpg|*.png with split train "
                            f"(and optionally test), e.g. train/cat/0001.jpg; {fix}")
        files = [p / e for e in entries]

        def blobs():
            for e in entries:
                yield e.replace(os.sep, "/"), (p / e).read_bytes()
    elif p.is_file():
        files = [p]

        def blobs():
            return _iter_tar(p, lambda name: _tree_entry(name) is not None, fix)
    else:
        raise DataError(f"{p} not found: {fix}")

    return str(p), files, lambda: _decode_tree(blobs(), str(p), fix)


def _decode_tree(blobs, where, fix):
    from PIL import Image, UnidentifiedImageError

    images = {}  # (split, class, name) -> array (H, W) or (H, W, 3)
    prefixes = set()
    first = None
    all_gray = True
    for name, data in blobs:
        prefix, split, cls = _tree_entry(name)
        prefixes.add(prefix)
        if len(prefixes) > 1:
            raise DataError(f"{where} holds more than one image tree ({' and '.join(sorted(prefixes))!r}): "
                            f"{fix}")
        try:
            with Image.open(io.BytesIO(data)) as im:
                gray = im.mode in ("1", "L", "LA", "I", "I;16", "F")
                a = np.asarray(im.convert("L" if gray else "RGB"))
        except UnidentifiedImageError:
            raise DataError(f"{where}: {name} is not a readable JPEG or PNG image: replace or delete the file"
                            ) from None
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{where}: {name} is not a readable image ({type(e).__name__}: {e}): "
                            "replace or delete the file") from None
        all_gray &= gray
        if first is None:
            first = (name, a.shape[:2])
        elif a.shape[:2] != first[1]:
            raise DataError(f"{where}: {name} is {a.shape[0]}x{a.shape[1]} pixels (HxW) but {first[0]} is "
                            f"{first[1][0]}x{first[1][1]}: resize all images to one size")
        images[(split, cls, name)] = a
    if not images:
        raise DataError(f"no images in {where}: expected train/<class>/*.jpg|*.png, "
                        f"e.g. train/cat/0001.jpg; {fix}")
    # A tree with only test/ (e.g. a held-out test set to evaluate a trained run on) takes its classes
    # from the test folders and has an empty training split.
    has_train = any(k[0] == "train" for k in images)
    classes = sorted({cls for split, cls, _ in images if split == ("train" if has_train else "test")})
    index = {c: i for i, c in enumerate(classes)}
    extra = sorted({cls for split, cls, _ in images if split == "test"} - set(classes))
    if extra:
        raise DataError(f"{where}: test class {extra[0]!r} has no folder under train/: "
                        "give every test class training images, or remove it")
    out = {"classes": classes, "scale": 255, "source": where, "x_test": None, "y_test": None,
           "x_train": None, "y_train": None}
    for split in IMAGE_SPLITS:
        keys = sorted(k for k in images if k[0] == split)
        if not keys:
            continue
        arrs = [images.pop(k) for k in keys]
        if all_gray:
            x = np.stack(arrs)[:, None]
        else:
            x = np.stack([a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in arrs])
            x = x.transpose(0, 3, 1, 2)
        out["x_" + split] = np.ascontiguousarray(x)
        out["y_" + split] = np.array([index[k[1]] for k in keys], dtype=np.int64)
    return out


# --------------------------------------------------------------------------------------------------
# Command line: load once and report (python -m models.data NAME [--data-dir ...])
# --------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Load a data set once, print its summary and the load time.")
    ap.add_argument("name", help=" | ".join(DATASETS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--val-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--no-cache", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        ds = load(a.name, data_dir=a.data_dir, val_size=a.val_size, seed=a.seed, train_subset=a.train_subset,
                  cache_dir=a.cache_dir, cache=not a.no_cache)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    print(ds.summary())
    for split in ("train", "val", "test"):
        x = getattr(ds, "x_" + split)
        if x is not None:
            print(f"  x_{split} {x.dtype} {tuple(x.shape)}  range [{x.min(initial=0):.3f}, {x.max(initial=0):.3f}]")
    print(f"loaded in {dt:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
