"""``codeaudit backdoor``: find, name and remove backdoors in VP models (EliBadCode).

Stages, one module each: :mod:`~codeaudit.backdoor.vocab` (trigger vocabulary),
:mod:`~codeaudit.backdoor.positions` (sample-specific positions), :mod:`~codeaudit.backdoor.gcg`
(trigger inversion), :mod:`~codeaudit.backdoor.anchor` (anchoring),
:mod:`~codeaudit.backdoor.scanner` (the estimator and the verdict),
:mod:`~codeaudit.backdoor.unlearn` (repair), :mod:`~codeaudit.backdoor.run` (the command).
Heavy imports (torch) happen in those modules, not here.
"""

from __future__ import annotations
