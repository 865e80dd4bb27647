#!/usr/bin/env bash
# Pre-release model audit, as a CI step: build the bundled example model, then run the release
# gate `codeaudit audit` on it and write the combined report in every format.
#
#   examples/ci/audit.sh                       # reports in examples/ci/out/reports/
#   OUT=/tmp/ca FAIL_ON=medium examples/ci/audit.sh
#
# Environment: OUT (output directory), FAIL_ON (low|medium|high|critical|never; default high),
# N (functions to generate; default 600), EPOCHS (default 8), BASELINE (an earlier audit.json:
# only new findings count), PYTHON (default python).
#
# Exit status: codeaudit's own: 0 no finding at or above FAIL_ON, 1 findings, 2 bad input or usage,
# 3 internal error. The reports are written in every case except 2 and 3, so a CI job can upload
# them before failing. With your own model, replace steps 1 and 2 by your model and data files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
python="${PYTHON:-python}"
mkdir -p "$out"

echo "== 1. example data: synthetic labelled C functions (train / val / holdout)"
"$python" "$here/../make_dataset.py" "$out/data" --n "${N:-600}" --seed 0 --force

echo "== 2. the model to release: a BiGRU trained on the training split"
codeaudit train "$out/data/train.jsonl" --val "$out/data/val.jsonl" --arch bigru \
  --epochs "${EPOCHS:-8}" --seed 0 -o "$out/model.pt" --force -q

echo "== 3. release gate: membership audit (members: the training data; non-members: holdout)"
baseline=()
if [[ -n "${BASELINE:-}" ]]; then
  baseline=(--baseline "$BASELINE")
fi
rm -rf "$out/reports"
status=0
codeaudit audit "$out/model.pt" \
  --members "$out/data/train.jsonl" --nonmembers "$out/data/holdout.jsonl" \
  --fail-on "${FAIL_ON:-high}" "${baseline[@]}" \
  --report-dir "$out/reports" -q || status=$?

echo "== reports: $out/reports (audit.sarif for code scanning, audit.html for people)"
echo "== codeaudit audit exit status: $status"
exit "$status"
