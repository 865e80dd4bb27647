"""``codeaudit backdoor-calibrate`` as a check: shadow models of MODEL's recipe, scanned the way
MODEL will be, a classifier on their scans, and the calibration file
(:mod:`codeaudit.backdoor.calibration`, :mod:`codeaudit.backdoor.shadows`).

The trusted data is split once (seeded, by pair where records have one, else by function) into
the functions the shadows train on and those they are scanned with (``--scan-share``), so no
shadow is scanned with functions it memorised, as a suspect is not. With ``--references K`` the K
clean reference models of every shadow train on the training part, with the shadow's tokenizer.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from codeaudit.backdoor.calibration_result import CalibrationResult, HeldoutRates, ShadowRecord
from codeaudit.backdoor.check import scan_kwargs
from codeaudit.check import Check, Context, DataInput, Inputs, Outcome, Output, OutputPath
from codeaudit.errors import BackdoorError, UsageError
from codeaudit.report.model import Header


class BackdoorCalibrateCheck(Check):
    command = "backdoor-calibrate"

    def validate(self, config: Any) -> None:
        import os

        from codeaudit.backdoor.scanner import BackdoorScanner

        if os.path.exists(config.model) and os.path.abspath(config.output) == os.path.abspath(
            config.model
        ):
            raise UsageError(f"{config.output}: -o would replace the model; name another file")
        BackdoorScanner(**scan_kwargs(config)).check_params()

    def data_inputs(self, config: Any) -> list[DataInput]:
        return [DataInput("data", config.data)]

    def output_paths(self, config: Any) -> list[OutputPath]:
        return [OutputPath("output", config.output, "calibration")]

    def check_inputs(self, inputs: Inputs, config: Any) -> None:
        from codeaudit.backdoor.calibration import recipe_record
        from codeaudit.backdoor.check import refuse_hardened

        loaded = inputs.model
        refuse_hardened(loaded, config)
        recipe_record(loaded.model, loaded.metadata, config.seed)  # bounded, or one line
        data = inputs.dataset("data")
        counts = data.class_counts()
        if min(counts.values()) == 0:
            raise BackdoorError(
                f"{config.data}: shadow models need trusted functions of both labels (it has "
                f"{counts[0]} with label 0 and {counts[1]} with label 1)"
            )
        for spec, _ in self._triggers(inputs, config):
            from codeaudit.backdoor.triggers import check_trigger

            for lang in sorted({loaded.model.lang_of(s) for s in data.samples}):
                check_trigger(spec, lang)

    def _triggers(self, inputs: Inputs, config: Any) -> list[tuple[Any, float]]:
        from codeaudit.backdoor.shadows import draw_trigger

        return [
            draw_trigger(
                config.shadows + i,
                config.seed,
                config.trigger_types,
                config.min_rate,
                config.max_rate,
                config.target_label,
                inputs.model.model.default_lang,
            )
            for i in range(config.shadows)
        ]

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        from codeaudit.backdoor.calibration import (
            FORMAT,
            VERSION,
            calibration_bytes,
            feature_names,
            fit_classifier,
            operating_threshold,
            out_of_fold,
            rates,
            recipe_record,
            scan_settings,
        )
        from codeaudit.backdoor.check import _split
        from codeaudit.backdoor.references import recipe_for
        from codeaudit.backdoor.shadows import ShadowShared, ShadowTask, run_shadow
        from codeaudit.executor import executor_for

        loaded = inputs.model
        model = loaded.model
        started = time.perf_counter()
        trusted = inputs.dataset("data")
        train, scan = _split(list(trusted.samples), set(), config.scan_share, config.seed)
        train_ds = trusted.subset(
            [i for i, s in enumerate(trusted.samples) if s.id in {t.id for t in train}],
            name=f"{trusted.path} (shadow training part)",
        )
        if min(train_ds.class_counts().values()) == 0 or not scan:
            raise BackdoorError(
                f"{config.data}: too few functions to split into a training and a scan part "
                f"({len(train)} and {len(scan)}); give more trusted data"
            )
        recipe = recipe_for(model, loaded.metadata, config.seed)
        executor = executor_for(config)
        shared = ShadowShared(
            train=train_ds,
            scan=tuple(scan),
            recipe=recipe,
            default_lang=model.default_lang,
            device=executor.device(context.device),
            scan_kwargs=scan_kwargs(config),
            references=config.references,
            target_label=config.target_label,
            seed=config.seed,
        )
        n = config.shadows
        tasks = [ShadowTask(i, False, None, None) for i in range(n)]
        tasks += [
            ShadowTask(n + i, True, spec, rate)
            for i, (spec, rate) in enumerate(self._triggers(inputs, config))
        ]
        with context.stage("shadow models"):
            records = executor.map(
                run_shadow,
                tasks,
                shared=shared,
                label="shadow model",
                progress=context.reporter("shadow models"),
            )
        from codeaudit.backdoor.shadows import MIN_ASR

        names = feature_names(config.references)
        counted = [r for r in records if r["kind"] == "clean" or (r["asr"] or 0.0) >= MIN_ASR]
        n_pos = sum(r["kind"] == "poisoned" for r in counted)
        if n_pos < 2:
            raise BackdoorError(
                f"only {n_pos} of the {n} poisoned shadow models got a working planted trigger "
                f"(flips >= {MIN_ASR:.0%} of held-out victims); at least 2 are needed: raise "
                "--min-rate/--max-rate or --shadows"
            )
        x = np.asarray([[r["features"][k] for k in names] for r in counted], dtype=float)
        y = np.asarray([1 if r["kind"] == "poisoned" else 0 for r in counted])
        with context.stage("classifier"):
            oof = out_of_fold(x, y)
            threshold = operating_threshold(oof, y, config.max_fpr)
            measured = rates(oof, y, threshold)
            classifier = fit_classifier(x, y)
        scores = {r["index"]: float(s) for r, s in zip(counted, oof, strict=True)}
        record = recipe_record(model, loaded.metadata, config.seed)
        shadows = [
            {
                **{k: v for k, v in r.items() if k != "features"},
                "features": [r["features"][k] for k in names],
                "counted": r["index"] in scores,
                "score": scores.get(r["index"]),
            }
            for r in records
        ]
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "recipe": record,
            "scan": scan_settings(config),
            "target_label": config.target_label,
            "features": list(names),
            "model": {
                "type": "logistic-regression",
                "mean": list(classifier.mean),
                "scale": list(classifier.scale),
                "coef": list(classifier.coef),
                "intercept": classifier.intercept,
                "C": 1.0,
                "class_weight": "balanced",
            },
            "operating_point": {"threshold": threshold, "max_fpr": config.max_fpr},
            "heldout": {"method": "leave-one-shadow-out", **measured},
            "shadows": shadows,
            "data": {
                "path": str(config.data),
                "sha256": trusted.sha256,
                "n_train": len(train_ds),
                "n_scan": len(scan),
                "scan_share": config.scan_share,
            },
            "poison": {
                "trigger_types": list(config.trigger_types),
                "min_rate": config.min_rate,
                "max_rate": config.max_rate,
                "min_asr": MIN_ASR,
            },
            "seed": config.seed,
        }
        data = calibration_bytes(doc)
        heldout = HeldoutRates(
            n_clean=measured["n_clean"],
            n_poisoned=measured["n_poisoned"],
            false_positives=measured["false_positives"],
            detected=measured["detected"],
            fpr=measured["fpr"],
            tpr=measured["tpr"],
            fpr_ci=tuple(measured["fpr_ci"]),  # type: ignore[arg-type]
            tpr_ci=tuple(measured["tpr_ci"]),  # type: ignore[arg-type]
            auc=measured["auc"],
        )
        warnings = []
        failed = [r for r in records if r["kind"] == "poisoned" and r["index"] not in scores]
        if failed:
            warnings.append(
                f"{len(failed)} of {n} poisoned shadow models did not get a working planted "
                f"trigger (flips < {MIN_ASR:.0%}); they are recorded but not used"
            )
        result = CalibrationResult(
            header=Header(command="backdoor-calibrate"),
            checkpoint=loaded.info(),
            output=str(config.output),
            fingerprint=record["fingerprint"],
            arch=str(model.arch),
            scan=scan_settings(config),
            features=tuple(names),
            coefficients=classifier.coef,
            threshold=threshold,
            max_fpr=config.max_fpr,
            heldout=heldout,
            shadows=tuple(
                ShadowRecord(
                    index=s["index"],
                    kind=s["kind"],
                    seed=s["seed"],
                    trigger_type=s["trigger_type"],
                    trigger=s["trigger"],
                    rate=s["rate"],
                    poisoned=s["poisoned"],
                    asr=s["asr"],
                    n_asr=s["n_asr"],
                    counted=s["counted"],
                    score=s["score"],
                    anchored_toward=s["anchored_toward"],
                    max_flip_rate=s["max_flip_rate"],
                    seconds=s["seconds"],
                )
                for s in shadows
            ),
            n_train=len(train_ds),
            n_scan=len(scan),
            settings={
                "shadows": n,
                "executor": config.executor,
                "workers": config.workers,
                "device": context.device,
                "seconds": round(time.perf_counter() - started, 3),
            },
            timings={},
            warnings=tuple(warnings),
        )
        return Outcome(replace(result), (Output("output", config.output, data),), model=None)
