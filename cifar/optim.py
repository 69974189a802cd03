"""Named optimizers with default learning rates, and the per-step learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one named optimizer; ``default_lr`` is used when a config gives no ``lr``."""

    build: Callable[[list[dict], float, float], list[torch.optim.Optimizer]]
    default_lr: float
    description: str


def _param_groups(model: nn.Module, weight_decay: float, bias_lr_scale: float) -> list[dict]:
    """Split parameters so weight decay applies to weight matrices and kernels, not biases or norms.

    Biases and norm parameters learn ``bias_lr_scale`` times faster than the rest.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": bias_lr_scale},
    ]


def _single(factory: Callable[..., torch.optim.Optimizer], **options):
    def build(groups: list[dict], lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        return [factory(groups, lr=lr, **options)]

    return build


def _muon(groups: list[dict], lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """Muon for 2-D weight matrices, AdamW for everything else (kernels, biases, norms).

    torch.optim.Muon orthogonalizes 2-D updates only, so 4-D conv kernels go to AdamW, with its
    learning rate scaled by ``MUON_ADAMW_LR_RATIO`` since the two optimizers' step sizes differ.
    """
    matrices = [p for group in groups for p in group["params"] if p.ndim == 2]
    rest_groups = [
        {**group, "params": [p for p in group["params"] if p.ndim != 2]} for group in groups
    ]
    optimizers = [torch.optim.AdamW(rest_groups, lr=lr * MUON_ADAMW_LR_RATIO)]
    if matrices:
        optimizers.append(torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"))
    return optimizers


MUON_ADAMW_LR_RATIO = 1.0

# Default learning rates were picked by `cifar lr-sweep` (tutorial model, all 50,000 training
# images, 3 epochs, seed 0, a half-decade log grid): each is the grid point with the lowest final
# training loss. The sweep table and its command are in docs/optimizers.md.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(_single(torch.optim.SGD), 0.316, "plain SGD, no momentum"),
    "momentum": OptimizerSpec(
        _single(torch.optim.SGD, momentum=0.9, nesterov=True), 0.0316, "SGD with Nesterov momentum 0.9"
    ),
    "adam": OptimizerSpec(_single(torch.optim.Adam), 3.16e-3, "Adam, weight decay as L2 in the gradient"),
    "adamw": OptimizerSpec(_single(torch.optim.AdamW), 3.16e-3, "AdamW, decoupled weight decay"),
    "rmsprop": OptimizerSpec(_single(torch.optim.RMSprop, alpha=0.99), 3.16e-3, "RMSprop, alpha 0.99"),
}
if hasattr(torch.optim, "Muon"):
    OPTIMIZERS["muon"] = OptimizerSpec(_muon, 3.16e-3, "Muon on 2-D weights, AdamW on the rest")


def build_optimizers(
    name: str, model: nn.Module, lr: float | None, weight_decay: float, bias_lr_scale: float = 1.0
) -> list[torch.optim.Optimizer]:
    """Build the named optimizer(s) for ``model``; ``lr=None`` takes the optimizer's default."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    groups = _param_groups(model, weight_decay, bias_lr_scale)
    optimizers = spec.build(groups, lr or spec.default_lr, weight_decay)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["initial_lr"] = group["lr"] * group.get("lr_scale", 1.0)
    return optimizers


SCHEDULES = ("onecycle", "cosine", "constant")


def lr_factor(step: int, total_steps: int, warmup_fraction: float, schedule: str) -> float:
    """Return the multiplier on the peak learning rate at ``step`` (0-based).

    ``onecycle`` rises linearly from 0.1 to 1 over the warm-up, then falls linearly to 0;
    ``cosine`` warms up the same way, then follows a half cosine to 0; ``constant`` stays at 1.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return 1.0
    warmup_steps = max(1, round(total_steps * warmup_fraction))
    if step < warmup_steps:
        return 0.1 + 0.9 * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if schedule == "onecycle":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_lr(optimizers: Iterable[torch.optim.Optimizer], factor: float) -> float:
    """Set every group's learning rate to ``initial_lr * factor``; return the first group's."""
    first = None
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
            first = group["lr"] if first is None else first
    return first


class Lookahead:
    """Keep a slow copy of the weights and pull the model back to it every ``every`` steps.

    Each pull moves the slow copy toward the model by ``1 - decay`` and then loads it into the
    model. ``decay`` ramps up as ``max_decay * progress**3``, so early training runs almost
    unhindered and late training averages over many steps. Float buffers (BatchNorm statistics)
    are averaged with the weights.
    """

    def __init__(self, model: nn.Module, max_decay: float, every: int = 5) -> None:
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.tensors]
        self.max_decay = max_decay
        self.every = every

    @torch.no_grad()
    def step(self, step: int, total_steps: int) -> None:
        """Call after optimizer step number ``step`` (1-based) of ``total_steps``."""
        if step % self.every:
            return
        decay = self.max_decay * (step / total_steps) ** 3
        for slow, tensor in zip(self.slow, self.tensors):
            slow.lerp_(tensor, 1 - decay)
            tensor.copy_(slow)

    @torch.no_grad()
    def finish(self) -> None:
        """Load the slow copy into the model for good."""
        for slow, tensor in zip(self.slow, self.tensors):
            tensor.copy_(slow)
