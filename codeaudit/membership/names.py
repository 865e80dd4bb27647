"""Attack names that several layers read (the evaluation writes them, the judge and the report
sections look for them): kept in a module of their own, which imports nothing."""

from __future__ import annotations

#: The trained attack whose voting models and features are chosen inside each fold's training
#: part (:func:`codeaudit.membership.evaluate.evaluate_trained`): the one the verdict counts.
SELECTED = "trained-selected"
