# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Files installed with the package.

`codec-rms/`: the domain codec DeepOmni-Tiny speaks through — a 0.51 M-parameter SNAC (`DeepOmniCodecModel` folder with
its card) trained by `deepomni train-codec` on one voice (flite rms) on one CPU core; see its README.md.
"""

from pathlib import Path


ASSETS_DIR = Path(__file__).parent


def bundled_codec_path() -> Path:
    """Folder of the bundled domain codec (`DeepOmniCodecModel.from_pretrained(bundled_codec_path())`)."""
    path = ASSETS_DIR / "codec-rms"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"The bundled codec is missing from {path}: reinstall deepomni-hf.")
    return path


__all__ = ["ASSETS_DIR", "bundled_codec_path"]
