"""circuits.params: the one check of the circuits' parameters (docs/spec.md §7: S < M, 0 < μ ≤ 1, ε > 0,
K > 0), and that every entry point uses it: the Brian2 networks, the PyTorch modules and RunConfig."""
import numpy as np
import pytest

from circuits import continuous, output_error, shutdown
from circuits.modules import OutputErrorCircuit, ShutdownGate
from circuits.params import CircuitParamError, check_params
from models.train import CircuitConfig, RunConfig

GOOD = dict(M=3.0, S=1.0, mu=1 / 9, eps=0.2)
BAD = [dict(M=1.0), dict(M=0.5), dict(M=float("nan")), dict(eps=0.0), dict(eps=-0.1), dict(mu=0.0),
       dict(mu=1.5)]


@pytest.mark.parametrize("bad", BAD, ids=[str(b) for b in BAD])
def test_output_circuit_parameters_are_refused_at_every_entry_point(bad):
    p = {**GOOD, **bad}
    h, s = np.array([0.5]), np.array([1.0])
    with pytest.raises(CircuitParamError):
        check_params(**p)
    with pytest.raises(CircuitParamError):
        OutputErrorCircuit(**p)
    with pytest.raises(CircuitParamError):
        output_error.simulate(h, s, cycles=2, backend="torch", **p)
    with pytest.raises(CircuitParamError):
        output_error.build_network(h, s, **p)
    with pytest.raises(CircuitParamError):
        continuous.trajectory(h, s, tau=0.01, **p)
    c = CircuitConfig(error_signal="circuit", M=p["M"], eps=p["eps"])
    with pytest.raises(ValueError):  # μ ≤ 0 is refused for every rule before the circuit check
        RunConfig(mu=bad.get("mu"), circuit=c).validate()


def test_boundaries_just_inside_are_accepted():
    check_params(M=1.0 + 1e-9, S=1.0, mu=1.0, eps=1e-9, K=1e-9, margin=0.0, cycles=1)
    OutputErrorCircuit(M=1.5, mu=1.0, eps=0.01)
    RunConfig(mu=1.0, circuit=CircuitConfig(error_signal="circuit", M=1.5)).validate()
    RunConfig(mu=3.0).validate()  # the hinge loss alone takes any μ > 0: μ ≤ 1 binds only the circuit


@pytest.mark.parametrize("K", [0.0, -1.0, float("inf")])
def test_shutdown_K_is_refused_at_every_entry_point(K):
    x = d = np.array([0.5])
    for call in (lambda: check_params(K=K), lambda: ShutdownGate(K=K), lambda: shutdown.simulate(x, d, K=K),
                 lambda: shutdown.build_network(x, d, K=K),
                 lambda: RunConfig(engine="scheduled", circuit=CircuitConfig(gate="circuit", K=K)).validate()):
        with pytest.raises(CircuitParamError):
            call()


def test_the_message_is_one_line_and_names_the_parameter():
    with pytest.raises(CircuitParamError) as e:
        check_params(M=0.5)
    assert "\n" not in str(e.value) and "M" in str(e.value) and "greater than S = 1" in str(e.value)
