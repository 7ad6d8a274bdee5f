# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`train_codec`: trains a `DeepOmniCodecModel` (snac's modules, any SNAC config) from speech.

Losses: multi-resolution log-mel L1 + waveform L1 + the residual VQ's codebook and commitment terms, and, optionally
(`adversarial=True`, meant for a GPU), least-squares GAN + feature matching against multi-period and multi-resolution
STFT discriminators. Dead codes are re-initialised from recent encoder outputs (`CodebookMonitor`). Runs under
accelerate (one CPU process, or several GPUs; bf16 autocast where the GPU supports it), checkpoints every few minutes
and resumes to exactly the state of an uninterrupted run: the crops, the decoder noise and the dead-code draws of
step `s` are pure functions of `(seed, s)`, and the checkpoint holds the weights, optimizer, scheduler, codebook
monitor, RNG states and step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...modeling.configuration_deepomni_codec import DeepOmniCodecConfig
from ...modeling.modeling_deepomni_codec import DeepOmniCodecModel, _noise_context
from .data import AudioBank, read_source
from .losses import MultiResolutionMelLoss
from .quantization import CodebookMonitor, quantize_with_losses
from .snake import fuse_snake


logger = logging.getLogger("deepomni.train_codec")

# Named starting points. `tiny` is the 0.51 M-parameter codec measured to train usefully on one CPU core
# (ENVIRONMENT.md); `snac_24khz` is the shape of hubertsiuzdak/snac_24khz (19.8 M parameters), for GPUs.
CODEC_PRESETS = {
    "tiny": {"encoder_dim": 8, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 128, "decoder_rates": [8, 8, 4, 2],
             "attn_window_size": None, "vq_strides": [4, 2, 1], "codebook_size": 4096, "codebook_dim": 8},
    "snac_24khz": {},
}  # fmt: skip

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "training_state.pt"


@dataclass
class CodecTrainingConfig:
    """Everything that defines a codec training run (saved as `training_config.json` in `output_dir`)."""

    output_dir: str
    data: list[str]  # training sources: audio folders, .jsonl manifests, `datasets` folders
    data_weights: list[float] | None = None  # share of the crops from each source (default: by duration)
    eval_data: list[str] = field(default_factory=list)  # held-out sentences with text: judge WER
    answer_data: list[str] = field(default_factory=list)  # answer clips with text: heard-answer rate
    preset: str = "tiny"
    codec_config: dict = field(default_factory=dict)  # overrides of the preset (DeepOmniCodecConfig fields)
    init_from: str | None = None  # a DeepOmniCodecModel or snac checkpoint folder to start from
    # Fine-tune the decoder only: the encoder and quantizer (hence every code) stay exactly as in `init_from`, so a
    # language model already trained on this codec's codes keeps working with the improved decoder.
    freeze_codes: bool = False
    audio_column: str = "audio"
    seed: int = 0
    batch_size: int = 6
    segment_seconds: float = 0.512
    max_steps: int = 5000
    max_minutes: float | None = None  # stop (and save) after this much wall time, all resumes together
    stop_after_steps: int | None = None  # stop (and save) at this step; unlike max_steps, the lr schedule is unchanged
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay from learning_rate to this fraction of it at max_steps
    adam_betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.0
    max_grad_norm: float = 10.0
    mel_weight: float = 15.0
    waveform_weight: float = 1.0
    codebook_weight: float = 1.0
    commitment_weight: float = 0.25
    adversarial: bool = False
    adversarial_start_step: int = 0
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 2.0
    discriminator_learning_rate: float = 1e-4
    discriminator_channels: int = 32  # width of the first layers (the period discriminators grow it to 32x)
    dead_code_window_refills: float = 4.0  # a code is dead after this many codebook-sizes of vectors without use
    dead_code_check_every: int = 25
    fused_snake: bool = True
    mixed_precision: str = "auto"  # auto (bf16 on a GPU that has it, else fp32), no, bf16, fp16
    num_threads: int | None = None
    log_every: int = 25
    save_every_minutes: float = 5.0
    save_every_steps: int | None = None
    eval_every_minutes: float | None = 15.0
    eval_at_start: bool = False  # also evaluate the untrained codec (the curve's minute 0)
    eval_max_clips: int | None = None
    eval_max_answers: int | None = 60  # during training; the final evaluation checks every answer clip
    eval_wavs: int = 4
    judge_model: str | None = None  # faster-whisper model; default: the bundled Whisper tiny.en

    def __post_init__(self):
        self.data = [self.data] if isinstance(self.data, str) else list(self.data)
        self.eval_data = [self.eval_data] if isinstance(self.eval_data, str) else list(self.eval_data)
        self.answer_data = [self.answer_data] if isinstance(self.answer_data, str) else list(self.answer_data)
        self.adam_betas = tuple(self.adam_betas)
        if not self.data:
            raise ValueError("No training data: pass at least one audio folder, .jsonl manifest or datasets folder.")
        if self.preset not in CODEC_PRESETS:
            raise ValueError(f"Unknown preset {self.preset!r}; choose one of {sorted(CODEC_PRESETS)}.")
        for name in ("batch_size", "max_steps", "log_every", "dead_code_check_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"`mixed_precision` must be auto, no, bf16 or fp16, got {self.mixed_precision!r}.")
        if self.freeze_codes and not self.init_from:
            raise ValueError("`freeze_codes` keeps the codes of an existing codec: pass `init_from` (--init-from) too.")
        if self.learning_rate <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("`learning_rate` must be > 0 and `min_lr_ratio` in [0, 1].")

    def build_codec_config(self) -> DeepOmniCodecConfig:
        return DeepOmniCodecConfig(**{**CODEC_PRESETS[self.preset], **self.codec_config})


class CodecTrainingModule(nn.Module):
    """The codec's training forward as one module (so accelerate/DDP sees one call): waveform → reconstruction and the
    quantizer's training output; the decoder noise comes from `generator`."""

    def __init__(self, codec: DeepOmniCodecModel, freeze_codes: bool = False):
        super().__init__()
        self.codec = codec
        self.freeze_codes = freeze_codes
        if freeze_codes:  # the encoder and quantizer decide the codes: nothing of theirs may move
            for module in (codec.encoder, codec.quantizer):
                module.requires_grad_(False)

    def forward(self, waveform: torch.Tensor, generator: torch.Generator | None = None):
        length = waveform.shape[-1]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_codes):
            quantized = quantize_with_losses(self.codec.quantizer, self.codec.encoder(self.codec._pad(waveform)))
        with _noise_context(generator):
            audio = self.codec.decoder(quantized.latents)[..., :length]
        return audio, quantized


def _step_seed(seed: int, step: int, stream: int) -> int:
    return (seed * 1_000_003 + step) * 7 + stream


def _lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def load_codec(path: str | os.PathLike) -> DeepOmniCodecModel:
    """A `DeepOmniCodecModel` folder (`save_pretrained`) or a `snac` checkpoint folder (config.json + pytorch_model.bin)."""
    path = Path(path)
    if (path / "pytorch_model.bin").exists() and not (path / "model.safetensors").exists():
        return DeepOmniCodecModel.from_snac_checkpoint(path)
    return DeepOmniCodecModel.from_pretrained(path)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, codec: DeepOmniCodecModel, state: dict):
    """Writes `folder` atomically: into `folder.tmp`, then swapped in (the previous one survives a crash)."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    codec.save_pretrained(tmp)
    torch.save(state, tmp / STATE_NAME)
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(output_dir: Path) -> Path | None:
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):  # `.old` only after a crash mid-swap
        if (output_dir / name / STATE_NAME).exists():
            return output_dir / name
    return None


def _setup_logging(output_dir: Path, is_main: bool):
    logger.setLevel(logging.INFO)
    if is_main and not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(output_dir / "train.log")
                           for h in logger.handlers):  # fmt: skip
        handler = logging.FileHandler(output_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)


def train_codec(config: CodecTrainingConfig, on_step_end: Callable[[int], None] | None = None) -> dict:
    """Trains (or resumes) the run of `config`; returns the last evaluation (or the last logged losses).

    `on_step_end(step)` is called after every optimizer step (tests use it to interrupt a run)."""
    from accelerate import Accelerator

    from .discriminators import CodecDiscriminator, discriminator_loss, generator_losses

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    mixed_precision = config.mixed_precision
    if mixed_precision == "auto":
        mixed_precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(output_dir, accelerator.is_main_process)
    resume = latest_checkpoint(output_dir)
    if accelerator.is_main_process and resume is None:
        (output_dir / "training_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")

    torch.manual_seed(config.seed)
    if resume is not None:
        codec = DeepOmniCodecModel.from_pretrained(resume)  # its own config: a resumed run keeps its architecture
    elif config.init_from:
        codec = load_codec(config.init_from)
    else:
        codec = DeepOmniCodecModel(config.build_codec_config())
    codec.train()
    if config.fused_snake:
        fuse_snake(codec)
    codec_config = codec.config
    sampling_rate = codec_config.sampling_rate
    segment = max(1, round(config.segment_seconds * sampling_rate / codec_config.padding_multiple)) * codec_config.padding_multiple
    module = CodecTrainingModule(codec, freeze_codes=config.freeze_codes)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=config.learning_rate, betas=config.adam_betas,
                                  weight_decay=config.weight_decay)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.warmup_steps, config.max_steps, config.min_lr_ratio)
    )
    discriminator = disc_optimizer = None
    if config.adversarial:
        discriminator = CodecDiscriminator(channels=config.discriminator_channels)
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=config.discriminator_learning_rate,
                                           betas=config.adam_betas)  # fmt: skip
    monitor = CodebookMonitor(len(codec_config.vq_strides), codec_config.codebook_size, codec_config.codebook_dim,
                              config.dead_code_window_refills)  # fmt: skip
    mel_loss = MultiResolutionMelLoss(sampling_rate)

    step, wall_seconds = 0, 0.0
    if resume is not None:
        state = torch.load(resume / STATE_NAME, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        monitor.load_state_dict(state["monitor"])
        if discriminator is not None and "discriminator" in state:
            discriminator.load_state_dict(state["discriminator"])
            disc_optimizer.load_state_dict(state["disc_optimizer"])
        _set_rng_state(state["rng"])
        step, wall_seconds = state["step"], state["wall_seconds"]
        logger.info(f"resumed from {resume} at step {step} ({wall_seconds / 60:.1f} min)")

    with accelerator.main_process_first():
        bank = AudioBank.build(output_dir / "bank", config.data, sampling_rate, config.data_weights,
                               audio_column=config.audio_column)  # fmt: skip
    evaluator = None
    if accelerator.is_main_process and (config.eval_data or config.answer_data):
        from .evaluation import CodecEvaluator, load_judge

        heldout = [clip for source in config.eval_data for clip in read_source(source)][: config.eval_max_clips]
        answers = [clip for source in config.answer_data for clip in read_source(source)]
        judge = load_judge(config.judge_model) if any(c.text for c in heldout + answers) else None
        evaluator = CodecEvaluator(heldout, answers, judge, sampling_rate, mel_loss, config.eval_wavs,
                                   cache_path=output_dir / "eval" / "original_transcripts.json")  # fmt: skip

    module, optimizer = accelerator.prepare(module, optimizer)
    mel_loss = mel_loss.to(accelerator.device)
    if discriminator is not None:
        discriminator, disc_optimizer = accelerator.prepare(discriminator, disc_optimizer)
    codec = accelerator.unwrap_model(module).codec
    parameters = sum(p.numel() for p in codec.parameters())
    logger.info(f"codec {parameters / 1e6:.3f} M parameters, {bank.seconds / sampling_rate / 3600:.2f} h of audio, "
                f"batch {config.batch_size} x {segment} samples, from step {step} to {config.max_steps}")  # fmt: skip

    def checkpoint():
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {"step": step, "wall_seconds": wall_seconds, "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "monitor": monitor.state_dict(), "rng": _rng_state()}  # fmt: skip
            if discriminator is not None:
                state["discriminator"] = accelerator.unwrap_model(discriminator).state_dict()
                state["disc_optimizer"] = disc_optimizer.state_dict()
            save_checkpoint(output_dir / CHECKPOINT_DIR, codec, state)

    def evaluate(final: bool = False) -> dict:
        result = evaluator.evaluate(codec, output_dir / "eval" / f"step_{step:06d}",
                                    max_answers=None if final else config.eval_max_answers)  # fmt: skip
        result = {"step": step, "minutes": round(wall_seconds / 60, 2), "final": final, **result}
        with open(output_dir / "eval.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(result) + "\n")
        logger.info("eval " + json.dumps({k: v for k, v in result.items() if k not in ("examples", "answers_missed")}))
        return result

    sums, count, last_result = {}, 0, {}
    started = time.monotonic() - wall_seconds
    last_save = last_eval = time.monotonic()
    if evaluator is not None and step == 0 and config.eval_at_start:
        last_result = evaluate()
    progress = tqdm(total=config.max_steps, initial=step, desc="train-codec", disable=not accelerator.is_main_process,
                    mininterval=10)  # fmt: skip
    step_started = time.monotonic()
    last_step = min(config.max_steps, config.stop_after_steps or config.max_steps)
    while step < last_step:
        if config.max_minutes is not None and wall_seconds >= config.max_minutes * 60:
            logger.info(f"time budget of {config.max_minutes} min reached at step {step}")
            break
        waveform = bank.batch(step, config.batch_size, segment, config.seed, accelerator.process_index)
        waveform = waveform.to(accelerator.device)
        noise = torch.Generator().manual_seed(_step_seed(config.seed, step, accelerator.process_index))
        with accelerator.autocast():
            audio, quantized = module(waveform, noise)
        audio = audio.float()
        losses = {
            "mel": mel_loss(audio, waveform),
            "waveform": F.l1_loss(audio, waveform),
            "codebook": quantized.codebook_loss.float(),
            "commitment": quantized.commitment_loss.float(),
        }
        loss = (config.mel_weight * losses["mel"] + config.waveform_weight * losses["waveform"]
                + config.codebook_weight * losses["codebook"] + config.commitment_weight * losses["commitment"])  # fmt: skip
        if discriminator is not None and step >= config.adversarial_start_step:
            disc_optimizer.zero_grad(set_to_none=True)
            with accelerator.autocast():
                d_loss = discriminator_loss(discriminator(waveform), discriminator(audio.detach()))
            accelerator.backward(d_loss)
            disc_optimizer.step()
            with accelerator.autocast():
                adversarial, matching = generator_losses(discriminator(waveform), discriminator(audio))
            losses.update(discriminator=d_loss.detach(), adversarial=adversarial.float(), feature_matching=matching.float())
            loss = loss + config.adversarial_weight * adversarial + config.feature_matching_weight * matching
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        codes, projected = quantized.codes, quantized.projected
        if accelerator.num_processes > 1:  # every process keeps the same monitor (and revives the same codes)
            codes, projected = accelerator.gather(codes), accelerator.gather(projected)
        monitor.update(codes, projected)
        step += 1
        if step % config.dead_code_check_every == 0 and not config.freeze_codes:  # re-initialising would move codes
            revived = monitor.revive(codec.quantizer, optimizer,
                                     torch.Generator().manual_seed(_step_seed(config.seed, step, 10_000)))  # fmt: skip
            sums["revived"] = [a + b for a, b in zip(sums.get("revived", [0] * len(revived)), revived)]
        for name, value in {"loss": loss, **losses, "grad_norm": grad_norm}.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach() if torch.is_tensor(value) else value)
        count += 1
        now = time.monotonic()
        wall_seconds = now - started
        progress.update(1)
        if step % config.log_every == 0 or step == last_step:
            record = {"step": step, "minutes": round(wall_seconds / 60, 2), "lr": scheduler.get_last_lr()[0],
                      "seconds_per_step": round((now - step_started) / count, 3)}  # fmt: skip
            record.update({k: round(v / count, 5) for k, v in sums.items() if k != "revived"})
            record["revived"] = sums.get("revived", [0] * monitor.num_levels)
            record["usage"] = monitor.take_usage()
            if accelerator.is_main_process:
                with open(output_dir / "train_log.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                logger.info(json.dumps(record))
            progress.set_postfix(loss=f"{record['loss']:.3f}", mel=f"{record['mel']:.3f}")
            last_result = record
            sums, count, step_started = {}, 0, time.monotonic()
        if on_step_end is not None:
            on_step_end(step)
        due_save = (config.save_every_steps and step % config.save_every_steps == 0) or (
            now - last_save >= config.save_every_minutes * 60)
        if due_save:
            checkpoint()
            last_save = time.monotonic()
        if (evaluator is not None and config.eval_every_minutes
                and time.monotonic() - last_eval >= config.eval_every_minutes * 60):  # fmt: skip
            last_result = evaluate()
            last_eval = time.monotonic()
            started += last_eval - now  # wall minutes count training only: the judge's time is not the codec's
    progress.close()
    checkpoint()
    if evaluator is not None:
        last_result = evaluate(final=True)
    return last_result


__all__ = ["CODEC_PRESETS", "CodecTrainingConfig", "CodecTrainingModule", "latest_checkpoint", "load_codec",
           "save_checkpoint", "train_codec"]  # fmt: skip
