# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Training-side view of snac's residual vector quantizer: its losses, and codebook upkeep.

snac's `ResidualVectorQuantize.forward` returns only the quantized latent and the codes. `quantize_with_losses` runs
the same modules (`in_proj`, `decode_latents`, `out_proj` of each level: no weight renamed, no module replaced) and
also returns what training needs: the codebook and commitment terms of VQ-VAE (as DAC computes them for this
factorised, L2-normalised quantizer) and each level's projected encoder output, for usage statistics and dead-code
re-initialisation (`CodebookMonitor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class QuantizerTrainingOutput:
    latents: torch.Tensor  # straight-through quantized latent, what the decoder reads: [batch, dim, steps]
    codes: list[torch.Tensor]  # per level, coarse first: [batch, steps // stride]
    projected: list[torch.Tensor]  # per level, the encoder output in codebook space: [batch, codebook_dim, steps']
    codebook_loss: torch.Tensor  # moves the codes towards the encoder outputs
    commitment_loss: torch.Tensor  # keeps the encoder outputs near their codes


def quantize_with_losses(quantizer, latents: torch.Tensor) -> QuantizerTrainingOutput:
    """snac's `ResidualVectorQuantize.forward(latents)` (same result, same modules) plus the VQ losses.

    Per level: `z_e = in_proj(avg_pool(residual))`, `z_q` = the nearest code (cosine distance, snac's
    `decode_latents`); codebook term `mse(z_q, sg(z_e))`, commitment term `mse(z_e, sg(z_q))` (summed over levels),
    straight-through `z_e + sg(z_q - z_e)` into `out_proj`, repeated back to the latent rate."""
    quantized = 0.0
    residual = latents
    codes, projected = [], []
    codebook_loss = commitment_loss = latents.new_zeros(())
    for level in quantizer.quantizers:
        pooled = F.avg_pool1d(residual, level.stride, level.stride) if level.stride > 1 else residual
        z_e = level.in_proj(pooled)
        z_q, indices = level.decode_latents(z_e)
        codebook_loss = codebook_loss + F.mse_loss(z_q, z_e.detach())
        commitment_loss = commitment_loss + F.mse_loss(z_e, z_q.detach())
        z_q = z_e + (z_q - z_e).detach()
        z_q = level.out_proj(z_q)
        if level.stride > 1:
            z_q = z_q.repeat_interleave(level.stride, dim=-1)
        quantized = quantized + z_q
        residual = residual - z_q
        codes.append(indices)
        projected.append(z_e.detach())
    return QuantizerTrainingOutput(quantized, codes, projected, codebook_loss, commitment_loss)


def perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of a code histogram: the number of equally used codes with the same spread (0 when empty)."""
    total = counts.sum()
    if total == 0:
        return 0.0
    probs = counts[counts > 0].double() / total
    return math.exp(-(probs * probs.log()).sum().item())


class CodebookMonitor:
    """Usage statistics and dead-code re-initialisation for the levels of a residual VQ.

    A code is *dead* when it has never been chosen (nor re-initialised) since training began — the random initial
    codebook, of which a fresh encoder picks a handful — or when its level has seen `window_refills * codebook_size`
    encoder vectors since the code was last chosen or re-initialised. Early in training the encoder outputs move fast
    and a few codes take everything, so the window grows with training: half the vectors the level has seen so far,
    up to the full `window_refills * codebook_size`. The window is counted in vectors, not steps, because the levels see different
    numbers of vectors per batch (a coarse level sees a quarter of the fine level's), and it must be several
    "refills" of the codebook long: with a window shorter than the time a uniformly used codebook needs to pick every
    code once, live codes are declared dead again and again (measured: a 100-step window over 36 coarse vectors per
    step, i.e. < 1 refill, churned hundreds of codes per check to the end). Dead codes are re-initialised from
    encoder outputs of recent batches (a ring buffer per level), chosen at random with a seeded generator, and their
    optimizer moments are reset.
    """

    def __init__(self, num_levels: int, codebook_size: int, codebook_dim: int, window_refills: float = 4.0,
                 buffer_size: int = 8192, device: torch.device | str = "cpu"):  # fmt: skip
        if window_refills <= 0:
            raise ValueError(f"`window_refills` must be > 0, got {window_refills}.")
        self.num_levels, self.codebook_size, self.codebook_dim = num_levels, codebook_size, codebook_dim
        self.window = int(math.ceil(window_refills * codebook_size))
        self.buffer_size = buffer_size
        self.seen = torch.zeros(num_levels, dtype=torch.long)  # vectors seen per level
        self.last_used = torch.zeros(num_levels, codebook_size, dtype=torch.long)  # `seen` when each code was last used
        self.buffer = torch.zeros(num_levels, buffer_size, codebook_dim)
        self.buffer_fill = torch.zeros(num_levels, dtype=torch.long)  # vectors written into each ring buffer so far
        self.ever_used = torch.zeros(num_levels, codebook_size, dtype=torch.bool)  # chosen or re-initialised once
        self.counts = torch.zeros(num_levels, codebook_size, dtype=torch.long)  # usage since the last `take_usage`
        self.revived_total = torch.zeros(num_levels, dtype=torch.long)

    @torch.no_grad()
    def update(self, codes: list[torch.Tensor], projected: list[torch.Tensor]):
        """Records one batch: the codes chosen at every level and the encoder vectors they quantized."""
        for level, (indices, vectors) in enumerate(zip(codes, projected)):
            indices = indices.reshape(-1).cpu()
            self.seen[level] += indices.numel()
            self.last_used[level, indices] = self.seen[level]
            self.ever_used[level, indices] = True
            self.counts[level] += torch.bincount(indices, minlength=self.codebook_size)
            vectors = vectors.transpose(1, 2).reshape(-1, self.codebook_dim).float().cpu()[-self.buffer_size :]
            positions = (self.buffer_fill[level] + torch.arange(len(vectors))) % self.buffer_size
            self.buffer[level, positions] = vectors
            self.buffer_fill[level] += len(vectors)

    def dead_codes(self, level: int) -> torch.Tensor:
        window = max(1, min(self.window, int(self.seen[level]) // 2))
        stale = self.seen[level] - self.last_used[level] >= window
        return torch.nonzero(stale | ~self.ever_used[level]).flatten()

    @torch.no_grad()
    def revive(self, quantizer, optimizer=None, generator: torch.Generator | None = None) -> list[int]:
        """Re-initialises the dead codes of every level from its buffer; returns how many per level."""
        revived = []
        for level, vq in enumerate(quantizer.quantizers):
            dead = self.dead_codes(level)
            available = int(min(self.buffer_fill[level], self.buffer_size))
            if len(dead) == 0 or available == 0:
                revived.append(0)
                continue
            picks = torch.randint(available, (len(dead),), generator=generator)
            vectors = self.buffer[level, picks]
            # A little noise keeps codes drawn from the same vector apart (the nearest-code search breaks ties by index).
            vectors = vectors + 0.01 * vectors.norm(dim=-1, keepdim=True) * torch.randn(vectors.shape, generator=generator)
            weight = vq.codebook.weight
            weight[dead.to(weight.device)] = vectors.to(weight.device, weight.dtype)
            if optimizer is not None:
                state = optimizer.state.get(weight, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        state[key][dead.to(weight.device)] = 0
            self.last_used[level, dead] = self.seen[level]
            self.ever_used[level, dead] = True
            self.revived_total[level] += len(dead)
            revived.append(len(dead))
        return revived

    def take_usage(self) -> list[dict]:
        """Per level since the last call: codes used and perplexity; then starts a new count."""
        stats = [{"codes_used": int((counts > 0).sum()), "perplexity": round(perplexity(counts), 1)}
                 for counts in self.counts]  # fmt: skip
        self.counts.zero_()
        return stats

    def state_dict(self) -> dict:
        return {name: getattr(self, name).clone() for name in
                ("seen", "last_used", "ever_used", "buffer", "buffer_fill", "counts", "revived_total")}  # fmt: skip

    def load_state_dict(self, state: dict):
        for name, value in state.items():
            current = getattr(self, name)
            if current.shape != value.shape:
                raise ValueError(f"Codebook monitor state `{name}` has shape {tuple(value.shape)}, expected "
                                 f"{tuple(current.shape)}: the checkpoint belongs to a different codec config.")  # fmt: skip
            setattr(self, name, value.clone())


__all__ = ["CodebookMonitor", "QuantizerTrainingOutput", "perplexity", "quantize_with_losses"]
