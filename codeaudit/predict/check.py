"""``codeaudit predict`` as a check: predictions of the loaded model on one data set."""

from __future__ import annotations

from typing import Any

from codeaudit.check import Check, Context, DataInput, Inputs, Outcome
from codeaudit.predict.result import PredictResult
from codeaudit.report.model import Header


def skip_warnings(dataset: Any) -> list[str]:
    """A warning for a data set whose invalid records were skipped (``--skip-invalid``)."""
    if not dataset.skipped:
        return []
    first = dataset.skipped[0]
    return [
        f"{dataset.path}: skipped {len(dataset.skipped)} invalid record(s) "
        f"(first at line {first.line}: {first.reason})"
    ]


def unpickled_warning(loaded: Any, path: str, consequence: str) -> list[str]:
    """A warning for a model that was loaded through full unpickling (``--trust-checkpoint``)."""
    if not loaded.trusted_pickle:
        return []
    return [f"{path}: loaded through full unpickling (--trust-checkpoint); {consequence}"]


class PredictCheck(Check):
    command = "predict"

    def data_inputs(self, config: Any) -> list[DataInput]:
        return [DataInput("data", config.data, require_labels=False)]

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        from codeaudit.predict.engine import predict_dataset

        loaded, dataset = inputs.model, inputs.dataset("data")
        warnings = skip_warnings(dataset)
        warnings += unpickled_warning(
            loaded, config.model, "re-save it with codeaudit to get a weights-only checkpoint"
        )
        with context.stage("predict"):
            predictions, metrics, truncated = predict_dataset(
                loaded.model,
                dataset,
                batch_size=config.batch_size,
                progress=context.reporter("predicting"),
            )
        if truncated:
            warnings.append(
                f"{truncated} of {len(dataset)} samples truncated at {loaded.model.max_len} tokens"
            )
        if metrics is not None:
            from codeaudit.metrics import quality_warnings

            warnings += quality_warnings(
                str(config.data),
                n=metrics.n,
                vulnerable=metrics.tp + metrics.fn,
                predicted_vulnerable=metrics.tp + metrics.fp,
                accuracy=metrics.accuracy,
                roc_auc=metrics.roc_auc,
            )
        result = PredictResult(
            header=Header(command=self.command),
            checkpoint=loaded.info(),
            n=len(predictions),
            predicted_vulnerable=sum(p.predicted_label for p in predictions),
            truncated=truncated,
            skipped=len(dataset.skipped),
            metrics=metrics,
            predictions=tuple(predictions),
            warnings=tuple(warnings),
        )
        return Outcome(result)
