# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Errors of `deepomni evaluate`: a refused run ([`EvaluationError`]) and a skipped item ([`SkipItem`])."""


class EvaluationError(ValueError):
    """Bad evaluation input that stops the run (unknown suite, missing column, a checkpoint that cannot run a suite):
    the message is one line saying what was wrong and what to do."""


class SkipItem(Exception):
    """One data row cannot be evaluated (silent or unreadable audio, empty answer, ...): it is left out of the metrics
    and listed in the report with `reason` (a short code) and `message`."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason, self.message = reason, message or reason


__all__ = ["EvaluationError", "SkipItem"]
