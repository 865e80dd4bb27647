"""Transformer vulnerability predictors: a CodeBERT-style RoBERTa sequence classifier.

Either a small RoBERTa trained from scratch here (with a byte-level BPE trained on the training
code), or any local Hugging Face directory holding a sequence-classification model and its
tokenizer (for example a downloaded CodeBERT fine-tune), loaded with ``local_files_only`` and
never with remote code. The "embedding" feature is the final-layer vector of the first token
(``<s>``/``[CLS]``), which the classification head reads.

A model with a single output (sigmoid-style fine-tunes) is read as logits ``[0, z]``, which gives
the same probabilities under a softmax.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codeaudit.errors import CheckpointError, ModelError
from codeaudit.models.base import Batch, ModelOutput, VPModel
from codeaudit.models.rnn import load_state
from codeaudit.models.tokenizer import HFTokenizer, ModelTokenizer

TRANSFORMER_DEFAULTS: dict[str, Any] = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
}
MAX_POSITIONS = 514  # RoBERTa convention: 512 tokens + padding offset


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _quiet_transformers() -> None:
    """No progress bars or info logs from transformers: the CLI owns the terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class TransformerModel(VPModel):
    arch = "transformer"

    def __init__(self, module: nn.Module, tokenizer: ModelTokenizer, **kwargs: Any) -> None:
        super().__init__(module, tokenizer, **kwargs)
        num_labels = int(getattr(module.config, "num_labels", 2))
        if num_labels not in (1, 2):
            raise ModelError(
                f"the transformer has {num_labels} output labels; a VP model needs 1 or 2"
            )
        self._single_logit = num_labels == 1
        positions = getattr(module.config, "max_position_embeddings", None)
        if positions is not None:
            offset = (
                2 if getattr(module.config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
            )
            self.max_len = min(self.max_len, int(positions) - offset)

    def _output(self, out: Any) -> ModelOutput:
        logits = out.logits
        if self._single_logit:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=-1)
        return ModelOutput(logits, out.hidden_states[-1][:, 0])

    def input_embeddings(self) -> nn.Embedding:
        return self.module.get_input_embeddings()

    def forward(self, batch: Batch) -> ModelOutput:
        out = self.module(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=True,
        )
        return self._output(out)

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutput:
        out = self.module(
            inputs_embeds=embeds, attention_mask=attention_mask, output_hidden_states=True
        )
        return self._output(out)

    def head_parameters(self) -> list[nn.Parameter]:
        head = getattr(self.module, "classifier", None) or getattr(self.module, "score", None)
        if head is None:
            raise ModelError("cannot find the transformer's classification head")
        return list(head.parameters())

    def model_config(self) -> dict[str, Any]:
        return {"hf_config": self.module.config.to_json_string(use_diff=False)}

    @classmethod
    def build(
        cls,
        tokenizer: HFTokenizer,
        *,
        max_len: int,
        default_lang: str,
        labels: Sequence[str],
        overrides: dict[str, Any] | None = None,
    ) -> TransformerModel:
        """A fresh small RoBERTa classifier for the tokenizer (trained from scratch)."""
        from transformers import RobertaConfig, RobertaForSequenceClassification

        params = {**TRANSFORMER_DEFAULTS, **(overrides or {})}
        tok = tokenizer.tok
        config = RobertaConfig(
            vocab_size=tokenizer.vocab_size,
            max_position_embeddings=min(MAX_POSITIONS, max_len + 2),
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            num_labels=2,
            **params,
        )
        module = RobertaForSequenceClassification(config)
        return cls(module, tokenizer, max_len=max_len, default_lang=default_lang, labels=labels)

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
        from transformers import AutoConfig, AutoModelForSequenceClassification

        blob = config.get("hf_config")
        try:
            params = json.loads(blob) if isinstance(blob, str) else None
            if not isinstance(params, dict) or "model_type" not in params:
                raise ValueError("no model_type")
            model_type = params.pop("model_type")
            hf_config = AutoConfig.for_model(model_type, **params)
            module = AutoModelForSequenceClassification.from_config(hf_config)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"invalid transformer configuration: {_first_line(exc)}"
            ) from None
        if getattr(hf_config, "vocab_size", tokenizer.vocab_size) < tokenizer.vocab_size:
            raise CheckpointError(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model only "
                f"{hf_config.vocab_size}: tokenizer and model do not match"
            )
        if state_dict is not None:
            load_state(module, state_dict, cls.arch)
        return cls(module, tokenizer, max_len=max_len, default_lang=default_lang, labels=labels)

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        *,
        max_len: int = 512,
        default_lang: str = "c",
        require_head: bool = True,
    ) -> TransformerModel:
        """Load a Hugging Face directory (config, weights, tokenizer), local files only.

        With ``require_head`` the classification head must come from the files (a base encoder
        such as raw CodeBERT, whose head would be random, is refused); training sets it False.
        """
        from transformers import AutoModelForSequenceClassification

        directory = Path(path)
        if not (directory / "config.json").is_file():
            raise CheckpointError(
                f"{directory}: not a Hugging Face model directory (no config.json)"
            )
        weights = [
            f
            for f in (
                "model.safetensors",
                "pytorch_model.bin",
                "model.safetensors.index.json",
                "pytorch_model.bin.index.json",
            )
            if (directory / f).is_file()
        ]
        if not weights:
            raise CheckpointError(
                f"{directory}: no model weights (model.safetensors or pytorch_model.bin)"
            )
        tokenizer = HFTokenizer.from_directory(str(directory))
        _quiet_transformers()
        try:
            module, info = AutoModelForSequenceClassification.from_pretrained(
                str(directory),
                local_files_only=True,
                trust_remote_code=False,
                output_loading_info=True,
            )
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{directory}: cannot load model: {_first_line(exc)}") from None
        missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
        if require_head and missing:
            raise CheckpointError(
                f"{directory}: weights lack {len(missing)} parameters (e.g. {missing[0]}); "
                "is this a base encoder without a fine-tuned classification head?"
            )
        vocab = int(getattr(module.config, "vocab_size", tokenizer.vocab_size))
        if tokenizer.vocab_size > vocab:
            raise CheckpointError(
                f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
                f"{vocab}: tokenizer and model do not match"
            )
        id2label = getattr(module.config, "id2label", None) or {}
        labels = (
            [str(id2label.get(i, name)) for i, name in enumerate(("not-vulnerable", "vulnerable"))]
            if int(module.config.num_labels) == 2
            else ["not-vulnerable", "vulnerable"]
        )
        module.eval()
        return cls(module, tokenizer, max_len=max_len, default_lang=default_lang, labels=labels)
