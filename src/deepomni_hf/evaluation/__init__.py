# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni evaluate`: what the paper measures (DESIGN §6), on any checkpoint, offline.

```python
from deepomni_hf.evaluation import evaluate

result = evaluate("path/to/checkpoint", suites="text,spoken-qa", data="questions.jsonl", output_dir="eval",
                  baseline="path/to/base", tts="flite:rms", limit=50)
result.value("spoken-qa", "speech_accuracy")
```

Modules: `metrics` (normalisation, matching, WER, relative drop), `judges` (the ASR judge), `readers` (data),
`candidates` (checkpoints and replies), `store` (resumable per-item results), `suites/` (one module per suite),
`results` (results.json, report.md, model-index, plots), `lm_eval_harness` (the exported text model under
lm-evaluation-harness), `runner` (`evaluate`), `cli` (`deepomni evaluate`).
"""

from .errors import EvaluationError, SkipItem
from .judges import Judge, load_judge
from .metrics import answer_is_correct, normalize_answer, normalize_transcript, relative_drop, word_error_rate
from .readers import Columns, read_data
from .runner import EvaluationResult, evaluate
from .suites import SUITES, EvaluationOptions


__all__ = [
    "SUITES",
    "Columns",
    "EvaluationError",
    "EvaluationOptions",
    "EvaluationResult",
    "Judge",
    "SkipItem",
    "answer_is_correct",
    "evaluate",
    "load_judge",
    "normalize_answer",
    "normalize_transcript",
    "read_data",
    "relative_drop",
    "word_error_rate",
]
