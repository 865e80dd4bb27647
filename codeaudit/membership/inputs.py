"""Are ``--members`` the model's training samples and ``--nonmembers`` samples it never trained
on? Checked against the split the checkpoint records (:mod:`codeaudit.data.split_record`).

A member that was held out for validation, or that the model never saw at all, is a non-member;
a non-member that the model trained on is a member. Counting them on the wrong side makes every
attack look weaker than it is. Members recorded as held out and non-members recorded as trained
on are left out of the attack sets (the record names that very function on the other side) and
the warning says how many, from which file, and what to do. Members that match neither list
(possible only when the whole training list is recorded) are counted and warned about but kept:
"matches nothing" cannot tell a function the model never saw from one whose text changed since
training (a re-exported or re-formatted file), and a members file of which much matches nothing
is a wrong file, which leaving most of it out would hide rather than fix.

Without a record (a checkpoint from before codeaudit recorded its split, a foreign model)
nothing can be left out; when the checkpoint's hashes show that ``--members`` is the very file a
validation split was held out of, the check still says how many members are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codeaudit.data.samples import Dataset
from codeaudit.data.split_record import SplitRecord
from codeaudit.errors import DataError
from codeaudit.membership.judge import MIN_SAMPLES
from codeaudit.membership.result import InputCheck


@dataclass(frozen=True)
class Verified:
    """The members and non-members the attacks use, what the check found and its warnings."""

    members: Dataset
    nonmembers: Dataset
    check: InputCheck
    warnings: tuple[str, ...]


def verify_inputs(members: Dataset, nonmembers: Dataset, model: str, metadata: Any) -> Verified:
    """``members`` and ``nonmembers`` less the samples on the wrong side of ``model``'s recorded
    split; raises :class:`DataError` when too few are left for an audit."""
    record = SplitRecord.from_metadata(metadata)
    if record is None:
        known = metadata if isinstance(metadata, dict) else {}
        return _unrecorded(members, nonmembers, model, known)
    held = [i for i, s in enumerate(members) if record.held_out(s.code)]
    unseen: list[int] = []
    trained: list[int] = []
    if record.train is not None:
        held_set = set(held)
        unseen = [
            i for i, s in enumerate(members) if i not in held_set and not record.trained_on(s.code)
        ]
        trained = [i for i, s in enumerate(nonmembers) if record.trained_on(s.code)]
    drop_members = set(held)
    kept_members = members.subset([i for i in range(len(members)) if i not in drop_members])
    trained_set = set(trained)
    kept_nonmembers = nonmembers.subset([i for i in range(len(nonmembers)) if i not in trained_set])
    check = InputCheck(
        recorded="full" if record.train is not None else "validation",
        members_given=len(members),
        nonmembers_given=len(nonmembers),
        members_held_out=len(held),
        members_unseen=len(unseen) if record.train is not None else None,
        nonmembers_trained=len(trained) if record.train is not None else None,
        dropped_members=len(held),
        dropped_nonmembers=len(trained),
    )
    warnings = _warnings(check, members.path, nonmembers.path, model)
    for name, given, kept in (
        ("members", members, kept_members),
        ("non-members", nonmembers, kept_nonmembers),
    ):
        if len(kept) < MIN_SAMPLES and len(kept) < len(given):
            raise DataError(
                f"{given.path}: only {len(kept)} of {len(given)} {name} are on the right side of "
                f"the training/validation split {model} records, and a membership audit needs at "
                f"least {MIN_SAMPLES}: pass the samples it trained on as --members and samples it "
                "never saw as --nonmembers"
            )
    return Verified(kept_members, kept_nonmembers, check, tuple(warnings))


def _warnings(check: InputCheck, members: str, nonmembers: str, model: str) -> list[str]:
    found = []
    if check.members_held_out:
        found.append(
            f"{check.members_held_out} of {check.members_given} --members ({members}) were held "
            f"out for validation when {model} was trained: they are non-members, so the audit "
            "left them out; pass only the training samples (train with --val FILE to keep the "
            "split in files of its own), or use them as --nonmembers"
        )
    if check.members_unseen:
        found.append(
            f"{check.members_unseen} of {check.members_given} --members ({members}) are not "
            f"among the functions {model} was trained on (its checkpoint records them all, by "
            "content): either it never saw them, and they are non-members that make the audit "
            "understate leakage, or their code changed since training; they are kept, so pass "
            "the training data as it was trained on as --members"
        )
    if check.nonmembers_trained:
        found.append(
            f"{check.nonmembers_trained} of {check.nonmembers_given} --nonmembers ({nonmembers}) "
            f"are functions {model} was trained on: they are members, so the audit left them "
            "out; draw non-members from data the model never saw (its validation split, or the "
            "unused part of the same data set)"
        )
    return found


def _unrecorded(
    members: Dataset, nonmembers: Dataset, model: str, metadata: dict[str, Any]
) -> Verified:
    """No recorded split: only what the recorded hashes show (the training file itself passed as
    --members when a validation split was held out of it, or as --nonmembers)."""
    data_sha = metadata.get("data_sha256")
    n_val = metadata.get("n_val")
    split_held_out = isinstance(n_val, int) and n_val > 0 and metadata.get("val_sha256") is None
    held: int | None = None
    warnings = []
    if data_sha and members.sha256 == data_sha and split_held_out:
        held = int(n_val)  # type: ignore[arg-type]
        warnings.append(
            f"--members ({members.path}) is the file {model} was trained from, and training held "
            f"out {held} of its samples for validation without recording which (a checkpoint "
            f"from an older codeaudit): {held} of the {len(members)} members are non-members, "
            "which understates leakage; retrain with this codeaudit (it records the split and "
            "the audit then leaves them out) or with --val FILE, and pass only the training "
            "samples"
        )
    trained = None
    if data_sha and nonmembers.sha256 == data_sha:
        trained = len(nonmembers) - (int(n_val) if split_held_out else 0)  # type: ignore[arg-type]
        warnings.append(
            f"--nonmembers ({nonmembers.path}) is the file {model} was trained from: "
            f"{trained} of them are members; draw non-members from data the model never saw"
        )
    check = InputCheck(
        recorded="none",
        members_given=len(members),
        nonmembers_given=len(nonmembers),
        members_held_out=held,
        members_unseen=None,
        nonmembers_trained=trained,
        dropped_members=0,
        dropped_nonmembers=0,
    )
    return Verified(members, nonmembers, check, tuple(warnings))
