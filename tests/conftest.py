"""Shared test fixtures.

``brian``: a clean Brian2 state for one test (runtime device, default preferences, the ``numpy``
code-generation target that needs no compiler, a fresh scope and a fixed seed).
``target``: Brian2 set to each code-generation target in turn (numpy; cython and cpp_standalone, which
compile, are marked slow), reset afterwards — the way Brian2's own suite runs a test on every target.
``float64``: PyTorch's default dtype set to float64 for one test (where an equality is exact), then restored.
"""
import pytest


@pytest.fixture
def brian():
    import brian2

    brian2.set_device("runtime")
    brian2.prefs.reset_to_defaults()
    brian2.prefs.codegen.target = "numpy"
    brian2.start_scope()
    brian2.seed(1234)
    yield brian2
    brian2.start_scope()


@pytest.fixture
def float64():
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


TARGETS = ["numpy", pytest.param("cython", marks=pytest.mark.slow),
           pytest.param("cpp_standalone", marks=pytest.mark.slow)]


@pytest.fixture(params=TARGETS)
def target(request, brian, tmp_path):
    """Brian2 set to one code-generation target (and device), reset afterwards."""
    from circuits.brian import use_exact_flags

    name = request.param
    use_exact_flags(brian)  # the same IEEE operations on every target (circuits.brian)
    if name == "cpp_standalone":
        brian.set_device("cpp_standalone", directory=str(tmp_path / "standalone"), build_on_run=True,
                         with_output=False)
    else:
        brian.prefs.codegen.target = name
    yield name
    if name == "cpp_standalone":
        brian.device.reinit()
        brian.device.activate()
    brian.set_device("runtime")
    brian.prefs.reset_to_defaults()
