# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""A fused Snake activation for training: snac's `x + sin(alpha * x)^2 / (alpha + 1e-9)` as one autograd function.

snac's scripted `snake` keeps three intermediates per call for its backward (`alpha * x`, its sine, the square) and
runs seven kernels there; Snake is about half of a small SNAC's CPU step. The function below computes the forward
with the same operations in the same order (so the output is bit-identical to snac's), keeps only `x` and the sine,
and computes both gradients from one cosine:

    d/dx     = 1 + alpha / (alpha + eps) * sin(2 alpha x)
    d/dalpha = x * sin(2 alpha x) / (alpha + eps) - sin(alpha x)^2 / (alpha + eps)^2

`fuse_snake(model)` swaps every `snac.layers.Snake1d` for `FusedSnake1d` in place: same class family, same `alpha`
parameter, so state-dict names and checkpoints are unchanged.
"""

import torch

from ...modeling.modeling_deepomni_codec import Snake1d


SNAKE_EPS = 1e-9  # snac's


class _SnakeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        inverse = (alpha + SNAKE_EPS).reciprocal()
        sine = torch.sin(alpha * x)
        # x + inverse * sine^2, as snac computes it (multiplication and addition commute exactly in IEEE arithmetic).
        out = sine.pow(2).mul_(inverse).add_(x)
        ctx.save_for_backward(x, alpha, sine)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, alpha, sine = ctx.saved_tensors
        inverse = (alpha + SNAKE_EPS).reciprocal()
        # sin(2 alpha x) = 2 sin(alpha x) cos(alpha x)
        double_sine = torch.cos(alpha * x).mul_(sine).mul_(2.0)
        grad_double = grad * double_sine
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.addcmul(grad, grad_double, alpha * inverse)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            reduce_dims = [dim for dim in range(x.dim()) if dim != 1]
            first = (grad_double * x).sum(reduce_dims, keepdim=True)
            second = (grad * sine.square()).sum(reduce_dims, keepdim=True)
            grad_alpha = (first * inverse - second * inverse.square()).view_as(alpha)
        return grad_x, grad_alpha


def fused_snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """snac's `snake(x, alpha)` (x `[batch, channels, time]`, alpha `[1, channels, 1]`) as one autograd function."""
    return _SnakeFunction.apply(x, alpha)


class FusedSnake1d(Snake1d):
    """`snac.layers.Snake1d` with the fused function; the same `alpha` parameter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            return super().forward(x)
        return fused_snake(x, self.alpha)


def _swap_class(model: torch.nn.Module, old: type, new: type) -> int:
    count = 0
    for module in model.modules():
        if type(module) is old:
            module.__class__ = new
            count += 1
    return count


def fuse_snake(model: torch.nn.Module) -> int:
    """Turns every `Snake1d` of `model` into a `FusedSnake1d` in place (its parameter is kept); returns how many."""
    return _swap_class(model, Snake1d, FusedSnake1d)


def unfuse_snake(model: torch.nn.Module) -> int:
    """Undoes `fuse_snake` (back to snac's own activation); returns how many."""
    return _swap_class(model, FusedSnake1d, Snake1d)


__all__ = ["FusedSnake1d", "fuse_snake", "fused_snake", "unfuse_snake"]
