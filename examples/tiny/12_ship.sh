#!/usr/bin/env bash
# DeepOmni-Tiny, step 12: the checkpoint installed with the package (src/deepomni_hf/assets/deepomni-tiny), the default
# model of `deepomni chat`, `deepomni serve` and `pipeline("speech-to-speech")`. The trained model (after the joint stage,
# or after DPO when step 9 ran) gets the codec whose decoder was fine-tuned with the codes frozen (`train-codec
# --freeze-codes`: same codes, better audio; `replace-codec` checks the codes on a probe signal), is stored in float16
# (it still loads in float32), answers in flite rms's speaker token by default, and carries its card.
source "$(dirname "$0")/common.sh"; STEP=ship
FINAL="${FINAL:-$RUN/final}"; [ -e "$FINAL/config.json" ] || FINAL="$RUN/stage3-joint"
SHIP_CODEC="${SHIP_CODEC:-$CODEC}"
SHIP_DIR="${SHIP_DIR:-$REPO/src/deepomni_hf/assets/deepomni-tiny}"
ANSWER_SPEAKER="${ANSWER_SPEAKER:-M29}"      # the speaker token the recipe's answers were laid out with (flite rms)
timed ship $DEEPOMNI replace-codec "$FINAL" --codec "$SHIP_CODEC" --output "$SHIP_DIR" --dtype float16 --overwrite
$PYTHON - "$SHIP_DIR" "$ANSWER_SPEAKER" <<'PY'
import sys
from transformers import AutoProcessor
import deepomni_hf  # noqa: F401
folder, voice = sys.argv[1], sys.argv[2]
processor = AutoProcessor.from_pretrained(folder)
processor.default_voice = voice
processor.save_pretrained(folder)
PY
# the bundled domain codec is the same fine-tuned codec (a DeepOmniCodecModel folder)
if [ "$SHIP_CODEC" != "$CODEC" ] && [ -n "${SHIP_CODEC_ASSET:-}" ]; then
    rm -rf "$SHIP_CODEC_ASSET.tmp" && cp -r "$SHIP_CODEC" "$SHIP_CODEC_ASSET.tmp" && rm -rf "$SHIP_CODEC_ASSET" && mv "$SHIP_CODEC_ASSET.tmp" "$SHIP_CODEC_ASSET"
fi
# its card: hub_cards/model_card_deepomni_tiny.md with the reproduction summary and (b)'s evaluation
REPRODUCTION="${REPRODUCTION:-$REPO/benchmarks/results/reproduction.json}"
EVAL_RESULTS="${EVAL_RESULTS:-$RUN/reproduction/deepomni/eval_results.json}"
$PYTHON - "$SHIP_DIR" "$REPRODUCTION" "$EVAL_RESULTS" <<'PY'
import os, sys
from deepomni_hf.hub.cards import render_model_card
folder, reproduction, eval_results = sys.argv[1], sys.argv[2], sys.argv[3]
card = render_model_card(folder, "deepomni/DeepOmni-Tiny", "joint", card_template="deepomni_tiny",
                         reproduction=reproduction if os.path.isfile(reproduction) else None,
                         eval_results=eval_results if os.path.isfile(eval_results) else None)
card.save(os.path.join(folder, "README.md"))
PY
du -sh "$SHIP_DIR"
