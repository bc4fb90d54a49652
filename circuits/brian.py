"""Small Brian2 helpers shared by the circuit simulations (imported lazily: only simulations need Brian2)."""
from __future__ import annotations


def numpy_function(fn, arg_names):
    """A NumPy function of dimensionless arguments as a Brian2 ``Function`` for the ``numpy`` target.

    The implementation is registered with ``discard_units=True``: Brian2's default wrapper formats the whole
    result array into an error message on every call, which made a 1600-step run 15× slower.
    """
    import brian2 as b2

    names = [arg_names] if isinstance(arg_names, str) else list(arg_names)
    f = b2.Function(fn, arg_units=[1] * len(names), arg_names=names, return_unit=1)
    f.implementations.add_numpy_implementation(fn, discard_units=True)
    return f
