"""The circuits' transfer functions in Brian2's own expression language (docs/spec.md §7): the strings made from
the breakpoint tables of ``circuits.transfer`` equal the NumPy functions exactly, and the rate networks that
run them give identical results on Brian2's code-generation targets (numpy; cython and C++ standalone need a
compiler and are marked slow), as Brian2's own suite runs its tests on every target."""
from __future__ import annotations

import numpy as np
import pytest

from circuits import output_error, shutdown, transfer

M, S, MU, EPS, K = 3.0, 1.0, 1 / 9, 0.2, 1.0


def _breakpoints():
    """Every threshold of the tables, the points just beside them, and a spread of values."""
    ts = [-2 * M - S, -M, M, 2 * M + S, -MU, 1.0, -MU - 0.5 * EPS, 1.0 + 0.5 * EPS, -1.0, -K]
    pts = [t + d for t in ts for d in (0.0, 1e-12, -1e-12, 1e-3, -1e-3)]
    return np.array(sorted(pts + list(np.linspace(-2 * M - S - 1, 2 * M + S + 1, 201))))


def _evaluate(brian, expression: str, x: np.ndarray, namespace: dict) -> np.ndarray:
    g = brian.NeuronGroup(len(x), "x : 1 (constant)\ny : 1", name="probe", namespace=namespace)
    g.x = x
    g.run_regularly(f"y = {expression}", name="probe_update")
    net = brian.Network(g, name="probe_net")
    net.run(brian.defaultclock.dt, namespace={})
    return np.asarray(g.y[:])


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_brian2_expressions_equal_the_numpy_functions_exactly(brian, margin):
    x = _breakpoints()
    ns = {"M": M, "S": S, "mu": MU, "eps": EPS, "margin": margin, "K": K}
    f = transfer.brian2_expressions(sigma_out="x", sigma_ctl="x", sigma_u="x", sigma_v="x", sigma_gate="x")
    want = {"sigma_out": transfer.sigma_out(x, M=M, S=S, mu=MU, eps=EPS),
            "sigma_ctl": transfer.sigma_ctl(x, mu=MU, eps=EPS, margin=margin),
            "sigma_u": transfer.sigma_u(x), "sigma_v": transfer.sigma_v(x),
            "sigma_gate": transfer.sigma_gate(x, K=K)}
    for name, expression in f.items():
        brian.start_scope()
        got = _evaluate(brian, expression, x, ns)
        assert np.array_equal(got, want[name]), name  # exact: one term of the sum is non-zero


def test_a_table_is_its_function_and_names_itself():
    x = _breakpoints()
    # σ_out's levels at its breakpoints, as the contract states them (H = ±M takes the outer value)
    v = transfer.sigma_out(np.array([-2 * M - S, -M, M, 2 * M + S]), M=M, S=S, mu=MU, eps=EPS)
    assert list(v) == [-MU, -MU, 1.0, 1.0]
    assert transfer.sigma_out(np.array([-M + 1e-12]), M=M, S=S, mu=MU, eps=EPS)[0] == 0.0
    assert np.array_equal(transfer.sigma_ctl(x, mu=MU, eps=EPS), np.select([x > 1, x < -MU], [1.0, -1.0], 0.0))
    for name in ("sigma_out", "sigma_ctl", "sigma_u", "sigma_v", "sigma_gate"):
        e = transfer.brian2_expressions(**{name: "h + I_s"})[name]
        assert transfer.identify_brian2(e) == (name, "h + I_s")
    assert transfer.identify_brian2("x + 1") is None
    with pytest.raises(KeyError, match="no Brian2 expression"):
        transfer.brian2_expressions(sigma_nope="x")


def test_no_python_callback_in_the_rate_networks(brian):
    """The rate networks are Brian2 code only: no ``Function`` in any namespace, so every target can run them."""
    from circuits import continuous

    nets = [output_error.build_network([0.5, -2.0], [1.0, -1.0], M=M, S=S, mu=MU, eps=EPS),
            shutdown.build_network([0.2, 1.0], [0.3, -0.4], K=K),
            continuous.build_network(np.array([0.5, -2.0]), np.array([1.0, -1.0]), M=M, S=S, mu=MU, eps=EPS,
                                     tau=0.01, dt=0.001, delay=0.01)]
    for net in nets:
        for obj in net.objects:
            ns = getattr(obj, "namespace", None) or {}
            assert not any(isinstance(v, brian.Function) for v in ns.values()), obj.name


def _reference_inputs(n=400, seed=3):
    rng = np.random.default_rng(seed)
    h = np.concatenate([rng.uniform(-M + 1e-6, M - 1e-6, n), [S, -S, S + 1e-9, -S - 1e-9, 0.0]])
    s = np.where(rng.random(len(h)) < 0.5, 1.0, -1.0)
    return h, s


@pytest.mark.parametrize("order", ["sequential", "simultaneous"])
def test_output_error_network_is_the_same_on_every_target(target, order):
    h, s = _reference_inputs()
    got = output_error.trajectory(h, s, M=M, S=S, mu=MU, eps=EPS, cycles=6, order=order)
    want = output_error.trajectory(h, s, M=M, S=S, mu=MU, eps=EPS, cycles=6, order=order, backend="torch")
    assert np.array_equal(got.delta, want.delta) and np.array_equal(got.t, want.t), target


def test_shutdown_network_is_the_same_on_every_target(target):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-1, 1, 300), [1.0, -1.0, 1.0 - 1e-12]])
    delta = rng.uniform(-0.99 * K, 0.99 * K, len(x))
    got = shutdown.simulate(x, delta, K=K)
    assert np.array_equal(got, shutdown.simulate(x, delta, K=K, backend="torch")), target
    assert np.array_equal(got, shutdown.rule(x, delta))


COMPILED = [pytest.param("cython", marks=pytest.mark.slow), pytest.param("cpp_standalone", marks=pytest.mark.slow)]


@pytest.mark.parametrize("target_name", COMPILED)
@pytest.mark.parametrize("delay", [0.0, 0.01])
def test_continuous_circuit_is_the_same_on_every_target(brian, target_name, delay):
    """The leaky output circuit (docs/spec.md §7.1), with and without the δ → t relay delay, gives the numpy
    target's trajectories bit for bit on the compiled targets (the ``target=`` keyword)."""
    from circuits import continuous

    h, s = _reference_inputs(n=60)
    kw = dict(M=M, S=S, mu=MU, eps=EPS, tau=0.01, cycles=6, window=2, delay=delay)
    want = continuous.trajectory(h, s, target="numpy", **kw)
    got = continuous.trajectory(h, s, target=target_name, **kw)
    assert np.array_equal(got.delta, want.delta) and np.array_equal(got.t_c, want.t_c)
    assert np.array_equal(got.times, want.times)


@pytest.mark.parametrize("target_name", COMPILED)
def test_leaky_shutdown_gate_is_the_same_on_every_target(brian, target_name):
    """The leaky shutdown gate (docs/spec.md §7.2) gives the numpy target's δ̃, u, v bit for bit on the compiled
    targets, and settles to eq. 3."""
    from circuits import continuous

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-1, 1, 40), [1.0, -1.0]])
    delta = rng.uniform(-0.9 * K, 0.9 * K, x.size)
    want = continuous.gate_trajectory(x, delta, K=K, target="numpy")
    got = continuous.gate_trajectory(x, delta, K=K, target=target_name)
    for name in ("delta_tilde", "u", "v"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert np.allclose(got.final(), shutdown.rule(x, delta), atol=1e-5)


@pytest.mark.parametrize("target_name", ["numpy", *COMPILED])
def test_the_target_keyword_leaves_brian2_as_it_found_it(brian, target_name):
    """``target=`` changes Brian2's settings for the call only: afterwards the device is the runtime one and the
    code-generation target, compiler flags and cache folder are the caller's; the result is eq. 6."""
    brian.prefs.codegen.target = "numpy"
    before = {k: brian.prefs[k] for k in ("codegen.target", "codegen.cpp.extra_compile_args_gcc",
                                          "codegen.runtime.cython.cache_dir")}
    h, s = _reference_inputs(n=50)
    got = output_error.simulate(h, s, M=M, S=S, mu=MU, eps=EPS, cycles=4, target=target_name)
    assert np.array_equal(got, output_error.rule(h, s, mu=MU, S=S, boundary="closed"))
    assert type(brian.get_device()).__name__ == "RuntimeDevice"
    assert {k: brian.prefs[k] for k in before} == before


def test_an_unknown_target_is_refused_with_the_known_ones(brian):
    """A misspelt target is a one-line error that lists the targets, before anything is built."""
    with pytest.raises(ValueError, match="numpy, cython, cpp_standalone"):
        output_error.simulate([0.5], [1.0], M=M, S=S, mu=MU, eps=EPS, cycles=4, target="cpp")
    with pytest.raises(ValueError, match="needs backend='brian2'"):
        shutdown.simulate([0.5], [0.1], K=K, backend="torch", target="cython")


@pytest.mark.slow
def test_compiled_circuits_build_once_and_rerun_with_new_inputs(brian):
    """``output_error.Compiled``: one C++ build, then each run with new (h, s) gives the map's trajectory (and so
    eq. 6) exactly; inputs of another size are refused, naming the compiled size."""
    rng = np.random.default_rng(8)
    with output_error.Compiled(300, M=M, S=S, mu=MU, eps=EPS, cycles=6) as circuits:
        for _ in range(3):
            h = rng.uniform(-M + 1e-6, M - 1e-6, 300)
            s = np.where(rng.random(300) < 0.5, 1.0, -1.0)
            got = circuits.trajectory(h, s)
            want = output_error.trajectory(h, s, M=M, S=S, mu=MU, eps=EPS, cycles=6, backend="torch")
            assert np.array_equal(got.delta, want.delta) and np.array_equal(got.t, want.t)
            assert np.array_equal(circuits.simulate(h, s), output_error.rule(h, s, mu=MU, S=S, boundary="closed"))
        with pytest.raises(ValueError, match="compiled for 300 inputs"):
            circuits.simulate(h[:10], s[:10])
    assert type(brian.get_device()).__name__ == "RuntimeDevice"


@pytest.mark.parametrize("target_name", COMPILED)
@pytest.mark.parametrize("reset", [True, False])
def test_a_stream_of_examples_is_the_same_on_every_target(brian, target_name, reset):
    """The TimedArray-driven stream of examples (with and without the reset of t) gives the numpy target's
    trajectories bit for bit on the compiled targets."""
    rng = np.random.default_rng(12)
    h = rng.uniform(-M + 1e-6, M - 1e-6, (40, 10))
    s = np.where(rng.random((40, 10)) < 0.2, 1.0, -1.0)
    kw = dict(M=M, S=S, mu=MU, eps=EPS, cycles_per_example=5, reset=reset)
    want = output_error.stream(h, s, target="numpy", **kw)
    got = output_error.stream(h, s, target=target_name, **kw)
    assert np.array_equal(got.delta, want.delta) and np.array_equal(got.t, want.t)
