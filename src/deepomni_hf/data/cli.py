# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni build-dataset`, `deepomni layout-dataset` and `deepomni make-corpus` (registered by
`add_data_commands(subparsers)`)."""

from __future__ import annotations

import argparse

from ..cli_types import non_negative_int, positive_float, positive_int, probability
from ..errors import DeepOmniUsageError


def add_data_commands(subparsers) -> None:
    build = subparsers.add_parser(
        "build-dataset",
        help="Build the training data of one stage (resumable; writes DIR and DIR/build_report.json).",
        description="Builds the training data of one stage (see deepomni_hf.data.builders). Rerunning an interrupted "
        "build with the same arguments resumes it.",
    )
    build.add_argument("--stage", required=True, choices=["alignment", "speech", "text", "joint", "tts", "dpo"])
    build.add_argument("--input", required=True, help="saved dataset folder, hub id, JSONL/CSV manifest, or a folder "
                       "of audio files with .txt transcripts")  # fmt: skip
    build.add_argument("--output", required=True, help="dataset folder to write")
    build.add_argument("--split", default=None)
    build.add_argument("--text-column", default="text", help="transcript (alignment) / text to speak (tts)")
    build.add_argument("--audio-column", default="audio")
    build.add_argument("--question-column", default="question")
    build.add_argument("--answer-column", default="answer")
    build.add_argument("--id-column", default=None)
    build.add_argument("--tts", default="flite:slt", help="answer voice(s), comma-separated: flite[:VOICE], "
                       "espeak[:VOICE], piper:MODEL.onnx, hf:MODEL_ID")  # fmt: skip
    build.add_argument("--question-tts", default=None, help="voice(s) speaking text questions (default: --tts)")
    build.add_argument("--model", default=None, help="checkpoint: the codec source (speech stages) or the policy (dpo)")
    build.add_argument("--system-prompt", default=None)
    build.add_argument("--spoken-probability", type=probability, default=0.7)
    build.add_argument("--seed", type=non_negative_int, default=0)
    build.add_argument("--max-audio-seconds", type=positive_float, default=29.98)
    build.add_argument("--max-answer-seconds", type=positive_float, default=30.0)
    build.add_argument("--shard-size", type=positive_int, default=None)
    build.add_argument("--batch-size", type=positive_int, default=None)
    build.add_argument("--num-proc", type=positive_int, default=None)
    build.add_argument("--num-samples", type=positive_int, default=4, help="dpo: samples per prompt")
    build.add_argument("--max-new-tokens", type=positive_int, default=None, help="dpo: generation limit")
    build.add_argument("--asr-judge", default=None, help="dpo: faster-whisper model (size or folder) to check samples")
    build.add_argument("--max-wer", type=positive_float, default=0.5)
    build.add_argument("--overwrite", action="store_true")
    build.set_defaults(func=_run_build)

    layout = subparsers.add_parser(
        "layout-dataset",
        help="Lay a built dataset out for training once (input_ids / labels / input_features), optionally caching "
        "Whisper's output instead of its features.",
        description="Turns the conversations of a built dataset (messages) into the 8-stream training layout with the "
        "checkpoint's processor, so training does no processor work. --cache-audio-encoder runs the checkpoint's "
        "(frozen) Whisper once and stores its output for the frames each speech span reads (audio_encoder_outputs) "
        "instead of the 30-second log-mel features; the training loss is the same, without a Whisper pass per step.",
    )
    layout.add_argument("--input", required=True, help="dataset folder written by build-dataset (save_to_disk)")
    layout.add_argument("--model", required=True, help="checkpoint folder: its processor (and its Whisper)")
    layout.add_argument("--output", required=True, help="dataset folder to write")
    layout.add_argument("--split", default=None)
    layout.add_argument("--cache-audio-encoder", action="store_true", help="store Whisper's output, not its features")
    layout.add_argument("--batch-size", type=positive_int, default=8, help="rows encoded together (--cache-audio-encoder)")
    layout.add_argument("--num-proc", type=positive_int, default=None, help="processes laying out rows")
    layout.add_argument("--overwrite", action="store_true")
    layout.set_defaults(func=_run_layout)

    corpus = subparsers.add_parser(
        "make-corpus",
        help="Synthesise a small speech corpus offline: read sentences (--task sentences) or the closed-domain "
        "spoken QA of DeepOmni-Tiny (--task spoken-qa).",
        description="--task sentences: sentences from a text file or WordNet, each spoken by one of --voices "
        "(a Dataset). --task spoken-qa: the closed-domain questions and answers of deepomni_hf.data.spoken_qa, "
        "questions spoken by --voices with one held out (--test-voice), answers by --answer-voice; a DatasetDict "
        "with train / test splits, or with --format jsonl train.jsonl / test.jsonl text only.",
    )
    corpus.add_argument("--output", required=True)
    corpus.add_argument("--task", choices=["sentences", "spoken-qa"], default="sentences")
    corpus.add_argument("--format", choices=["dataset", "jsonl"], default="dataset", help="spoken-qa: jsonl writes "
                        "the questions and answers as text only (no synthesis)")  # fmt: skip
    corpus.add_argument("--text-file", default=None, help="sentences: one sentence per line (default: WordNet "
                        "examples if installed, else built-in sentences)")  # fmt: skip
    corpus.add_argument("--voices", default=None, help="comma-separated voices (sentences default: "
                        "flite:awb,flite:slt,flite:rms,flite:kal16; spoken-qa: the question voices, default "
                        "flite:awb,flite:slt,flite:kal16,espeak:en-us,espeak:en+f3,piper:joe)")  # fmt: skip
    corpus.add_argument("--answer-voice", default="flite:rms", help="spoken-qa: the voice of every answer")
    corpus.add_argument("--test-voice", default=None, help="spoken-qa: the question voice held out for test "
                        "(default: a seeded choice)")  # fmt: skip
    corpus.add_argument("--test-fact-share", type=probability, default=0.2, help="spoken-qa: share of facts held out")
    corpus.add_argument("--voices-per-question", type=positive_int, default=1, help="spoken-qa: train voices per question")
    corpus.add_argument("--limit", type=positive_int, default=None, help="sentences: how many (default 100); spoken-qa: "
                        "a seeded sample of this many questions per split (default all)")  # fmt: skip
    corpus.add_argument("--seed", type=non_negative_int, default=0)
    corpus.add_argument("--num-proc", type=positive_int, default=None)
    corpus.add_argument("--overwrite", action="store_true")
    corpus.set_defaults(func=_run_corpus)
    corpus.set_defaults(corpus_defaults={name: corpus.get_default(name) for name in _TASK_OPTIONS})


def _run_build(args: argparse.Namespace) -> int:
    from .builders import build_dataset, build_dpo_dataset, faster_whisper_judge

    common = {"num_proc": args.num_proc, "seed": args.seed}
    for name in ("shard_size", "batch_size"):
        if getattr(args, name) is not None:
            common[name] = getattr(args, name)
    if args.stage == "dpo":
        judge = faster_whisper_judge(args.asr_judge, args.max_wer) if args.asr_judge else None
        build_dpo_dataset(args.input, args.output, split=args.split, overwrite=args.overwrite, model=args.model,
                          num_samples=args.num_samples, max_new_tokens=args.max_new_tokens, judge=judge, **common)  # fmt: skip
        return 0
    build_dataset(
        args.stage, args.input, args.output, split=args.split, overwrite=args.overwrite,
        text_column=args.text_column, audio_column=args.audio_column, question_column=args.question_column,
        answer_column=args.answer_column, id_column=args.id_column, tts=args.tts, question_tts=args.question_tts,
        codec=args.model, system_prompt=args.system_prompt, spoken_probability=args.spoken_probability,
        max_audio_seconds=args.max_audio_seconds, max_answer_seconds=args.max_answer_seconds, **common,
    )  # fmt: skip
    return 0


def _run_layout(args: argparse.Namespace) -> int:
    import os
    import shutil

    from .builders import DatasetBuildError, load_source, to_training_features

    if os.path.exists(args.output) and not args.overwrite:
        raise DatasetBuildError(f"{args.output} exists; remove it or pass --overwrite.")
    from ..modeling import DeepOmniForConditionalGeneration
    from ..processors import DeepOmniProcessor

    processor = DeepOmniProcessor.from_pretrained(args.model)
    source, _ = load_source(args.input, args.split)
    laid_out = to_training_features(source, processor, num_proc=args.num_proc)
    if args.cache_audio_encoder:
        from ..training.audio_cache import cache_audio_encoder_outputs, save_cached_dataset

        model = DeepOmniForConditionalGeneration.from_pretrained(args.model).eval()
        laid_out = cache_audio_encoder_outputs(laid_out, model, batch_size=args.batch_size)
        save_cached_dataset(laid_out, args.output, model)
    else:
        tmp = args.output.rstrip("/") + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        laid_out.save_to_disk(tmp)
        shutil.rmtree(args.output, ignore_errors=True)
        os.replace(tmp, args.output)
    print(f"[deepomni] layout: {len(laid_out)} examples written to {args.output}")
    return 0


# make-corpus options read only by one task or format: given elsewhere they would do nothing, which is a mistake.
_TASK_OPTIONS = ("text_file", "voices", "answer_voice", "test_voice", "test_fact_share", "voices_per_question")
_UNUSED_OPTIONS = {
    ("sentences", "dataset"): ("answer_voice", "test_voice", "test_fact_share", "voices_per_question"),
    ("spoken-qa", "dataset"): ("text_file",),
    ("spoken-qa", "jsonl"): ("text_file", "voices", "answer_voice", "test_voice", "voices_per_question"),
}


def _check_corpus_options(args: argparse.Namespace) -> None:
    given = [name for name in _UNUSED_OPTIONS.get((args.task, args.format), ())
             if getattr(args, name) != args.corpus_defaults[name]]  # fmt: skip
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise DeepOmniUsageError(f"{flags} do(es) nothing with --task {args.task} --format {args.format}; drop it.")


def _run_corpus(args: argparse.Namespace) -> int:
    if args.task == "sentences" and args.format != "dataset":
        raise DeepOmniUsageError("--format jsonl is for --task spoken-qa; the sentence corpus is always spoken (a Dataset).")
    _check_corpus_options(args)
    if args.task == "spoken-qa":
        from .spoken_qa_corpus import DEFAULT_QUESTION_VOICES, make_spoken_qa_corpus

        make_spoken_qa_corpus(
            args.output, question_voices=args.voices or DEFAULT_QUESTION_VOICES, answer_voice=args.answer_voice,
            test_voice=args.test_voice, seed=args.seed, test_fact_share=args.test_fact_share,
            voices_per_question=args.voices_per_question, limit=args.limit, audio=args.format == "dataset",
            num_proc=args.num_proc, overwrite=args.overwrite,
        )  # fmt: skip
        return 0
    from .corpus import DEFAULT_VOICES, make_corpus

    make_corpus(args.output, text_file=args.text_file, voices=args.voices or DEFAULT_VOICES,
                limit=100 if args.limit is None else args.limit, seed=args.seed, num_proc=args.num_proc,
                overwrite=args.overwrite)  # fmt: skip
    return 0


__all__ = ["add_data_commands"]
