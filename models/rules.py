"""The learning rules of §3 (docs/spec.md §2): which loss, which feedback tensor, whether R learns.

    bp     softmax cross-entropy, feedback Wᵀ          (exact back-propagation)
    bp-h   multi-class hinge (eq. 4), feedback Wᵀ      (back-propagation of the hinge loss)
    frfb   hinge, feedback R, R fixed                  (fixed random feedback, Lillicrap et al.)
    urfb   hinge, feedback R, ΔR = ΔWᵀ                 (updated random feedback: the paper's method)

Peers that are not in the paper (docs/spec.md §2, "expected peers"), each a separate named rule:

    kp     URFB plus equal weight decay on W and R     (Kolen–Pollack; decay ``kp_decay`` > 0)
    sign   hinge, feedback sign(W)ᵀ                    (sign-symmetry; R unused)
    dfa    hinge, each hidden layer gets D_l δ_L       (direct feedback alignment, Nøkland 2016; R unused)
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "RULES", "get_rule"]


@dataclass(frozen=True)
class Rule:
    name: str
    loss: str  # "xent" (softmax cross-entropy) or "hinge" (eq. 4)
    feedback: str  # "W" (back-propagation), "R" (separate feedback weights), "signW" or "D" (direct, DFA)
    learn_R: bool  # R receives W's Hebbian increment (URFB, KP)
    decay: bool = False  # equal weight decay on W and R (KP)


RULES: dict[str, Rule] = {
    "bp": Rule("bp", "xent", "W", False),
    "bp-h": Rule("bp-h", "hinge", "W", False),
    "frfb": Rule("frfb", "hinge", "R", False),
    "urfb": Rule("urfb", "hinge", "R", True),
    "kp": Rule("kp", "hinge", "R", True, decay=True),
    "sign": Rule("sign", "hinge", "signW", False),
    "dfa": Rule("dfa", "hinge", "D", False),
}


def get_rule(name: str) -> Rule:
    key = name.strip().lower()
    if key not in RULES:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}")
    return RULES[key]
