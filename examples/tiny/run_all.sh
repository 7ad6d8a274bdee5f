#!/usr/bin/env bash
# DeepOmni-Tiny: every step in order; a step whose output exists is skipped, an interrupted one resumes.
#   RUN=/work/runs/tiny BASE_LLM=... CODEC=... examples/tiny/run_all.sh [FIRST_STEP [LAST_STEP]]
# Step 1 (the base text LLM, examples/tiny/01_pretrain_text.py) runs on its own: see README.md.
set -euo pipefail
cd "$(dirname "$0")"
STEPS=(02_convert 03_datasets 04_alignment 05_assign_experts 06_speech 07_text 08_joint 09_dpo 10_baselines 11_reproduction)
FIRST="${1:-02}"; LAST="${2:-11}"
for step in "${STEPS[@]}"; do
    number="${step%%_*}"
    if [[ "$number" < "$FIRST" || "$number" > "$LAST" ]]; then continue; fi
    echo "[tiny] ===== $step ====="
    bash "./$step.sh"
done
