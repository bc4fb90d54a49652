"""The Appendix 1 control circuits of Amit (2019): output error unit (Fig. 13, 14) and shutdown units (Fig. 15).

This package knows nothing of training. ``circuits.transfer`` holds the one definition of each equation;
the Brian2 simulations (``output_error``, ``shutdown``, ``continuous``, ``spiking``), the PyTorch
equivalent-behaviour modules (``modules``), the checkers (``check``) and the wiring graphs (``wiring``)
build on it. See docs/circuits.md and docs/circuit_dynamics.md.
"""
