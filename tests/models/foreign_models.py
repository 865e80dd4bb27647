"""Models in the formats users ship, made here with plain transformers (no codeaudit code): a base
model directory, save_pretrained directories, and the bare ``model.bin`` state dicts that the
CodeXGLUE and EliBadCode fine-tuning code writes (their wrapper modules rebuilt from the keys and
behaviour those projects document)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from tests.conftest import planted_records

HIDDEN = 32
BLOCK_SIZE = 64  # the block size these tests fine-tune and predict with (CodeXGLUE uses 400)


def collapse(code: str) -> str:
    """CodeXGLUE's input: whitespace runs collapsed to one space, nothing else changed."""
    return " ".join(code.split())


def corpus(n: int = 80, seed: int = 0) -> list[dict]:
    return planted_records(n, seed=seed)


def make_base(root: Path, *, vocab_files_only: bool = False, hidden: int = HIDDEN) -> Path:
    """A tiny RoBERTa base: config.json and a byte-level BPE trained on raw C code (tokenizer.json,
    or only vocab.json + merges.txt as a downloaded CodeBERT holds), no weights."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig

    root.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([collapse(r["func"]) for r in corpus(200, seed=7)], trainer)
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>"))
    )
    if vocab_files_only:
        backend.model.save(str(root))
    else:
        PreTrainedTokenizerFast(
            tokenizer_object=backend,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
            cls_token="<s>",
            sep_token="</s>",
        ).save_pretrained(root)
    RobertaConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=130,
        type_vocab_size=1,
        initializer_range=0.5,  # large random weights: a random model whose outputs vary
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    ).save_pretrained(root)
    return root


def load_base_tokenizer(base: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base), local_files_only=True)


def classifier(base: Path, num_labels: int, seed: int = 0) -> nn.Module:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    config = RobertaConfig.from_pretrained(str(base))
    config.num_labels = num_labels
    torch.manual_seed(seed)
    model = RobertaForSequenceClassification(config).eval()
    return model


def make_hf_dir(
    root: Path, *, safetensors: bool, num_labels: int, vocab_files_only: bool, seed: int = 0
) -> Path:
    """A fine-tuned classifier saved with save_pretrained, as users ship them."""
    base = make_base(root, vocab_files_only=vocab_files_only)
    model = classifier(base, num_labels, seed)
    model.save_pretrained(root)
    if not safetensors:  # what transformers before safetensors wrote (5.x writes only those)
        (root / "model.safetensors").unlink(missing_ok=True)
        torch.save(model.state_dict(), root / "pytorch_model.bin")
    weights = {p.name for p in root.iterdir()}
    expected = "model.safetensors" if safetensors else "pytorch_model.bin"
    assert expected in weights and len(weights & {"model.safetensors", "pytorch_model.bin"}) == 1
    return root


class CodeXGLUEModel(nn.Module):
    """CodeXGLUE defect detection's wrapper: a one-output sequence classifier as ``encoder``,
    attention mask from the padding id 1, probability sigmoid(logit)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = self.encoder(input_ids, attention_mask=input_ids.ne(1))[0]
        return torch.sigmoid(logits)


def codexglue_ids(tokenizer, code: str, block_size: int = BLOCK_SIZE) -> list[int]:  # type: ignore[no-untyped-def]
    """CodeXGLUE's features: collapse, tokenize, cut to block_size - 2, add <s> </s>, pad."""
    pieces = tokenizer.tokenize(collapse(code))[: block_size - 2]
    ids = tokenizer.convert_tokens_to_ids([tokenizer.cls_token, *pieces, tokenizer.sep_token])
    return ids + [tokenizer.pad_token_id] * (block_size - len(ids))


def make_codexglue_bin(
    path: Path, base: Path, *, train_steps: int = 30, seed: int = 0
) -> tuple[Path, list[dict]]:
    """Fine-tune the CodeXGLUE way (BCE on sigmoid(logit), AdamW) and torch.save the wrapper's
    state dict to ``path`` (checkpoint-best-acc/model.bin). Returns the path and the data."""
    records = corpus(80, seed=seed)
    tokenizer = load_base_tokenizer(base)
    model = CodeXGLUEModel(classifier(base, 1, seed))
    inputs = torch.tensor([codexglue_ids(tokenizer, r["func"]) for r in records])
    labels = torch.tensor([float(r["target"]) for r in records])
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(train_steps):
        batch = torch.randint(0, len(records), (16,), generator=generator)
        prob = model(inputs[batch])[:, 0]
        y = labels[batch]
        loss = -(torch.log(prob + 1e-10) * y + torch.log(1 - prob + 1e-10) * (1 - y)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path, records


class ClassificationHead(nn.Module):
    """EliBadCode's head: dense + tanh + a one-output projection on the first token."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.1)
        self.out_proj = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0, :])
        return self.out_proj(self.dropout(torch.tanh(self.dense(x))))


class EliBadCodeModel(nn.Module):
    """EliBadCode's wrapper: the base encoder (with its unused pooler) and its own head."""

    def __init__(self, encoder: nn.Module, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = ClassificationHead(hidden)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        outputs = self.encoder(input_ids=input_ids, attention_mask=input_ids.ne(1))[0]
        return torch.sigmoid(self.classifier(outputs))


def make_elibadcode_bin(path: Path, base: Path, *, seed: int = 0) -> tuple[Path, nn.Module]:
    from transformers import RobertaConfig, RobertaModel

    config = RobertaConfig.from_pretrained(str(base))
    torch.manual_seed(seed)
    model = EliBadCodeModel(RobertaModel(config), config.hidden_size).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path, model


def write_data(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
