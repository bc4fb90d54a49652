"""Shared test fixtures.

``brian``: a clean Brian2 state for one test (runtime device, default preferences, the ``numpy``
code-generation target that needs no compiler, a fresh scope and a fixed seed).
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
