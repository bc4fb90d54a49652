"""Data loaders (models/data.py): formats, pixel/255 scaling, the seeded stratified hold-out, the cache,
and one-line DataErrors for bad input. Every file is generated here in its official format; nothing is
downloaded and no machine-specific data is read (digits ships with scikit-learn)."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from models import data
from models.data import DataError, load, stratified_split


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Never touch the user's cache: the default cache folder is a fresh temporary one."""
    monkeypatch.setenv("ASYMHEBB_CACHE", str(tmp_path / "default-cache"))


def raises_one_line(match, fn, *args, **kw):
    """Call fn, expect a DataError whose single-line message matches every regex in ``match``."""
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    for m in ([match] if isinstance(match, str) else match):
        assert __import__("re").search(m, msg), (m, msg)
    return msg


# ------------------------------------------------------------------------------------- generators

def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, np.uint8)
    head = magic if magic is not None else bytes([0, 0, 8, arr.ndim])
    return head + np.array(arr.shape, ">i4").tobytes() + arr.tobytes()


def write_fashion(folder, rng, n_train=30, n_test=20, hw=(7, 5), gz=True):
    """Four IDX files; returns the raw arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrs = {"x_train": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
            "y_train": np.arange(n_train, dtype=np.uint8) % 10,
            "x_test": rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for part, stem in data._FASHION_FILES.items():
        b = idx_bytes(arrs[part])
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(b))
        else:
            (folder / stem).write_bytes(b)
    return arrs


def py2_pickle(obj):
    """A protocol-2 pickle naming numpy's arrays as the official (Python 2, numpy 1) files do."""
    return pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def cifar_members(rng, which, n=6):
    """{member name: pickle bytes} of a small archive of the official layout, and the raw arrays."""
    spec = data._CIFAR[which]
    C = spec["C"]
    members, raw = {}, {"train": [], "test": []}
    for split in ("train", "test"):
        for m in spec[split]:
            x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            y = [int(v) for v in rng.integers(0, C, n)]
            d = {b"batch_label": m.encode(), b"data": x, spec["labels"].encode(): y,
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
            if which == "cifar100":
                d[b"coarse_labels"] = [v // 5 for v in y]
            members[m] = py2_pickle(d)
            raw[split].append((x, np.array(y)))
    names = [f"class{c:03d}".encode() for c in range(C)]
    meta = {spec["names"].encode(): names}
    if which == "cifar10":
        meta[b"num_cases_per_batch"] = n
    else:
        meta[b"coarse_label_names"] = [f"super{c}".encode() for c in range(20)]
    members[spec["meta"]] = py2_pickle(meta)
    return members, raw


def write_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as tf:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))


def write_cifar(tmp_path, rng, which, archive=True, n=6):
    spec = data._CIFAR[which]
    members, raw = cifar_members(rng, which, n)
    if archive:
        path = tmp_path / spec["archive"]
        write_tar(path, {f"{spec['folder']}/{m}": b for m, b in members.items()})
    else:
        path = tmp_path / spec["folder"]
        path.mkdir()
        for m, b in members.items():
            (path / m).write_bytes(b)
    return path, raw


def png_bytes(a, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def tree_members(rng, splits, hw=(6, 4), fmt="PNG", gray=False, n=3):
    """{relative path: image bytes} for ``splits`` = {split: [class, ...]}, and the raw arrays by path."""
    members, raw = {}, {}
    ext = ".png" if fmt == "PNG" else ".jpg"
    for split, classes in splits.items():
        for cls in classes:
            for i in range(n):
                shape = hw if gray else (*hw, 3)
                if fmt == "JPEG":  # flat colours survive JPEG almost exactly
                    a = np.broadcast_to(rng.integers(30, 220, shape[2:] or (1,), dtype=np.uint8), shape).copy()
                    a = a.reshape(shape)
                else:
                    a = rng.integers(0, 256, shape, dtype=np.uint8)
                name = f"{split}/{cls}/{i:04d}{ext}"
                members[name] = png_bytes(a, fmt)
                raw[name] = a
    return members, raw


def write_tree(root, members):
    for name, blob in members.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)
    return root


# ------------------------------------------------------------------------------------------ digits

def test_digits_shapes_scaling_and_fixed_test_split():
    ds = load("digits")
    assert ds.shape == (1, 8, 8) and ds.num_classes == 10 and ds.classes == [str(i) for i in range(10)]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1797 - 360 - 300, 300, 360)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.all(np.isin(np.round(x * 16), np.arange(17)))  # intensities 0..16 divided by 16
    # the test split does not move with the seed; the validation split does
    other = load("digits", seed=1)
    assert np.array_equal(ds.x_test, other.x_test) and np.array_equal(ds.y_test, other.y_test)
    assert not np.array_equal(ds.x_val, other.x_val)
    # together the three splits are exactly scikit-learn's 1,797 images
    from sklearn.datasets import load_digits
    d = load_digits()
    allx = np.concatenate([ds.x_train, ds.x_val, ds.x_test]).reshape(-1, 64)
    ref = (d.images.reshape(-1, 64) / 16).astype(np.float32)
    order = lambda a: np.lexsort(a.T[::-1])  # noqa: E731
    assert np.array_equal(allx[order(allx)], ref[order(ref)])
    assert "digits: 10 classes, 1x8x8; train 1137, val 300, test 360" in ds.summary()


# ------------------------------------------------------------------------------- stratified split

def test_stratified_split_is_proportional_partition_and_seeded():
    y = np.repeat(np.arange(4), [3, 3, 4, 90])
    rng = np.random.default_rng(5)
    y = y[rng.permutation(len(y))]
    for n in (0, 1, 5, 17, 50, 99):
        keep, held = stratified_split(y, n, seed=3)
        assert len(held) == n and len(keep) + n == len(y)
        assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(len(y)))
        for c in range(4):
            share = n * np.sum(y == c) / len(y)
            assert abs(np.sum(y[held] == c) - share) < 1  # within one image of proportional
    a = stratified_split(y, 17, seed=3)[1]
    assert np.array_equal(a, stratified_split(y, 17, seed=3)[1])
    assert not np.array_equal(a, stratified_split(y, 17, seed=4)[1])
    # largest remainders: counts (3, 3, 4) and n = 5 give exact shares 1.5, 1.5, 2 -> (2, 1, 2)
    y = np.repeat(np.arange(3), [3, 3, 4])
    held = stratified_split(y, 5, seed=0)[1]
    assert np.bincount(y[held]).tolist() == [2, 1, 2]


# ----------------------------------------------------------------------------------- fashion-mnist

@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files_gzip_and_plain(tmp_path, gz):
    raw = write_fashion(tmp_path / "fm", np.random.default_rng(0), gz=gz)
    ds = load("fashion-mnist", data_dir=tmp_path / "fm", val_size=10, cache=False)
    assert ds.classes == data.FASHION_MNIST_CLASSES and ds.shape == (1, 7, 5)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (20, 10, 20)
    assert ds.x_test.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert np.array_equal(ds.x_test[:, 0], raw["x_test"].astype(np.float32) / np.float32(255))
    assert np.array_equal(ds.y_test, raw["y_test"])
    keep, held = stratified_split(raw["y_train"], 10, seed=0)
    assert np.array_equal(ds.x_val[:, 0] * 255, raw["x_train"][held].astype(np.float32))
    assert np.array_equal(ds.y_train, raw["y_train"][keep])
    assert np.bincount(ds.y_val, minlength=10).tolist() == [1] * 10  # 3 per class -> 1 per class held out


def test_fashion_mnist_default_folder_missing_names_apt_and_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    raises_one_line([r"nowhere", r"apt-get install dataset-fashion-mnist", r"--data-dir"], load, "fashion-mnist")


def test_fashion_mnist_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "fm"
    write_fashion(folder, rng)
    img = folder / "train-images-idx3-ubyte.gz"
    lab = folder / "train-labels-idx1-ubyte.gz"
    good_img, good_lab = img.read_bytes(), lab.read_bytes()
    L = dict(data_dir=folder, val_size=10, cache=False)

    (folder / "t10k-labels-idx1-ubyte.gz").rename(folder / "elsewhere.gz")
    raises_one_line([r"t10k-labels-idx1-ubyte", "not found", "--data-dir"], load, "fashion-mnist", **L)
    (folder / "elsewhere.gz").rename(folder / "t10k-labels-idx1-ubyte.gz")

    x = rng.integers(0, 256, (30, 7, 5), dtype=np.uint8)
    img.write_bytes(gzip.compress(idx_bytes(x, magic=b"\x00\x00\x0d\x03")))  # float type code
    raises_one_line([r"train-images-idx3-ubyte\.gz", "not an IDX", "magic 00000d03", "official"],
                    load, "fashion-mnist", **L)
    img.write_bytes(gzip.compress(idx_bytes(x)[:-7]))  # 7 bytes short
    raises_one_line([r"train-images-idx3-ubyte\.gz", "truncated", "official"], load, "fashion-mnist", **L)
    img.write_bytes(good_img[: len(good_img) // 2])  # truncated gzip stream
    raises_one_line([r"train-images-idx3-ubyte\.gz", "corrupt or truncated"], load, "fashion-mnist", **L)
    img.write_bytes(good_img)

    lab.write_bytes(gzip.compress(idx_bytes(np.zeros(29, np.uint8))))
    raises_one_line([r"train-labels-idx1-ubyte\.gz", "29", "30 images"], load, "fashion-mnist", **L)
    lab.write_bytes(gzip.compress(idx_bytes(np.full(30, 10, np.uint8))))
    raises_one_line([r"train-labels-idx1-ubyte\.gz", "label 10"], load, "fashion-mnist", **L)
    lab.write_bytes(good_lab)
    assert load("fashion-mnist", **L).x_train.shape == (20, 1, 7, 5)


# ---------------------------------------------------------------------------------------- CIFAR

@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_cifar_archive_and_folder_give_the_official_arrays(tmp_path, which):
    rng = np.random.default_rng(2)
    spec = data._CIFAR[which]
    (tmp_path / "a").mkdir()
    arch, raw = write_cifar(tmp_path / "a", rng, which, archive=True)
    (tmp_path / "b").mkdir()
    folder = tmp_path / "b" / spec["folder"]
    folder.mkdir()
    with tarfile.open(arch) as tf:
        for m in tf.getmembers():
            (folder / os.path.basename(m.name)).write_bytes(tf.extractfile(m).read())
    n_train = 6 * len(spec["train"])
    xs = np.concatenate([x for x, _ in raw["train"]]).reshape(-1, 3, 32, 32)
    ys = np.concatenate([y for _, y in raw["train"]])
    loaded = []
    # the archive itself, the folder holding it, the extracted folder, and the folder holding that
    for where in (arch, tmp_path / "a", folder, tmp_path / "b"):
        ds = load(which, data_dir=where, val_size=2, cache=False)
        assert ds.classes == [f"class{c:03d}" for c in range(spec["C"])] and ds.shape == (3, 32, 32)
        assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (n_train - 2, 2, 6)
        x_test, y_test = raw["test"][0]
        assert np.array_equal(ds.x_test, x_test.reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255))
        assert np.array_equal(ds.y_test, y_test) and ds.y_test.dtype == np.int64
        keep, held = stratified_split(ys, 2, seed=0)
        assert np.array_equal(ds.x_train * 255, xs[keep].astype(np.float32))
        assert np.array_equal(ds.y_val, ys[held])
        loaded.append(ds)
    # channel planes: the first 1024 values of a row are the red plane
    assert np.array_equal(loaded[0].x_test[0, 0].ravel() * 255, raw["test"][0][0][0, :1024].astype(np.float32))


def test_cifar_bad_input(tmp_path):
    rng = np.random.default_rng(3)
    raises_one_line(["cifar10 needs its files", "--data-dir", "cifar-10-python.tar.gz"], load, "cifar10")
    raises_one_line([r"missing", "not found", "--data-dir"], load, "cifar10", data_dir=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    raises_one_line([r"no cifar-100-python.tar.gz or cifar-100-python/", "--data-dir"],
                    load, "cifar100", data_dir=tmp_path / "empty")

    members, _ = cifar_members(rng, "cifar10")
    prefix = "cifar-10-batches-py/"
    L = dict(val_size=2, cache=False)

    arch = tmp_path / "c10.tar.gz"
    write_tar(arch, {prefix + m: b for m, b in members.items() if m != "data_batch_3"})
    raises_one_line([r"c10\.tar\.gz lacks cifar-10-batches-py/data_batch_3"], load, "cifar10", data_dir=arch, **L)

    write_tar(arch, {prefix + m: b for m, b in members.items()})
    blob = arch.read_bytes()
    arch.write_bytes(blob[: len(blob) // 2])
    raises_one_line([r"c10\.tar\.gz", "corrupt or truncated|not a readable tar"], load, "cifar10", data_dir=arch, **L)
    arch.write_bytes(b"this is not an archive at all")
    raises_one_line([r"c10\.tar\.gz", "not a readable tar"], load, "cifar10", data_dir=arch, **L)

    folder = tmp_path / "x" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for m, b in members.items():
        (folder / m).write_bytes(b)
    (folder / "test_batch").unlink()
    raises_one_line([r"test_batch not found", "incomplete"], load, "cifar10", data_dir=folder.parent, **L)

    def with_test(blob):
        (folder / "test_batch").write_bytes(blob)
        return folder

    raises_one_line([r"test_batch", "'data' is NoneType"], load, "cifar10",
                    data_dir=with_test(py2_pickle({b"labels": [1]})), **L)
    raises_one_line([r"test_batch", "not uint8 \\(N, 3072\\)"], load, "cifar10",
                    data_dir=with_test(py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]})), **L)
    raises_one_line([r"test_batch", "3 labels for 2 images"], load, "cifar10",
                    data_dir=with_test(py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2, 3]})),
                    **L)
    raises_one_line([r"test_batch", "labels outside 0..9"], load, "cifar10",
                    data_dir=with_test(py2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]})),
                    **L)
    raises_one_line([r"test_batch", "holds a list"], load, "cifar10", data_dir=with_test(py2_pickle([1, 2])), **L)
    raises_one_line([r"test_batch", "not a CIFAR python pickle"], load, "cifar10",
                    data_dir=with_test(b"\x80\x02garbage"), **L)
    (folder / "batches.meta").write_bytes(py2_pickle({b"label_names": [b"a", b"b"]}))
    with_test(members["test_batch"])
    raises_one_line([r"batches\.meta", "10 class names"], load, "cifar10", data_dir=folder, **L)


class _Payload:
    """A pickle that would create a folder when loaded by an unrestricted unpickler."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_cifar_pickle_naming_other_callables_is_rejected_not_run(tmp_path):
    members, _ = cifar_members(np.random.default_rng(4), "cifar10")
    target = tmp_path / "created-by-pickle"
    members["data_batch_1"] = pickle.dumps({b"data": _Payload(str(target)), b"labels": []}, protocol=2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for m, b in members.items():
        (folder / m).write_bytes(b)
    raises_one_line([r"data_batch_1", "global posix.mkdir|global os.mkdir", "not part of the CIFAR format"],
                    load, "cifar10", data_dir=folder, val_size=2, cache=False)
    assert not target.exists()


def test_cifar_pickles_of_modern_protocols_load(tmp_path):
    """Re-packaged archives written by Python 3 / numpy 2 (protocols 4 and 5) load like the originals."""
    rng = np.random.default_rng(5)
    members, raw = cifar_members(rng, "cifar10")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, (m, b) in enumerate(members.items()):
        obj = pickle.loads(b, encoding="bytes")
        (folder / m).write_bytes(pickle.dumps(obj, protocol=4 + i % 2))
    ds = load("cifar10", data_dir=folder, val_size=0, cache=False)
    assert np.array_equal(ds.x_test * 255, raw["test"][0][0].reshape(-1, 3, 32, 32).astype(np.float32))
    assert len(ds.y_val) == 0 and ds.x_val.shape == (0, 3, 32, 32)


# ----------------------------------------------------------------------------------- image trees

def test_image_tree_folder_png_exact_values_and_sorted_classes(tmp_path):
    rng = np.random.default_rng(6)
    members, raw = tree_members(rng, {"train": ["zebra", "ant", "moth"], "test": ["moth", "ant"]}, n=4)
    root = write_tree(tmp_path / "tree", members)
    (root / "train" / "ant" / "notes.txt").write_text("ignored")
    ds = load("images", data_dir=root, val_size=3, cache=False)
    assert ds.classes == ["ant", "moth", "zebra"] and ds.shape == (3, 6, 4)
    names = sorted(n for n in raw if n.startswith("train/"))  # class order, then file name order
    y = np.array([ds.classes.index(n.split("/")[1]) for n in names])
    x = np.stack([raw[n] for n in names]).transpose(0, 3, 1, 2)
    keep, held = stratified_split(y, 3, seed=0)
    assert np.array_equal(ds.x_train, x[keep].astype(np.float32) / np.float32(255))
    assert np.array_equal(ds.y_train, y[keep]) and np.array_equal(ds.y_val, y[held])
    assert sorted(ds.y_val.tolist()) == [0, 1, 2]
    tnames = sorted(n for n in raw if n.startswith("test/"))
    assert ds.y_test.tolist() == [ds.classes.index(n.split("/")[1]) for n in tnames]
    assert np.array_equal(ds.x_test * 255, np.stack([raw[n] for n in tnames]).transpose(0, 3, 1, 2).astype(np.float32))


def test_image_tree_tar_xz_jpeg_train_only_has_no_test_split(tmp_path):
    rng = np.random.default_rng(7)
    members, raw = tree_members(rng, {"train": ["b", "a"]}, hw=(8, 8), fmt="JPEG", n=5)
    arch = tmp_path / "imgs.tar.xz"
    write_tar(arch, {"mydata/" + k: v for k, v in members.items()}, mode="w:xz")  # one wrapper folder
    ds = load("images", data_dir=arch, val_size=2, cache=False)
    assert ds.x_test is None and ds.y_test is None and not ds.has_test and "no test split" in ds.summary()
    assert list(ds.splits()) == ["train", "val"] and ds.splits()["val"][1] is ds.y_val
    assert ds.classes == ["a", "b"] and ds.shape == (3, 8, 8)
    assert (len(ds.y_train), len(ds.y_val)) == (8, 2) and ds.x_train.dtype == np.float32
    names = sorted(raw)
    x = np.stack([raw[n] for n in names]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    keep, _ = stratified_split(np.repeat([0, 1], 5), 2, seed=0)
    assert np.abs(ds.x_train - x[keep]).max() <= 3 / 255  # flat colours: JPEG is nearly lossless


def test_image_tree_grayscale_gives_one_channel_and_mixed_gives_three(tmp_path):
    rng = np.random.default_rng(8)
    members, raw = tree_members(rng, {"train": ["p", "q"]}, gray=True)
    root = write_tree(tmp_path / "g", members)
    ds = load("images", data_dir=root, val_size=0, cache=False)
    assert ds.shape == (1, 6, 4)
    assert np.array_equal(ds.x_train[:, 0] * 255, np.stack([raw[n] for n in sorted(raw)]).astype(np.float32))
    rgb = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    (root / "train" / "q" / "9999.png").write_bytes(png_bytes(rgb))
    ds = load("images", data_dir=root, val_size=0, cache=False)
    assert ds.shape == (3, 6, 4)
    assert np.array_equal(ds.x_train[0, 2], ds.x_train[0, 0])  # a gray image repeated over R, G, B
    assert np.array_equal(ds.x_train[-1] * 255, rgb.transpose(2, 0, 1).astype(np.float32))


def test_image_tree_bad_input(tmp_path):
    rng = np.random.default_rng(9)
    raises_one_line(["images data set needs its files", "--data-dir"], load, "images")
    raises_one_line([r"nope", "not found", "--data-dir"], load, "images", data_dir=tmp_path / "nope")
    empty = tmp_path / "empty"
    (empty / "train" / "cat").mkdir(parents=True)
    (empty / "train" / "cat" / "readme.txt").write_text("x")
    raises_one_line([r"no images in .*empty", "train/cat/0001.jpg"], load, "images", data_dir=empty)
    arch = tmp_path / "only-test.tar.gz"
    members, _ = tree_members(rng, {"test": ["cat"]})
    write_tar(arch, members)
    only_test = load("images", data_dir=arch, cache_dir=tmp_path / "cache")  # a test set to evaluate a run on
    assert len(only_test.y_train) == 0 and len(only_test.y_val) == 0 and len(only_test.y_test) > 0
    assert only_test.classes == ["cat"]
    again = load("images", data_dir=arch, cache_dir=tmp_path / "cache")  # from the cache, no rebuild warning
    assert np.array_equal(again.x_test, only_test.x_test)
    members, _ = tree_members(rng, {"train": ["a", "b"]}, n=4)
    for mode, suffix in (("w:xz", ".tar.xz"), ("w:gz", ".tar.gz"), ("w", ".tar")):
        arch = tmp_path / ("damaged" + suffix)
        write_tar(arch, members, mode=mode)
        blob = arch.read_bytes()
        # cut inside the data, or (plain tar) exactly after the 5th member: never a silently smaller set
        cuts = [len(blob) // 2] + ([5 * 1024] if mode == "w" else [len(blob) - 4])
        for cut in cuts:
            arch.write_bytes(blob[:cut])
            raises_one_line([r"damaged\.tar", "truncated|corrupt", "--data-dir"], load, "images", data_dir=arch,
                            val_size=0, cache=False)
    blob = bytearray(blob)
    blob[5 * 1024 + 100] ^= 0xFF  # a damaged header in the middle of a plain tar
    arch.write_bytes(bytes(blob))
    raises_one_line([r"damaged\.tar is truncated or corrupt after its last readable member"], load, "images",
                    data_dir=arch, val_size=0, cache=False)
    notar = tmp_path / "plain.bin"
    notar.write_bytes(b"\x00" * 100 + b"not a tar")
    raises_one_line([r"plain\.bin", "not a readable tar|corrupt"], load, "images", data_dir=notar, cache=False)

    members, _ = tree_members(rng, {"train": ["a", "b"], "test": ["c"]})
    root = write_tree(tmp_path / "t1", members)
    raises_one_line([r"test class 'c' has no folder under train/"], load, "images", data_dir=root,
                    val_size=0, cache=False)

    members, _ = tree_members(rng, {"train": ["a", "b"]})
    root = write_tree(tmp_path / "t2", members)
    (root / "train" / "b" / "0007.png").write_bytes(png_bytes(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)))
    raises_one_line([r"train/b/0007\.png is 5x4 pixels \(HxW\) but train/a/0000\.png is 6x4", "resize"],
                    load, "images", data_dir=root, val_size=0, cache=False)
    (root / "train" / "b" / "0007.png").write_bytes(b"\x89PNG broken")
    raises_one_line([r"train/b/0007\.png is not a readable JPEG or PNG image", "replace or delete"],
                    load, "images", data_dir=root, val_size=0, cache=False)
    (root / "train" / "b" / "0007.png").unlink()

    other = root / "copy" / "train" / "a"
    other.mkdir(parents=True)
    (other / "1.png").write_bytes(members["train/a/0000.png"])
    raises_one_line(["more than one image tree"], load, "images", data_dir=root, val_size=0, cache=False)


# ------------------------------------------------------------------------------- split arguments

def test_validation_holdout_and_train_subset_are_seeded_and_stratified():
    a, b, c = load("digits", seed=0), load("digits", seed=0), load("digits", seed=7)
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_val, c.x_val)
    counts = np.bincount(a.y_val, minlength=10)
    full = np.bincount(np.concatenate([a.y_train, a.y_val]), minlength=10)
    assert np.all(np.abs(counts - 300 * full / full.sum()) < 1)

    s = load("digits", seed=0, train_subset=100)
    assert len(s.y_train) == 100 and np.array_equal(s.x_val, a.x_val)  # the hold-out ignores the subset
    assert np.array_equal(np.bincount(s.y_train, minlength=10), [10] * 10)
    rows = {r.tobytes() for r in a.x_train}
    assert all(r.tobytes() in rows for r in s.x_train)  # a subset of the training split
    assert np.array_equal(s.x_train, load("digits", seed=0, train_subset=100).x_train)
    assert not np.array_equal(s.x_train, load("digits", seed=1, train_subset=100).x_train)

    z = load("digits", val_size=0)
    assert z.x_val.shape == (0, 1, 8, 8) and z.x_val.dtype == np.float32 and z.y_val.dtype == np.int64
    assert len(z.y_train) == 1437


def test_bad_arguments_are_data_errors():
    raises_one_line([r"unknown data set 'mnist'", "digits, fashion-mnist, cifar10, cifar100, images"],
                    load, "mnist")
    raises_one_line(["digits ships with scikit-learn", "drop --data-dir"], load, "digits", data_dir="x")
    raises_one_line(["val_size=1437 leaves no training images", "--val-size"], load, "digits", val_size=1437)
    raises_one_line(["val_size must be a non-negative integer", "--val-size"], load, "digits", val_size=-1)
    raises_one_line(["train_subset=1200 exceeds the 1137", "--train-subset"], load, "digits", train_subset=1200)
    raises_one_line(["train_subset=0", "--train-subset"], load, "digits", train_subset=0)
    raises_one_line(["seed must be a non-negative integer", "--seed"], load, "digits", seed=-2)


def test_command_line_reports_one_line_error_and_nonzero_exit(capsys):
    assert data.main(["cifar100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cifar100 needs its files") and "\n" not in err
    assert data.main(["digits", "--val-size", "100"]) == 0
    assert "train 1337, val 100, test 360" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- cache

def _counting(monkeypatch, name):
    calls = []
    real = getattr(data, name)

    def wrapper(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(data, name, wrapper)
    return calls


def test_cache_is_read_back_invalidated_by_a_changed_file_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    members, _ = tree_members(rng, {"train": ["a", "b"], "test": ["a"]}, n=4)
    arch = tmp_path / "tree.tar.gz"
    write_tar(arch, members)
    cache = tmp_path / "cache"
    decodes = _counting(monkeypatch, "_decode_tree")

    first = load("images", data_dir=arch, val_size=2, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(decodes) == 1 and len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left
    second = load("images", data_dir=arch, val_size=2, cache_dir=cache)
    assert len(decodes) == 1  # read from the cache
    for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(first, f), getattr(second, f))
        assert getattr(first, f).dtype == getattr(second, f).dtype
    assert first.classes == second.classes and first.source == second.source

    # a cache file that is not a zip, then one cut short: both ignored with a warning and rewritten
    for damage in (lambda b: b"garbage", lambda b: b[: len(b) // 3]):
        files[0].write_bytes(damage(files[0].read_bytes()))
        with pytest.warns(UserWarning, match="unreadable cache file"):
            again = load("images", data_dir=arch, val_size=2, cache_dir=cache)
        assert np.array_equal(again.x_train, first.x_train)
        n = len(decodes)
        load("images", data_dir=arch, val_size=2, cache_dir=cache)
        assert len(decodes) == n  # the rebuilt cache is valid

    # changing the source file changes its size/mtime: the old cache entry is not used
    members2, _ = tree_members(rng, {"train": ["a", "b"], "test": ["a"]}, n=5)
    write_tar(arch, members2)
    st = os.stat(arch)
    os.utime(arch, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    n = len(decodes)
    changed = load("images", data_dir=arch, val_size=2, cache_dir=cache)
    assert len(decodes) == n + 1 and len(changed.y_train) == 8

    # cache=False neither reads nor writes
    before = sorted(cache.iterdir())
    load("images", data_dir=arch, val_size=2, cache_dir=cache, cache=False)
    assert len(decodes) == n + 2 and sorted(cache.iterdir()) == before


def test_cache_of_idx_files_and_default_cache_folder(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fm", np.random.default_rng(11))
    reads = _counting(monkeypatch, "_read_idx")
    a = load("fashion-mnist", data_dir=tmp_path / "fm", val_size=10)
    assert len(reads) == 4
    assert [p.name.startswith("fashion-mnist-") for p in (tmp_path / "default-cache").iterdir()] == [True]
    b = load("fashion-mnist", data_dir=tmp_path / "fm", val_size=10, seed=1)  # another split, same cache
    assert len(reads) == 4 and not np.array_equal(a.x_val, b.x_val)
    # the cache holds the decoded, unsplit arrays: the split from the cache equals the split from the files
    c = load("fashion-mnist", data_dir=tmp_path / "fm", val_size=10, seed=1, cache=False)
    assert np.array_equal(b.x_val, c.x_val) and np.array_equal(b.x_train, c.x_train)
    # a cache folder that cannot be created costs a warning, not the run
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write the data cache"):
        d = load("fashion-mnist", data_dir=tmp_path / "fm", val_size=10, seed=1, cache_dir=blocker / "sub")
    assert np.array_equal(d.x_val, c.x_val)
