"""What the CodeXGLUE defect-detection code computes, with torch and transformers only (no
codeaudit import): run as ``python codexglue_reference.py BASE MODEL_BIN DATA BLOCK_SIZE``, it
prints the probability of "vulnerable" for every record of DATA as a JSON list.

Steps, as that code does them at test time: the base's config with ``num_labels = 1``; a
RobertaForSequenceClassification wrapped as ``encoder`` of a module whose state dict is
MODEL_BIN; each function collapsed with ``" ".join(code.split())``, tokenized, cut to
``block_size - 2`` pieces, framed by ``<s>`` and ``</s>`` and padded with the padding id to
``block_size``; the attention mask is ``input_ids != 1``; the probability is the sigmoid of the
one logit.
"""

from __future__ import annotations

import json
import sys

import torch
from torch import nn
from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification


class Wrapper(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(input_ids, attention_mask=input_ids.ne(1))[0])


def main() -> None:
    base, weights, data, block_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    config = RobertaConfig.from_pretrained(base)
    config.num_labels = 1
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = Wrapper(RobertaForSequenceClassification(config))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    rows = []
    with open(data, encoding="utf-8") as handle:
        for line in handle:
            code = " ".join(json.loads(line)["func"].split())
            pieces = tokenizer.tokenize(code)[: block_size - 2]
            tokens = [tokenizer.cls_token, *pieces, tokenizer.sep_token]
            ids = tokenizer.convert_tokens_to_ids(tokens)
            rows.append(ids + [tokenizer.pad_token_id] * (block_size - len(ids)))
    with torch.no_grad():
        prob = model(torch.tensor(rows))[:, 0]
    print(json.dumps([float(p) for p in prob]))


if __name__ == "__main__":
    main()
