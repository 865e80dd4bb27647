from __future__ import annotations

import pytest
import torch

from codeaudit.data.samples import Sample
from codeaudit.models import ARCHITECTURES, Arch, adapter_class, infer
from codeaudit.models.inference import length_buckets

ARCHS = ["lstm", "bigru", "transformer"]


def test_registry_covers_every_architecture() -> None:
    assert set(ARCHITECTURES) == set(Arch)
    for arch in Arch:
        assert adapter_class(arch.value).arch == arch.value


@pytest.mark.parametrize("arch", ARCHS)
def test_adapter_interface_shapes(trained: dict, arch: str) -> None:
    _, model, _ = trained[arch]
    samples = [
        Sample("a", "int f(char *s) { strcpy(buf, s); return 0; }", 1),
        Sample("b", "int g(void) { return 1; }", 0),
    ]
    batch = model.collate(model.encode(samples))
    assert batch.input_ids.shape == batch.attention_mask.shape
    with torch.no_grad():
        out = model.forward(batch)
    assert out.logits.shape == (2, 2)
    assert out.embedding.ndim == 2 and out.embedding.shape[0] == 2
    table = model.input_embeddings().weight
    assert table.shape[0] >= model.tokenizer.vocab_size
    assert model.embed(batch.input_ids).shape == (*batch.input_ids.shape, table.shape[1])
    head = model.head_parameters()
    assert head and all(isinstance(p, torch.nn.Parameter) for p in head)
    assert sum(p.numel() for p in head) < model.num_parameters()


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_from_embeddings_equals_forward_from_ids(trained: dict, arch: str) -> None:
    _, model, _ = trained[arch]
    samples = [
        Sample("a", "int f(char *s) { strcpy(buf, s); return 0; }", 1),
        Sample("b", "int g(void) { int k = 3; k++; return k; }", 0),
    ]
    batch = model.collate(model.encode(samples))
    model.eval()
    with torch.no_grad():
        ids_out = model.forward(batch)
        emb_out = model.forward_embeds(model.embed(batch.input_ids), batch.attention_mask)
    torch.testing.assert_close(ids_out.logits, emb_out.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ids_out.embedding, emb_out.embedding, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_flow_to_input_embeddings(trained: dict, arch: str) -> None:
    _, model, _ = trained[arch]
    batch = model.collate(model.encode([Sample("a", "int f(int x) { return x + 1; }", 0)]))
    embeds = model.embed(batch.input_ids).detach().requires_grad_(True)
    out = model.forward_embeds(embeds, batch.attention_mask)
    out.logits[:, 1].sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_and_batching_do_not_change_results(trained: dict, arch: str) -> None:
    _, model, _ = trained[arch]
    codes = [
        "int f(char *s) { strcpy(buf, s); return 0; }",
        "int g(void) { return 1; }",
        "int h(int a, int b) { int c = a * b; if (c > 10) { c = 10; } return c; }",
    ]
    encodings = model.encode([Sample(str(i), c) for i, c in enumerate(codes)])
    together = infer(model, encodings, batch_size=3, embeddings=True)
    for i, enc in enumerate(encodings):
        alone = infer(model, [enc], batch_size=1, embeddings=True)
        assert alone.logits[0] == pytest.approx(together.logits[i], abs=1e-4)
        assert alone.embeddings[0] == pytest.approx(together.embeddings[i], abs=1e-4)


def test_length_buckets_group_similar_lengths() -> None:
    buckets = length_buckets([5, 1, 9, 2, 7], 2)
    assert [b.tolist() for b in buckets] == [[1, 3], [0, 4], [2]]
