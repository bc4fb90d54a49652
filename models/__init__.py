"""Networks with separate feedback weights trained by BP, BP-H, FRFB or URFB (Amit 2019, §3–§5).

This package imports no Brian2.
"""
