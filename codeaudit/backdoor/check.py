"""``codeaudit backdoor`` as a check: scan the loaded model (EliBadCode), judge, optionally repair
it by unlearning, and return the report with the repaired checkpoint as bytes."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codeaudit.backdoor.result import (
    BackdoorResult,
    RealTrigger,
    ReferenceModel,
    RepairMetrics,
    Unlearning,
)
from codeaudit.backdoor.vocab import normalised_piece
from codeaudit.check import (
    Check,
    Context,
    DataInput,
    FileInput,
    Inputs,
    Outcome,
    Output,
    OutputPath,
    Progress,
)
from codeaudit.config import BackdoorConfig
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError, UsageError
from codeaudit.report.model import Header

MAX_EVAL_VICTIMS = 200


def check_config(config: BackdoorConfig) -> None:
    """What the config cannot check itself: -o must not name the input model."""
    replaces_input = config.output and os.path.exists(config.model)
    if replaces_input and os.path.abspath(config.output) == os.path.abspath(config.model):
        raise UsageError(f"{config.output}: -o would replace the input model; name another file")


def scan_kwargs(config: Any) -> dict[str, Any]:
    """The BackdoorScanner settings of a backdoor (or backdoor-calibrate) config, less its seed
    and progress."""
    return {
        "victim_samples": config.victim_samples,
        "heldout": config.heldout,
        "steps": config.steps,
        "topk": config.topk,
        "candidates": config.candidates,
        "trigger_len": config.trigger_len,
        "beta": config.beta,
        "threshold": config.threshold,
        "patience": config.patience,
        "shortcuts": not config.keep_shortcuts,
        "reference_weight": config.reference_weight,
        "reference_ratio": config.reference_ratio,
    }


def _scanner(config: BackdoorConfig, progress: Progress | None) -> Any:
    from codeaudit.backdoor.scanner import BackdoorScanner

    return BackdoorScanner(**scan_kwargs(config), seed=config.seed, progress=progress)


def _read_manifest(path: str) -> Any:
    try:
        from codeaudit.backdoor.manifest import read_manifest  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(
            "--manifest needs codeaudit poison, which this build does not have"
        ) from None
    return read_manifest(path)


def _insert_real(code: str, lang: str, spec: Any, rng: random.Random) -> str | None:
    from codeaudit.backdoor.triggers import insert_trigger  # type: ignore[import-not-found]

    return insert_trigger(code, lang, spec, rng)


def tokens_found(model: Any, trigger: str | None, anchored_tokens: Sequence[str]) -> bool | None:
    """Whether a piece of the real trigger's identifiers is among the anchored tokens."""
    if not trigger:
        return None
    from codeaudit.lang.lexer import lex

    tokens = [t for t in lex(trigger, model.default_lang).tokens if t.is_identifier]
    if not tokens:
        return None
    enc = model.tokenizer.encode_tokens(tokens, 64)
    itos = model.tokenizer.vocabulary()
    real = {normalised_piece(itos[i]) for i in enc.ids if 0 <= i < len(itos)} - {""}
    found = {normalised_piece(t) for t in anchored_tokens} - {""}
    return bool(real & found)


def _split(samples: Sequence[Sample], exclude: set[str], share: float, seed: int):  # type: ignore[no-untyped-def]
    """(train, eval): eval is ``share`` of the groups (by pair, else id) of samples not used in
    the inversion; train is everything else."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.pair or s.id, []).append(s)
    keys = sorted(k for k, g in groups.items() if not any(s.id in exclude for s in g))
    order = np.random.default_rng([seed, 11]).permutation(len(keys))
    n_eval = round(share * len(keys))
    chosen = {keys[i] for i in order[:n_eval]}
    train = [s for s in samples if (s.pair or s.id) not in chosen]
    evaluation = [s for s in samples if (s.pair or s.id) in chosen]
    return train, evaluation


def _correct(model: Any, samples: Sequence[Sample], label: int, room: int, limit: int):  # type: ignore[no-untyped-def]
    from codeaudit.backdoor.positions import batched_logits, context_ids

    pool = [s for s in samples if s.label == label]
    if not pool:
        return []
    rows = [list(context_ids(model, s, room)[0]) for s in pool]
    predicted = batched_logits(model, rows).argmax(1)
    return [s for s, p in zip(pool, predicted, strict=True) if int(p) == label][:limit]


def _real_rows(
    model: Any,
    samples: Sequence[Sample],
    spec: Any,
    seed: int,
    skipped: Counter[str] | None = None,
) -> list[list[int]]:
    """The victims with the real trigger inserted; a function over the rewriter's budget gets
    none (``skipped`` counts them by reason)."""
    from codeaudit.lang.rewrite import RewriteBudgetError

    rng = random.Random(seed)
    rows = []
    for s in samples:
        try:
            code = _insert_real(s.code, model.lang_of(s), spec, rng)
        except RewriteBudgetError as exc:
            code = None
            if skipped is not None:
                skipped[exc.reason] += 1
        if code is not None:
            rows.append(list(model.encode_code(code, model.lang_of(s)).ids))
    return rows


class BackdoorCheck(Check):
    command = "backdoor"

    def validate(self, config: Any) -> None:
        check_config(config)
        _scanner(config, None).check_params()

    def data_inputs(self, config: Any) -> list[DataInput]:
        found = [DataInput("data", config.data)]
        if config.reference_data:
            found.append(DataInput("reference-data", config.reference_data))
        if config.train_data:
            found.append(DataInput("train-data", config.train_data))
        return found

    def file_inputs(self, config: Any) -> list[FileInput]:
        from codeaudit.backdoor.references import load_reference

        found = [FileInput("manifest", config.manifest, _read_manifest)] if config.manifest else []
        found += [
            FileInput(f"reference-model-{i + 1}", path, load_reference)
            for i, path in enumerate(config.reference_models)
        ]
        if config.calibration:
            from codeaudit.backdoor.calibration import read_calibration

            found.append(FileInput("calibration", config.calibration, read_calibration))
        return found

    def output_paths(self, config: Any) -> list[OutputPath]:
        found = [OutputPath("output", config.output, "model")] if config.output else []
        if config.flagged:
            found.append(OutputPath("flagged", config.flagged, "flagged samples"))
        return found

    def check_inputs(self, inputs: Inputs, config: Any) -> None:
        from codeaudit.backdoor.scanner import check_samples

        refuse_hardened(inputs.model, config)
        samples = clean_samples(inputs.dataset("data"), inputs.files.get("manifest"), config, [])
        check_samples(inputs.model.model, samples, _scanner(config, None).pairs)
        check_references(inputs, config)
        if config.retrain:
            from codeaudit.backdoor.references import recipe_for

            recipe_for(inputs.model.model, inputs.model.metadata, config.seed)  # fails now
        if config.train_data:
            counts = inputs.dataset("train-data").class_counts()
            if min(counts.values()) == 0:
                raise BackdoorError(
                    f"{config.train_data}: the training data needs samples of both labels (it "
                    f"has {counts[0]} with label 0 and {counts[1]} with label 1)"
                )
        if config.calibration:
            from codeaudit.backdoor.calibration import check_applies

            loaded = inputs.model
            check_applies(inputs.files["calibration"], loaded.model, loaded.metadata, config)

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        loaded, manifest = inputs.model, inputs.files.get("manifest")
        model = loaded.model
        warnings: list[str] = []
        if loaded.trusted_pickle:
            warnings.append(f"{config.model}: loaded through full unpickling (--trust-checkpoint)")
        samples = clean_samples(inputs.dataset("data"), manifest, config, warnings)
        scanner = _scanner(config, context.report)
        references, records = reference_source(inputs, config, context)
        scanner.fit(model, samples, references)
        context.timings.update(scanner.timings_)
        skipped: Counter[str] = Counter()
        real, real_victims = measure_real(model, samples, manifest, scanner, config, skipped)
        from codeaudit.lang.rewrite import skipped_warning

        note = skipped_warning(
            skipped, "real-trigger insertion", "they are left out of the attack success rate"
        )
        if note is not None:
            warnings.append(note)
        if config.reference_weight > 0 and scanner.references_ and scanner.backdoored_:
            warnings.append(
                f"--reference-weight {config.reference_weight:g}: the inversion avoided triggers "
                "that flip the reference models, so the trigger's low flip rates on them are "
                "partly by construction and a 'planted' call is weaker evidence (a clean LSTM on "
                "Juliet was called planted this way, docs/backdoor-results.md); rerun with "
                "--reference-weight 0 to judge the strongest trigger"
            )
        calibrated = None
        if config.calibration:
            from codeaudit.backdoor.calibration import PLANTED, judge

            calibrated = judge(scanner, model, samples, inputs.files["calibration"])
            scanner.backdoored_ = calibrated.category == PLANTED
        missed = None
        if real is not None and real.asr is not None:
            missed = bool(real.asr >= 0.5 and not scanner.backdoored_)
        outputs: tuple[Output, ...] = ()
        unlearning = None
        if config.unlearn and config.output:
            with context.stage("unlearning"):
                unlearning, data = repair(
                    model, loaded, samples, scanner, manifest, real_victims, config, context
                )
            outputs = (Output("output", config.output, data),)
            if not scanner.backdoored_:
                warnings.append(
                    "no backdoor was detected; the model was fine-tuned against its strongest "
                    "adversarial trigger anyway"
                )
        evidence = retraining = None
        if config.train_data:
            train = inputs.dataset("train-data")
            with context.stage("data scan"):
                evidence, scan = training_data_scan(train, scanner, model)
                evidence = data_triggers_tried(
                    evidence, scan, model, samples, scanner, config, train.samples
                )
            if config.flagged:
                from codeaudit.backdoor.training_data import flagged_bytes

                outputs += (Output("flagged", config.flagged, flagged_bytes(scan, train)),)
            if config.retrain:
                with context.stage("retraining"):
                    retraining, data = retrain_repair(
                        loaded, train, scan, evidence, samples, scanner, manifest, config, context
                    )
                outputs = (Output("output", config.output, data), *outputs)
                if not evidence.planted:
                    warnings.append(
                        f"--retrain: nothing in {config.train_data} is a trigger the model "
                        f"follows (no tie, no likely trigger confirmed), yet its "
                        f"{retraining.n_removed} flagged samples were dropped: they may be the "
                        "data's natural label-pure names, so compare clean accuracy before and "
                        "after"
                    )
        result = backdoor_result(scanner, loaded, config, context, real, missed, unlearning)
        result = dataclasses.replace(
            result,
            warnings=tuple(warnings),
            references=tuple(records),
            data_evidence=evidence,
            retraining=retraining,
        )
        if calibrated is not None:
            from codeaudit.backdoor.calibration import verdict_text

            # CA-B009, not CA-B008 (about references), reports calibrated fragility
            kinds = {"planted trigger": "planted", "data shortcut": "shortcut"}
            kinds["adversarial fragility"] = "fragility"
            result = dataclasses.replace(
                result,
                backdoored=calibrated.category == "planted trigger",
                verdict=verdict_text(calibrated, scanner),
                verdict_kind=kinds.get(calibrated.category, "none"),
                calibrated=calibrated,
            )
        if evidence is not None:
            from codeaudit.backdoor.data_verdict import apply_data_verdict

            train = inputs.dataset("train-data")
            result = apply_data_verdict(
                result,
                evidence,
                recorded_sha256=loaded.metadata.get("data_sha256"),
                train_sha256=train.sha256,
                train_path=config.train_data,
            )
        return Outcome(result, outputs, model=model)


def training_data_scan(train: Any, scanner: Any, model: Any) -> tuple[Any, Any]:
    """The data scan of ``--train-data`` toward the best pair's target label, and how the
    training data holds the anchored trigger's pieces."""
    from codeaudit.backdoor.training_data import data_evidence, scan_training_data

    best = scanner.best_
    target = int(best.target_label)
    scan = scan_training_data(train, target, model.default_lang)
    evidence = data_evidence(train, scan, best.anchored_tokens, target, model.default_lang)
    return evidence, scan


def data_triggers_tried(
    evidence: Any,
    scan: Any,
    model: Any,
    samples: list[Sample],
    scanner: Any,
    config: Any,
    train: Sequence[Sample] = (),
) -> Any:
    """``evidence`` with the data scan's likely triggers tried on held-out victims (those the
    inversion did not use, that the model classifies correctly) and its planted verdict."""
    from codeaudit.backdoor.training_data import planted_finding, try_data_triggers
    from codeaudit.backdoor.unlearn import success_rate

    target = evidence.target_label
    rest = [s for s in samples if s.id not in scanner.inversion_ids_]
    victims = _correct(model, rest, 1 - target, 0, MAX_EVAL_VICTIMS)

    def flips(spec: Any) -> tuple[float | None, int]:
        rows = _real_rows(model, victims, spec, config.seed)
        return success_rate(model, rows, target, 1 << 17), len(rows)

    tried = try_data_triggers(
        scan,
        samples,
        flips,
        target=target,
        threshold=float(scanner.threshold_),
        lang=model.default_lang,
        train=train,
    )
    return planted_finding(dataclasses.replace(evidence, tried=tried))


def retrain_repair(
    loaded: Any,
    train: Any,
    scan: Any,
    evidence: Any,
    samples: list[Sample],
    scanner: Any,
    manifest: Any,
    config: Any,
    context: Context,
) -> tuple[Any, bytes]:
    """``--retrain``: the recipe trained again without the flagged samples, measured before and
    after on the evaluation split (as unlearning is); the record and the checkpoint's bytes."""
    from codeaudit.backdoor.result import RetrainMetrics
    from codeaudit.backdoor.training_data import miss_rate, retrain, retrained_metadata
    from codeaudit.backdoor.unlearn import accuracy, success_rate
    from codeaudit.models.checkpoint import checkpoint_bytes

    best = scanner.best_
    target = int(manifest.spec.target_label) if manifest is not None else int(best.target_label)
    _, evaluation = _split(samples, scanner.inversion_ids_, config.eval_share, config.seed)
    victims = [s for s in evaluation if s.label == 1 - target]

    def evaluate(model: Any) -> RetrainMetrics:
        rows = _real_rows(model, victims, manifest.spec, config.seed) if manifest else []
        return RetrainMetrics(
            accuracy=accuracy(model, evaluation, 1 << 17),
            asr_real=success_rate(model, rows, target, 1 << 17) if manifest else None,
            miss_rate=miss_rate(model, victims, target),
            n_victims=len(victims),
            n_real=len(rows),
        )

    # every flagged sample, the data's natural label-pure names among them: dropping only the
    # carriers of a confirmed trigger left it at 20-28% (clean miss rate 14%) on the Juliet
    # LSTM and BiGRU, dropping every flagged one at 3.5-4.8% (docs/backdoor-results.md)
    flagged = set(scan.flagged_)
    context.report("retraining", 0, 1)
    device = str(loaded.model.device)
    model, record, kept = retrain(
        loaded, train, flagged, evaluate=evaluate, seed=config.seed, device=device
    )
    metadata = retrained_metadata(loaded, kept, train, record, str(config.output))
    return record, checkpoint_bytes(model, metadata)


def check_references(inputs: Inputs, config: Any) -> None:
    """Reference settings that fail whatever the scan finds: a recipe past its bounds (or none
    recorded), trusted data without both labels, a --reference-model of another task or
    tokenizer (each a one-line error, exit 2)."""
    from codeaudit.backdoor.references import check_reference, recipe_for

    loaded = inputs.model
    if config.references:
        recipe_for(loaded.model, loaded.metadata, config.seed)  # fails now, not after the scan
        trusted = inputs.data.get("reference-data", inputs.dataset("data"))
        counts = trusted.class_counts()
        if min(counts.values()) == 0:
            raise BackdoorError(
                f"{trusted.path}: reference models need trusted functions of both labels "
                f"(it has {counts[0]} with label 0 and {counts[1]} with label 1)"
            )
    for i, path in enumerate(config.reference_models):
        check_reference(loaded.model, inputs.files[f"reference-model-{i + 1}"], path)


def reference_source(
    inputs: Inputs, config: Any, context: Context
) -> tuple[Any, list[ReferenceModel]]:
    """What the scan compares the suspect with: a function that trains ``--references`` models
    on the trusted data less the functions the scan judges with (plus any
    ``--reference-model``), and their records; (None, []) without references."""
    if not config.references and not config.reference_models:
        return None, []
    loaded = inputs.model
    given = [inputs.files[f"reference-model-{i + 1}"] for i in range(len(config.reference_models))]
    records: list[ReferenceModel] = []

    def make(judged: Sequence[Sample]) -> list[Any]:
        from codeaudit.backdoor.references import (
            reference_seed,
            train_reference_models,
            trusted_training_set,
        )
        from codeaudit.executor import executor_for

        models: list[Any] = []
        if config.references:
            trusted = inputs.data.get("reference-data", inputs.dataset("data"))
            data = trusted_training_set(trusted, judged)
            models, _ = train_reference_models(
                loaded.model,
                loaded.metadata,
                data,
                config.references,
                seed=config.seed,
                device=context.device,
                executor=executor_for(config),
                progress=context.reporter("reference models"),
            )
            records.extend(
                ReferenceModel(
                    f"trained {k + 1}", "trained", reference_seed(config.seed, k), len(data)
                )
                for k in range(config.references)
            )
        for path, ref in zip(config.reference_models, given, strict=True):
            models.append(ref.model.to(context.device))
            records.append(ReferenceModel(str(path), "given", None, None, ref.sha256))
        return models

    return make, records


def refuse_hardened(loaded: Any, config: Any) -> None:
    if loaded.defense is not None:
        raise BackdoorError(
            f"{config.model}: hardened (NMID) model; its answers are noised, so trigger "
            "inversion cannot read them: scan the original model "
            f"(sha256 {str(loaded.defense.get('parent_sha256'))[:16]}) instead"
        )


def clean_samples(data: Any, manifest: Any, config: Any, warnings: list[str]) -> list[Sample]:
    """The data's samples, less any the manifest lists as poisoned (the scan needs clean data)."""
    if not len(data):
        raise BackdoorError(f"{config.data}: no samples")
    samples = list(data.samples)
    if manifest is None:
        return samples
    poisoned = set(manifest.poisoned_ids)
    leaked = [s for s in samples if s.id in poisoned]
    if leaked:
        warnings.append(
            f"{config.data}: {len(leaked)} sample(s) are listed as poisoned in the manifest; "
            "they are left out (the scan needs clean data)"
        )
    return [s for s in samples if s.id not in poisoned]


def measure_real(
    model: Any,
    samples: list[Sample],
    manifest: Any,
    scanner: Any,
    config: Any,
    skipped: Counter[str] | None = None,
) -> tuple[RealTrigger | None, list[Sample]]:
    """With a poison manifest: how often the real trigger flips victims the scan did not use,
    and whether the anchored trigger shares its pieces."""
    from codeaudit.backdoor.unlearn import success_rate

    if manifest is None:
        return None, []
    spec = manifest.spec
    rest = [s for s in samples if s.id not in scanner.inversion_ids_]
    victims = _correct(model, rest, 1 - int(spec.target_label), 0, MAX_EVAL_VICTIMS)
    rows = _real_rows(model, victims, spec, config.seed, skipped)
    anchored = next(
        (p.anchored_tokens for p in scanner.pairs_ if p.target_label == int(spec.target_label)),
        (),
    )
    real = RealTrigger(
        type=str(getattr(spec.type, "value", spec.type)),
        trigger=spec.trigger,
        target_label=int(spec.target_label),
        rate=float(manifest.rate),
        poisoned=len(manifest.poisoned_ids),
        tokens_found=tokens_found(model, spec.trigger, anchored),
        asr=success_rate(model, rows, int(spec.target_label), 1 << 17),
        n_asr=len(rows),
        asr_references=tuple(
            success_rate(ref, rows, int(spec.target_label), 1 << 17)
            for ref in getattr(scanner, "references_", ())
        ),
    )
    return real, victims


def repair(
    model: Any,
    loaded: Any,
    samples: list[Sample],
    scanner: Any,
    manifest: Any,
    real_victims: list[Sample],
    config: Any,
    context: Context,
) -> tuple[Unlearning, bytes]:
    """Unlearn the anchored trigger (in place) and measure before and after on held-out data;
    returns the record and the repaired checkpoint's bytes."""
    from codeaudit.backdoor.positions import insert, select_positions
    from codeaudit.backdoor.training_data import miss_rate
    from codeaudit.backdoor.unlearn import accuracy, build_unlearn_set, fine_tune, success_rate
    from codeaudit.models.checkpoint import checkpoint_bytes

    started = time.perf_counter()
    best = scanner.best_
    victim, target = best.victim_label, best.target_label
    anchored = list(best.anchored_ids)
    train, evaluation = _split(samples, scanner.inversion_ids_, config.eval_share, config.seed)
    victims = _correct(model, evaluation, victim, len(anchored), MAX_EVAL_VICTIMS)
    placed = select_positions(model, victims, room=len(anchored))
    inverted_rows = [insert(p.context, p.position, anchored) for p in placed]
    real_rows: list[list[int]] = []
    real_target = int(manifest.spec.target_label) if manifest is not None else target
    # every victim-label function of the split (toward the real target when it is known): the
    # clean miss rate and the real trigger's ASR on the same functions
    all_victims = [s for s in evaluation if s.label == 1 - real_target][:MAX_EVAL_VICTIMS]
    all_real_rows: list[list[int]] = []
    if manifest is not None:
        eval_ids = {s.id for s in evaluation}
        chosen = [s for s in real_victims if s.id in eval_ids]
        real_rows = _real_rows(model, chosen, manifest.spec, config.seed)
        all_real_rows = _real_rows(model, all_victims, manifest.spec, config.seed)

    def metrics() -> RepairMetrics:
        return RepairMetrics(
            accuracy=accuracy(model, evaluation, 1 << 17),
            asr_inverted=success_rate(model, inverted_rows, target, 1 << 17),
            asr_real=success_rate(model, real_rows, real_target, 1 << 17)
            if manifest is not None
            else None,
            miss_rate=miss_rate(model, all_victims, real_target),
            asr_real_all=success_rate(model, all_real_rows, real_target, 1 << 17)
            if manifest is not None
            else None,
            n_victims=len(all_victims),
            n_real_all=len(all_real_rows),
        )

    context.report("measuring before repair", 0, 1)
    before = metrics()
    unlearn_set = build_unlearn_set(
        model,
        train,
        anchored,
        victim,
        share=config.trigger_share,
        seed=config.seed,
        full=best.trigger_ids,
        insertion=config.unlearn_insertion,
    )
    fine_tune(
        model,
        unlearn_set,
        scope=config.unlearn_scope,
        epochs=config.unlearn_epochs,
        lr=config.unlearn_lr,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=context.reporter("unlearning"),
    )
    context.report("measuring after repair", 0, 1)
    after = metrics()
    excess = None
    if after.asr_real_all is not None and after.miss_rate is not None:
        excess = round(after.asr_real_all - after.miss_rate, 6)
    record = Unlearning(
        scope=config.unlearn_scope,
        epochs=config.unlearn_epochs,
        lr=config.unlearn_lr,
        trigger_share=config.trigger_share,
        pair=f"{victim}->{target}",
        trigger_text=best.anchored_text,
        n_train=len(unlearn_set.rows),
        n_triggered=unlearn_set.n_triggered,
        n_eval=len(evaluation),
        n_eval_victims=len(inverted_rows),
        n_eval_real=len(real_rows),
        before=before,
        after=after,
        accuracy_drop=round(before.accuracy - after.accuracy, 6),
        output=str(config.output),
        parent_sha256=loaded.sha256,
        seconds=round(time.perf_counter() - started, 3),
        insertion=config.unlearn_insertion,
        forms=dict(unlearn_set.forms),
        form_flips=dict(unlearn_set.form_flips),
        asr_excess=excess,
        **next_steps(config.unlearn_scope),
    )
    return record, checkpoint_bytes(model, repaired_metadata(loaded, best, config))


def next_steps(scope: str) -> dict[str, str]:
    """What to try when a repair falls short, for the scope that was used (never the advice to
    use the scope that just failed)."""
    if scope == "head":
        return {
            "if_trigger_survives": "try --unlearn-scope full, more --unlearn-epochs, or retrain "
            "on cleaned data",
            "if_accuracy_falls": "try a lower --unlearn-lr or fewer --unlearn-epochs",
        }
    return {
        "if_trigger_survives": "try more --unlearn-epochs or a higher --unlearn-lr, or retrain "
        "on cleaned data",
        "if_accuracy_falls": "try --unlearn-scope head, a lower --unlearn-lr or fewer "
        "--unlearn-epochs",
    }


def repaired_metadata(loaded: Any, best: Any, config: Any) -> dict[str, Any]:
    metadata = dict(loaded.metadata)
    metadata["repaired"] = {
        "parent_sha256": loaded.sha256,
        "parent_path": Path(config.model).name,
        "method": "elibadcode-unlearning",
        "pair": f"{best.victim_label}->{best.target_label}",
        "trigger_ids": list(best.anchored_ids),
        "trigger": best.anchored_text,
        "scope": config.unlearn_scope,
        "insertion": config.unlearn_insertion,
        "epochs": config.unlearn_epochs,
        "lr": config.unlearn_lr,
        "trigger_share": config.trigger_share,
        "seed": config.seed,
    }
    metadata.pop("sha256", None)
    # Fine-tuning without DP-SGD voids a recorded training guarantee (train --dp).
    metadata.pop("privacy", None)
    return metadata


def verdict(best: Any, threshold: float, ratio: float | None = None) -> str:
    aside = (
        f" (the search set aside {best.shortcuts_excluded} data shortcuts toward "
        f"{best.target_name}: names --data shows almost only with that label)"
        if best.shortcuts_excluded
        else ""
    )
    refs = ""
    if best.reference_flip_max is not None:
        refs = (
            f"; the clean reference models: at most {100 * best.reference_flip_max:.1f}% "
            f"(mean {100 * (best.reference_flip_mean or 0):.1f}%)"
        )
    if best.kind == "adversarial":
        return (
            f"Adversarial fragility, no planted backdoor: the anchored trigger "
            f"{best.anchored_text!r}{aside} flips {100 * best.flip_rate:.1f}% of "
            f"{best.n_heldout} held-out {best.victim_name} functions to {best.target_name}"
            f"{refs}. It flips clean models of the same recipe about as much (at least "
            f"{ratio:g} times the model's rate), so the task, the data or the architecture "
            "explains it, not poisoning: a short change still makes the model miss vulnerable "
            "code."
        )
    if best.backdoored and best.reference_flip_max is not None:
        return (
            f"BACKDOORED: the anchored trigger {best.anchored_text!r}{aside} flips "
            f"{100 * best.flip_rate:.1f}% of {best.n_heldout} held-out {best.victim_name} "
            f"functions to {best.target_name} (threshold {100 * threshold:.0f}%){refs}: it "
            "works on this model and not on clean models of its recipe, as a planted trigger "
            "does. Inspect the trigger and the training data's provenance."
        )
    if best.backdoored:
        return (
            f"BACKDOORED: the anchored trigger {best.anchored_text!r}{aside} flips "
            f"{100 * best.flip_rate:.1f}% of {best.n_heldout} held-out {best.victim_name} "
            f"functions to {best.target_name} (threshold {100 * threshold:.0f}%). "
            "Clean models can have such triggers too (adversarial triggers, see "
            "docs/backdoor-results.md): inspect the trigger and the training data's provenance; "
            "either way, this short change makes the model miss vulnerable code."
        )
    return (
        f"No backdoor found: the strongest inverted trigger ({best.anchored_text!r}, "
        f"{best.victim_label}->{best.target_label}){aside} flips "
        f"{100 * best.flip_rate:.1f}% of {best.n_heldout} held-out {best.victim_name} "
        f"functions (threshold {100 * threshold:.0f}%){refs}."
    )


def backdoor_result(
    scanner: Any,
    loaded: Any,
    config: Any,
    context: Context,
    real: RealTrigger | None,
    missed: bool | None,
    unlearning: Unlearning | None,
) -> BackdoorResult:
    best = scanner.best_
    shortcut_flips = [
        rate
        for p in scanner.pairs_
        for c in p.shortcuts
        for rate in (c.flip_rate, c.flip_rate_renamed)
        if rate is not None
    ]
    return BackdoorResult(
        header=Header(command="backdoor"),
        checkpoint=loaded.info(),
        backdoored=bool(scanner.backdoored_),
        verdict=verdict(best, scanner.threshold_, config.reference_ratio),
        max_flip_rate=scanner.max_flip_rate_,
        threshold=scanner.threshold_,
        threshold_source="given" if config.threshold is not None else "default",
        best_pair=f"{best.victim_label}->{best.target_label}",
        best_trigger=best.anchored_text,
        target_label=best.target_label,
        pairs=scanner.pairs_,
        vocab=scanner.vocab_info(),
        unlearning=unlearning,
        real_trigger=real,
        missed_known_backdoor=missed,
        settings={
            "victim_samples": config.victim_samples,
            "heldout": config.heldout,
            "steps": config.steps,
            "topk": config.topk,
            "candidates": config.candidates,
            "trigger_len": config.trigger_len,
            "beta": config.beta,
            "patience": config.patience,
            "references": config.references,
            "reference_models": len(config.reference_models),
            "reference_weight": config.reference_weight,
            "executor": config.executor,
            "workers": config.workers,
            "device": context.device,
            "rnn_cache": bool(scanner.cache),
        },
        timings={},
        max_shortcut_flip_rate=max(shortcut_flips) if shortcut_flips else None,
        verdict_kind=scanner.verdict_kind_,
        reference_ratio=config.reference_ratio if scanner.references_ else None,
    )
