"""Break the code on purpose and watch the test that guards each property fail (see docs/testing.md).

For every entry of ``BREAKS``: copy the checkout (without .git) to a scratch folder, make one plausible
mistake there, run the one test that should catch it, print the first lines of its failure, and delete the
copy. A breakage that its test does not notice is reported as ``NOT CAUGHT`` and the script exits 1.

    python tests/break_it.py                 # every breakage (about a minute)
    python tests/break_it.py kp-decay-sign fast-gate-removed   # some of them, by name
    python tests/break_it.py --list          # the names
    python tests/break_it.py --help

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
        "models/claims.py", "if d - 2 * se > 0 and d > least:", "if -d - 2 * se > 0 and -d > least:",
        "tests/test_claims.py::test_each_word_decides_its_interval_each_way"),
    "claims-output-layer-decides-claim-5": (
        "models/claims.py", "    return list(layers[1:-1])", "    return list(layers[1:])",
        "tests/test_claims.py::test_claim5_the_output_layer_is_reported_and_does_not_decide"),
    "claims-exact-order-claim-4": (
        "models/claims.py", "sig_t, sig_u = abs(dt) > 2 * st, abs(du) > 2 * su", "sig_t, sig_u = True, True",
        "tests/test_claims.py::test_claim4_a_flip_inside_the_noise_does_not_fail_the_ordering"),
    "claims-mean-only-claim-6": (
        "models/claims.py", "lo, hi = ratio - 2 * se, ratio + 2 * se", "lo, hi = ratio, ratio",
        "tests/test_claims.py::test_claim6_each_way"),
    "claims-last-epoch-only": (
        "models/claims.py", "    tail = rows[-last:]", "    tail = rows[-1:]",
        "tests/test_claims.py::test_a_run_error_is_the_mean_of_the_last_three_epochs"),
    "claims-bp-means-bp-h": (
        "models/claims.py", '    return "bp" if row.has("bp") else "bp-h"', '    return "bp-h"',
        "tests/test_claims.py::test_bp_in_a_claim_is_the_papers_softmax_bp_where_the_row_has_it"),
    "claims-chance-row-comparable": (
        "models/claims.py", "        if row.chance_among(\"bp\", \"bp-h\"):", "        if False:",
        "tests/test_claims.py::test_claim1_a_row_at_chance_decides_nothing"),
    "protocol-41-first-layer-not-frozen": (
        "models/protocol.py", "    dst.frozen = True\n    dst.W.requires_grad_(False)\n", "",
        "tests/test_reproduce.py::test_a_41_run_freezes_the_tied_runs_trained_first_layer_under_an_untied_rest"),
    "protocol-41-first-layer-not-copied": (
        "models/protocol.py", "        dst.W.copy_(src.W)\n", "",
        "tests/test_reproduce.py::test_a_41_run_freezes_the_tied_runs_trained_first_layer_under_an_untied_rest"),
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
    # switching points of the spiking detectors: the calibrated shift has the sign that puts θ at half activation
    "spiking-threshold-sign": (
        "circuits/spiking.py", "    return np.asarray(theta, dtype=np.float64) - calibration.x50",
        "    return np.asarray(theta, dtype=np.float64) + calibration.x50",
        "tests/test_switching.py::test_every_detector_population_is_half_active_at_its_breakpoint[numpy]"),
    "spiking-circuit-threshold-sign": (
        "circuits/spiking.py",
        "det.theta = detector_threshold(direction[det_k] * theta[det_k], calibration)",
        "det.theta = direction[det_k] * theta[det_k] + calibration.x50",
        "tests/test_switching.py::test_every_detector_population_is_half_active_at_its_breakpoint[numpy]"),
    "spiking-gate-threshold-sign": (
        "circuits/spiking.py", "det.theta = detector_threshold(1.0 - x_band, cal)", "det.theta = (1.0 - x_band) + cal.x50",
        "tests/test_switching.py::test_every_detector_population_is_half_active_at_its_breakpoint[numpy]"),
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
    # the Brian2 learning network over time: blocks, epochs, η per example, the output circuit's settings
    "brian2-block-reads-examples-from-time-0": (
        "circuits/learning_network.py", 'namespace={"t_start": self.network.t}', 'namespace={"t_start": 0 * b2.second}',
        "tests/test_learning_network_time.py::test_blocks_epochs_and_a_decaying_eta_equal_the_engine_after_every_example"),
    "brian2-block-returns-the-first-blocks-records": (
        "circuits/learning_network.py", "first = self.runs * self.n_examples", "first = 0",
        "tests/test_learning_network_time.py::test_blocks_epochs_and_a_decaying_eta_equal_the_engine_after_every_example"),
    "brian2-eta-one-value-per-time-step": (
        "circuits/learning_network.py", "self.eta = b2.TimedArray(np.zeros(self.n_examples), dt=T,",
        "self.eta = b2.TimedArray(np.zeros(self.n_examples), dt=dt,",
        "tests/test_learning_network_time.py::test_blocks_epochs_and_a_decaying_eta_equal_the_engine_after_every_example"),
    "brian2-eta-read-at-the-block-start": (
        "circuits/learning_network.py", "eta_of(t - t_start)", "eta_of(t_start)",
        "tests/test_learning_network_time.py::test_blocks_epochs_and_a_decaying_eta_equal_the_engine_after_every_example"),
    "brian2-standalone-rerun-keeps-the-built-eta": (
        "circuits/learning_network.py", "args = {self.stim: x, self.sup: s, self.eta: eta}",
        "args = {self.stim: x, self.sup: s}",
        "tests/test_learning_network_time.py::test_cpp_standalone_blocks_equal_the_engine_after_every_example"),
    "brian2-standalone-rerun-from-the-initial-weights": (
        "circuits/learning_network.py", "            if before is not None:\n", "            if False:\n",
        "tests/test_learning_network_time.py::test_cpp_standalone_blocks_equal_the_engine_after_every_example"),
    "brian2-simultaneous-circuit-run-sequentially": (
        "circuits/learning_network.py", 'ctl_order = 3 if order == "sequential" else 1', "ctl_order = 3",
        "tests/test_learning_network_time.py::test_output_circuit_settings_are_the_engines"),
    "brian2-circuit-S-is-1": (
        "circuits/learning_network.py", '"S": float(S)', '"S": 1.0',
        "tests/test_learning_network_time.py::test_output_circuit_settings_are_the_engines"),
    "brian2-eta-of-any-length": (
        "circuits/learning_network.py", "if eta.shape not in ((), (self.n_examples,)) or not", "if not",
        "tests/test_learning_network_time.py::test_bad_inputs_are_refused_before_anything_runs"),
    # the batch order (models/train.py): a permutation per (seed, epoch), used as such by train()
    "epoch-order-same-every-epoch": (
        "models/train.py", "manual_seed(seed * 1_000_003 + epoch)", "manual_seed(seed)",
        "tests/test_batch_order.py::test_epoch_order_is_a_permutation_of_seed_and_epoch"),
    "epoch-order-seed-plus-epoch": (
        "models/train.py", "manual_seed(seed * 1_000_003 + epoch)", "manual_seed(seed + epoch)",
        "tests/test_batch_order.py::test_epoch_order_is_a_permutation_of_seed_and_epoch"),
    "epoch-order-from-the-global-stream": (
        "models/train.py", "torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))",
        "torch.randperm(n)",
        "tests/test_batch_order.py::test_epoch_order_is_a_permutation_of_seed_and_epoch"),
    "train-drops-the-short-last-batch": (
        "models/train.py", "batches = range(0, n, config.batch_size)",
        "batches = range(0, n - config.batch_size + 1, config.batch_size)",
        "tests/test_batch_order.py::test_train_presents_each_epoch_in_its_order_every_example_once"),
    "train-resumed-epochs-repeat-early-orders": (
        "models/train.py", "order = epoch_order(n, config.seed, epoch)", "order = epoch_order(n, config.seed, epoch - start)",
        "tests/test_batch_order.py::test_train_presents_each_epoch_in_its_order_every_example_once"),
    # run states (models/experiments.py): finished means every epoch asked; other settings are refused
    "run-state-one-epoch-short-is-done": (
        "models/experiments.py", '"done" if done >= run.config.epochs else', '"done" if done >= run.config.epochs - 1 else',
        "tests/test_run_state.py::test_a_run_one_epoch_short_is_partial_not_loaded_and_resumes_to_done"),
    "load-results-takes-partial-runs": (
        "models/experiments.py", 'if run_state(r, root)[0] == "done":', 'if run_state(r, root)[0] != "new":',
        "tests/test_run_state.py::test_a_run_one_epoch_short_is_partial_not_loaded_and_resumes_to_done"),
    "load-results-mixes-in-other-settings": (
        "models/experiments.py", 'if run_state(r, root)[0] == "done":',
        'if len(read_metrics(r.path(root))) >= r.config.epochs:',
        "tests/test_run_state.py::test_a_run_directory_of_other_settings_is_refused_by_run_state_and_load_results"
        "[lr-0.05]"),
    "run-identity-ignores-circuit-settings": (
        "models/experiments.py", '_NOT_IDENTITY = {"data", "data_dir", "device", "epochs", "eval_batch_size"}',
        '_NOT_IDENTITY = {"data", "data_dir", "device", "epochs", "eval_batch_size", "circuit"}',
        "tests/test_run_state.py::test_a_run_directory_of_other_settings_is_refused_by_run_state_and_load_results"
        "[circuit.M-20.0]"),
    "run-identity-holds-the-device-against-a-run": (
        "models/experiments.py", '_NOT_IDENTITY = {"data", "data_dir", "device", "epochs", "eval_batch_size"}',
        '_NOT_IDENTITY = {"data", "data_dir", "epochs", "eval_batch_size"}',
        "tests/test_run_state.py::test_where_and_how_long_a_run_computes_does_not_make_it_another_run"),
    # the transfer tables (circuits/transfer.py) against the spec with S != 1
    "sigma-out-table-S-is-1": (
        "circuits/transfer.py", '("2*M + S", False)', '("2*M + 1.0", False)',
        "tests/test_transfer_tables.py::test_brian2_expressions_are_the_spec_with_S_not_1"),
    # the spiking circuits' seeds (circuits/spiking.py): the seed alone decides, the caller's state is kept
    "spiking-gate-phases-unseeded": (
        "circuits/spiking.py", "    duration = t_settle + window\n    rng = np.random.default_rng(seed)",
        "    duration = t_settle + window\n    rng = np.random.default_rng()",
        "tests/test_spiking_seeds.py::test_same_seed_same_spikes_other_seed_other_spikes_callers_state_untouched[gate-regular]"),
    "spiking-standalone-build-unlocked": (
        "circuits/spiking.py", "            with _lock(folder):\n", "            if True:\n",
        "tests/test_spiking_seeds.py::test_cpp_standalone_build_and_read_back_hold_the_folders_lock"),
    "spiking-learn-resumes-the-initial-spiking-weights": (
        "sims/spiking_network.py", 'lay["W"]["w"], lay["R"]["w"] = np.asarray(w), np.asarray(r)', "pass",
        "tests/test_spiking_network.py::test_learn_resumed_after_an_epoch_equals_the_uninterrupted_run"),
    "spiking-learn-resumes-other-settings": (
        "sims/spiking_network.py", '    if diff:\n        cli.fail(f"{path} was written',
        '    if False:\n        cli.fail(f"{path} was written',
        "tests/test_spiking_network.py::test_learn_refuses_a_checkpoint_written_with_other_settings"),
    "spiking-agree-adds-to-other-settings": (
        "sims/spiking_network.py", '    if diff:\n        cli.fail(f"{path} holds rows',
        '    if False:\n        cli.fail(f"{path} holds rows',
        "tests/test_spiking_network.py::test_agree_refuses_an_agreement_file_of_other_settings"),
    "finished-resume-keeps-short-metrics": (
        "models/train.py", '        _write_metrics(out / "metrics.jsonl", state["metrics"])\n        if log',
        "        if log",
        "tests/test_train.py::test_a_run_stopped_between_checkpoint_and_metrics_row_gets_its_row_back_on_resume"),
    "spiking-dale-routes-swapped": (
        "circuits/spiking_network.py", 'f"(int({k} > 0) * vA_pre + int({k} <= 0) * vB_pre)"',
        'f"(int({k} > 0) * vB_pre + int({k} <= 0) * vA_pre)"',
        "tests/test_spiking_network.py::test_with_dales_law_each_target_reads_the_route_of_its_sign"),
    "spiking-dale-off-reads-the-on-route": (
        "circuits/spiking_network.py", "hn_post = w * {route('-w')}", "hn_post = w * {route('w')}",
        "tests/test_spiking_network.py::test_with_dales_law_each_target_reads_the_route_of_its_sign"),
    "spiking-dale-off-neurons-read-x": (
        "circuits/spiking_network.py", 'b2.linked_var(g, "Xn" if "Xn" in g.variables else "X", index=row)',
        'b2.linked_var(g, "X", index=row)',
        "tests/test_spiking_network.py::test_with_dales_law_each_target_reads_the_route_of_its_sign"),
    "spiking-dale-output-delta-whole": (
        "circuits/spiking_network.py", '(in_t, "I_dp")', '(in_t, "I_d")',
        "tests/test_spiking_network.py::test_with_dales_law_each_target_reads_the_route_of_its_sign"),
    "spiking-dale-all-neurons-act": (
        "circuits/spiking_network.py", "acts = route[sl] == (1.0 if kk > 0 else 0.0) if routed else",
        "acts = route[sl] >= 0 if routed else",
        "tests/test_spiking_network.py::test_with_dales_law_every_neuron_acts_with_one_sign"),
    "spiking-agree-remeasures-what-it-has": (
        "sims/spiking_network.py", "    rows = _saved_rows(path, settings)\n", "    _saved_rows(path, settings)\n"
        "    rows = []\n", "tests/test_spiking_network.py::test_agree_skips_the_pairs_already_in_its_agreement_file"),
    "claims-filters-fail-only-when-reversed": (
        "models/claims.py", "v = exceeds(d, se, least=GROW)", "v = better(d, se, least=GROW)",
        "tests/test_claims.py::test_claim9_each_way"),
    "spiking-calibration-unseeded": (
        "circuits/spiking.py", "    N = params.N\n    rng = np.random.default_rng(seed)",
        "    N = params.N\n    rng = np.random.default_rng()",
        "tests/test_spiking_seeds.py::test_same_seed_same_spikes_other_seed_other_spikes_callers_state_untouched[calibrate]"),
    "spiking-network-ignores-its-seed": (
        "circuits/spiking.py", "    rng = np.random.default_rng(seed)\n    ff = h + 2 * M * s",
        "    rng = np.random.default_rng(0)\n    ff = h + 2 * M * s",
        "tests/test_spiking_seeds.py::test_build_network_draws_its_initial_state_from_its_seed"),
    "spiking-run-draws-from-the-callers-stream": (
        "circuits/spiking.py",
        "        if seed is not None:\n            b2.seed(int(seed))\n        net.run(duration * b2.second, namespace={})\n"
        "        return collect()", "        net.run(duration * b2.second, namespace={})\n        return collect()",
        "tests/test_spiking_seeds.py::test_same_seed_same_spikes_other_seed_other_spikes_callers_state_untouched[trajectory-poisson]"),
    "spiking-seed-restores-numpy-state-only": (
        "circuits/spiking.py", "            get_device().set_random_state(state)\n",
        "            np.random.set_state(state['numpy_state'])\n",
        "tests/test_spiking_seeds.py::test_same_seed_same_spikes_other_seed_other_spikes_callers_state_untouched[trajectory-constant]"),
    "spiking-standalone-not-seeded": (
        "circuits/spiking.py",
        "            if seed is not None:\n                b2.seed(int(seed))\n            net.run(duration * b2.second, "
        "namespace={})\n            b2.device.build", "            net.run(duration * b2.second, namespace={})\n"
        "            b2.device.build",
        "tests/test_spiking_seeds.py::test_cpp_standalone_same_seed_same_spikes_other_seed_other_spikes"),
    # the push-pull input populations (circuits/spiking.py): each codes its own sign
    "spiking-input-h-plus-sign": (
        "circuits/spiking.py", "for q, v in enumerate((M, -M, 2 * M, -2 * M)):",
        "for q, v in enumerate((-M, -M, 2 * M, -2 * M)):",
        "tests/test_spiking_seeds.py::test_each_push_pull_population_codes_its_sign"),
    "spiking-input-h-minus-sign-open-loop": (
        "circuits/spiking.py", "for q, v in enumerate((M, -M, 2 * M, -2 * M)):",
        "for q, v in enumerate((M, M, 2 * M, -2 * M)):",
        "tests/test_spiking_seeds.py::test_each_push_pull_population_codes_its_sign"),
    "spiking-input-s-plus-sign": (
        "circuits/spiking.py", "for q, v in enumerate((M, -M, 2 * M, -2 * M)):",
        "for q, v in enumerate((M, -M, -2 * M, -2 * M)):",
        "tests/test_spiking_seeds.py::test_each_push_pull_population_codes_its_sign"),
    "spiking-input-s-minus-sign": (
        "circuits/spiking.py", "for q, v in enumerate((M, -M, 2 * M, -2 * M)):",
        "for q, v in enumerate((M, -M, 2 * M, 2 * M)):",
        "tests/test_spiking_seeds.py::test_each_push_pull_population_codes_its_sign"),
    "spiking-input-h-minus-fires-for-positive-h": (
        "circuits/spiking.py", "r_in * np.maximum(-h, 0) / M,", "r_in * np.abs(h) / M,",
        "tests/test_spiking_seeds.py::test_each_push_pull_population_codes_its_sign"),
    "spiking-gate-agreement-saturated-is-beyond-1": (
        "circuits/spiking.py", "    sat = np.abs(x) >= 1\n", "    sat = np.abs(x) > 1\n",
        "tests/test_spiking_seeds.py::test_gate_agreement_counts_open_and_saturated_units_against_eq3"),
    # the training figures (docs/reproduce.md, The figures)
    "fig8-per-filter-scale": (
        "sims/figures.py", "img = np.clip(0.5 + filt / (2 * scale), 0, 1)",
        "img = (filt - filt.min()) / max(filt.max() - filt.min(), 1e-30)",
        "tests/test_reproduce.py::test_fig8_draws_every_filter_on_one_shared_scale"),
    "curves-drop-epoch-0": (
        "sims/figures.py", "pts = curve(rows, key, probes=probes)\n", "pts = curve(rows, key, probes=probes)[1:]\n",
        "tests/test_reproduce.py::test_error_curves_start_at_epoch_0_show_the_probes_and_the_chance_line"),
    "curves-no-chance-line": (
        "sims/figures.py", '            a.axhline(c, color="0.35", lw=1.0, ls="--", zorder=0)\n', "",
        "tests/test_reproduce.py::test_error_curves_start_at_epoch_0_show_the_probes_and_the_chance_line"),
    "captions-budget-text": (
        "sims/figures.py", "{matrix.name}'. {text}\"",
        "{matrix.name}': {matrix.description}.\"",
        "tests/test_reproduce.py::test_training_figure_captions_name_each_rows_images_epochs_steps_and_seeds[fig04]"),
    "fig5-axis-from-zero": (
        "sims/figures.py", "lo = max(0.0, np.floor(lo_v - 0.5 * span))", "lo = 0.0",
        "tests/test_reproduce.py::test_fig5_axis_shows_point_differences"),
    "fig9-untied-not-red": (
        "sims/figures.py", 'TIED, UNTIED = "#2166ac", "#d7301f"', 'TIED, UNTIED = "#2166ac", "#92c5de"',
        "tests/test_reproduce.py::test_fig9_is_tied_blue_untied_red_and_names_the_protocol_of_each_untied_row"
        "[rows0-kinds0]"),
    "correlation-without-probes": (
        "sims/figures.py", 'stats(got[p], "alignment", probes=True,', 'stats(got[p], "alignment", probes=False,',
        "tests/test_reproduce.py::test_correlation_figures_give_each_layer_a_panel_of_its_own_scale_from_epoch_0"),
    # a newcomer's first commands: bad input before side effects, defaults that learn, complete figures
    "parser-error-is-the-usage-block": (
        "sims/cli.py", '        _report(UsageError(f"{message} (see {self.prog} --help)"))\n        sys.exit(2)\n',
        "        super().error(message)\n",
        "tests/test_cli.py::test_train_bad_input_is_one_line_exit_2_and_leaves_runs_unchanged[--lr abc]"),
    "train-epochs-0-accepted": (
        "sims/train.py", "        if args.epochs < 1:\n", "        if False:\n",
        "tests/test_cli.py::test_train_bad_input_is_one_line_exit_2_and_leaves_runs_unchanged[--epochs 0]"),
    "train-data-loaded-after-the-run-directory": (
        "sims/train.py", "    config, out, dataset, network = prepare(args)\n    cli.writable(out)",
        "    cli.writable(args.out or 'runs/new-run')\n    config, out, dataset, network = prepare(args)",
        "tests/test_cli.py::test_train_bad_input_is_one_line_exit_2_and_leaves_runs_unchanged[--data digit]"),
    "resume-hint-without-out": (
        "sims/train.py", '"python", script, "--out", str(out), "--resume"', '"python", script, "--resume"',
        "tests/test_cli.py::test_train_ctrl_c_prints_the_whole_resume_command_and_it_continues_the_run"),
    "run-files-mode-0600": (
        "models/train.py", "        os.fchmod(fd, 0o666 & ~_umask())\n", "",
        "tests/test_train.py::test_run_files_get_the_mode_of_an_ordinary_new_file[18-420]"),
    "digits-batch-500": (
        "sims/train.py", 'BATCH_SIZE = {"digits": 20}', 'BATCH_SIZE = {"digits": 500}',
        "tests/test_cli.py::test_train_batch_size_default_is_per_data_set_and_written_in_help"),
    "toggle-veto-is-not-the-veto": (
        "sims/error_signals.py", '"circuit veto": dict(readout="veto", **circuit)',
        '"circuit veto": dict(readout="phase 3", cycles=3, **circuit)',
        "tests/test_error_signals.py::"
        "test_veto_and_shutdown_circuits_train_exactly_as_the_ideal_signals_and_the_other_readouts_do_not"),
    "figure-audit-counts-reference-lines": (
        "tests/figure_audit/figure_audit.py", "        if _in_data_coords(line.get_transform(), ax):\n",
        "        if True:\n",
        "tests/test_figure_audit.py::test_reference_lines_shading_text_and_nan_are_not_data"),
    "figure-panel-emptied": (
        "sims/linear_theory.py", "    ax[2].semilogy(run.t, np.maximum(np.abs(run.e[:, j]), 1e-9),",
        "    ax[2].semilogy([], [],",
        "tests/test_reproduce.py::test_no_figure_of_the_smoke_budget_has_an_empty_panel"),
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
    if "--help" in argv or "-h" in argv:
        print(__doc__.strip())
        return 0
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
