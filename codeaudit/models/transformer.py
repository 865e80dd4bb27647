"""Transformer vulnerability predictors: a CodeBERT-style RoBERTa sequence classifier.

Either a small RoBERTa trained from scratch here (with a byte-level BPE trained on the training
code), any local Hugging Face directory holding a sequence-classification model and its tokenizer
(for example a downloaded CodeBERT fine-tune), or a bare ``model.bin`` of published fine-tuning
code on its base model (:mod:`codeaudit.models.foreign`); always ``local_files_only`` and never
remote code. The "embedding" feature is the final-layer vector of the first token
(``<s>``/``[CLS]``), which the classification head reads.

A model with a single output (the sigmoid fine-tunes of CodeXGLUE and EliBadCode) is read as
logits ``[0, z]``: its softmax is ``[1 - sigmoid(z), sigmoid(z)]``, its cross-entropy is the
binary cross-entropy of ``z`` and its argmax is ``z > 0``, so every command treats it as the
sigmoid model it is; :attr:`VPModel.n_outputs` says which it is where the difference shows (the
logit features, NMID's noise).
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
from codeaudit.models.input_format import RAW
from codeaudit.models.safety import (
    WEIGHT_FILES,
    check_layer_counts,
    check_module_values,
    check_state,
    describes_more_than_held,
    first_line,
    loader_files,
    meta_build,
    parameter_count,
    weights_inventory,
)
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
    return first_line(exc)


def _read_config(directory: Path) -> Any:
    """A directory's transformers configuration: local files only, never remote code."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # the files are user input: any failure here is theirs
        raise CheckpointError(f"{directory / 'config.json'}: {_first_line(exc)}") from None


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
        limit = self.max_positions
        if limit is not None:
            self.max_len = min(self.max_len, limit)

    @property
    def n_outputs(self) -> int:
        return 1 if self._single_logit else 2

    @property
    def max_positions(self) -> int | None:
        positions = getattr(self.module.config, "max_position_embeddings", None)
        if positions is None:
            return None
        model_type = getattr(self.module.config, "model_type", "")
        offset = 2 if model_type in {"roberta", "xlm-roberta"} else 0  # padding-offset positions
        return int(positions) - offset

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
            if not isinstance(params, dict) or not isinstance(params.get("model_type"), str):
                raise ValueError("no model_type")
            model_type = params.pop("model_type")
            params.pop("auto_map", None)  # remote code is never loaded
            hf_config = AutoConfig.for_model(model_type, **params)
        except (ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
            raise CheckpointError(
                f"invalid transformer configuration: {_first_line(exc)}"
            ) from None
        vocab = getattr(hf_config, "vocab_size", tokenizer.vocab_size)
        if not isinstance(vocab, int) or vocab < tokenizer.vocab_size:
            raise CheckpointError(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model only "
                f"{vocab}: tokenizer and model do not match"
            )
        if vocab < tokenizer.id_bound:
            raise CheckpointError(
                f"tokenizer ids reach {tokenizer.id_bound - 1} but the model's embedding has "
                f"{vocab} rows: tokenizer and model do not match"
            )

        def build() -> nn.Module:
            return AutoModelForSequenceClassification.from_config(hf_config)

        if state_dict is not None:
            # Shapes first, on the meta device: a configuration that does not describe these
            # weights (a hidden size of 2**20, a million layers) allocates nothing.
            check_layer_counts(
                hf_config.to_dict(), len(state_dict), "invalid transformer configuration"
            )
            check_state(meta_build(build, cls.arch).state_dict(), state_dict, cls.arch)
        try:
            module = build()
        except (ValueError, KeyError, TypeError, RuntimeError, ImportError) as exc:
            raise CheckpointError(
                f"invalid transformer configuration: {_first_line(exc)}"
            ) from None
        if state_dict is not None:
            module.load_state_dict(state_dict, strict=True)  # checked above
        return cls(module, tokenizer, max_len=max_len, default_lang=default_lang, labels=labels)

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        *,
        max_len: int = 512,
        default_lang: str = "c",
        require_head: bool = True,
        input_format: str = RAW,
        tokenizer_dir: str | Path | None = None,
    ) -> TransformerModel:
        """Load a Hugging Face directory (config, weights, tokenizer), local files only.

        With ``require_head`` the classification head must come from the files (a base encoder
        such as raw CodeBERT, whose head would be random, is refused); training sets it False.
        ``tokenizer_dir``: where the tokenizer is, for a directory saved without one.
        """
        from transformers import AutoModelForSequenceClassification

        directory = Path(path)
        config_file = directory / "config.json"
        if not config_file.is_file():
            raise CheckpointError(
                f"{directory}: not a Hugging Face model directory (no config.json)"
            )
        loader_files(directory)  # regular files inside the directory, before any is read
        try:
            raw_config = json.loads(config_file.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise CheckpointError(f"{config_file}: not valid JSON ({_first_line(exc)})") from None
        if not isinstance(raw_config, dict):
            raise CheckpointError(f"{config_file}: not a JSON object")
        if not any((directory / f).is_file() for f in WEIGHT_FILES):
            raise CheckpointError(
                f"{directory}: no model weights (model.safetensors or pytorch_model.bin)"
            )
        n_tensors, n_params = weights_inventory(directory)
        tokenizer = HFTokenizer.from_directory(str(tokenizer_dir or directory), input_format)
        hf_config = _read_config(directory)
        check_layer_counts(hf_config.to_dict(), n_tensors, str(config_file))
        shell = meta_build(
            lambda: AutoModelForSequenceClassification.from_config(hf_config), str(config_file)
        )
        described = parameter_count(shell)
        del shell
        if describes_more_than_held(described, n_params):
            raise CheckpointError(
                f"{config_file}: describes a model of {described:,} parameters but the weights "
                f"hold {n_params:,}: the configuration does not belong to these weights"
            )
        try:
            module, info = AutoModelForSequenceClassification.from_pretrained(
                str(directory),
                config=hf_config,
                local_files_only=True,
                trust_remote_code=False,
                output_loading_info=True,
            )
        except Exception as exc:  # a hostile or broken file fails inside transformers anyhow
            message = _first_line(exc)
            if "mismatched" in message or "size mismatch" in message:
                message = (
                    "weight shapes do not match config.json (a hidden, vocabulary or layer size "
                    "the weights do not have)"
                )
            raise CheckpointError(f"{directory}: cannot load model: {message}") from None
        missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
        if require_head and missing:
            raise CheckpointError(
                f"{directory}: weights lack {len(missing)} parameters (e.g. {missing[0]}); "
                "is this a base encoder without a fine-tuned classification head?"
            )
        vocab = int(module.get_input_embeddings().weight.shape[0])
        if tokenizer.vocab_size > vocab:
            raise CheckpointError(
                f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
                f"{vocab}: tokenizer and model do not match"
            )
        if tokenizer.id_bound > vocab:
            raise CheckpointError(
                f"{directory}: tokenizer ids reach {tokenizer.id_bound - 1} but the model's "
                f"embedding has {vocab} rows: tokenizer and model do not match"
            )
        check_module_values(module, str(directory))
        id2label = getattr(module.config, "id2label", None) or {}
        labels = (
            [str(id2label.get(i, name)) for i, name in enumerate(("not-vulnerable", "vulnerable"))]
            if int(module.config.num_labels) == 2
            else ["not-vulnerable", "vulnerable"]
        )
        module.eval()
        return cls(module, tokenizer, max_len=max_len, default_lang=default_lang, labels=labels)

    @classmethod
    def from_bare_state(
        cls,
        state: dict[str, Any],
        base: str,
        *,
        where: str,
        max_len: int | None = None,
        input_format: str | None = None,
        default_lang: str = "c",
    ) -> tuple[TransformerModel, str, Path]:
        """A bare state dict of published fine-tuning code on its base model (``base``: a
        directory or a cached Hugging Face id). Returns the model, its layout's name and the
        base directory."""
        from transformers import AutoModelForSequenceClassification

        from codeaudit.models.foreign import (
            detect_layout,
            head_width,
            map_state,
            resolve_base,
            strip_data_parallel,
            with_labels,
        )

        state = strip_data_parallel(state)
        layout, stored = detect_layout(state, where)
        from codeaudit.models.foreign import base_files

        directory = resolve_base(base)
        base_files(directory)  # regular files inside the base directory, before any is read
        config_file = directory / "config.json"
        if not config_file.is_file():
            raise CheckpointError(
                f"--base {base}: no config.json in {directory} (the base model's configuration)"
            )
        hf_config = _read_config(directory)
        tokenizer = HFTokenizer.from_directory(str(directory), input_format or layout.input_format)
        check_layer_counts(hf_config.to_dict(), len(state), str(config_file))
        head = {  # the head's keys do not depend on the base prefix
            name: value
            for key, value in state.items()
            if (name := layout.rename(key, stored, stored or "base")) is not None
        }
        width = head_width(head, getattr(hf_config, "hidden_size", None))
        if width not in (1, 2):
            raise CheckpointError(
                f"{where}: its classification head has {width} outputs, and a vulnerability "
                f"model has 1 or 2; it fits no known layout (read as {layout.title}: "
                f"{layout.keys})"
            )
        hf_config = with_labels(hf_config, width)
        shell = meta_build(
            lambda: AutoModelForSequenceClassification.from_config(hf_config), str(config_file)
        )
        prefix = str(getattr(shell, "base_model_prefix", "") or "")
        expected = {name: tuple(p.shape) for name, p in shell.named_parameters()}
        del shell
        mapped = map_state(state, layout, stored, prefix, where)
        try:
            check_state(expected, mapped, f"{layout.title} on --base {base}", where)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; is --base the model it was fine-tuned from?") from None
        rows = expected.get(f"{prefix}.{'embeddings.word_embeddings.weight'}", (0,))[0]
        if tokenizer.vocab_size > rows or tokenizer.id_bound > rows:
            raise CheckpointError(
                f"--base {base}: its tokenizer has {tokenizer.vocab_size} tokens (ids up to "
                f"{tokenizer.id_bound - 1}) but the weights' embedding only {rows}: tokenizer "
                "and weights do not match"
            )
        try:
            module = AutoModelForSequenceClassification.from_config(hf_config)
        except (ValueError, KeyError, TypeError, RuntimeError, ImportError) as exc:
            raise CheckpointError(f"{config_file}: {_first_line(exc)}") from None
        missing, unexpected = module.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:  # checked above; a transformers version that differs
            raise CheckpointError(
                f"{where}: weights do not fit the {layout.title} layout "
                f"({'missing ' + missing[0] if missing else 'unexpected ' + unexpected[0]})"
            )
        module.eval()
        model = cls(
            module,
            tokenizer,
            max_len=max_len or layout.max_len,
            default_lang=default_lang,
            labels=("not-vulnerable", "vulnerable"),
        )
        return model, layout.name, directory
