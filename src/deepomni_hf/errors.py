# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The exceptions a user of `deepomni_hf` is meant to read: one message that says what was wrong and what to do.

`deepomni` prints such an error as one line, `deepomni <command>: error: <message>`, and exits with 1
(2 for [`DeepOmniUsageError`], like argparse); `--debug` or `DEEPOMNI_DEBUG=1` shows the traceback instead.
They subclass `ValueError`, so code that caught the `ValueError`s raised before keeps working.
"""


class DeepOmniUserError(ValueError):
    """Bad input or a bad setting given by the user (a path, an option, a checkpoint, a voice, ...)."""


class DeepOmniUsageError(DeepOmniUserError):
    """A command line that cannot mean anything (e.g. neither INPUT nor --text); `deepomni` exits with 2."""


class CheckpointError(DeepOmniUserError):
    """A checkpoint folder or hub id that cannot be loaded as a DeepOmni checkpoint (missing, truncated, foreign)."""


__all__ = ["CheckpointError", "DeepOmniUsageError", "DeepOmniUserError"]
