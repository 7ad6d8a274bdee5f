# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The evaluation suites, one module each; `SUITES` maps a suite name to its `run(ctx) -> SuiteResult`."""

from . import asr, latency, routing, spoken_qa, text, tts
from .base import EvaluationOptions, Metric, SuiteContext, SuiteResult


SUITES = {
    text.SUITE: text.run,
    spoken_qa.SUITE: spoken_qa.run,
    asr.SUITE: asr.run,
    tts.SUITE: tts.run,
    latency.SUITE: latency.run,
    routing.SUITE: routing.run,
}
# Suites that transcribe speech with the judge.
JUDGED_SUITES = (spoken_qa.SUITE, asr.SUITE, tts.SUITE)

__all__ = ["JUDGED_SUITES", "SUITES", "EvaluationOptions", "Metric", "SuiteContext", "SuiteResult"]
