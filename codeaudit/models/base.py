"""The model adapter: the one interface every command uses to talk to a VP model.

An adapter owns a torch module and its tokenizer and offers, for any architecture:

* ``encode`` - tokenize code into :class:`~codeaudit.models.tokenizer.Encoding` s;
* ``collate`` - pad encodings into a :class:`Batch`;
* ``forward`` - logits and the penultimate representation (the "embedding" feature: the vector
  the classifier head reads) from token ids;
* ``input_embeddings`` / ``embed`` - the input-embedding matrix and lookup;
* ``forward_embeds`` - the same forward pass starting from input embeddings (GCG needs it);
* ``head_parameters`` - the classifier head (what EliBadCode fine-tunes when unlearning).

Labels are indices into ``labels``; index 1 is "vulnerable".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from codeaudit.data.samples import LABEL_NAMES, Sample
from codeaudit.errors import ModelError
from codeaudit.lang.languages import normalize_language
from codeaudit.models.encoding import encode_many
from codeaudit.models.tokenizer import Encoding, ModelTokenizer


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long, 1 for real tokens
    lengths: torch.Tensor  # [B] long (on CPU)

    def to(self, device: torch.device) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.lengths.cpu())


@dataclass
class ModelOutput:
    logits: torch.Tensor  # [B, 2]
    embedding: torch.Tensor  # [B, D] the classifier head's input


class VPModel(ABC):
    """Adapter around a binary vulnerability-prediction model."""

    arch: ClassVar[str]

    def __init__(
        self,
        module: nn.Module,
        tokenizer: ModelTokenizer,
        *,
        max_len: int,
        default_lang: str = "c",
        labels: Sequence[str] = LABEL_NAMES,
        config: dict[str, Any] | None = None,
    ) -> None:
        if len(labels) != 2:
            raise ModelError(f"codeaudit models are binary, this one has {len(labels)} labels")
        self.module = module
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.default_lang = normalize_language(default_lang)
        self.labels = tuple(labels)
        self.config = dict(config or {})
        self.module.eval()

    @property
    def n_outputs(self) -> int:
        """Logits the underlying model computes: 2, or 1 for a sigmoid model (whose forward
        still returns ``[0, z]``, see :mod:`codeaudit.models.transformer`)."""
        return 2

    @property
    def max_positions(self) -> int | None:
        """The most ids the model can read (position embeddings), None when unbounded."""
        return None

    # -- placement -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: torch.device | str) -> VPModel:
        self.module.to(device)
        return self

    def train(self, mode: bool = True) -> VPModel:
        self.module.train(mode)
        return self

    def eval(self) -> VPModel:
        return self.train(False)

    # -- tokenization ----------------------------------------------------------------------
    def lang_of(self, sample: Sample) -> str:
        return sample.lang or self.default_lang

    def encode_code(
        self, code: str, lang: str | None = None, max_len: int | None = None
    ) -> Encoding:
        limit = self.max_len if max_len is None else max_len
        return encode_many(self.tokenizer, [(code, lang or self.default_lang)], limit)[0]

    def encode(self, samples: Iterable[Sample], max_len: int | None = None) -> list[Encoding]:
        """Encodings in input order; inside a run (:func:`codeaudit.models.encoding.encoding_run`)
        each function is encoded once per run, by worker processes when there are many."""
        limit = self.max_len if max_len is None else max_len
        return encode_many(self.tokenizer, [(s.code, self.lang_of(s)) for s in samples], limit)

    def collate(self, encodings: Sequence[Encoding]) -> Batch:
        pad = self.tokenizer.pad_id
        lengths = [max(1, len(e.ids)) for e in encodings]
        width = max(lengths)
        ids = torch.full((len(encodings), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            if n:
                ids[row, :n] = torch.tensor(enc.ids, dtype=torch.long)
                mask[row, :n] = 1
            else:  # an empty sample still gets one (padding) position so shapes stay valid
                mask[row, 0] = 1
        return Batch(ids, mask, torch.tensor(lengths, dtype=torch.long))

    # -- forward passes --------------------------------------------------------------------
    @abstractmethod
    def input_embeddings(self) -> nn.Embedding:
        """The input-embedding table (vocab x dim)."""

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.input_embeddings()(input_ids)

    @abstractmethod
    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutput:
        """Forward from input embeddings [B, T, D]."""

    @abstractmethod
    def forward(self, batch: Batch) -> ModelOutput:
        """Forward from token ids."""

    @abstractmethod
    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the classifier head."""

    # -- persistence -----------------------------------------------------------------------
    @abstractmethod
    def model_config(self) -> dict[str, Any]:
        """Everything needed (with the tokenizer and state dict) to rebuild the module."""

    @classmethod
    @abstractmethod
    def from_parts(
        cls,
        config: dict[str, Any],
        tokenizer: ModelTokenizer,
        state_dict: dict[str, torch.Tensor] | None,
        *,
        max_len: int,
        default_lang: str,
        labels: Sequence[str],
    ) -> VPModel:
        """Rebuild an adapter from a checkpoint's parts (``state_dict`` None: fresh weights)."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())
