"""Shared test fixtures.

``brian``: a clean Brian2 state for one test (runtime device, default preferences, the ``numpy``
code-generation target that needs no compiler, a fresh scope and a fixed seed).
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
