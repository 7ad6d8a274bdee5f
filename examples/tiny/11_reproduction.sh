#!/usr/bin/env bash
# DeepOmni-Tiny, step 11: evaluate (a) base, (b) DeepOmni, (c) naive, (d) per_token with `deepomni evaluate` on the
# held-out questions and voice; writes benchmarks/results/reproduction.json, a README table and a plot.
source "$(dirname "$0")/common.sh"; STEP=reproduction
skip_if "$RUN/reproduction/reproduction.json"
timed reproduction $NICE $PYTHON "$REPO/benchmarks/reproduction.py" --run "$RUN" --base "$BASE_LLM" --corpus "$CORPUS" \
    --text-data "$DATA/qa-text/test.jsonl" --output "$RUN/reproduction" ${EVAL_LIMIT:+--limit "$EVAL_LIMIT"} \
    ${REPRO_ARGS:-}
