# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Modality-specific expert routing, independent of the backbone family.

Everything that makes a router modality-aware lives here, so a Qwen2/Qwen3-MoE backbone only needs to call
`restrict_router_logits` between its gate projection and its softmax, and `sequence_balance_loss` for training.
"""

import torch


def restrict_router_logits(
    router_logits: torch.Tensor,
    speech_expert_mask: torch.Tensor,
    routing_mode: str,
    speech_positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sets the router logits of the experts a token may not use to -inf, so the softmax renormalises over the rest.

    Args:
        router_logits: `[tokens, num_experts]` gate logits (float32).
        speech_expert_mask: `[num_experts]` bool, True for speech experts.
        routing_mode: `"all"`, `"speech"`, `"text"` or `"per_token"`.
        speech_positions: `[tokens]` bool, True where the token is a speech position; needed by `"per_token"`.
    """
    if routing_mode == "all":
        return router_logits
    if routing_mode == "speech":
        allowed = speech_expert_mask.unsqueeze(0)
    elif routing_mode == "text":
        allowed = ~speech_expert_mask.unsqueeze(0)
    elif routing_mode == "per_token":
        if speech_positions is None:
            raise ValueError(
                "routing_mode='per_token' needs to know which positions are speech: call the model with `input_ids` "
                "(the 8-stream layout) or pass `speech_positions`."
            )
        speech_positions = speech_positions.reshape(-1, 1)
        allowed = torch.where(speech_positions, speech_expert_mask.unsqueeze(0), ~speech_expert_mask.unsqueeze(0))
    else:
        raise ValueError(f"Unknown routing_mode {routing_mode!r}; use 'all', 'speech', 'text' or 'per_token'.")
    return router_logits.masked_fill(~allowed, float("-inf"))


def sequence_balance_loss(
    router_logits: tuple[torch.Tensor, ...],
    top_k: int,
    batch_size: int,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """DeepSeek-V2's sequence-level expert-balance loss, summed over MoE layers (multiply by alpha outside).

    Per layer and sequence: `sum_e f_e * P_e` with `f_e = N / (K T) * #tokens routed to e` and `P_e` the mean routing
    probability of e, so a perfectly balanced router scores 1. Under a restricted routing mode `N` is the number of
    experts a token may use (its finite logits), so balance is measured within the group it routes over.

    Args:
        router_logits: one `[batch * positions, num_experts]` tensor per MoE layer, as recorded from the routers
            (masked logits are -inf).
        attention_mask: `[batch, positions]`, 1 for real tokens; padding does not count.
    """
    total = None
    for layer_logits in router_logits:
        logits = layer_logits.float().view(batch_size, -1, layer_logits.shape[-1])
        probs = logits.softmax(dim=-1)
        selected = torch.zeros_like(probs).scatter_(-1, probs.topk(top_k, dim=-1).indices, 1.0)
        usable_experts = torch.isfinite(logits).sum(dim=-1, keepdim=True).float()
        if attention_mask is None:
            weight = torch.ones(probs.shape[:2], device=probs.device)
        else:
            weight = attention_mask[:, -probs.shape[1] :].to(probs.device, probs.dtype)
        tokens = weight.sum(dim=1).clamp(min=1).view(batch_size, 1)
        weight = weight.unsqueeze(-1)
        load = (selected * usable_experts / top_k * weight).sum(dim=1) / tokens
        mean_prob = (probs * weight).sum(dim=1) / tokens
        layer_loss = (load * mean_prob).sum(dim=-1).mean()
        total = layer_loss if total is None else total + layer_loss
    if total is None:
        raise ValueError("No router logits were recorded: the model has no MoE layer.")
    return total


__all__ = ["restrict_router_logits", "sequence_balance_loss"]
