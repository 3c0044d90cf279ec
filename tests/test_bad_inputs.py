"""Bad input to the public API gets a TypeError or ValueError that names the argument.

Each case calls one public function or class with one wrong argument: a wrong type, shape or
dtype, an empty tensor, NaN or infinity, or a value out of range. The error must be a
TypeError (wrong kind of thing) or ValueError (right kind, wrong value) and its message must
name the argument, so nothing fails deep inside PyTorch and nothing goes silently wrong. The
last test checks that every public callable of these modules is probed at least once.
"""

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lessons_lib import (  # noqa: E402
    data,
    diagrams,
    display,
    ensemble,
    models,
    normalization,
    plotting,
    probes,
    progress,
    recurrent,
    residual,
    seeding,
    stats,
    training,
    variance,
    widgets,
)

NAN, INF = math.nan, math.inf
X = torch.randn(4, 8)  # a good input of 8 features
GEN = torch.Generator


@dataclass(frozen=True)
class Case:
    target: object  # the public function or class under test
    call: Callable[[], object]
    error: type[Exception]
    match: str  # must appear in the message: the argument's name and what was expected

    def __str__(self) -> str:
        return f"{getattr(self.target, '__qualname__', self.target)}: {self.match}"


def case(target, call, error, match):
    return Case(target, call, error, match)


N = normalization
CASES = [
    # --- normalization -----------------------------------------------------------------------
    case(N.layer_norm_forward, lambda: N.layer_norm_forward(X.numpy()), TypeError,
         "x must be a torch.Tensor"),
    case(N.layer_norm_forward, lambda: N.layer_norm_forward(X.long()), TypeError,
         "x must be a floating-point tensor"),
    case(N.layer_norm_forward, lambda: N.layer_norm_forward(torch.ones(3, 0)), ValueError,
         "x must have at least one feature"),
    case(N.layer_norm_forward, lambda: N.layer_norm_forward(X, torch.ones(7)), ValueError,
         r"weight must have shape \(8,\)"),
    case(N.layer_norm_forward, lambda: N.layer_norm_forward(X, eps=NAN), ValueError,
         "eps must be a finite number >= 0"),
    case(N.rms_norm_forward, lambda: N.rms_norm_forward(X, None, torch.ones(8, 1)), ValueError,
         r"bias must have shape \(8,\)"),
    case(N.rms_norm_forward, lambda: N.rms_norm_forward(X, eps=-1.0), ValueError,
         "eps must be >= 0"),
    case(N.norm_backward, lambda: N.norm_backward(torch.ones(4, 7),
                                                  N.layer_norm_forward(X)[1]), ValueError,
         r"dout must have shape \(4, 8\)"),
    case(N.norm_backward, lambda: N.norm_backward(X, (X, None)), TypeError, "cache must be"),
    case(N.normalize, lambda: N.normalize(X, "batchnorm"), ValueError, "kind must be one of"),
    case(N.normalize_explicit, lambda: N.normalize_explicit(X, "LayerNorm"), ValueError,
         "kind must be one of"),
    case(N.normalize_explicit, lambda: N.normalize_explicit(X, eps=INF), ValueError,
         "eps must be a finite number"),
    case(N.compute_dtype, lambda: N.compute_dtype("float16"), TypeError, "dtype must be"),
    case(N.compute_dtype, lambda: N.compute_dtype(torch.int64), TypeError, "dtype must be"),
    case(N.LayerNorm, lambda: N.LayerNorm(0), ValueError, "normalized_shape must be >= 1"),
    case(N.LayerNorm, lambda: N.LayerNorm(-3), ValueError, "normalized_shape must be >= 1"),
    case(N.LayerNorm, lambda: N.LayerNorm(8.0), TypeError, "normalized_shape must be an int"),
    case(N.LayerNorm, lambda: N.LayerNorm(8, bias="yes"), TypeError, "bias must be a bool"),
    case(N.LayerNorm, lambda: N.LayerNorm(8, elementwise_affine=False)(torch.ones(2, 7)),
         ValueError, "x must have 8 features"),
    case(N.LayerNorm, lambda: N.LayerNorm(8)(X.int()), TypeError, "x must be a floating-point"),
    case(N.RMSNorm, lambda: N.RMSNorm(8, eps=-1e-6), ValueError, "eps must be >= 0"),
    case(N.RMSNorm, lambda: N.RMSNorm(8, explicit_backward=1), TypeError,
         "explicit_backward must be a bool"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(torch.ones(8)), ValueError,
         "x must have at least 2 dimension"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(X, torch.zeros(8), None), ValueError,
         "running_var is None"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(X, momentum=1.5), ValueError,
         r"momentum must be in \[0.0, 1.0\]"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(X, momentum=NAN), ValueError,
         "momentum must be finite"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(torch.ones(0, 8)), ValueError,
         "x must hold more than one value per feature"),
    case(N.batch_norm_forward, lambda: N.batch_norm_forward(X, training="yes"), TypeError,
         "training must be a bool"),
    case(N.BatchNorm, lambda: N.BatchNorm(0), ValueError, "num_features must be >= 1"),
    case(N.BatchNorm, lambda: N.BatchNorm(8, momentum=1.5), ValueError,
         r"momentum must be in \[0.0, 1.0\]"),
    case(N.BatchNorm, lambda: N.BatchNorm(8, momentum=None), TypeError,
         "momentum must be a number"),
    case(N.BatchNorm, lambda: N.BatchNorm(8)(torch.ones(4, 7)), ValueError,
         "x must have 8 features"),
    case(N.BatchNorm, lambda: N.BatchNorm(8)(torch.ones(1, 8)), ValueError,
         "x must hold more than one value per feature"),
    case(N.make_norm, lambda: N.make_norm("layer", 8), ValueError, "norm must be one of"),
    case(N.make_norm, lambda: N.make_norm("batch", 8), ValueError, "norm must be one of"),
    case(N.make_norm, lambda: N.make_norm("layernorm", 0), ValueError, "features must be >= 1"),
    case(N.make_norm, lambda: N.make_norm("layernorm", 8, eps=-1.0), ValueError,
         "eps must be >= 0"),
    case(N.make_norm, lambda: N.make_norm(lambda n: 3, 8), TypeError,
         r"norm\(features\) must return an nn.Module"),
    # --- variance ----------------------------------------------------------------------------
    case(variance.naive_variance, lambda: variance.naive_variance([1.0, 2.0]), TypeError,
         "x must be a torch.Tensor"),
    case(variance.two_pass_variance, lambda: variance.two_pass_variance(torch.arange(4)),
         TypeError, "x must be a floating-point"),
    case(variance.welford_state, lambda: variance.welford_state(torch.ones(2, 0)), ValueError,
         "x must have at least one value per row"),
    case(variance.welford_variance, lambda: variance.welford_variance(torch.ones(2, 0)),
         ValueError, "x must have at least one value per row"),
    case(variance.welford_variance, lambda: variance.welford_variance(X, chunks=9), ValueError,
         "chunks must be <= the row length 8"),
    case(variance.welford_variance, lambda: variance.welford_variance(X, chunks=2.0), TypeError,
         "chunks must be an int"),
    case(variance.welford_merge, lambda: variance.welford_merge(
        variance.welford_state(X), X), TypeError, "b must be a WelfordState"),
    # --- models ------------------------------------------------------------------------------
    case(models.he_linear, lambda: models.he_linear(0, 4), ValueError, "in_features must be >= 1"),
    case(models.he_linear, lambda: models.he_linear(4, 4, gain=INF), ValueError,
         "gain must be a finite number"),
    case(models.he_linear, lambda: models.he_linear(4, 4, generator=0), TypeError,
         "generator must be a torch.Generator or None"),
    case(models.default_linear, lambda: models.default_linear(4, "4"), TypeError,
         "out_features must be an int"),
    case(models.default_linear, lambda: models.default_linear(4, 4, bias=None), TypeError,
         "bias must be a bool"),
    case(models.count_parameters, lambda: models.count_parameters({"w": torch.ones(2)}),
         TypeError, "module must be an nn.Module"),
    case(models.make_mlp, lambda: models.make_mlp(4, 8, 2, 2, norm="layer"), ValueError,
         "norm must be one of"),
    case(models.make_mlp, lambda: models.make_mlp(4, 8, 2, 2, weight_scale=INF), ValueError,
         "weight_scale must be a finite number"),
    case(models.make_mlp, lambda: models.make_mlp(4, 8, 2, 2, weight_scale=-1.0), ValueError,
         "weight_scale must be > 0"),
    case(models.make_mlp, lambda: models.make_mlp(4, 8, 2, 0), ValueError, "depth must be >= 1"),
    case(models.make_mlp, lambda: models.make_mlp(4, 8, 2, 2, activation="swish"), ValueError,
         "activation must be one of"),
    # --- residual ----------------------------------------------------------------------------
    case(residual.Projection, lambda: residual.Projection(8, 16, norm="batch"), ValueError,
         "norm must be one of"),
    case(residual.Projection, lambda: residual.Projection(8, 16)(torch.ones(3, 9)), ValueError,
         r"x must have shape \(batch, 8\)"),
    case(residual.residual_block, lambda: residual.residual_block(8, placement="post"),
         ValueError, "placement must be one of"),
    case(residual.residual_block, lambda: residual.residual_block(8, 16, shortcut="identity"),
         ValueError, "shortcut='identity' needs in_features == out_features"),
    case(residual.residual_block, lambda: residual.residual_block(8, norm="layer"), ValueError,
         "norm must be one of"),
    case(residual.residual_block, lambda: residual.residual_block(8, generator="g"), TypeError,
         "generator must be a torch.Generator or None"),
    case(residual.plain_block, lambda: residual.plain_block(8, 8.0), TypeError,
         "out_features must be an int"),
    case(residual.OriginalBlock, lambda: residual.OriginalBlock(0), ValueError,
         "in_features must be >= 1"),
    case(residual.OriginalBlock, lambda: residual.OriginalBlock(8)(torch.ones(2, 3, 8)),
         ValueError, r"x must have shape \(batch, 8\)"),
    case(residual.BNAfterAddBlock, lambda: residual.BNAfterAddBlock(8)(torch.ones(2, 7)),
         ValueError, r"x must have shape \(batch, 8\)"),
    case(residual.ReLUBeforeAddBlock, lambda: residual.ReLUBeforeAddBlock(8, shortcut="zero"),
         ValueError, "shortcut must be one of"),
    case(residual.PreActivationBlock, lambda: residual.PreActivationBlock(8)(X.long()),
         TypeError, "x must be a floating-point"),
    case(residual.ReLUOnlyPreActBlock, lambda: residual.ReLUOnlyPreActBlock(8)(torch.ones(3, 6)),
         ValueError, r"x must have shape \(batch, 8\)"),
    case(residual.Block, lambda: residual.Block(8), TypeError, "build a block with"),
    case(residual.BlockNet, lambda: residual.BlockNet("stem", [], nn.Identity()), TypeError,
         "stem must be an nn.Module"),
    case(residual.BlockNet, lambda: residual.make_net("residual", 6, 8, 4, 3)(torch.ones(2, 5)),
         ValueError, r"x must have shape \(batch, 4\)"),
    case(residual.BlockNet, lambda: residual.make_net("residual", 6, 8, 4, 3)(
        torch.ones(2, 4), drop=[np.int64(7)]), ValueError, "drop index must be < 2"),
    case(residual.BlockNet, lambda: residual.make_net("residual", 6, 8, 4, 3)(
        torch.ones(2, 4), drop=["0"]), TypeError, "drop index must be an int"),
    case(residual.depth_to_blocks, lambda: residual.depth_to_blocks(7), ValueError,
         "depth must be even"),
    case(residual.make_net, lambda: residual.make_net("resnet", 6, 8, 4, 3), ValueError,
         "kind must be one of"),
    case(residual.make_net, lambda: residual.make_net("plain", 6, 8, 4, 3, norm="batch"),
         ValueError, "norm must be one of"),
    case(residual.make_net, lambda: residual.make_net("plain", 6, 8, 4, 1), ValueError,
         "classes must be >= 2"),
    case(residual.make_net, lambda: residual.make_net("plain", 6, 8, 4, 3,
                                                      zero_init_residual=1),
         TypeError, "zero_init_residual must be a bool"),
    # --- recurrent ---------------------------------------------------------------------------
    case(recurrent.RecurrentCell, lambda: recurrent.RecurrentCell(3, 4)(torch.ones(2, 4),
                                                                        torch.ones(2, 4)),
         ValueError, r"x_t must have shape \(batch, 3\)"),
    case(recurrent.RecurrentCell, lambda: recurrent.RecurrentCell(3, 4)(torch.ones(2, 3),
                                                                        torch.ones(2, 3)),
         ValueError, r"h must have shape \(batch, 4\)"),
    case(recurrent.RecurrentCell, lambda: recurrent.RecurrentCell(3, 4, recurrent_gain=INF),
         ValueError, "recurrent_gain must be a finite number"),
    case(recurrent.RecurrentCell, lambda: recurrent.RecurrentCell(3, 4, generator=1), TypeError,
         "generator must be a torch.Generator or None"),
    case(recurrent.RNN, lambda: recurrent.RNN(3, 4)(torch.ones(2, 0, 3)), ValueError,
         "at least one time step"),
    case(recurrent.RNN, lambda: recurrent.RNN(3, 4)(torch.ones(2, 5, 4)), ValueError,
         r"x must have shape \(batch, time, 3\)"),
    case(recurrent.RNNClassifier, lambda: recurrent.RNNClassifier(3, 4, 0), ValueError,
         "num_classes must be >= 1"),
    case(recurrent.RNNClassifier, lambda: recurrent.RNNClassifier(3, 4, 2, layer_norm="yes"),
         TypeError, "layer_norm must be a bool"),
    # --- training ----------------------------------------------------------------------------
    case(training.TrainConfig, lambda: training.TrainConfig(lr=INF), ValueError,
         "lr must be a finite number > 0"),
    case(training.TrainConfig, lambda: training.TrainConfig(grad_clip=INF), ValueError,
         "grad_clip must be a finite number > 0"),
    case(training.TrainConfig, lambda: training.TrainConfig(betas="ab"), TypeError,
         "betas must be a pair"),
    case(training.TrainConfig, lambda: training.TrainConfig(betas=(0.9, NAN)), ValueError,
         r"betas\[1\] must be finite"),
    case(training.TrainConfig, lambda: training.TrainConfig(optimizer="rmsprop"), ValueError,
         "optimizer must be one of"),
    case(training.TrainConfig, lambda: training.TrainConfig(momentum=1.5), ValueError,
         r"momentum must be in \[0.0, 1.0\)"),
    case(training.TrainConfig, lambda: training.TrainConfig(steps=np.float64(3)), TypeError,
         "steps must be an int"),
    case(training.lr_at, lambda: training.lr_at(0, {"lr": 0.1}), TypeError,
         "config must be a TrainConfig"),
    case(training.make_optimizer, lambda: training.make_optimizer([], training.TrainConfig()),
         ValueError, "params is empty"),
    case(training.make_optimizer, lambda: training.make_optimizer([1.0], training.TrainConfig()),
         TypeError, r"params\[0\] must be a tensor"),
    case(training.make_optimizer,
         lambda: training.make_optimizer([torch.zeros(2)], training.TrainConfig(), stacked_dims=-1),
         ValueError, "stacked_dims must be"),
    case(training.cross_entropy_loss, lambda: training.cross_entropy_loss(nn.Identity(), X),
         TypeError, "batch must be a pair"),
    case(training.train, lambda: training.train(None, lambda s: None), TypeError,
         "model must be an nn.Module"),
    case(training.train, lambda: training.train(nn.Linear(1, 1), lambda s: None,
                                                lambda m, b: 0.5,
                                                training.TrainConfig(steps=1, progress=False)),
         TypeError, "loss_fn must return a scalar torch.Tensor"),
    case(training.train, lambda: training.train(nn.Linear(1, 1), lambda s: None, "mse"),
         TypeError, "loss_fn must be a callable"),
    case(training.train, lambda: training.train(nn.Linear(1, 1), lambda s: None,
                                                callbacks=[1]),
         TypeError, r"callbacks\[0\] must be a callable"),
    case(training.minibatches, lambda: training.minibatches(torch.ones(0, 3), batch_size=2),
         ValueError, r"tensors\[0\] has no rows"),
    case(training.minibatches, lambda: training.minibatches(X.numpy(), batch_size=2), TypeError,
         r"tensors\[0\] must be a torch.Tensor"),
    case(training.minibatches, lambda: training.minibatches(X, batch_size=2)(-1), ValueError,
         "step must be >= 0"),
    case(training.minibatches, lambda: training.minibatches(X, batch_size=2, sampling="random"),
         ValueError, "sampling must be one of"),
    case(training.evaluate, lambda: training.evaluate(nn.Identity(), (X, X),
                                                      lambda m, b: 1.0), TypeError,
         "loss_fn must return a scalar torch.Tensor"),
    case(training.accuracy, lambda: training.accuracy(nn.Identity(), X,
                                                      torch.zeros(4, 1, dtype=torch.long)),
         ValueError, r"targets must have shape \(4,\)"),
    case(training.accuracy, lambda: training.accuracy(nn.Identity(), X, [0, 1, 2, 3]), TypeError,
         "targets must be a torch.Tensor"),
    case(training.accuracy, lambda: training.accuracy(nn.Identity(), torch.ones(0, 3),
                                                      torch.zeros(0, dtype=torch.long)),
         ValueError, "targets is empty"),
    case(training.train_seeded, lambda: training.train_seeded(
        "0", lambda: nn.Linear(8, 2), (X, torch.zeros(4, dtype=torch.long)), batch_size=2,
        config=training.TrainConfig(steps=1, progress=False)), TypeError, "seed must be an int"),
    case(training.train_seeded, lambda: training.train_seeded(
        0, nn.Linear(8, 2), (X,), batch_size=2, config=training.TrainConfig(steps=1)),
         TypeError, "build must be a callable that returns a new model"),
    # --- progress ----------------------------------------------------------------------------
    case(progress.progress_bar, lambda: progress.progress_bar(-1, "x"), ValueError,
         "total must be >= 0"),
    case(progress.progress_bar, lambda: progress.progress_bar(3, None), TypeError,
         "desc must be a str"),
    # --- probes ------------------------------------------------------------------------------
    case(probes.gradient_norms, lambda: probes.gradient_norms([nn.Linear(2, 2)]), TypeError,
         "model must be an nn.Module"),
    case(probes.input_gradient_norms, lambda: probes.input_gradient_norms(
        [nn.Linear(2, 2)], lambda: 3.0), TypeError, "forward must return a scalar"),
    case(probes.input_gradient_norms, lambda: probes.input_gradient_norms(
        [nn.Linear(2, 2)], "loss"), TypeError, "forward must be a callable"),
    case(probes.ActivationRecorder, lambda: probes.ActivationRecorder([nn.Identity()]),
         TypeError, "modules must be a dict"),
    case(probes.ActivationRecorder, lambda: probes.ActivationRecorder({}), ValueError,
         "modules must name at least one module"),
    case(probes.MeanTap, lambda: probes.MeanTap(0), ValueError, "features must be >= 1"),
    case(probes.MeanTap, lambda: probes.MeanTap(3)(X), ValueError,
         "x must have 3 features in its last dimension"),
    case(probes.ActivationDrift, lambda: probes.ActivationDrift("layer"), TypeError,
         "module must be an nn.Module"),
    # --- data --------------------------------------------------------------------------------
    case(data.load_digits, lambda: data.load_digits(seed="a"), TypeError, "seed must be an int"),
    case(data.load_digits, lambda: data.load_digits(test_size=1797), ValueError,
         "test_size must be < 1797"),
    case(data.copy_task, lambda: data.copy_task(2, 3, 0), ValueError, "vocab must be >= 1"),
    case(data.copy_task, lambda: data.copy_task(2, 3, 5, generator=5), TypeError,
         "generator must be a torch.Generator or None"),
    case(data.gaussian_sequences, lambda: data.gaussian_sequences(2, 3, 4, scale=-1.0),
         ValueError, "scale must be >= 0"),
    case(data.gaussian_sequences, lambda: data.gaussian_sequences(2, 3, 4, offset=NAN),
         ValueError, "offset must be finite"),
    case(data.as_sequences, lambda: data.as_sequences(torch.ones(2, 12), 5), ValueError,
         "steps must divide"),
    case(data.as_sequences, lambda: data.as_sequences([[0.0] * 4], 2), TypeError,
         "x must be a torch.Tensor"),
    case(data.padded_batch, lambda: data.padded_batch([2, 3], 4, scale=-1.0), ValueError,
         "scale must be >= 0"),
    case(data.padded_batch, lambda: data.padded_batch(np.array([[2, 3]]), 4), ValueError,
         "lengths must be one-dimensional"),
    case(data.padded_batch, lambda: data.padded_batch(np.array([2.5]), 4), TypeError,
         r"lengths\[0\] must be an int"),
    case(data.padded_batch, lambda: data.padded_batch("23", 4), TypeError,
         "lengths must be a list"),
    case(data.padded_batch, lambda: data.padded_batch([], 4), ValueError,
         "lengths must hold at least one"),
    case(data.padded_batch, lambda: data.padded_batch([2], 4, pad_value=INF), ValueError,
         "pad_value must be finite"),
    # --- stats, display, plotting ------------------------------------------------------------
    case(stats.max_diff, lambda: stats.max_diff(X, X.numpy()), TypeError,
         "b must be a torch.Tensor"),
    case(stats.max_diff, lambda: stats.max_diff(torch.ones(0), torch.ones(0)), ValueError,
         "a and b are empty"),
    case(stats.spread, lambda: stats.spread([]), ValueError, "values must hold at least one"),
    case(stats.spread, lambda: stats.spread("123"), TypeError, "values must be a sequence"),
    case(stats.seed_range, lambda: stats.seed_range([1, None], "{}"), TypeError,
         r"values\[1\] must be a number"),
    case(display.markdown_table, lambda: display.markdown_table("ab", [[1, 2]]), TypeError,
         "header must be a sequence"),
    case(display.markdown_table, lambda: display.markdown_table(["a"], ["x"]), TypeError,
         r"rows\[0\] must be a sequence"),
    case(display.html_table, lambda: display.html_table(["a", "b"], [[1]]), ValueError,
         r"rows\[0\] has 1 values, expected 2"),
    case(display.myst_table, lambda: display.myst_table(["a"], [[1]], caption="x",
                                                        name="Table 1"), ValueError,
         "name must look like"),
    case(display.show_table, lambda: display.show_table(["a"], [[1]], caption="only"),
         ValueError, "give both caption and name"),
    case(plotting.color, lambda: plotting.color("layer norm"), ValueError,
         "name must be one of"),
    case(plotting.moving_average, lambda: plotting.moving_average([1.0, 2.0], window=0),
         ValueError, "window must be >= 1"),
    case(plotting.label_panels, lambda: plotting.label_panels(plotting.subplots(1, 2)[1],
                                                              "center"),
         ValueError, "loc must be one of"),
    case(plotting.plot_loss_and_error, lambda: plotting.plot_loss_and_error({}, {}), ValueError,
         "runs must hold at least one model"),
    case(plotting.subplots, lambda: plotting.subplots(0), ValueError, "rows"),
    # --- diagrams ----------------------------------------------------------------------------
    case(diagrams.draw_block, lambda: diagrams.draw_block(plotting.subplots()[1], ["W"],
                                                         projection="Ws"),
         ValueError, "projection needs a shortcut"),
    # --- widgets -----------------------------------------------------------------------------
    case(widgets.ln_steps, lambda: widgets.ln_steps(torch.tensor([1.0, NAN])), ValueError,
         "x must be finite"),
    case(widgets.ln_steps, lambda: widgets.ln_steps(torch.ones(4), shift=INF), ValueError,
         "shift must be finite"),
    case(widgets.ln_steps, lambda: widgets.ln_steps(torch.ones(4), gamma=torch.ones(3)),
         ValueError, r"gamma must be a number or have shape \(4,\)"),
    case(widgets.example_token, lambda: widgets.example_token(1), ValueError,
         "features must be >= 2"),
    case(widgets.plot_ln_steps, lambda: widgets.plot_ln_steps(torch.ones(4)), TypeError,
         "steps must be an LNSteps"),
    case(widgets.steps_table, lambda: widgets.steps_table(None), TypeError,
         "steps must be an LNSteps"),
    case(widgets.LNExplorer, lambda: widgets.LNExplorer([1.0, 2.0]), TypeError,
         "x must be a torch.Tensor"),
    case(widgets.ln_explorer, lambda: widgets.ln_explorer(torch.ones(2, 3)), ValueError,
         "x must be one token"),
    # --- ensemble ----------------------------------------------------------------------------
    case(ensemble.Ensemble, lambda: ensemble.Ensemble(nn.Linear(2, 2)), TypeError,
         "models must be a sequence of nn.Module"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([]), ValueError,
         "models must hold at least one model"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(2, 2), "layer"]), TypeError,
         r"models\[1\] must be an nn.Module"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(2, 2), nn.Linear(2, 3)]),
         ValueError, r"models\[1\] must have the parameters and buffers of models\[0\]"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(8, 2)] * 2)(X), ValueError,
         r"x must have one entry per member in its first dimension, shape \(2, ...\)"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(8, 2)]).stacked("w"),
         ValueError, "name must be a parameter or buffer of the models"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(8, 2)]).member(1), ValueError,
         r"k must be < 1 \(the number of members\)"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(8, 2)])(X[None], upto=1),
         TypeError, "upto needs models that are an nn.Sequential"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Sequential(nn.Linear(8, 2))])(
        X[None], upto=2), ValueError, "upto must be <= 1"),
    case(ensemble.Ensemble, lambda: ensemble.Ensemble([nn.Linear(8, 2)]).losses(
        X[None], torch.zeros(1, 4).long(), loss_fn="ce"), TypeError, "loss_fn must be a callable"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(nn.Linear(2, 2), []),
         TypeError, "ens must be an Ensemble"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(
        ensemble.Ensemble([nn.Linear(8, 2)] * 2), [lambda s: None]), ValueError,
         r"batches must hold one batches function per member \(2\)"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(
        ensemble.Ensemble([nn.Linear(8, 2)]), [None]), TypeError,
         r"batches\[0\] must be a callable"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(
        ensemble.Ensemble([nn.Linear(8, 2)]), [lambda s: None], {"steps": 1}), TypeError,
         "config must be a TrainConfig"),
    case(ensemble.train_seeds, lambda: ensemble.train_seeds(
        [0, 0], lambda: nn.Linear(8, 2), (X, X), batch_size=2,
        config=training.TrainConfig(steps=1, progress=False)), ValueError,
         "seeds must be distinct"),
    case(ensemble.train_seeds, lambda: ensemble.train_seeds(
        [0], nn.Linear(8, 2), (X, X), batch_size=2,
        config=training.TrainConfig(steps=1, progress=False)), TypeError,
         "build must be a callable that returns a new model"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(
        ensemble.Ensemble([nn.Linear(8, 2)]), [lambda s: None],
        training.TrainConfig(steps=1, progress=False), member_lr=[0.1, 0.2]), ValueError,
         r"member_lr must hold one learning rate per member \(1\)"),
    case(ensemble.train_ensemble, lambda: ensemble.train_ensemble(
        ensemble.Ensemble([nn.Linear(8, 2)]), [lambda s: None],
        training.TrainConfig(steps=1, progress=False), member_lr=[-0.1]), ValueError,
         r"member_lr\[0\] must be > 0"),
    case(ensemble.train_seeds, lambda: ensemble.train_seeds(
        [0, 1], [lambda: nn.Linear(8, 2)], (X, X), batch_size=2,
        config=training.TrainConfig(steps=1, progress=False)), ValueError,
         r"build must hold one builder per seed \(2\)"),
    case(ensemble.train_seeds, lambda: ensemble.train_seeds(
        [], lambda: nn.Linear(8, 2), (X, X), batch_size=2,
        config=training.TrainConfig(steps=1, progress=False)), ValueError,
         "seeds must hold at least one seed"),
    case(ensemble.evaluate_members, lambda: ensemble.evaluate_members(
        ensemble.Ensemble([nn.Linear(8, 2)]), X), TypeError,
         r"batch must be a pair of tensors \(inputs, targets\)"),
    case(ensemble.member_accuracy, lambda: ensemble.member_accuracy(
        ensemble.Ensemble([nn.Linear(8, 2)]), X, torch.zeros(4)), TypeError,
         "targets must hold integer class indices"),
    case(ensemble.member_outputs, lambda: ensemble.member_outputs(nn.Linear(8, 2), X),
         TypeError, "ens must be an Ensemble"),
    # --- seeding -----------------------------------------------------------------------------
    case(seeding.seed_everything, lambda: seeding.seed_everything(1.5), TypeError,
         "seed must be an int"),
    case(seeding.seed_everything, lambda: seeding.seed_everything(-1), ValueError,
         "seed must be >= 0"),
]


@pytest.fixture(autouse=True)
def _keep_global_state():
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_rng_state(rng)
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize("c", CASES, ids=[str(c) for c in CASES])
def test_bad_input_raises_a_clear_error(c):
    with pytest.raises(c.error, match=c.match):
        c.call()


MODULES = [normalization, variance, models, residual, recurrent, training, progress, probes,
           data, stats, display, plotting, diagrams, widgets, seeding, ensemble]
# Plain records of results (no checks of their own: the functions that build them check),
# and functions without arguments.
NOT_PROBED = {
    "NormCache", "WelfordState", "History", "Split", "LNSteps", "ActivationStats",
    "use_style", "progress_mode",
}


def test_every_public_callable_is_probed():
    public = {
        obj
        for module in MODULES
        for name, obj in vars(module).items()
        if not name.startswith("_") and name not in NOT_PROBED
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }
    probed = {c.target for c in CASES}
    missing = sorted(getattr(obj, "__qualname__", str(obj)) for obj in public - probed)
    assert not missing, f"add a bad-input case for {missing}"
