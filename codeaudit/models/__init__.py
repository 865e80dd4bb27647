"""The VP model zoo: adapters, tokenizers, checkpoints and batched inference.

The names below are imported on first use (PEP 562), so that the torch-free modules of this
package (:mod:`~codeaudit.models.options`, :mod:`~codeaudit.models.input_format`) can be imported
by configuration code without importing torch.
"""

from __future__ import annotations

from codeaudit.lazy import lazy_exports

_EXPORTS = {
    "Batch": "codeaudit.models.base",
    "ModelOutput": "codeaudit.models.base",
    "VPModel": "codeaudit.models.base",
    "LoadedModel": "codeaudit.models.checkpoint",
    "load_model": "codeaudit.models.checkpoint",
    "save_checkpoint": "codeaudit.models.checkpoint",
    "InferenceOutput": "codeaudit.models.inference",
    "infer": "codeaudit.models.inference",
    "length_buckets": "codeaudit.models.inference",
    "softmax": "codeaudit.models.inference",
    "ARCHITECTURES": "codeaudit.models.registry",
    "Arch": "codeaudit.models.registry",
    "adapter_class": "codeaudit.models.registry",
    "BiGRUModel": "codeaudit.models.rnn",
    "LSTMModel": "codeaudit.models.rnn",
    "Encoding": "codeaudit.models.tokenizer",
    "HFTokenizer": "codeaudit.models.tokenizer",
    "ModelTokenizer": "codeaudit.models.tokenizer",
    "VocabTokenizer": "codeaudit.models.tokenizer",
    "TransformerModel": "codeaudit.models.transformer",
    "LoadOptions": "codeaudit.models.options",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
