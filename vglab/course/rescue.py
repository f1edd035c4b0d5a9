"""Assignment 3's measurements of a network, shared by the notebook (its locked set-up cell imports them) and the
out-of-kernel judge (``vglab.course.grading``), so the student sees exactly the computation that grades them.
"""

from __future__ import annotations

import functools

import numpy as np

import vglab

TRAINING = dict(data="digits", steps=200, optimizer="sgd", learning_rate=0.03, batch_size=64)


def gradient_report(net, seed=0, n_seeds=8):
    """Mean over seeds of: log10 ‖∂L/∂h_0‖/‖∂L/∂h_L‖, and log10 ‖∂L/∂W_1‖/‖∂L/∂W_L‖ (first vs last layer)."""
    norms = vglab.gradient_norms(net, seed=seed, n_seeds=n_seeds)
    weight_ratio = norms.log10_weight_grad[:, 0] - norms.log10_weight_grad[:, -1]
    return float(np.mean(norms.log10_gradient_ratio)), float(np.mean(weight_ratio))


@functools.cache
def training_report(net, seeds=(0, 1)):
    """Train ``net`` with vglab.train(net, seed=s, **TRAINING) for each seed.  Returns (test accuracies,
    log10 of the first 3 layers' mean update-to-weight ratio ‖ΔW‖/‖W‖ over the last 3 layers'), one per seed;
    a run that diverged scores accuracy 0 and ratio −inf, as does a first layer that never moved."""
    accuracies, layer_ratios = [], []
    for seed in seeds:
        history = vglab.train(net, seed=seed, **TRAINING)
        ratios = history.update_ratio[10:].mean(axis=0)
        ok = not history.diverged and history.test_accuracy.size > 0 and ratios[:3].mean() > 0
        accuracies.append(float(history.test_accuracy[-1]) if ok else 0.0)
        layer_ratios.append(float(np.log10(ratios[:3].mean() / ratios[-3:].mean())) if ok else -np.inf)
    return accuracies, layer_ratios
