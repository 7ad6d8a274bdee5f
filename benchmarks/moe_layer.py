"""DeepOmni's modality-aware MoE block against transformers' `DeepseekV2Moe` on the same weights and tokens.

Reference: `transformers.models.deepseek_v2.modeling_deepseek_v2.DeepseekV2Moe` with its best experts implementation
on this machine. Each DeepOmni routing mode is timed with the same implementation, interleaved with the reference in
every round so machine drift hits both alike; the ratio of medians is reported.

    python benchmarks/moe_layer.py                      # hidden 1024, 64 experts, top-6, 2,048 tokens, fp32, CPU
    python benchmarks/moe_layer.py --tokens 512 --repeats 3

Writes `benchmarks/results/moe_layer.json`.
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import transformers
from transformers import DeepseekV2Config
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

from deepomni_hf.modeling import DeepOmniTextConfig
from deepomni_hf.modeling.modeling_deepomni import DeepOmniMoe


RESULTS = Path(__file__).parent / "results" / "moe_layer.json"


def build(args, implementation: str):
    sizes = dict(
        hidden_size=args.hidden,
        moe_intermediate_size=args.intermediate,
        n_routed_experts=args.experts,
        num_experts_per_tok=args.top_k,
        n_shared_experts=2,
        num_hidden_layers=2,
        first_k_dense_replace=1,
        vocab_size=1000,
        num_attention_heads=8,
        num_key_value_heads=8,
    )
    reference_config = DeepseekV2Config(**sizes)
    half = list(range(0, args.experts, 2))  # every other expert is a speech expert
    config = DeepOmniTextConfig(**sizes, speech_experts=[[], half])
    for c in (reference_config, config):
        c._experts_implementation = implementation
    torch.manual_seed(0)
    reference = DeepseekV2Moe(reference_config).eval()
    for p in reference.parameters():
        torch.nn.init.normal_(p, std=0.02)
    ours = DeepOmniMoe(config, layer_idx=1).eval()
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def timed(fn, *inputs) -> float:
    start = time.perf_counter()
    fn(*inputs)
    return time.perf_counter() - start


@torch.inference_mode()
def run(args) -> dict:
    hidden = torch.randn(1, args.tokens, args.hidden)
    speech_positions = torch.rand(args.tokens) < 0.5
    results = {}
    for implementation in args.implementations:
        reference, ours = build(args, implementation)
        variants = {"reference": lambda: reference(hidden)}
        for mode in args.modes:
            variants[mode] = (lambda m: lambda: (setattr(ours.gate, "routing_mode", m), ours(hidden, speech_positions)))(mode)
        # Same weights, same routing in "all" mode: the outputs must agree before timing means anything.
        ours.gate.routing_mode = "all"
        torch.testing.assert_close(ours(hidden), reference(hidden))
        for fn in variants.values():
            fn()  # warm-up
        times = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, fn in variants.items():
                times[name].append(timed(fn))
        medians = {name: statistics.median(t) for name, t in times.items()}
        results[implementation] = {
            name: {"median_ms": 1000 * m, "ratio_to_reference": m / medians["reference"]} for name, m in medians.items()
        }
        print(f"[{implementation}]")
        for name, row in results[implementation].items():
            print(f"  {name:10s} {row['median_ms']:8.1f} ms   × {row['ratio_to_reference']:.3f}")
    best = min(results, key=lambda impl: results[impl]["reference"]["median_ms"])
    return {
        "benchmark": "DeepOmniMoe vs transformers DeepseekV2Moe (same weights, same tokens)",
        "shape": {"hidden": args.hidden, "experts": args.experts, "top_k": args.top_k, "shared_experts": 2,
                  "intermediate": args.intermediate, "tokens": args.tokens, "dtype": "float32"},
        "device": f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "repeats": args.repeats,
        "best_reference_implementation": best,
        "results": results,
        "goal": "'all' within 5% of the reference; no mode slower than 1.15x",
        "goal_met": all(
            row["ratio_to_reference"] <= (1.05 if name == "all" else 1.15)
            for name, row in results[best].items()
            if name != "reference"
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=1408)
    parser.add_argument("--experts", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--implementations", nargs="+", default=["eager", "grouped_mm"])
    parser.add_argument("--modes", nargs="+", default=["all", "speech", "per_token"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"best reference implementation: {report['best_reference_implementation']}; goal met: {report['goal_met']}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
