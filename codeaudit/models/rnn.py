"""LSTM and BiGRU vulnerability predictors (the RNN models of the membership paper).

Token embeddings -> (Bi)RNN over the real tokens -> masked max-pooling over time -> dropout ->
linear head. The pooled vector is the penultimate representation ("embedding" feature).

Each direction is its own single-layer RNN run on right-padded batches; the backward direction
reads every sequence reversed within its own length, so padding never reaches a real position
and a sample's result does not depend on what it is batched with. This gives exactly what packed
sequences give, without packing: torch's CPU GRU is about eight times slower on packed input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from codeaudit.errors import CheckpointError
from codeaudit.models.base import Batch, ModelOutput, VPModel
from codeaudit.models.safety import check_layer_counts, check_state, meta_build
from codeaudit.models.tokenizer import ModelTokenizer

RNN_DEFAULTS: dict[str, Any] = {
    "embed_dim": 128,
    "hidden_dim": 128,
    "num_layers": 1,
    "dropout": 0.1,
}


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``length`` steps along dim 1, leaving the padding in place.
    Applying it twice gives ``x`` back."""
    steps = torch.arange(x.shape[1], device=x.device)
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class RNNClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        *,
        cell: str,
        bidirectional: bool,
        embed_dim: int,
        hidden_dim: int,
        num_layers: int,
        dropout: float,
        pad_id: int,
        initialise: bool = True,
    ) -> None:
        """``initialise=False`` leaves the embedding table uninitialised (``torch.empty``): for
        modules whose weights are loaded next, and for shape-only builds on the meta device,
        where random normal initialisation would pull in torch's decompositions for nothing."""
        super().__init__()
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        table = None if initialise else nn.Parameter(torch.empty(vocab_size, embed_dim))
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id, _weight=table)
        self.forward_rnns = nn.ModuleList()
        self.backward_rnns = nn.ModuleList()
        for layer in range(num_layers):
            size_in = embed_dim if layer == 0 else hidden_dim * directions
            self.forward_rnns.append(rnn_class(size_in, hidden_dim, batch_first=True))
            if bidirectional:
                self.backward_rnns.append(rnn_class(size_in, hidden_dim, batch_first=True))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim * directions, 2)

    def sequence(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Per-position outputs [B, T, H * directions]; positions past a row's length are junk."""
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        hidden = embeds
        for layer, forward_rnn in enumerate(self.forward_rnns):
            if layer > 0:
                hidden = self.dropout(hidden)
            out, _ = forward_rnn(hidden)
            if self.bidirectional:
                reversed_in = reverse_within_length(hidden, lengths)
                back, _ = self.backward_rnns[layer](reversed_in)
                out = torch.cat([out, reverse_within_length(back, lengths)], dim=-1)
            hidden = out
        return hidden

    def pooled(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.sequence(embeds, attention_mask)
        mask = attention_mask.unsqueeze(-1).bool()
        return out.masked_fill(~mask, torch.finfo(out.dtype).min).max(dim=1).values

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_embeds(self.embedding(input_ids), attention_mask)

    def forward_embeds(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pooled(embeds, attention_mask)
        return self.classifier(self.dropout(pooled)), pooled


class _RNNModel(VPModel):
    cell: str
    bidirectional: bool
    module: RNNClassifier

    def input_embeddings(self) -> nn.Embedding:
        return self.module.embedding

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutput:
        logits, pooled = self.module.forward_embeds(embeds, attention_mask)
        return ModelOutput(logits, pooled)

    def forward(self, batch: Batch) -> ModelOutput:
        logits, pooled = self.module(batch.input_ids, batch.attention_mask)
        return ModelOutput(logits, pooled)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.module.classifier.parameters())

    def model_config(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
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
        merged = {**RNN_DEFAULTS, **{k: v for k, v in config.items() if k in RNN_DEFAULTS}}
        try:
            sizes = {k: int(merged[k]) for k in ("embed_dim", "hidden_dim", "num_layers")}
            dropout = float(merged["dropout"])
        except (TypeError, ValueError, OverflowError) as exc:
            raise CheckpointError(f"invalid {cls.arch} configuration: {exc}") from None
        bad = next((k for k, v in sizes.items() if v < 1), None)
        if bad is not None:
            raise CheckpointError(f"invalid {cls.arch} configuration: {bad} {sizes[bad]} < 1")

        def build() -> RNNClassifier:
            return RNNClassifier(
                tokenizer.vocab_size,
                cell=cls.cell,
                bidirectional=cls.bidirectional,
                dropout=dropout,
                pad_id=tokenizer.pad_id,
                initialise=state_dict is None,  # loaded weights replace every value
                **sizes,
            )

        if state_dict is not None:
            # Shapes first, on the meta device: a configuration that does not describe these
            # weights (a hidden size of 2**30, a million layers) allocates nothing.
            check_layer_counts(sizes, len(state_dict), f"invalid {cls.arch} configuration")
            check_state(meta_build(build, cls.arch).state_dict(), state_dict, cls.arch)
        try:
            module = build()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid {cls.arch} configuration: {exc}") from None
        if state_dict is not None:
            module.load_state_dict(state_dict, strict=True)  # checked above
        return cls(
            module,
            tokenizer,
            max_len=max_len,
            default_lang=default_lang,
            labels=labels,
            config=merged,
        )


class LSTMModel(_RNNModel):
    arch = "lstm"
    cell = "lstm"
    bidirectional = False


class BiGRUModel(_RNNModel):
    arch = "bigru"
    cell = "gru"
    bidirectional = True


def load_state(module: nn.Module, state_dict: dict[str, torch.Tensor], arch: str) -> None:
    """Load weights strictly, turning shape and key mismatches into one-line CheckpointErrors."""
    check_state(module.state_dict(), state_dict, arch)
    module.load_state_dict(state_dict, strict=True)
