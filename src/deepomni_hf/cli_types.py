# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Range-checked argparse types shared by every `deepomni` subcommand: a value out of range is a usage error
(`deepomni <command>: error: argument --x: ...`, exit code 2) before any work starts."""

from __future__ import annotations

import argparse
import math


def _number(kind, text: str):
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounded(name: str, kind, accept, requirement: str):
    def parse(text: str):
        value = _number(kind, text)
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {value:g}")
        return value

    parse.__name__ = name
    return parse


positive_int = _bounded("positive_int", int, lambda v: v >= 1, "at least 1")  # counts, sizes, token limits
non_negative_int = _bounded("non_negative_int", int, lambda v: v >= 0, "0 or more")  # seeds
positive_float = _bounded("positive_float", float, lambda v: v > 0, "greater than 0")  # durations, thresholds
non_negative_float = _bounded("non_negative_float", float, lambda v: v >= 0, "0 or more")
probability = _bounded("probability", float, lambda v: 0.0 <= v <= 1.0, "a probability between 0 and 1")


__all__ = ["non_negative_float", "non_negative_int", "positive_float", "positive_int", "probability"]
