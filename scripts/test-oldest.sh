#!/usr/bin/env bash
# The model-loading tests (pytest -m loading) against the oldest Hugging Face stack that the
# package metadata allows: each of these dependencies is pinned to its lower bound in
# pyproject.toml, so raising or lowering a bound changes what this tests. Run by .ci/run after the
# main suite (which gets the newest versions pip resolves).
set -euo pipefail
cd "$(dirname "$0")/.."
pins=$(python3 - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for name in ("transformers", "tokenizers", "huggingface-hub", "safetensors"):
    spec = next(d for d in deps if re.match(rf"{name}\s*>=", d))
    print(f"{name}=={spec.split('>=')[1].split(',')[0].strip()}")
PY
)
python3 -m venv .venv-oldest
. .venv-oldest/bin/activate
# shellcheck disable=SC2086  # one argument per pin
pip install torch==2.13.0 -e '.[test]' $pins
python -c "import transformers; print('oldest allowed: transformers', transformers.__version__)"
pytest -m loading tests/models
