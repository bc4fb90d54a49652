"""Brian2 plumbing shared by the circuit simulations: code-generation targets and C++ standalone builds.

Brian2 is imported lazily (only simulations need it). Every circuit entry point takes ``target``:

- ``None`` (default): whatever the caller has set up (``prefs.codegen.target``, the active device); the
  library changes nothing.
- ``"numpy"`` or ``"cython"``: runtime mode with that code-generation target for the call, the caller's
  preference restored afterwards.
- ``"cpp_standalone"``: the network is built, compiled and run as a C++ program in a project-owned build
  folder (``standalone_dir``), then Brian2 is put back in runtime mode. The build folder is kept between calls,
  so a repeated call with the same sizes recompiles nothing that has not changed; a lock file beside it keeps two
  processes from building in one folder at once.

``Standalone`` is the "build once, run many" form: one compiled program, run again with new initial values
(``device.run(run_args=...)``) in milliseconds. It is a context manager; between its runs Brian2 is in runtime
mode, so other simulations can run while it is open.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

TARGETS = ("numpy", "cython", "cpp_standalone")

# The compilers' flags for the circuits: Brian2's defaults (-O3 -march=native) without -ffast-math, which lets
# the compiler reorder floating-point sums, and with -ffp-contract=off, without which GCC fuses a*b + c into one
# FMA instruction on CPUs that have it (measured: the relay chain of the leaky circuit then differs from the
# numpy target by 3 ulp). With these flags every target computes the same IEEE operations in the same order.
_EXACT_FLAGS = ["-w", "-O3", "-march=native", "-ffp-contract=off", "-std=c++11"]
_SAVED_PREFS = ("codegen.target", "codegen.cpp.extra_compile_args_gcc", "codegen.runtime.cython.cache_dir")


def check_target(target) -> None:
    if target is not None and target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)} (or None for Brian2's current settings), "
                         f"got {target!r}.")


def standalone_dir(name: str) -> str:
    """The build folder of the standalone program ``name``: ``$ASYMHEBB_BRIAN2_BUILD/name`` if that variable is
    set, else ``asymhebb-brian2/name`` in the system's temporary folder."""
    root = os.environ.get("ASYMHEBB_BRIAN2_BUILD") or os.path.join(tempfile.gettempdir(), "asymhebb-brian2")
    return os.path.join(root, name)


def _reset_device():
    """Back to the device that was active before the last ``set_device`` (Brian2's own stack of devices)."""
    from brian2.devices.device import reset_device

    reset_device()


def _new_standalone_device():
    """A C++ standalone device of its own (not Brian2's shared ``cpp_standalone`` instance), so that one program
    can stay built while others are built and run, and the caller's own standalone device is left alone."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice

    return CPPStandaloneDevice()


def _lock(directory: str):
    from brian2.utils.filelock import FileLock  # the lock Brian2's standalone device itself uses

    os.makedirs(os.path.dirname(directory), exist_ok=True)
    return FileLock(directory + ".lock")


def use_exact_flags(b2) -> None:
    """Set the exact flags. Brian2's Cython cache is keyed by the code, not by the flags, so the modules compiled
    with these flags get a cache folder named after them."""
    import hashlib

    b2.prefs.codegen.cpp.extra_compile_args_gcc = list(_EXACT_FLAGS)
    tag = hashlib.sha1(" ".join(_EXACT_FLAGS).encode()).hexdigest()[:10]
    b2.prefs.codegen.runtime.cython.cache_dir = standalone_dir(f"cython-cache-{tag}")


@contextlib.contextmanager
def on_target(target, name: str):
    """Run the enclosed build-and-``run`` of one network on ``target`` (see the module docstring).

    Yields a function ``finish(net)`` to call after ``net.run``: under ``cpp_standalone`` it compiles and
    runs the program (so that the monitors can be read); elsewhere it does nothing.
    """
    check_target(target)
    if target is None:
        yield lambda net: None
        return
    import brian2 as b2

    saved = {k: b2.prefs[k] for k in _SAVED_PREFS}
    if target != "cpp_standalone":
        b2.prefs.codegen.target = target
        use_exact_flags(b2)
        try:
            yield lambda net: None
        finally:
            for k, v in saved.items():
                b2.prefs[k] = v
        return
    if b2.get_device().__class__.__name__ != "RuntimeDevice":
        raise RuntimeError("target='cpp_standalone' needs Brian2 in runtime mode, but another device is active; "
                           "pass target=None to run on the device you have set.")
    directory = standalone_dir(name)
    lock = _lock(directory)
    lock.acquire()
    use_exact_flags(b2)
    b2.set_device(_new_standalone_device(), directory=directory, build_on_run=False)

    def finish(net):
        b2.device.build(directory=directory, compile=True, run=True, with_output=False)

    try:
        yield finish
    finally:
        lock.release()
        _reset_device()  # back to the caller's runtime device
        for k, v in saved.items():
            b2.prefs[k] = v


@contextlib.contextmanager
def device(target: str, *, profile: bool = False):
    """Brian2 on ``target`` for the networks built and run inside: ``cpp_standalone`` is a standalone device of
    its own with ``build_on_run=False`` (the network builds its program at its first run, as
    ``LearningNetwork`` does), so one process can build several programs one after another; ``numpy`` and
    ``cython`` are the runtime device with that code generation target. ``profile``: Brian2 records the time
    per code object (``brian2.profiling_summary(net)`` after a run). On exit the previous device and the
    preferences come back."""
    check_target(target)
    if target is None:
        raise ValueError("device() needs a target: one of " + ", ".join(TARGETS))
    import brian2 as b2

    saved = {k: b2.prefs[k] for k in _SAVED_PREFS}
    if target == "cpp_standalone":
        b2.set_device(_new_standalone_device(), build_on_run=False, profile=profile)
    else:
        b2.set_device("runtime", profile=profile)
        b2.prefs.codegen.target = target
    try:
        yield
    finally:
        _reset_device()
        for k, v in saved.items():
            b2.prefs[k] = v


class Standalone:
    """A circuit network compiled once as a C++ standalone program, run many times with new values.

    ``name`` names the build folder and must determine the program: two programs of one name must be the same
    code (``output_error.Compiled`` puts the size and every parameter into it).

    ``build(b2)`` makes the network (a ``brian2.Network``) and returns ``(net, duration)``; ``duration`` is the
    simulated time of each run. ``run(values, read)`` runs the compiled program with ``values`` (``{(object
    name, variable): array}``) as initial values and returns ``read(net)``, called while the results can be
    read (e.g. a function that copies the monitors' arrays). Between runs Brian2 is back in runtime mode, so
    other simulations can run in the meantime. Use it as a context manager::

        with Standalone("oe_10000", build) as prog:
            for h in sweeps:
                delta = prog.run({("oe_delta", "h"): h}, lambda net: net["oe_delta_monitor"].delta[:])
    """

    def __init__(self, name: str, build):
        self.name = name
        self._build = build
        self.net = None

    def __enter__(self):
        import brian2 as b2

        if b2.get_device().__class__.__name__ != "RuntimeDevice":
            raise RuntimeError("a Standalone program needs Brian2 in runtime mode when it opens.")
        self._saved = {k: b2.prefs[k] for k in _SAVED_PREFS}
        self.directory = standalone_dir(self.name)
        self._lock = _lock(self.directory)
        use_exact_flags(b2)
        self._device = _new_standalone_device()
        b2.set_device(self._device, directory=self.directory, build_on_run=False)
        try:
            with self._lock:  # held while the folder is written: the build here, each run below
                self.net, duration = self._build(b2)
                self.net.run(duration, namespace={})
                b2.device.build(directory=self.directory, compile=True, run=False, with_output=False)
        except BaseException:
            self._close(b2)
            raise
        _reset_device()
        for k, v in self._saved.items():  # the flags matter for the build only
            b2.prefs[k] = v
        return self

    def run(self, values: dict | None = None, read=None):
        import brian2 as b2

        if self.net is None:
            raise RuntimeError("open the Standalone program with 'with' before running it.")
        b2.set_device(self._device, build_on_run=False)
        try:
            run_args = {getattr(self.net[obj], var): v for (obj, var), v in (values or {}).items()}
            with self._lock:
                # another program of the same name (same code: the name says what it computes) may have been
                # built here in the meantime; the binary is the same, so running it is running ours
                self._device.run(directory=self.directory, with_output=False, run_args=run_args)
                return read(self.net) if read is not None else None
        finally:
            _reset_device()

    def _close(self, b2):
        if b2.get_device() is self._device:
            _reset_device()
        for k, v in self._saved.items():
            b2.prefs[k] = v
        self.net = None

    def __exit__(self, *exc):
        import brian2 as b2

        if self.net is not None:
            self._close(b2)
        return False
