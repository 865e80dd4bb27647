"""The VP model zoo: adapters, tokenizers, checkpoints and batched inference.

Importing this package imports torch; the CLI imports it only inside commands.
"""

from __future__ import annotations

from codeaudit.models.base import Batch, ModelOutput, VPModel
from codeaudit.models.checkpoint import LoadedModel, load_model, save_checkpoint
from codeaudit.models.inference import InferenceOutput, infer, length_buckets, softmax
from codeaudit.models.registry import ARCHITECTURES, Arch, adapter_class
from codeaudit.models.rnn import BiGRUModel, LSTMModel
from codeaudit.models.tokenizer import Encoding, HFTokenizer, ModelTokenizer, VocabTokenizer
from codeaudit.models.transformer import TransformerModel

__all__ = [
    "ARCHITECTURES",
    "Arch",
    "Batch",
    "BiGRUModel",
    "Encoding",
    "HFTokenizer",
    "InferenceOutput",
    "LSTMModel",
    "LoadedModel",
    "ModelOutput",
    "ModelTokenizer",
    "TransformerModel",
    "VPModel",
    "VocabTokenizer",
    "adapter_class",
    "infer",
    "length_buckets",
    "load_model",
    "save_checkpoint",
    "softmax",
]
