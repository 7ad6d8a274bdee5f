#!/usr/bin/env python
# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
r"""Train one DeepOmni stage (DESIGN §5) with `transformers.Trainer`.

    # one process (CPU or one GPU)
    python examples/train_stage.py --stage speech --model CKPT --data DATA_DIR --output OUT

    # several processes / GPUs (DDP), FSDP or DeepSpeed through accelerate
    accelerate launch --num_processes 8 examples/train_stage.py --stage joint ...
    accelerate launch --config_file examples/accelerate_configs/fsdp.yaml examples/train_stage.py --stage joint ...
    accelerate launch --config_file examples/accelerate_configs/deepspeed_zero2.yaml \
        examples/train_stage.py --stage speech --weight-decay 0 ...

    # resume from the last checkpoint in OUT (or --resume OUT/checkpoint-500); --resume auto: resume if there is one
    python examples/train_stage.py ... --resume

    # baselines of the reproduction (issue 12): the dense "naive" run over several datasets; per_token routing
    python examples/train_stage.py --stage naive --data SPEECH TEXT JOINT ...
    python examples/train_stage.py --stage joint --routing-mode per_token ...

Stages: alignment (ASR data), speech (spoken QA), text (text QA), joint (mix), dpo (chosen / rejected pairs), and
the baseline `naive` (every parameter but Whisper, routing over all experts). The learning rate and epochs default to
the published values of the stage. Several --data folders are concatenated. Data laid out with Whisper's output cached
(`deepomni layout-dataset --cache-audio-encoder`) is checked against the model's Whisper. Every logging step is
appended to OUTPUT/train_log.jsonl; OUTPUT/train_result.json records the metrics, the log history and the number of
(non-padding) positions trained on. DATA_DIR is a `datasets` folder saved with
`save_to_disk`: laid-out examples (`input_ids`, `labels`, `input_features`, ...) or a `messages` column — see
`deepomni_hf.training.data` — and for `dpo` the pair columns of `deepomni_hf.training.dpo`. The processor is read from
CKPT (or `--processor`). The speech / text stages need the speech experts assigned first (`deepomni assign-experts`).
"""

import argparse
import dataclasses
import hashlib
import json
import os
import sys

import torch
from transformers import TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

import deepomni_hf  # noqa: F401  (registers the Auto classes)
from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.processors import DeepOmniDataCollator, DeepOmniProcessor
from deepomni_hf.training import (
    BASELINE_PLANS,
    STAGES,
    DeepOmniTrainer,
    apply_stage_plan,
    get_stage_plan,
    load_stage_dataset,
)
from deepomni_hf.training.audio_cache import check_audio_encoder_cache
from deepomni_hf.training.dpo import (
    DEFAULT_BETA,
    DeepOmniDPOCollator,
    DeepOmniDPOTrainer,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True, choices=sorted({**STAGES, **BASELINE_PLANS}))
    parser.add_argument("--model", required=True, help="checkpoint folder to start from")
    parser.add_argument("--data", required=True, nargs="+", help="training dataset folder(s) (save_to_disk); several "
                        "are concatenated")  # fmt: skip
    parser.add_argument("--routing-mode", default=None, choices=["all", "speech", "text", "per_token"],
                        help="override the stage's routing mode (e.g. per_token for the joint stage)")  # fmt: skip
    parser.add_argument("--output", required=True, help="output folder (checkpoints, final model, logs)")
    parser.add_argument("--processor", default=None, help="processor folder (default: --model)")
    parser.add_argument("--eval-data", default=None, help="evaluation dataset folder")
    parser.add_argument("--split", default=None, help="split of a DatasetDict folder")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the stage's published value")
    parser.add_argument("--epochs", type=float, default=None, help="default: the stage's published value")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps")
    parser.add_argument("--batch-size", type=int, default=4, help="per device")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument(
        "--warmup", type=float, default=0.03, help="warmup steps (>= 1) or fraction of the total steps (< 1)"
    )
    parser.add_argument("--lr-scheduler", default="cosine")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--save-steps", type=int, default=500)
    parser.add_argument("--save-total-limit", type=int, default=None)
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        help="resume from the last checkpoint in --output, or from the given checkpoint folder; 'auto': resume when "
        "--output holds a checkpoint, else start",
    )
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--dataloader-num-workers", type=int, default=0)
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed JSON config (or use accelerate's config file)")
    parser.add_argument("--no-aux-loss", action="store_true", help="leave the router balance loss out")
    parser.add_argument("--lora", action="store_true", help="LoRA (PEFT) instead of full fine-tuning")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA, help="DPO beta")
    parser.add_argument("--ref-model", default=None, help="DPO reference checkpoint (default: a copy of --model)")
    parser.add_argument(
        "--state-hash",
        action="store_true",
        help="each process writes the SHA-256 of its final model state to OUTPUT/state_hash_rank{i}.txt",
    )
    return parser.parse_args(argv)


def state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def concatenate(datasets_):
    """One dataset from several (laid-out datasets are concatenated; conversation datasets, which are laid out on the
    fly, must come alone)."""
    if len(datasets_) == 1:
        return datasets_[0]
    import datasets

    if any("input_ids" not in data.column_names for data in datasets_):
        raise SystemExit("Several --data folders must all be laid out (deepomni layout-dataset); conversations are "
                         "laid out on the fly, one dataset at a time.")  # fmt: skip
    return datasets.concatenate_datasets(datasets_)


class JsonlLog(TrainerCallback):
    """Appends every log entry (step, loss, per-stream losses, learning rate, ...) to a JSONL file as it happens."""

    def __init__(self, path: str):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **(logs or {})}) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = get_stage_plan(args.stage)
    if args.routing_mode:
        plan = dataclasses.replace(plan, routing_mode=args.routing_mode)
    if args.resume == "auto":
        args.resume = get_last_checkpoint(args.output) if os.path.isdir(args.output) else None
    set_seed(args.seed)
    training_args = TrainingArguments(
        output_dir=args.output,
        learning_rate=args.learning_rate if args.learning_rate is not None else plan.learning_rate,
        num_train_epochs=args.epochs if args.epochs is not None else plan.num_train_epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup,
        lr_scheduler_type=args.lr_scheduler,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        data_seed=args.seed,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        eval_strategy="steps" if args.eval_data else "no",
        eval_steps=args.save_steps if args.eval_data else None,
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        dataloader_num_workers=args.dataloader_num_workers,
        remove_unused_columns=False,
        prediction_loss_only=True,
        deepspeed=args.deepspeed,
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
        include_num_input_tokens_seen="no" if args.stage == "dpo" else "non_padding",  # DPO batches hold pairs
    )

    processor = DeepOmniProcessor.from_pretrained(args.processor or args.model)
    model = DeepOmniForConditionalGeneration.from_pretrained(
        args.model, dtype=torch.bfloat16 if args.bf16 else torch.float32
    )
    processor.check_model_config(model.config)
    for folder in args.data:
        check_audio_encoder_cache(folder, model)
    train_data = concatenate([load_stage_dataset(folder, processor, args.split) for folder in args.data])
    eval_data = load_stage_dataset(args.eval_data, processor, args.split) if args.eval_data else None

    if args.lora:
        from deepomni_hf.training.lora import apply_lora_stage

        model, report = apply_lora_stage(model, plan, r=args.lora_r, lora_alpha=args.lora_alpha)
    else:
        report = apply_stage_plan(model, plan, verbose=training_args.process_index == 0)

    common = dict(args=training_args, train_dataset=train_data, eval_dataset=eval_data, stage_report=report)
    if training_args.process_index == 0:
        common["callbacks"] = [JsonlLog(os.path.join(args.output, "train_log.jsonl"))]
    if args.stage == "dpo":
        ref_model = None
        if args.ref_model:
            ref_model = DeepOmniForConditionalGeneration.from_pretrained(args.ref_model, dtype=model.dtype)
        precomputed = "reference_chosen_logps" in train_data.column_names
        trainer = DeepOmniDPOTrainer(
            model,
            ref_model=ref_model,
            beta=args.beta,
            precomputed_reference=precomputed,
            data_collator=DeepOmniDPOCollator(processor),
            router_aux_loss=False,
            **common,
        )
    else:
        trainer = DeepOmniTrainer(
            model, data_collator=DeepOmniDataCollator(processor), router_aux_loss=not args.no_aux_loss, **common
        )

    result = trainer.train(resume_from_checkpoint=args.resume)
    trainer.save_model(args.output)
    if trainer.is_world_process_zero():
        processor.save_pretrained(args.output)
        with open(os.path.join(args.output, "train_result.json"), "w") as f:
            json.dump(
                {
                    "stage": args.stage,
                    "routing_mode": plan.routing_mode,
                    "data": args.data,
                    "seed": args.seed,
                    "positions_trained": trainer.state.num_input_tokens_seen,
                    "metrics": result.metrics,
                    "log_history": trainer.state.log_history,
                },
                f,
                indent=2,
            )
    if args.state_hash:
        rank = training_args.process_index
        with open(os.path.join(args.output, f"state_hash_rank{rank}.txt"), "w") as f:
            f.write(state_hash(trainer.accelerator.unwrap_model(trainer.model)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
