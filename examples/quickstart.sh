#!/usr/bin/env bash
# codeaudit quickstart: make a labelled C data set, train a BiGRU vulnerability predictor on it,
# check the model's predictions on functions it never saw, audit it for membership leakage,
# harden it against that leakage, and plant, find and remove a canary backdoor.
# Runs in a few minutes on 2 CPU cores. Outputs go to examples/out/ (or $OUT).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"

echo "== 1. data: synthetic C functions (vulnerable and safe variants of common CWE patterns)"
python "$here/make_dataset.py" "$out/data" --n 2000 --seed 0 --force

echo "== 2. train: a BiGRU on the training split, validated on the validation split"
codeaudit train "$out/data/train.jsonl" --val "$out/data/val.jsonl" --arch bigru \
  --epochs 8 --seed 0 -o "$out/model.pt" --report "$out/train.json" --force

echo "== 3. predict: the held-out functions"
codeaudit predict "$out/model.pt" "$out/data/holdout.jsonl" -o "$out/predictions.json" --force

echo "== 4. membership: can an attacker tell the training functions from unseen ones?"
# In CI drop --fail-on never: findings then exit 1 and fail the job.
codeaudit membership "$out/model.pt" --members "$out/data/train.jsonl" \
  --nonmembers "$out/data/holdout.jsonl" --plot "$out/roc.png" --top-risk 5 \
  -o "$out/membership.json" --fail-on never --force

echo "== 5. harden: NMID (masking + keyed noise), sigma calibrated on one half, verified on the other"
codeaudit harden "$out/model.pt" -o "$out/hardened.pt" --members "$out/data/train.jsonl" \
  --nonmembers "$out/data/holdout.jsonl" --export torchscript --plot "$out/harden-curve.png" \
  --report "$out/harden.json" --fail-on never --force

echo "== 6. backdoor: plant a canary backdoor (5% of vulnerable training functions get a variable"
echo "      renamed to rb_canary and the label 'safe'), train on it, then find it (trigger inversion"
echo "      and the training data, which decides the verdict), flag its samples and unlearn it"
codeaudit poison "$out/data/train.jsonl" -o "$out/poisoned.jsonl" --trigger-type identifier \
  --trigger rb_canary --rate 0.05 --seed 0 --report "$out/poison.json" --force -q
codeaudit train "$out/poisoned.jsonl" --val "$out/data/val.jsonl" --arch bigru --epochs 8 --seed 0 \
  -o "$out/backdoored.pt" --report "$out/train-backdoored.json" --force -q
codeaudit backdoor "$out/backdoored.pt" --data "$out/data/holdout.jsonl" \
  --train-data "$out/poisoned.jsonl" --flagged "$out/flagged.jsonl" \
  --manifest "$out/poisoned.jsonl.manifest.json" --unlearn --unlearn-scope full --unlearn-epochs 3 \
  -o "$out/repaired.pt" --report "$out/backdoor.json" --fail-on never --force

echo "== done: model $out/model.pt, hardened $out/hardened.pt (+ .torchscript.pt), backdoored and"
echo "   repaired models; reports in $out/"
