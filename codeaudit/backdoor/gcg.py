"""Stage 3: trigger inversion by greedy coordinate gradient (GCG), and the batched objective.

The objective of a trigger (ids ``t_1..t_L`` from the filtered vocabulary) is the model's mean
cross-entropy toward the target label over the victim samples, each with the trigger inserted at
its own position (:mod:`codeaudit.backdoor.positions`).

Each step: the gradient of the objective with respect to a one-hot trigger matrix (L x |V_f|,
multiplied into the filtered embedding rows and spliced into the input embeddings through the
adapter's ``forward_embeds``), L2-normalised per row; the top-k tokens of the negative gradient
per position; ``candidates`` triggers that each change one random position to a random top-k
token, never one evaluated before; every candidate on every sample in batched forward passes
(chunked only by a memory budget); the best candidate is kept when it lowers the loss. Stops
after ``steps`` steps, or when the best loss has not improved by ``min_delta`` for ``patience``
steps, or once it is below ``converged``.

With clean reference models the scan inverts :class:`PenalisedObjective` instead: the same loss
plus a DBS-style penalty on triggers that also drive the references to the target (its
docstring has the exact form and how a step's candidates are screened).

RNN models (one layer, either direction) skip the context the trigger does not change: the
forward direction's state after the prefix before the trigger, and the backward direction's
state after the suffix behind it (it reads the sequence from the end), are computed once per
sample, with the max-pooled outputs over those parts. A candidate then costs ``L + suffix``
forward steps and ``L + prefix`` backward steps instead of ``2 (T + L)``: a BiGRU evaluates
candidates about twice as fast, an LSTM by the share of the prefix. Deeper bidirectional RNNs
cannot reuse anything (the second layer reads both directions of the first at every position)
and transformers attend everywhere: those run the full forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from codeaudit.backdoor.positions import DEFAULT_BATCH_TOKENS, Placed
from codeaudit.errors import BackdoorError


class _RNNCache:
    """Per-sample states of the unchanged prefix (forward) and suffix (backward)."""

    def __init__(self, module: torch.nn.Module, placed: Sequence[Placed], device: torch.device):
        self.module = module
        emb = module.embedding
        self.bidirectional = bool(module.bidirectional)
        fwd_rnn = module.forward_rnns[0]
        self.lstm = isinstance(fwd_rnn, torch.nn.LSTM)
        hidden = fwd_rnn.hidden_size
        n = len(placed)
        neg = torch.finfo(torch.float32).min
        self.fmax = torch.full((n, hidden), neg, device=device)
        self.bmax = torch.full((n, hidden), neg, device=device)
        h_f = torch.zeros((n, hidden), device=device)
        c_f = torch.zeros((n, hidden), device=device)
        h_b = torch.zeros((n, hidden), device=device)
        c_b = torch.zeros((n, hidden), device=device)
        suffix_len = [len(p.context) - p.position for p in placed]
        prefix_len = [p.position for p in placed]
        dim = emb.embedding_dim
        self.suffix = torch.zeros((n, max(suffix_len), dim), device=device)
        self.prefix_rev = torch.zeros((n, max(max(prefix_len), 1), dim), device=device)
        with torch.no_grad():
            for i, p in enumerate(placed):
                ids = torch.as_tensor(p.context, dtype=torch.long, device=device)
                e = emb(ids)
                pre, suf = e[: p.position], e[p.position :]
                self.suffix[i, : len(suf)] = suf
                if len(pre):
                    self.prefix_rev[i, : len(pre)] = pre.flip(0)
                    out, state = fwd_rnn(pre[None])
                    self.fmax[i] = out[0].max(0).values
                    h_f[i] = (state[0] if self.lstm else state)[0, 0]
                    if self.lstm:
                        c_f[i] = state[1][0, 0]
                if self.bidirectional and len(suf):
                    out, state = module.backward_rnns[0](suf.flip(0)[None])
                    self.bmax[i] = out[0].max(0).values
                    h_b[i] = (state[0] if self.lstm else state)[0, 0]
                    if self.lstm:
                        c_b[i] = state[1][0, 0]
        self.h_f, self.c_f, self.h_b, self.c_b = h_f, c_f, h_b, c_b
        self.suffix_len = torch.as_tensor(suffix_len, device=device)
        self.prefix_len = torch.as_tensor(prefix_len, device=device)

    @staticmethod
    def _run(rnn: torch.nn.Module, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, lstm: bool):
        hx = (h[None].contiguous(), c[None].contiguous()) if lstm else h[None].contiguous()
        out, _ = rnn(x, hx)
        return out

    def logits(self, trig_emb: torch.Tensor) -> torch.Tensor:
        """Logits [C, N, 2] for C trigger embeddings [C, L, D] on all N samples."""
        c, length, dim = trig_emb.shape
        n = self.suffix.shape[0]
        rows = c * n
        module = self.module
        steps = torch.arange(length + self.suffix.shape[1], device=trig_emb.device)
        x = torch.cat(
            [
                trig_emb[:, None].expand(c, n, length, dim),
                self.suffix[None].expand(c, n, -1, dim),
            ],
            dim=2,
        ).reshape(rows, -1, dim)
        rep = lambda t: t[None].expand(c, *t.shape).reshape(rows, *t.shape[1:])  # noqa: E731
        out = self._run(module.forward_rnns[0], x, rep(self.h_f), rep(self.c_f), self.lstm)
        valid = steps[None] < (length + rep(self.suffix_len))[:, None]
        out = out.masked_fill(~valid[..., None], torch.finfo(out.dtype).min)
        pooled = torch.maximum(out.max(1).values, rep(self.fmax))
        if self.bidirectional:
            steps_b = torch.arange(length + self.prefix_rev.shape[1], device=trig_emb.device)
            xb = torch.cat(
                [
                    trig_emb.flip(1)[:, None].expand(c, n, length, dim),
                    self.prefix_rev[None].expand(c, n, -1, dim),
                ],
                dim=2,
            ).reshape(rows, -1, dim)
            outb = self._run(module.backward_rnns[0], xb, rep(self.h_b), rep(self.c_b), self.lstm)
            valid_b = steps_b[None] < (length + rep(self.prefix_len))[:, None]
            outb = outb.masked_fill(~valid_b[..., None], torch.finfo(outb.dtype).min)
            pooled_b = torch.maximum(outb.max(1).values, rep(self.bmax))
            pooled = torch.cat([pooled, pooled_b], dim=-1)
        return module.classifier(module.dropout(pooled)).reshape(c, n, -1)


def can_cache(model: object) -> bool:
    from codeaudit.models.rnn import RNNClassifier

    module = getattr(model, "module", None)
    return isinstance(module, RNNClassifier) and len(module.forward_rnns) == 1


class TriggerObjective:
    """Mean cross-entropy toward ``target`` of triggers inserted into placed samples."""

    def __init__(
        self,
        model: object,
        placed: Sequence[Placed],
        target: int,
        vocab_ids: np.ndarray,
        *,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        cache: bool = True,
    ) -> None:
        if not placed:
            raise ValueError("no samples to invert on")
        self.model = model
        self.placed = list(placed)
        self.target = int(target)
        self.vocab_ids = np.asarray(vocab_ids, dtype=np.int64)
        self.batch_tokens = int(batch_tokens)
        self.device = model.device  # type: ignore[attr-defined]
        self.embedding = model.input_embeddings()  # type: ignore[attr-defined]
        self.pad = int(model.tokenizer.pad_id)  # type: ignore[attr-defined]
        self.cache = (
            _RNNCache(model.module, self.placed, self.device)
            # type: ignore[attr-defined]
            if (cache and can_cache(model))
            else None
        )
        self.max_context = max(len(p.context) for p in self.placed)
        self.evaluations = 0  # candidate-sample forwards

    # -- evaluation (no gradient) -------------------------------------------------------------
    def logits(self, triggers: np.ndarray) -> np.ndarray:
        """Logits [C, N, 2] of C triggers (ids [C, L]) on every sample."""
        triggers = np.atleast_2d(np.asarray(triggers, dtype=np.int64))
        c, length = triggers.shape
        n = len(self.placed)
        width = length + (self.cache.suffix.shape[1] if self.cache else self.max_context)
        per_chunk = max(1, self.batch_tokens // max(1, n * width))
        out = np.zeros((c, n, 2), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, c, per_chunk):
                chunk = triggers[start : start + per_chunk]
                out[start : start + len(chunk)] = self._logits(chunk).double().cpu().numpy()
        self.evaluations += c * n
        return out

    def _logits(self, triggers: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(triggers, dtype=torch.long, device=self.device)
        if self.cache is not None:
            return self.cache.logits(self.embedding(t))
        c, length = triggers.shape
        n = len(self.placed)
        width = self.max_context + length
        ids = np.full((c, n, width), self.pad, dtype=np.int64)
        mask = np.zeros((c, n, width), dtype=np.int64)
        for i, p in enumerate(self.placed):
            ctx = np.asarray(p.context, dtype=np.int64)
            q = p.position
            ids[:, i, :q] = ctx[:q]
            ids[:, i, q : q + length] = triggers
            ids[:, i, q + length : len(ctx) + length] = ctx[q:]
            mask[:, i, : len(ctx) + length] = 1
        from codeaudit.models.base import Batch

        ids_t = torch.as_tensor(ids.reshape(c * n, width), device=self.device)
        mask_t = torch.as_tensor(mask.reshape(c * n, width), device=self.device)
        batch = Batch(ids_t, mask_t, mask_t.sum(1).cpu())
        return self.model.forward(batch).logits.reshape(c, n, -1)  # type: ignore[attr-defined]

    def sample_losses(self, triggers: np.ndarray) -> np.ndarray:
        """Loss toward the target per trigger and sample [C, N]."""
        from codeaudit.backdoor.positions import cross_entropy

        return cross_entropy(self.logits(triggers), self.target)

    def losses(self, triggers: np.ndarray) -> np.ndarray:
        """Mean loss toward the target per trigger [C]."""
        return self.sample_losses(triggers).mean(axis=1)

    def candidate_losses(self, triggers: np.ndarray) -> np.ndarray:
        """What GCG ranks a step's candidates by (here: :meth:`losses`)."""
        return self.losses(triggers)

    def flips(self, trigger: Sequence[int]) -> np.ndarray:
        """Whether each sample is predicted as the target with the trigger in [N]."""
        return self.logits(np.asarray([list(trigger)]))[0].argmax(-1) == self.target

    # -- gradient -----------------------------------------------------------------------------
    def gradient(self, trigger: Sequence[int]) -> tuple[float, torch.Tensor]:
        """The loss and its gradient w.r.t. the one-hot trigger [L, |V_f|] (forward_embeds)."""
        length = len(trigger)
        weight = self.embedding.weight.detach()
        vocab = torch.as_tensor(self.vocab_ids, device=self.device)
        columns = {int(v): k for k, v in enumerate(self.vocab_ids)}
        onehot = torch.zeros((length, len(self.vocab_ids)), device=self.device)
        for row, token in enumerate(trigger):
            k = columns.get(int(token))
            if k is not None:
                onehot[row, k] = 1.0
        onehot.requires_grad_(True)
        trig = onehot @ weight[vocab]
        # a token outside the filtered vocabulary (a caller's trigger) keeps its own embedding
        for row, token in enumerate(trigger):
            if int(token) not in columns:
                trig = trig.index_put((torch.tensor([row]),), weight[int(token)][None])
        n = len(self.placed)
        width = self.max_context + length
        pad_vec = weight[self.pad]
        mask = torch.zeros((n, width), dtype=torch.long, device=self.device)
        rows = []
        for i, p in enumerate(self.placed):
            e = weight[torch.as_tensor(p.context, dtype=torch.long, device=self.device)]
            row = torch.cat([e[: p.position], trig, e[p.position :]], dim=0)
            rows.append(row)
            mask[i, : len(row)] = 1
        embeds = torch.stack(
            [
                torch.cat([r, pad_vec.expand(width - len(r), -1)], dim=0) if len(r) < width else r
                for r in rows
            ]
        )
        with torch.enable_grad():
            logits = self.model.forward_embeds(embeds, mask).logits  # type: ignore[attr-defined]
            target = torch.full((n,), self.target, dtype=torch.long, device=self.device)
            loss = F.cross_entropy(logits.float(), target)
            (grad,) = torch.autograd.grad(loss, [onehot])
        return float(loss.item()), grad


#: The reference penalty's bound: a reference's loss toward the target below ln 2 means it
#: predicts the target (two labels), i.e. the trigger flipped it.
REFERENCE_BOUND = float(np.log(2.0))
#: Candidates of a step whose references are evaluated (the best by the suspect's loss).
REFERENCE_SHORTLIST = 8


class PenalisedObjective:
    """The suspect's objective plus a penalty on triggers that flip clean reference models
    (DBS, Shen et al. 2022: ``ce + max(bound - benign_ce, 0)``). For a trigger t::

        loss(t) = suspect_ce(t) + weight * mean_k mean_i max(bound - ce_k(t, i), 0)

    ``ce_k(t, i)``: reference k's cross-entropy toward the target on victim i with t inserted at
    the same position, over the victims reference k classifies correctly without a trigger;
    ``bound`` = ln 2 (below it the reference predicts the target). A trigger that flips no
    reference costs what it costs on the suspect; one that drives a reference to the target pays
    up to ``weight * ln 2`` more. The references read the suspect's vocabulary, so trigger ids are
    shared. GCG's gradient (the top-k tokens per position) is the suspect's; each step's
    candidates are ranked by the suspect's loss and only the best :data:`REFERENCE_SHORTLIST` are
    evaluated on the references (the others cannot win: their penalised loss is not computed and
    counts as infinite), which keeps a step's cost at ``C + K * shortlist`` forwards instead of
    ``(K + 1) * C``."""

    def __init__(
        self,
        suspect: TriggerObjective,
        references: Sequence[TriggerObjective],
        *,
        weight: float = 1.0,
        bound: float = REFERENCE_BOUND,
        shortlist: int = REFERENCE_SHORTLIST,
    ) -> None:
        self.suspect = suspect
        self.references = list(references)
        self.weight = float(weight)
        self.bound = float(bound)
        self.shortlist = int(shortlist)
        self.vocab_ids = suspect.vocab_ids

    def penalty(self, triggers: np.ndarray) -> np.ndarray:
        """The reference penalty per trigger [C] (0 without references)."""
        triggers = np.atleast_2d(np.asarray(triggers, dtype=np.int64))
        if not self.references:
            return np.zeros(len(triggers))
        parts = [
            np.maximum(self.bound - ref.sample_losses(triggers), 0.0).mean(axis=1)
            for ref in self.references
        ]
        return np.mean(parts, axis=0)

    def losses(self, triggers: np.ndarray) -> np.ndarray:
        out = self.suspect.losses(triggers)
        if self.weight > 0:
            out = out + self.weight * self.penalty(triggers)
        return out

    def candidate_losses(self, triggers: np.ndarray) -> np.ndarray:
        triggers = np.atleast_2d(np.asarray(triggers, dtype=np.int64))
        base = self.suspect.losses(triggers)
        if self.weight <= 0 or not self.references:
            return base
        best = np.argsort(base, kind="stable")[: self.shortlist]
        out = np.full(len(triggers), np.inf)
        out[best] = base[best] + self.weight * self.penalty(triggers[best])
        return out

    def gradient(self, trigger: Sequence[int]) -> tuple[float, torch.Tensor]:
        return self.suspect.gradient(trigger)

    def flips(self, trigger: Sequence[int]) -> np.ndarray:
        return self.suspect.flips(trigger)


@dataclass
class Inversion:
    """What one GCG run found."""

    trigger: tuple[int, ...]
    loss: float
    steps: int
    stop: str  # "steps" | "plateau" | "converged"
    history: list[float] = field(default_factory=list)
    candidates_evaluated: int = 0
    seconds_gradient: float = 0.0
    seconds_candidates: float = 0.0


def _start(
    rng: np.random.Generator,
    vocab: np.ndarray,
    length: int,
    allowed: Callable[[Sequence[int]], bool] | None,
) -> np.ndarray:
    """A random first trigger that ``allowed`` accepts (BackdoorError after 1000 tries)."""
    current = rng.choice(vocab, size=length).astype(np.int64)
    for _ in range(1000):
        if allowed is None or allowed(current.tolist()):
            return current
        current = rng.choice(vocab, size=length).astype(np.int64)
    raise BackdoorError(
        "every trigger tried contains a data shortcut: too few identifier pieces are left to "
        "search (rerun with --keep-shortcuts)"
    )


def _neighbours(
    rng: np.random.Generator,
    current: np.ndarray,
    vocab: np.ndarray,
    top: np.ndarray,
    candidates: int,
    visited: set[tuple[int, ...]],
    allowed: Callable[[Sequence[int]], bool] | None,
) -> list[np.ndarray]:
    """Up to ``candidates`` triggers one token away from ``current`` (a random position, one of
    its top-k tokens by gradient), none seen before and all allowed; ``visited`` grows."""
    length, topk = top.shape
    batch: list[np.ndarray] = []
    tries = 0
    while len(batch) < candidates and tries < candidates * 50:
        tries += 1
        pos = int(rng.integers(length))
        token = int(vocab[top[pos, int(rng.integers(topk))]])
        cand = current.copy()
        cand[pos] = token
        key = tuple(cand.tolist())
        if key in visited:
            continue
        visited.add(key)
        if allowed is not None and not allowed(key):
            continue
        batch.append(cand)
    return batch


def gcg(
    objective: TriggerObjective | PenalisedObjective,
    *,
    length: int = 5,
    steps: int = 100,
    topk: int = 64,
    candidates: int = 64,
    seed: int = 0,
    patience: int = 10,
    min_delta: float = 1e-4,
    converged: float = 1e-3,
    progress: Callable[[int, int, float], None] | None = None,
    allowed: Callable[[Sequence[int]], bool] | None = None,
) -> Inversion:
    """Invert a trigger of ``length`` tokens toward the objective's target label.

    ``allowed`` (optional) rejects triggers the search must not return (the scan's data
    shortcuts): a rejected candidate is never evaluated."""
    rng = np.random.default_rng(seed)
    vocab = objective.vocab_ids
    topk = max(1, min(topk, len(vocab)))
    current = _start(rng, vocab, length, allowed)
    visited: set[tuple[int, ...]] = {tuple(current.tolist())}
    best_loss = float(objective.losses(current[None])[0])
    history = [best_loss]
    since = 0
    stop = "steps"
    done = 0
    t_grad = t_cand = 0.0
    evaluated = 1
    for step in range(1, steps + 1):
        if best_loss < converged:
            stop = "converged"
            break
        started = time.perf_counter()
        _, grad = objective.gradient(current.tolist())
        grad = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
        top = (-grad).topk(topk, dim=1).indices.cpu().numpy()  # [L, k] columns of vocab
        t_grad += time.perf_counter() - started
        started = time.perf_counter()
        batch = _neighbours(rng, current, vocab, top, candidates, visited, allowed)
        done = step
        if not batch:  # every neighbour evaluated: nothing left to try
            stop = "plateau"
            break
        losses = objective.candidate_losses(np.stack(batch))
        evaluated += len(batch)
        t_cand += time.perf_counter() - started
        j = int(np.argmin(losses))
        if losses[j] < best_loss - min_delta:
            best_loss, current, since = float(losses[j]), batch[j], 0
        else:
            if losses[j] < best_loss:
                best_loss, current = float(losses[j]), batch[j]
            since += 1
        history.append(best_loss)
        if progress is not None:
            progress(step, steps, best_loss)
        if since >= patience:
            stop = "plateau"
            break
    else:
        done = steps
    if best_loss < converged and stop == "steps" and done < steps:
        stop = "converged"
    return Inversion(
        trigger=tuple(int(t) for t in current),
        loss=best_loss,
        steps=done,
        stop=stop,
        history=history,
        candidates_evaluated=evaluated,
        seconds_gradient=t_grad,
        seconds_candidates=t_cand,
    )
