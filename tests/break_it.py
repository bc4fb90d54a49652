"""Break the code on purpose and watch the test that guards each property fail (see docs/testing.md).

For every entry of ``BREAKS``: copy the checkout (without .git) to a scratch folder, make one plausible
mistake there, run the one test that should catch it, print the first lines of its failure, and delete the
copy. A breakage that its test does not notice is reported as ``NOT CAUGHT`` and the script exits 1.

    python tests/break_it.py                 # every breakage (about a minute)
    python tests/break_it.py kp-decay-sign   # one of them
    python tests/break_it.py --list

Not collected by pytest (the name does not start with ``test_``); run it after changing a property's test.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, the exact text to change, what to change it to, the test that must fail)
BREAKS = {
    "default-mu-1/C": (
        "models/losses.py", "return 1.0 / (num_classes - 1)", "return 1.0 / num_classes",
        "tests/test_train.py::test_default_mu_is_one_over_C_minus_1_in_loss_and_output_error"),
    "kp-decay-sign": (
        "models/layers.py", "mul_(1.0 - lr * decay)", "mul_(1.0 + lr * decay)",
        "tests/test_network.py::test_kp_decay_shrinks_W_and_R_by_the_same_factor_as_a_hand_step"),
    "kp-decay-0-accepted": (
        "models/layers.py", "if kp and not decay > 0:", "if False:",
        "tests/test_network.py::test_kp_without_decay_is_refused"),
    "local-fans-times-grid": (
        "models/local.py", "k * k * c_in, k * k * c_out", "h * w * k * k * c_in, h * w * k * k * c_out",
        "tests/test_local.py::test_initial_weight_range_is_glorot_of_the_conv_fans"),
    "scheduled-gate-removed": (
        "models/schedule.py",
        "torch.ops.aten.hardtanh_backward(signal, states[i].control, -1.0, 1.0).mul_(m.slope)", "signal * m.slope",
        "tests/test_schedule.py::test_gradient_order_equals_fast_engine_with_saturated_units[urfb]"),
    "fast-gate-removed": (
        "models/feedback.py", "return _aten.hardtanh_backward(g, x, -1.0, 1.0).mul_(ctx.slope), None, None",
        "return g * ctx.slope, None, None",
        "tests/test_network.py::test_one_step_is_eq2_by_hand_with_saturated_units[frfb]"),
    "circuit-gate-ignores-u-v": (
        "circuits/transfer.py", "return sigma_gate(delta - 2 * K * u + 2 * K * v, K=K)",
        "return sigma_gate(delta, K=K)",
        "tests/test_schedule.py::test_circuit_gate_equals_ideal_gate_with_saturated_units"),
    "sign-feedback-is-W": (
        "models/layers.py", "return torch.sign(self.W.detach())", "return self.W",
        "tests/test_network.py::test_sign_symmetry_sends_delta_down_through_sign_of_W"),
    "dfa-signal-also-goes-down": (
        "models/network.py", "y = m(x.detach())  # nothing is sent down", "y = m(x)  # nothing is sent down",
        "tests/test_dfa.py::test_an_upstream_update_does_not_depend_on_downstream_weights"),
    "dfa-D-transposed-wrong": (
        "models/network.py", "(g @ D.t()).view(shape)", "(g @ D.t()).flip(1).view(shape)",
        "tests/test_dfa.py::test_hidden_delta_is_sigma_prime_times_D_delta_L_by_hand"),
    "schedule-not-checked-first": (
        "models/schedule.py", "        check_order(self.graph, events, self.net.names)\n", "",
        "tests/test_schedule.py::test_misordered_schedule_is_rejected_before_anything_runs"),
    "legacy-config-field-dropped": (
        "models/train.py", '"circuit_M": "M",', "",
        "tests/test_train.py::test_old_flat_config_loads_into_the_grouped_circuit_fields_and_resumes"),
    "import-cycle-local-network": (
        "models/local.py", "def _pad(k: int)", "def _net():\n    from .network import Network\n\n    return Network\n\n\ndef _pad(k: int)",
        "tests/test_imports.py::test_no_import_cycle_between_modules"),
    "circuits-import-models": (
        "circuits/modules.py", "def _record_violations(",
        "def _labels(y, like):\n    from models.losses import supervisory\n\n    return supervisory(y, like)\n\n\ndef _record_violations(",
        "tests/test_imports.py::test_circuits_import_nothing_from_models"),
    "models-import-brian2": (
        "models/schedule.py", "import networkx as nx\n", "import brian2  # noqa: F401\nimport networkx as nx\n",
        "tests/test_imports.py::test_models_import_brian2_nowhere_at_module_level"),
    "spec-of-non-text": (
        "models/spec.py", "    if not isinstance(net, str):\n", "    if False:\n",
        "tests/test_fuzz.py::test_a_specification_that_is_not_text_is_a_spec_error"),
    "idx-gzip-error-uncaught": (
        "models/data.py", "except (OSError, EOFError, zlib.error) as e:", "except FileNotFoundError as e:",
        "tests/test_fuzz.py::test_corrupt_fashion_idx_gz_is_a_one_line_data_error"),
    "data-error-multiline": (
        "models/data.py", 'super().__init__(" ".join(str(message).split()))', "super().__init__(str(message))",
        "tests/test_fuzz.py::test_a_pickle_error_spanning_two_lines_is_still_a_one_line_data_error"),
    "reproduce-no-resume": (
        "models/experiments.py", 'return ("done" if done >= run.config.epochs else "partial"), done',
        'return ("done", done) if done >= run.config.epochs else ("new", 0)',
        "tests/test_reproduce.py::test_a_killed_matrix_restarts_and_ends_as_an_uninterrupted_one"),
    "reproduce-other-settings-mixed-in": (
        "models/experiments.py", "    if diff:\n", "    if False:\n",
        "tests/test_reproduce.py::test_a_run_directory_of_other_settings_is_refused"),
    "claims-better-sign": (
        "models/claims.py", 'return "holds" if (d > 2 * se and d > least)', 'return "holds" if (-d > 2 * se and -d > least)',
        "tests/test_reproduce.py::test_verdicts_follow_the_numbers"),
    "circuit-M-below-S-accepted": (
        "circuits/params.py", 'if not (_number("M", M) > s and', 'if not (_number("M", M) > 0 and',
        "tests/test_params.py::test_output_circuit_parameters_are_refused_at_every_entry_point"),
    "script-error-is-a-traceback": (
        "sims/cli.py", "            _report(e)\n            return 2\n", "            raise\n",
        "tests/test_cli.py::test_bad_input_is_one_line_and_exit_2_before_any_work"),
    "module-script-checks-nothing-first": (
        "sims/output_circuit.py", "    cli.check_circuit(M=args.M, S=args.S, mu=args.mu, eps=args.eps)\n", "",
        "tests/test_cli.py::test_bad_input_is_one_line_and_exit_2_before_any_work[sims/output_circuit.py:--M 0.5]"),
    "resume-ignores-saved-settings": (
        "models/train.py", "    diff = config_differences(saved, config, ignore=RESUME_MAY_CHANGE)\n",
        "    diff = {}\n",
        "tests/test_train.py::test_resume_refuses_settings_that_differ_from_the_saved_ones_and_names_them"),
    "resume-trains-to-the-flag-default": (
        "sims/train.py", "config = apply_given(load_config(args.out), args)",
        "config = apply_given(load_config(args.out), args); config.epochs = args.epochs",
        "tests/test_train.py::test_cli_resume_without_epochs_continues_to_the_runs_own_count_and_names_changed_flags"),
    "circuit-line-not-printed": (
        "models/train.py", "                log(_format_circuit_row(row))", "                pass",
        "tests/test_train.py::test_circuit_signals_print_a_regime_line_per_epoch"),
    "figures-published-by-default": (
        "sims/cli.py", "    return writable(args.out)", "    return writable(FIGURES)",
        "tests/test_cli.py::test_scripts_write_under_runs_by_default_not_into_docs_figures"),
    "brian2-expression-boundary": (
        "circuits/transfer.py", """{'>=' if closed else '>'}""", """{'>' if closed else '>='}""",
        "tests/test_targets.py::test_brian2_expressions_equal_the_numpy_functions_exactly"),
    "sigma-out-table-boundary": (
        "circuits/transfer.py", '("-M", False)', '("-M", True)',
        "tests/test_targets.py::test_a_table_is_its_function_and_names_itself"),
    "fma-contraction-allowed": (
        "circuits/brian.py", '"-ffp-contract=off", ', "",
        "tests/test_targets.py::test_continuous_circuit_is_the_same_on_every_target[0.01-cython]"),
    "standalone-ignores-new-inputs": (
        "circuits/brian.py", "run_args=run_args)", "run_args={})",
        "tests/test_targets.py::test_compiled_circuits_build_once_and_rerun_with_new_inputs"),
    "target-prefs-not-restored": (
        "circuits/brian.py", "            for k, v in saved.items():\n                b2.prefs[k] = v\n        return",
        "            pass\n        return",
        "tests/test_targets.py::test_the_target_keyword_leaves_brian2_as_it_found_it[cython]"),
    "stream-t-not-reset": (
        "circuits/output_error.py", "            ctl.run_regularly(\"t_c = 0\"", "            if False: ctl.run_regularly(\"t_c = 0\"",
        "tests/test_output_error.py::test_a_stream_with_reset_is_a_fresh_circuit_per_example[sequential-5]"),
    "stream-delta-not-reset": (
        "circuits/output_error.py", '("\\ndelta = 0" if reset else "")', '""',
        "tests/test_output_error.py::test_a_stream_with_reset_is_a_fresh_circuit_per_example[simultaneous-6]"),
    "brian2-gate-ignores-u-v": (
        "circuits/learning_network.py", 'sigma_gate="fb + I_u + I_v"', 'sigma_gate="fb"',
        "tests/test_brian2_network.py::test_weights_equal_the_scheduled_engine_after_every_example[urfb]"),
    "brian2-hebb-in-every-slot": (
        "circuits/learning_network.py", "w += int({at('update', li)})", "w += int(slot >= 0)",
        "tests/test_brian2_network.py::test_weights_equal_the_scheduled_engine_after_every_example[urfb]"),
    "brian2-veto-dropped": (
        "circuits/learning_network.py", 'readout_slot, value = c1, "d * int(seen0 < 0.5)"',
        'readout_slot, value = c1, "d"',
        "tests/test_brian2_network.py::test_veto_readout_over_an_odd_number_of_cycles"),
    "brian2-feedback-read-live-not-latched": (
        "circuits/learning_network.py", 'sigma_gate="fb + I_u + I_v"', 'sigma_gate="I_fb + I_u + I_v"',
        "tests/test_brian2_network.py::test_gradient_order_is_followed_too"),
    "brian2-R-learns-under-frfb": (
        "circuits/learning_network.py", "            if self.learn_R:\n", "            if True:\n",
        "tests/test_brian2_network.py::test_weights_equal_the_scheduled_engine_after_every_example[frfb]"),
    "brian2-events-not-checked": (
        "circuits/learning_network.py", "self.events = check_events(layers, events)",
        "self.events = [tuple(e) for e in events]",
        "tests/test_brian2_network.py::test_misordered_schedule_is_refused_before_anything_runs"),
    "spiking-net-events-not-checked": (
        "circuits/spiking_network.py", "self.events = check_events(layers, events)",
        "self.events = [tuple(e) for e in events]",
        "tests/test_spiking_network.py::test_misordered_schedule_is_refused_before_any_brian2_object"),
    "spiking-net-ladder-collapsed": (
        "circuits/spiking_network.py", "ladder = (np.arange(N) + 0.5) / N - x50",
        "ladder = 0.5 + 0 * np.arange(N) - x50",
        "tests/test_spiking_network.py::test_rms_error_shrinks_as_the_populations_grow"),
    "spiking-net-brian2-not-seeded": (
        "circuits/spiking_network.py", "            self.b2.seed(self.seed)\n", "",
        "tests/test_spiking_network.py::test_numpy_and_cpp_standalone_are_bit_identical"),
    "plain-network-order-not-checked": (
        "models/schedule.py", "    check_order(G, events, net.names)\n    layers = []\n", "    layers = []\n",
        "tests/test_brian2_network.py::test_misordered_schedule_is_refused_before_anything_runs"),
    "plain-local-rows-and-columns-swapped": (
        "models/schedule.py", "c * h * w + row * w + col", "c * h * w + col * w + row",
        "tests/test_brian2_network.py::test_local_layer_with_random_connectivity"),
    "spiking-dale-not-split": (
        "circuits/spiking.py", "half = np.arange(n_pop // 2) if W[qq, cc] > 0 else np.arange(n_pop // 2, n_pop)",
        "half = np.arange(n_pop)",
        "tests/test_spiking.py::test_dale_option_gives_every_neuron_one_sign"),
    "spiking-gate-no-inhibition": (
        "circuits/spiking.py", 'relay.run_regularly("v = clip(v - drain * z * dt, 0, 1e9)"',
        'relay.run_regularly("v = clip(v, 0, 1e9)"',
        "tests/test_spiking.py::test_spiking_gate_computes_eq3"),
    "spiking-seed-reseeds-global-state": (
        "circuits/spiking.py", "            get_device().set_random_state(state)\n", "            pass\n",
        "tests/test_spiking.py::test_reproducible_with_a_fixed_seed_and_the_callers_random_state_untouched"),
    "spiking-input-h-minus-sign": (
        "circuits/spiking.py", "for q, v in enumerate((M, -M, 2 * M, -2 * M)):",
        "for q, v in enumerate((M, M, 2 * M, -2 * M)):",
        "tests/test_spiking.py::test_closed_loop_update_regimes_agree_and_correct_regimes_drive_t[regular-False]"),
    # the fast step (docs/training.md, Speed): each faster piece against its definition
    "satlin-in-place-without-clip": (
        "models/feedback.py", "x = h.mul_(slope).clamp_(-1.0, 1.0)", "x = h.mul_(slope)",
        "tests/test_fast_step.py::test_satlin_in_place_equals_hardtanh_of_a_h_bit_for_bit[0.5]"),
    "maxpool-padding-never-wins": (
        "models/layers.py", "for index, top, left, first in _border_windows(h, w, k, s, cl):",
        "for index, top, left, first in []:",
        "tests/test_fast_step.py::test_maxpool_equals_pooling_the_zero_padded_input_bit_for_bit_with_ties"
        "[dtype0-channels_last-3-2]"),
    "maxpool-tie-with-padding-reversed": (
        "models/layers.py", "pad_wins |= zero & (first < place)", "pad_wins |= zero & (first > place)",
        "tests/test_fast_step.py::test_maxpool_border_ties_with_the_padding_follow_row_major_order"),
    "dropout-scale-1/p": (
        "models/layers.py", "scale = float(torch.ones((), dtype=x.dtype).div_(1.0 - p))",
        "scale = float(torch.ones((), dtype=x.dtype).div_(p))",
        "tests/test_fast_step.py::test_dropout_mask_values_rate_and_seed"),
    "dropout-seed-not-from-torch": (
        "models/layers.py", "seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))", "seed = 12345",
        "tests/test_fast_step.py::test_dropout_mask_values_rate_and_seed"),
    "dropout-backward-ignores-mask": (
        "models/layers.py", "        return g * mask, None", "        return g, None",
        "tests/test_fast_step.py::test_dropout_backward_uses_the_forward_mask[channels_last]"),
    "update-R-masked-by-M_W-too": (
        "models/layers.py", "        if self.rule is not None and self.rule.learn_R:\n            gR = g if",
        "        if self.mask_W is not None:\n            g.mul_(self.mask_W)\n"
        "        if self.rule is not None and self.rule.learn_R:\n            gR = g if",
        "tests/test_fast_step.py::test_dense_steps_equal_the_previous_implementation_bit_for_bit[0.5-urfb]"),
}


def run(name: str, python: str) -> bool:
    path, old, new, test = BREAKS[name]
    with tempfile.TemporaryDirectory(prefix="scratch-break-") as tmp:
        scratch = Path(tmp) / "checkout"
        shutil.copytree(ROOT, scratch, ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv", "runs"))
        src = (scratch / path).read_text()
        if old not in src:
            print(f"=== {name}: the text to break is no longer in {path}; update BREAKS")
            return False
        (scratch / path).write_text(src.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(scratch)}
        p = subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test], cwd=scratch,
                           env=env, capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    caught = p.returncode == 1 and "failed" in (lines[-1] if lines else "")
    print(f"=== {name}: {path}: {old.strip()[:70]!r} -> {new.strip()[:70]!r}")
    print(f"    {test}: {'caught' if caught else 'NOT CAUGHT'} (pytest exit {p.returncode})")
    for line in [l for l in lines if l.startswith("E ")][:3] + lines[-1:]:
        print("    " + line[:200])
    return caught


def main(argv: list[str]) -> int:
    if "--list" in argv:
        print("\n".join(BREAKS))
        return 0
    names = [a for a in argv if not a.startswith("-")] or list(BREAKS)
    unknown = [n for n in names if n not in BREAKS]
    if unknown:
        print(f"unknown breakage {unknown}; see --list", file=sys.stderr)
        return 2
    missed = [n for n in names if not run(n, sys.executable)]
    print(f"\n{len(names) - len(missed)} of {len(names)} breakages caught" + (f"; missed: {missed}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
