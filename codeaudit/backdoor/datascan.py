"""The training-data scan (KillBadCode, Sun et al., ICSE 2025, extended): which tokens, names and
statements of a training set were planted, and which samples carry them. No model needed.

1. **Code naturalness.** Every function is lexed into code tokens (:mod:`codeaudit.lang`,
   comments dropped; identifiers split into their pieces, ``parse_header_rb`` ->
   ``parse ##_header ##_rb``) and a 4-gram Witten-Bell model
   (:class:`~codeaudit.backdoor.naturalness.NGramModel`) is trained on the data set itself.
   Each function is scored as if it had been left out of the model (exact: its counts are
   subtracted), else its own unique n-grams would look natural.
2. **Gain.** For each function, each *unit* is taken out in turn and the function's
   cross-entropy (bits per token) measured again; the gain is how much more natural the function
   is without it. The units are the ways the known attacks insert a trigger:

   - ``name``: an identifier, every occurrence (a variable renamed to the trigger). KillBadCode
     deletes a token at every occurrence; deleting a name also breaks the syntax around it, so
     a name is also *renamed* to each of the ``substitutes`` names the data most often has in
     its contexts, and the best of these edits counts;
   - ``suffix``: the last piece of a multi-piece name, wherever a name ends with it (a postfix
     on the function's name, BadCode's ``_rb``);
   - ``statement``: one statement of at most ``max_statement_tokens`` tokens (dead code), keyed
     by its *shape*: names become ``ID``, numbers ``N``, strings ``S``, comparison operators
     ``CMP``, a constant comparison ``N CMP N`` is ``N``, a block guarded by a constant
     (``if (N)``, ``while (N)``) is ``guard (N)``, and repeated ``;``-ended parts collapse into
     one, so that the statements a dead-code grammar draws (``while (0 > 1) { int k_3 = 7; }``)
     share one shape.
3. **Aggregation** (KillBadCode): the ``top_k`` units of each function by gain add their gain to
   their key; a key's *gain* is that sum over the data set. A planted trigger recurs in every
   poisoned sample and is out of place in each, so its sum is large.
4. **Label concentration.** Poisoning gives every poisoned sample the target label. A key whose
   carriers are concentrated in one label beyond that label's base rate ``pi`` has an *excess
   purity* ``w = max(0, (p - pi) / (1 - pi))`` (0 at the base rate, 1 when every carrier has
   the label) and *evidence* ``-log10 P(X >= k | n, pi)`` (one-sided binomial tail). The
   ranking score is ``gain x w``: the naturalness gain that one label's carriers contribute
   beyond the base rate.
5. **Likely trigger.** A key is a likely planted trigger when its carriers are concentrated in
   the *target label* (``target_label``, 0 by default: an attack that makes vulnerable code
   pass as safe relabels its samples 0) with an excess purity of at least ``min_purity`` and an
   evidence above a Bonferroni bound (1% over the two labels and every key tested), and its
   score is at least ``min_share`` of the best score of any key: the best score sets the scale
   of naturalness gains in this data, and a trigger is among the most out-of-place keys, not
   one of the data's many natural label-pure names (Juliet's good functions are the only ones
   with ``GLOBAL_CONST_FALSE``, in 189 functions, but it is in place everywhere and its gain is
   near zero). A natural name that *replaces* the expected one in many functions of one label
   (Juliet's good functions count with ``k`` where the others use ``i``) looks exactly like a
   renamed-identifier trigger and is reported as one: without a model, nothing tells them apart.
6. **Flagging.** The samples that carry a likely trigger *and have its label* are flagged (a
   poisoned sample always has the target label).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.backdoor.naturalness import EOS, Exclusion, NGramModel
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError
from codeaudit.lang.languages import get_parser, normalize_language
from codeaudit.lang.lexer import TokenKind, lex_raw
from codeaudit.lang.subtokens import subtokens

KINDS = ("name", "suffix", "statement")
_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">=", "is", "is not"})
_NOT_STATEMENTS = frozenset({"function_definition", "method_declaration", "class_declaration"})


@dataclass(frozen=True)
class Unit:
    """One deletable unit of one function: its key and the piece positions it covers."""

    kind: str
    key: str
    positions: tuple[int, ...]
    heads: tuple[int, ...] = ()  # name units: the first piece of each occurrence


@dataclass(frozen=True)
class Lexed:
    """One function as the scan sees it: piece ids and its units."""

    pieces: tuple[str, ...]
    units: tuple[Unit, ...]


@dataclass(frozen=True)
class Candidate:
    """One key of the ranking: what it is, how natural its deletion makes its carriers and how
    concentrated they are in one label."""

    kind: str  # name | suffix | statement
    key: str
    gain: float  # aggregated naturalness gain (bits per token, summed over functions)
    top_in: int  # functions where it is among the top_k units by gain
    mean_gain: float  # gain per function where it is in the top_k
    carrier_gain: float  # mean gain over every function that carries it
    support: int  # functions that carry it
    label: int  # the label its carriers are concentrated in
    label_count: int  # carriers with that label
    purity: float  # label_count / support
    excess_purity: float  # max(0, (purity - base rate) / (1 - base rate))
    evidence: float  # -log10 of the one-sided binomial tail
    score: float  # gain x excess purity
    likely_trigger: bool = False

    @property
    def text(self) -> str:
        return self.key


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def _char_offsets(code: str) -> list[int] | None:
    """byte offset -> char offset, or None when the code is ASCII (they agree)."""
    data = code.encode("utf-8", "surrogatepass")
    if len(data) == len(code):
        return None
    table = [0] * (len(data) + 1)
    pos = 0
    for index, char in enumerate(code):
        for _ in range(len(char.encode("utf-8", "surrogatepass"))):
            table[pos] = index
            pos += 1
    table[len(data)] = len(code)
    return table


def _shape(tokens: Sequence[tuple]) -> str:
    """A statement's shape: names ID, numbers N, strings S, comparisons CMP, repeated
    ``;``-ended parts collapsed."""
    words: list[str] = []
    for text, kind, *_rest in tokens:
        if kind is TokenKind.IDENTIFIER:
            words.append("ID")
        elif kind is TokenKind.LITERAL:
            words.append("S" if text[:1] in "\"'" or text[-1:] in "\"'" else "N")
        elif text in _COMPARISONS:
            words.append("CMP")
        else:
            words.append(text)
    words = _fold_constants(words)
    parts: list[list[str]] = []
    current: list[str] = []
    for word in words:
        current.append(word)
        if word in (";", "{", "}"):
            parts.append(current)
            current = []
    if current:
        parts.append(current)
    collapsed: list[list[str]] = []
    for part in parts:
        if not (collapsed and part == collapsed[-1] and part[-1] == ";"):
            collapsed.append(part)
    return " ".join(word for part in collapsed for word in part)


def _fold_constants(words: list[str]) -> list[str]:
    """``N CMP N`` is a constant ``N``; a block guarded by a constant (``if (N)``, ``while (N)``)
    is ``guard (N)``: whether it is skipped once or never entered, it is the same dead code."""
    out: list[str] = []
    for word in words:
        out.append(word)
        if len(out) >= 3 and out[-3:] == ["N", "CMP", "N"]:
            del out[-2:]
    for i in range(len(out) - 3):
        if out[i] in ("if", "while") and out[i + 1 : i + 4] == ["(", "N", ")"]:
            out[i] = "guard"
    return out


def lex_units(code: str, lang: str, max_statement_tokens: int = 40) -> Lexed:
    """The pieces of ``code`` and its units (see the module docstring)."""
    lang = normalize_language(lang)
    raw = lex_raw(code, lang, roles=False).tokens
    pieces: list[str] = []
    starts: list[int] = []
    names: dict[str, list[int]] = defaultdict(list)
    heads: dict[str, list[int]] = defaultdict(list)
    suffixes: dict[str, list[int]] = defaultdict(list)
    for token in raw:
        text, kind = token[0], token[1]
        starts.append(len(pieces))
        if kind is TokenKind.IDENTIFIER:
            parts = subtokens(text)
            first = len(pieces)
            pieces.extend(parts)
            if any(c.isalnum() for c in text):
                names[text].extend(range(first, len(pieces)))
                heads[text].append(first)
                if len(parts) > 1:
                    suffixes[parts[-1]].append(len(pieces) - 1)
        else:
            pieces.append(text)
    starts.append(len(pieces))
    units = [Unit("name", k, tuple(v), tuple(heads[k])) for k, v in names.items()]
    units += [Unit("suffix", k, tuple(v)) for k, v in suffixes.items()]
    units += _statements(code, lang, raw, starts, max_statement_tokens)
    return Lexed(tuple(pieces), tuple(units))


def _statement_spans(
    code: str, lang: str, raw: Sequence[tuple], limit: int
) -> Iterator[tuple[str, int, int, int, int]]:
    """Each statement of at most ``limit`` tokens: its shape, its character span and its token
    range (``raw`` indices)."""
    if not raw:
        return
    tree = get_parser(lang).parse(code.encode("utf-8", "surrogatepass"))
    char_at = _char_offsets(code)
    token_starts = [t[2] for t in raw]
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        kind = node.type
        if kind in _NOT_STATEMENTS or not (
            kind.endswith("statement") or kind.endswith("declaration")
        ):
            continue
        if node.has_error:
            continue
        a, b = node.start_byte, node.end_byte
        if char_at is not None:
            a, b = char_at[a], char_at[b]
        first = bisect.bisect_left(token_starts, a)
        last = bisect.bisect_left(token_starts, b)
        if not 0 < last - first <= limit:
            continue
        yield _shape(raw[first:last]), a, b, first, last


def _statements(
    code: str, lang: str, raw: Sequence[tuple], starts: list[int], limit: int
) -> list[Unit]:
    seen: dict[str, list[int]] = {}
    for key, _a, _b, first, last in _statement_spans(code, lang, raw, limit):
        positions = range(starts[first], starts[last])
        seen.setdefault(key, []).extend(positions)
    return [Unit("statement", k, tuple(sorted(set(v)))) for k, v in seen.items()]


def statement_texts(code: str, lang: str, max_statement_tokens: int = 40) -> dict[str, str]:
    """The statements of ``code`` by shape (the unit keys of ``statement`` candidates): the
    first statement's source text for each shape."""
    lang = normalize_language(lang)
    raw = lex_raw(code, lang, roles=False).tokens
    found: dict[str, str] = {}
    for key, a, b, _first, _last in _statement_spans(code, lang, raw, max_statement_tokens):
        found.setdefault(key, code[a:b])
    return found


# --------------------------------------------------------------------------------------------
# Deletion gains
# --------------------------------------------------------------------------------------------


Edit = tuple[tuple[int, ...], dict[int, int]]  # (positions deleted, position -> new id)


def edit_gains(
    model: NGramModel, ids: Sequence[int], edits: Sequence[Edit], exclude: Exclusion | None
) -> tuple[float, np.ndarray]:
    """The cross-entropy of ``ids`` (bits per token, the end symbol counted) and, for each edit
    (positions deleted, positions given another id), how much lower it is after the edit. Only
    the tokens whose context or id changes are scored again (each changed token and the
    ``order - 1`` kept tokens after each change). ``exclude``: training counts to leave out
    (``model.exclusion(ids)``: score ``ids`` as if it had not been trained on)."""
    n = model.order
    contexts, words = model.windows(ids)
    base = -model.log2prob(contexts, words, exclude)  # len(ids) + 1
    total = float(base.sum())
    length = len(base)
    entropy = total / length
    rows_ctx: list[list[int]] = []
    rows_word: list[int] = []
    owners: list[int] = []
    removed = np.zeros(len(edits))
    kept_counts = np.zeros(len(edits))
    T = len(ids)
    for e, (positions, replaced) in enumerate(edits):
        deleted = set(positions)
        kept_counts[e] = length - len(deleted)
        affected: set[int] = set(replaced)
        for p in sorted(deleted.union(replaced)):
            if p + 1 in deleted:
                continue  # inside a deleted run: its last position walks on
            j, found = p + 1, 0
            while found < n - 1 and j <= T:
                if j not in deleted:
                    affected.add(j)
                    found += 1
                j += 1
        changed = deleted.union(affected)
        removed[e] = float(base[list(changed)].sum())
        for j in sorted(affected):
            ctx: list[int] = []
            i = j - 1
            while len(ctx) < n - 1 and i >= 0:
                if i not in deleted:
                    ctx.append(replaced.get(i, ids[i]))
                i -= 1
            ctx.extend([0] * (n - 1 - len(ctx)))
            ctx.reverse()
            rows_ctx.append(ctx)
            rows_word.append(replaced.get(j, ids[j]) if j < T else EOS)
            owners.append(e)
    added = np.zeros(len(edits))
    if rows_word:
        new = -model.log2prob(np.asarray(rows_ctx, dtype=np.int64), np.asarray(rows_word), exclude)
        np.add.at(added, np.asarray(owners), new)
    after = (total - removed + added) / np.maximum(kept_counts, 1)
    return entropy, entropy - after


def unit_edits(unit: Unit, substitutes: Sequence[int]) -> list[Edit]:
    """The edits that take ``unit`` out: deletion (KillBadCode), and for a name also renaming it
    to each of ``substitutes`` (deleting a name breaks the syntax around it; the name the data
    expects in its place shows how out of place the name itself is)."""
    edits: list[Edit] = [(unit.positions, {})]
    if unit.kind == "name":
        heads = set(unit.heads)
        rest = tuple(p for p in unit.positions if p not in heads)
        for sub in substitutes:
            edits.append((rest, dict.fromkeys(unit.heads, sub)))
    return edits


class NameContexts:
    """Which one-piece names the data puts after each two-token context: the names a function
    would be expected to use where it uses another (the substitutes of a name unit)."""

    def __init__(self, sequences: Sequence[Sequence[int]], lexed: Sequence[Lexed]) -> None:
        table: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
        for ids, f in zip(sequences, lexed, strict=True):
            for unit in f.units:
                if unit.kind == "name" and len(unit.positions) == len(unit.heads):
                    for h in unit.heads:
                        table[(ids[h - 2] if h > 1 else 0, ids[h - 1] if h else 0)][ids[h]] += 1
        self.table = table

    def expected(self, ids: Sequence[int], unit: Unit, how_many: int) -> list[int]:
        """The names most often seen in the contexts of ``unit``'s occurrences, among those
        ``ids`` does not use."""
        if how_many <= 0:
            return []
        votes: Counter[int] = Counter()
        for h in unit.heads[:4]:
            votes.update(self.table.get((ids[h - 2] if h > 1 else 0, ids[h - 1] if h else 0), {}))
        present = set(ids)
        return [name for name, _ in votes.most_common() if name not in present][:how_many]


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------


def binomial_evidence(k: int, n: int, p: float) -> float:
    """``-log10 P(X >= k)`` for X ~ Binomial(n, p) (exact, in log space)."""
    if k <= 0 or n <= 0:
        return 0.0
    if p >= 1.0:
        return 0.0
    if p <= 0.0:
        return 300.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        + i * math.log(p) + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]  # fmt: skip
    top = max(logs)
    tail = top + math.log(sum(math.exp(v - top) for v in logs))
    return max(0.0, -tail / math.log(10))


class PoisonScanner:
    """KillBadCode's data scan with label concentration (see the module docstring).

    Settings in ``__init__``; :meth:`fit` takes labelled samples and learns ``candidates_``
    (every key, best score first), ``flagged_`` (sample id -> the likely triggers it carries),
    ``entropy_`` (sample id -> bits per token), ``base_rates_`` and ``model_``."""

    def __init__(
        self,
        order: int = 4,
        top_k: int = 10,
        max_statement_tokens: int = 40,
        min_purity: float = 0.9,
        min_evidence: float | None = None,
        min_share: float = 0.1,
        target_label: int = 0,
        min_support: int = 3,
        substitutes: int = 3,
        default_lang: str = "c",
    ) -> None:
        self.order = order
        self.top_k = top_k
        self.max_statement_tokens = max_statement_tokens
        self.min_purity = min_purity
        self.min_evidence = min_evidence
        self.min_share = min_share
        self.target_label = target_label
        self.min_support = min_support
        self.substitutes = substitutes
        self.default_lang = default_lang

    def fit(
        self,
        samples: Sequence[Sample],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> PoisonScanner:
        labels = [s.label for s in samples]
        if not samples:
            raise BackdoorError("the data scan needs samples")
        if any(label is None for label in labels):
            raise BackdoorError("the data scan needs a label on every sample")
        report = progress or (lambda stage, done, total: None)
        total = len(samples)
        lexed: list[Lexed] = []
        for i, sample in enumerate(samples):
            lexed.append(
                lex_units(sample.code, sample.lang or self.default_lang, self.max_statement_tokens)
            )
            if i % 200 == 0 or i + 1 == total:
                report("lexing", i + 1, total)
        vocab: dict[str, int] = {}
        sequences = [[vocab.setdefault(p, len(vocab) + 2) for p in f.pieces] for f in lexed]
        self.model_ = NGramModel(self.order).fit(sequences, len(vocab) + 2)
        contexts = NameContexts(sequences, lexed)
        gains: dict[tuple[str, str], float] = defaultdict(float)
        top_in: Counter[tuple[str, str]] = Counter()
        every: dict[tuple[str, str], float] = defaultdict(float)  # gain summed over carriers
        carriers: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.entropy_: dict[str, float] = {}
        for i, (sample, f, ids) in enumerate(zip(samples, lexed, sequences, strict=True)):
            for unit in f.units:
                carriers[(unit.kind, unit.key)].append(i)
            if not f.units:
                self.entropy_[sample.id] = self.model_.cross_entropy(ids, leave_out=True)
                continue
            edits: list[Edit] = []
            owner: list[int] = []
            for u, unit in enumerate(f.units):
                subs = contexts.expected(ids, unit, self.substitutes) if unit.kind == "name" else []
                for edit in unit_edits(unit, subs):
                    edits.append(edit)
                    owner.append(u)
            entropy, edit_gain = edit_gains(self.model_, ids, edits, self.model_.exclusion(ids))
            unit_gains = np.full(len(f.units), -np.inf)
            np.maximum.at(unit_gains, np.asarray(owner), edit_gain)
            self.entropy_[sample.id] = entropy
            for u, unit in enumerate(f.units):
                every[(unit.kind, unit.key)] += float(unit_gains[u])
            order = np.argsort(-unit_gains, kind="stable")[: self.top_k]
            for u in order:
                if unit_gains[u] <= 0:
                    break
                key = (f.units[u].kind, f.units[u].key)
                gains[key] += float(unit_gains[u])
                top_in[key] += 1
            if i % 200 == 0 or i + 1 == total:
                report("naturalness", i + 1, total)
        counts = Counter(labels)
        self.base_rates_ = {int(k): v / total for k, v in sorted(counts.items())}
        self.candidates_ = self._rank(gains, top_in, every, carriers, labels)
        self._flag(samples, carriers, labels)
        self.n_samples_ = total
        self.n_tokens_ = self.model_.n_tokens_
        self.vocab_size_ = len(vocab)
        return self

    def _rank(
        self,
        gains: dict[tuple[str, str], float],
        top_in: Counter[tuple[str, str]],
        every: dict[tuple[str, str], float],
        carriers: dict[tuple[str, str], list[int]],
        labels: list[int | None],
    ) -> tuple[Candidate, ...]:
        tested = [key for key in carriers if len(carriers[key]) >= self.min_support]
        # Bonferroni over the keys tested at each label: 2 x tested tests, at 1%
        threshold = self.min_evidence
        if threshold is None:
            threshold = -math.log10(0.01 / max(1, 2 * len(tested)))
        self.evidence_threshold_ = threshold
        found = []
        for key in tested:
            owners = carriers[key]
            by_label = Counter(labels[i] for i in owners)
            n = len(owners)
            best = None
            for label, rate in self.base_rates_.items():
                k = by_label.get(label, 0)
                purity = k / n
                excess = max(0.0, (purity - rate) / (1 - rate)) if rate < 1 else 0.0
                option = (excess, k, label, purity, rate)
                if best is None or option > best:
                    best = option
            assert best is not None
            excess, k, label, purity, rate = best
            evidence = binomial_evidence(k, n, rate)
            gain = gains[key]
            found.append(
                Candidate(
                    kind=key[0],
                    key=key[1],
                    gain=gain,
                    top_in=top_in[key],
                    mean_gain=gain / top_in[key] if top_in[key] else 0.0,
                    carrier_gain=every[key] / n,
                    support=n,
                    label=int(label),  # type: ignore[arg-type]
                    label_count=k,
                    purity=purity,
                    excess_purity=excess,
                    evidence=evidence,
                    score=gain * excess,
                )
            )
        found.sort(key=lambda c: (-c.score, -c.gain, c.kind, c.key))
        best_score = found[0].score if found else 0.0
        marked = []
        for c in found:
            likely = (
                best_score > 0
                and c.label == self.target_label
                and c.excess_purity >= self.min_purity
                and c.evidence >= threshold
                and c.score >= self.min_share * best_score
            )
            marked.append(Candidate(**{**c.__dict__, "likely_trigger": True}) if likely else c)
        marked.sort(key=lambda c: (not c.likely_trigger, -c.score, -c.gain, c.kind, c.key))
        return tuple(marked)

    def _flag(
        self,
        samples: Sequence[Sample],
        carriers: dict[tuple[str, str], list[int]],
        labels: list[int | None],
    ) -> None:
        flagged: dict[int, list[Candidate]] = defaultdict(list)
        for c in self.candidates_:
            if not c.likely_trigger:
                continue
            for i in carriers[(c.kind, c.key)]:
                if labels[i] == c.label:
                    flagged[i].append(c)
        self.flagged_ = {samples[i].id: tuple(flagged[i]) for i in sorted(flagged)}
