"""Backdoors in VP models: the attacker's side (``codeaudit poison``: triggers, poisoned data
sets and their manifests) and the defender's (``codeaudit backdoor``, EliBadCode: stages
``vocab`` (trigger vocabulary), ``positions`` (sample-specific positions), ``gcg`` (trigger
inversion), ``anchor``, ``scanner`` (estimator and verdict), ``unlearn`` (repair), ``check``),
and the model-free scan of training data (``codeaudit poison-scan``, KillBadCode:
``naturalness`` (the n-gram model), ``datascan`` (units, ranking, estimator), ``poison_scan``
(the check)).

Kept light: the submodules are imported when first used, so importing the package costs nothing.
"""

from __future__ import annotations

from codeaudit.lazy import lazy_exports

_EXPORTS = {
    "TriggerType": "codeaudit.backdoor.triggers",
    "TriggerSpec": "codeaudit.backdoor.triggers",
    "insert_trigger": "codeaudit.backdoor.triggers",
    "Manifest": "codeaudit.backdoor.manifest",
    "read_manifest": "codeaudit.backdoor.manifest",
    "poison_samples": "codeaudit.backdoor.poison",
    "PoisonCheck": "codeaudit.backdoor.poison",
    "PoisonScanner": "codeaudit.backdoor.datascan",
    "PoisonScanCheck": "codeaudit.backdoor.poison_scan",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
