"""Randomness and coding of the spiking circuits (circuits/spiking.py; docs/spiking.md).

Properties:
- every entry point that takes a seed (``trajectory`` with each input kind, ``gate_simulate`` with each input
  kind, ``transfer_curve``, ``calibrate``, ``build_network``'s initial state) gives the same spikes for the same
  seed and other spikes for another seed, and leaves the caller's random state — NumPy's global generator and
  Brian2's runtime state, its Cython buffer position included — as it found it; on cpp_standalone too (slow);
- the push-pull input populations carry the sign of what they code: h⁺ fires only for h > 0, h⁻ only for
  h < 0, s⁺ only where s = +1, s⁻ only where s = -1, each at its rate (r_in·|h|/M, r_in), and each alone moves
  the δ unit's input H = h + 2M s the right way: the open-loop δ̂ is σ_out(H) for an input that only that
  population carries (and another value if that population's sign were wrong);
- ``gate_agreement`` counts the units with |x| < 1 as open and |x| = 1 as saturated, and those within its
  tolerance of eq. 3.
"""
import numpy as np
import pytest

from circuits import spiking, transfer

P = dict(M=2.0, S=1.0, mu=1 / 9, eps=0.2)
H2, S2 = np.array([0.0, -0.5]), np.array([1.0, -1.0])
FAST = dict(lead=0.02, settle=0.01, window=0.03, record=3)  # a short gate run, δ̃ and z traces recorded
X3, D3 = np.array([0.3, -0.6, 1.0]), np.array([0.2, -0.5, 0.4])


def _trajectory(inputs):
    def run(seed):
        tr = spiking.trajectory(H2, S2, **P, cycles=2, window=1, record_spikes=True, inputs=inputs, seed=seed)
        return [tr.spikes["time"], tr.spikes["detector"], tr.delta, tr.t_c]
    return run


def _gate(inputs):
    def run(seed):
        g = spiking.gate_simulate(X3, D3, K=1.0, inputs=inputs, seed=seed, **FAST)
        return [g.trace, g.control_trace, g.delta_tilde, g.early]
    return run


def _transfer_curve(seed):
    return [spiking.transfer_curve(np.array([-4.0, 1.5, 4.0]), **P, duration=0.05, seed=seed)]


def _calibrate(seed):  # the function under the cache: a cached result would prove nothing
    c = spiking.calibrate.__wrapped__(spiking.DetectorParams(), n_x=9, duration=0.04, transient=0.01, seed=seed)
    return [np.array([c.r_sat, c.x50]), np.array(c.f)]


ENTRY_POINTS = {"trajectory-regular": _trajectory("regular"), "trajectory-poisson": _trajectory("poisson"),
                "trajectory-constant": _trajectory("constant"), "gate-regular": _gate("regular"),
                "gate-poisson": _gate("poisson"), "transfer_curve": _transfer_curve, "calibrate": _calibrate}


def _brian2_state(b2):
    st = b2.get_device().get_random_state()
    return [st["numpy_state"][1], np.array(st["numpy_state"][2:4]), st["rand_buffer_index"], st["randn_buffer_index"]]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_same_seed_same_spikes_other_seed_other_spikes_callers_state_untouched(brian, entry):
    """Seed 3 twice, from two different states of the caller's random streams: identical spikes (times and
    detectors, or the rate traces they make); seed 4: others. The caller's state — NumPy's global stream
    part-way through, Brian2's Cython buffer at position 7 (as a Cython run that drew random numbers leaves
    it) — is the same after each call."""
    run = ENTRY_POINTS[entry]
    dev = brian.get_device()
    np.random.seed(11)
    np.random.random(5)
    st = dev.get_random_state()
    st["rand_buffer_index"][:] = 7
    st["randn_buffer_index"][:] = 3
    dev.set_random_state(st)
    try:
        before = _brian2_state(brian)
        a = run(3)
        assert _same(_brian2_state(brian), before), "the caller's random state changed"
        np.random.seed(12)  # the caller has drawn from its stream in between: the seed alone decides
        before = _brian2_state(brian)
        b = run(3)
        c = run(4)
        assert _same(_brian2_state(brian), before), "the caller's random state changed"
    finally:
        dev.rand_buffer_index[:] = 0  # no later Cython run may read a buffer that is not there
        dev.randn_buffer_index[:] = 0
    assert _same(a, b), "the same seed gave other spikes"
    assert not _same(a, c), "another seed gave the same spikes"


def test_build_network_draws_its_initial_state_from_its_seed(brian):
    """The initial membrane potentials and the input phases (regular inputs) are the seed's: equal for equal
    seeds, different for another seed, on networks that are not run."""
    cal = spiking.calibrate(spiking.DetectorParams())

    def initial(seed):
        net, _ = spiking.build_network(H2, S2, **P, calibration=cal, inputs="regular", seed=seed)
        return [np.array(net["spk_detectors"].v[:]), np.array(net["spk_inputs"].v[:])]

    a, b, c = initial(3), initial(3), initial(4)
    assert _same(a, b)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


# --- push-pull coding of h and s ---------------------------------------------------------------------------

# (h, s) pairs, each carried by one population of its pair only (the other s population is silent too):
#   h⁺: h = 1.5 > 0, s = +1 → H = 5.5 > 2M+S: 1+ε  (h⁺ with the wrong sign: H = 2.5, δ = 1)
#   h⁻: h = -1.5 < 0, s = -1 → H = -5.5: -μ-ε       (wrong sign: H = -2.5, -μ)
#   s⁺: h = 0, s = +1 → H = 4: 1                    (wrong sign: H = -4, -μ)
#   s⁻: h = 0, s = -1 → H = -4: -μ                  (wrong sign: H = 4, 1)
CASES = {"h+": (1.5, 1.0), "h-": (-1.5, -1.0), "s+": (0.0, 1.0), "s-": (0.0, -1.0)}


def test_each_push_pull_population_codes_its_sign(brian):
    """Open loop (t held at 0): the input neurons of h⁺, h⁻, s⁺, s⁻ fire only where their sign is present, at
    r_in·|h|/M and r_in (regular encoders: to within one spike per neuron), and the rate-coded δ̂ settles at
    σ_out(h + 2M s) for each case, which no single wrong sign would give (module comment above)."""
    params = spiking.DetectorParams()
    cal = spiking.calibrate(params)
    h = np.array([v[0] for v in CASES.values()])
    s = np.array([v[1] for v in CASES.values()])
    net, layout = spiking.build_network(h, s, **P, calibration=cal, inputs="regular", open_loop=True, seed=0)
    spikes = brian.SpikeMonitor(net["spk_inputs"], name="probe_input_spikes")
    net.add(spikes)
    duration = 0.2
    net.run(duration * brian.second, namespace={})
    counts = np.bincount(np.asarray(spikes.i), minlength=layout["n_inputs"]).reshape(len(h), 4, params.N_in)
    rates = counts.sum(2) / (params.N_in * duration)  # (case, population h⁺ h⁻ s⁺ s⁻), Hz
    want = params.r_in * np.stack([np.maximum(h, 0) / P["M"], np.maximum(-h, 0) / P["M"], s > 0, s < 0], 1)
    np.testing.assert_allclose(rates, want, atol=1.0 / duration)
    mon = net["spk_rates"]
    keep = np.asarray(mon.t / brian.second) >= duration / 2
    delta = np.asarray(mon.x)[0::2][:, keep].mean(1)
    expected = transfer.sigma_out(h + 2 * P["M"] * s, M=P["M"], S=P["S"], mu=P["mu"], eps=P["eps"])
    assert expected.tolist() == [1 + P["eps"], -P["mu"] - P["eps"], 1.0, -P["mu"]]
    np.testing.assert_allclose(delta, expected, rtol=0.05, err_msg=f"cases {list(CASES)}")


@pytest.mark.slow
def test_cpp_standalone_same_seed_same_spikes_other_seed_other_spikes(brian):
    """On cpp_standalone the program's own generator is seeded with the seed: the same seed gives the same
    spikes, another seed other spikes, and Brian2's runtime random state is untouched. (The sizes and settings of
    test_spiking.py's cpp_standalone case: the project built there is reused, only the seed changes.)"""
    H6 = np.array([0.0, -0.5, 1.5, 0.0, 0.5, -1.5])
    S6 = np.array([1, 1, 1, -1, -1, -1.0])
    kw = dict(**P, cycles=8, window=3, inputs="poisson", record_spikes=True, target="cpp_standalone")
    before = _brian2_state(brian)
    a = spiking.trajectory(H6, S6, seed=5, **kw)
    b = spiking.trajectory(H6, S6, seed=5, **kw)
    c = spiking.trajectory(H6, S6, seed=6, **kw)
    assert _same(_brian2_state(brian), before)
    assert np.array_equal(a.spikes["time"], b.spikes["time"]) and np.array_equal(a.delta, b.delta)
    assert not np.array_equal(a.spikes["time"], c.spikes["time"])


@pytest.mark.slow
def test_cpp_standalone_build_and_read_back_hold_the_folders_lock(brian, monkeypatch):
    """Two processes running the same network on cpp_standalone share its project folder: while one builds,
    runs and reads the program's results back, the folder's lock file is held, so another process (here a lock
    of our own on the same file, which flock refuses while the run holds it) waits instead of overwriting the
    folder under it."""
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    from brian2.utils.filelock import FileLock, Timeout

    seen = []
    build = CPPStandaloneDevice.build

    def build_and_probe(self, *args, **kwargs):
        lock = FileLock(kwargs["directory"] + ".lock")
        for when in ("before", "after"):
            if when == "after":
                build(self, *args, **kwargs)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                seen.append((when, "held"))
            else:
                lock.release()
                seen.append((when, "free"))

    monkeypatch.setattr(CPPStandaloneDevice, "build", build_and_probe)
    H6 = np.array([0.0, -0.5, 1.5, 0.0, 0.5, -1.5])
    S6 = np.array([1, 1, 1, -1, -1, -1.0])
    tr = spiking.trajectory(H6, S6, **P, cycles=8, window=3, inputs="poisson", record_spikes=True, seed=5,
                            target="cpp_standalone")
    assert seen == [("before", "held"), ("after", "held")]
    assert len(tr.spikes["time"]) > 0  # read back under the lock: the results are there


# --- the gate's agreement counts ---------------------------------------------------------------------------

def test_gate_agreement_counts_open_and_saturated_units_against_eq3(brian):
    """``gate_agreement`` counts the units with |x| < 1 as open and |x| = 1 as saturated, and a unit as agreeing
    when its δ̃ is within atol of eq. 3 (δ where open, 0 where saturated); its max_error is the largest
    |δ̃ − eq. 3| of the same run (same seed: the same δ̃ as gate_simulate's)."""
    x = np.array([0.3, -0.6, 1.0, -1.0, 1.0])
    d = np.array([0.2, -0.5, 0.4, -0.4, -0.3])
    kw = dict(K=1.0, seed=3, lead=0.02, settle=0.01, window=0.05)
    res = spiking.gate_simulate(x, d, **kw)
    err = np.abs(res.delta_tilde - np.where(np.abs(x) == 1, 0.0, d))
    assert err.max() < 0.05
    for atol in (None, 1e-12):
        got = spiking.gate_agreement(x, d, atol=atol, **kw)
        ok = err <= (0.05 if atol is None else atol)
        assert got["open"] == (2, int(ok[:2].sum())) and got["saturated"] == (3, int(ok[2:].sum())), atol
        assert got["max_error"] == err.max()
