#!/usr/bin/env bash
# DeepOmni-Tiny, step 9: DPO on the audio slots. Prompts: a seeded sample of the speech data; the joint model samples
# spoken answers, failed samples (no EOA, wrong length, judge mismatch) are rejected, good ones (or the reference
# codes) chosen. The output is the final model ($RUN/final).
source "$(dirname "$0")/common.sh"; STEP=dpo
skip_if "$RUN/final/train_result.json"
[ -e "$DATA/dpo-prompts" ] || $PYTHON - "$DATA/built/speech" "$DATA/dpo-prompts" "$DPO_PROMPTS" "$SEED" <<'PY'
import sys, datasets
source, target, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = datasets.load_from_disk(source).shuffle(seed=seed)
data.select(range(min(count, len(data)))).save_to_disk(target + ".tmp")
import os; os.replace(target + ".tmp", target)
PY
JUDGE=(); [ -n "$DPO_JUDGE" ] && JUDGE=(--asr-judge "$DPO_JUDGE")
[ -e "$DATA/built/dpo" ] || timed build-dpo $NICE $DEEPOMNI build-dataset --stage dpo --input "$DATA/dpo-prompts" \
    --model "$RUN/stage3-joint" --num-samples "$DPO_SAMPLES" --seed "$SEED" --output "$DATA/built/dpo" "${JUDGE[@]}"
train dpo dpo "$RUN/stage3-joint" "$RUN/final" "$DPO_LR" 1 "$DATA/built/dpo"
