"""The training step as it was before the fused step: verbatim copies of ``models/feedback.py``,
``models/layers.py`` and ``models/network.py`` (only their package-relative imports of ``rules``, ``spec`` and
``local`` point to ``models``), kept so that ``bench/step_time.py`` times the previous step and the current one
side by side in one process. Nothing in the project imports it.

It builds networks of conv, full, maxpool, drop and sum layers (every preset but those with ``local`` layers,
whose class lives in ``models.local`` and derives from the current layers) with the same weights as
``models.network.Network`` for the same seed.
"""
