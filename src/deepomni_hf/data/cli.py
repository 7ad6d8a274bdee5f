# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni build-dataset` and `deepomni make-corpus` (registered by `add_data_commands(subparsers)`)."""

from __future__ import annotations

import argparse


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
    build.add_argument("--spoken-probability", type=float, default=0.7)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--max-audio-seconds", type=float, default=29.98)
    build.add_argument("--max-answer-seconds", type=float, default=30.0)
    build.add_argument("--shard-size", type=int, default=None)
    build.add_argument("--batch-size", type=int, default=None)
    build.add_argument("--num-proc", type=int, default=None)
    build.add_argument("--num-samples", type=int, default=4, help="dpo: samples per prompt")
    build.add_argument("--max-new-tokens", type=int, default=None, help="dpo: generation limit")
    build.add_argument("--asr-judge", default=None, help="dpo: faster-whisper model (size or folder) to check samples")
    build.add_argument("--max-wer", type=float, default=0.5)
    build.add_argument("--overwrite", action="store_true")
    build.set_defaults(func=_run_build)

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
    corpus.add_argument("--test-fact-share", type=float, default=0.2, help="spoken-qa: share of facts held out")
    corpus.add_argument("--voices-per-question", type=int, default=1, help="spoken-qa: train voices per question")
    corpus.add_argument("--limit", type=int, default=None, help="sentences: how many (default 100); spoken-qa: "
                        "a seeded sample of this many questions per split (default all)")  # fmt: skip
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--num-proc", type=int, default=None)
    corpus.add_argument("--overwrite", action="store_true")
    corpus.set_defaults(func=_run_corpus)


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


def _run_corpus(args: argparse.Namespace) -> int:
    if args.task == "spoken-qa":
        from .spoken_qa_corpus import DEFAULT_QUESTION_VOICES, make_spoken_qa_corpus

        make_spoken_qa_corpus(
            args.output, question_voices=args.voices or DEFAULT_QUESTION_VOICES, answer_voice=args.answer_voice,
            test_voice=args.test_voice, seed=args.seed, test_fact_share=args.test_fact_share,
            voices_per_question=args.voices_per_question, limit=args.limit, audio=args.format == "dataset",
            num_proc=args.num_proc, overwrite=args.overwrite,
        )  # fmt: skip
        return 0
    if args.format != "dataset":
        raise SystemExit("--format jsonl is for --task spoken-qa; the sentence corpus is always spoken (a Dataset).")
    from .corpus import DEFAULT_VOICES, make_corpus

    make_corpus(args.output, text_file=args.text_file, voices=args.voices or DEFAULT_VOICES,
                limit=100 if args.limit is None else args.limit, seed=args.seed, num_proc=args.num_proc,
                overwrite=args.overwrite)  # fmt: skip
    return 0


__all__ = ["add_data_commands"]
