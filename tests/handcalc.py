"""Hand computations of the paper's equations, written out independently of the code under test.

Used by several test files: eq. 4 (hinge loss), eq. 6 (its output error), σ and σ' (eq. 3), one training
step of a chain of dense layers under a given feedback (eq. 2), and a calibration that saturates a share of
every hidden layer's units so that the gate of eq. 3 is exercised.
"""
import torch


def eq6(out, y, mu):
    """δ_L of eq. 6, strict form: 1 for the presented class below 1, -μ for the others above -1, else 0."""
    target = torch.zeros_like(out, dtype=torch.bool)
    target[torch.arange(len(y)), y] = True
    delta = torch.zeros_like(out)
    delta[target & (out < 1)] = 1.0
    delta[~target & (out > -1)] = -mu
    return delta


def eq4(out, y, mu):
    """Mean over the batch of L = max(1 - x_c, 0) + μ Σ_{i≠c} max(1 + x_i, 0)."""
    total = 0.0
    for n in range(out.shape[0]):
        for i in range(out.shape[1]):
            v = float(out[n, i])
            total += max(1 - v, 0.0) if i == int(y[n]) else mu * max(1 + v, 0.0)
    return total / out.shape[0]


def sigma(h, a):
    return torch.clamp(a * h, -1.0, 1.0)


def sigma_prime(h, a):
    """σ'(h) = a where |a·h| < 1 (strictly), 0 where the unit is saturated (eq. 3)."""
    return torch.where((a * h).abs() < 1, torch.full_like(h, a), torch.zeros_like(h))


def full_chain_step(Ws, x, y, *, mu, lr, a, feedback):
    """One step of eq. 2 on a chain of dense layers ``full …; output`` (no dropout, no pooling).

    ``Ws``: the W matrices (n_out × n_in), input to output. ``feedback(l, W)``: the matrix B_l (W's shape)
    through which layer l sends its δ down (W for BP, R for FRFB/URFB, sign(W) for sign-symmetry), or None
    for DFA, where ``feedback`` is instead a dict {l: D_l (n_l × C)} of direct matrices.
    Returns (ΔW per layer, δ per layer, x per layer).
    """
    xs, hs = [x.flatten(1)], []
    for l, W in enumerate(Ws):
        h = xs[-1] @ W.t()
        hs.append(h)
        xs.append(h if l == len(Ws) - 1 else sigma(h, a))
    deltas = [None] * len(Ws)
    deltas[-1] = eq6(xs[-1], y, mu)
    for l in range(len(Ws) - 2, -1, -1):
        if isinstance(feedback, dict):  # DFA: straight from the output error
            signal = deltas[-1] @ feedback[l].t()
        else:
            signal = deltas[l + 1] @ feedback(l + 1, Ws[l + 1])
        deltas[l] = sigma_prime(hs[l], a) * signal
    dWs = [lr / x.shape[0] * deltas[l].t() @ xs[l] for l in range(len(Ws))]
    return dWs, deltas, xs


@torch.no_grad()
def saturate(net, x, share=0.4, seed=0):
    """Scale each hidden weight layer's W (in order) so that a fraction ``share`` of its units is saturated
    (|a·h| ≥ 1) on the batch ``x`` (dropout drawn after ``torch.manual_seed(seed)``, as the tests' steps do);
    returns the shares measured afterwards."""
    from models.layers import WeightLayer

    for m in net.layers:
        if isinstance(m, WeightLayer) and m.act:
            seen = {}
            hook = m.register_forward_hook(lambda mod, inp, out: seen.setdefault("h", mod._forward(inp[0], mod.W)))
            torch.manual_seed(seed)
            net(x)
            hook.remove()
            q = torch.quantile(seen["h"].abs().flatten().double(), 1 - share)
            m.W.mul_(1.0 / (m.slope * float(q)) * 1.0001)
    return saturated_shares(net, x)


@torch.no_grad()
def saturated_shares(net, x, seed=0):
    """{layer: fraction of units with |x| = 1} for every hidden weight layer, on the batch ``x``."""
    from models.layers import WeightLayer

    shares, hooks = {}, []
    for name, m in zip(net.names, net.layers):
        if isinstance(m, WeightLayer) and m.act:
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: shares.__setitem__(name, float((out.abs() == 1).double().mean()))))
    torch.manual_seed(seed)
    net(x)
    for h in hooks:
        h.remove()
    return shares
