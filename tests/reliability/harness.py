"""What the reliability tests share: the commands under test as table entries, a tiny world of
inputs (a trained checkpoint, a Hugging Face directory, labelled data), and ways to run the CLI.

Adding a command to every reliability test (hostile corpus, determinism, supply chain,
interrupts) is adding one :class:`Command` to :data:`COMMANDS`: its argument vector for given
inputs and an output directory, the files it writes there, which input slot takes a data file
and which a model, and what its JSON report calls each input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from codeaudit.cli import cli
from tests.conftest import planted_records, write_jsonl

REPO = Path(__file__).resolve().parents[2]
TINY = ["--embed-dim", "8", "--hidden-dim", "8", "--max-len", "48", "--min-freq", "1"]

Inputs = dict[str, str]  # slot -> path


@dataclass(frozen=True)
class Command:
    """One codeaudit command, as the reliability tests drive it."""

    name: str
    # argv for the inputs (slot -> path) and an output directory that must start empty
    argv: Callable[[Inputs, str], list[str]]
    # the files it writes into the output directory, relative to it
    outputs: tuple[str, ...]
    data_slot: str | None = None  # where a hostile data file goes (None: takes no data)
    model_slot: str | None = None  # where a hostile model goes (None: takes no model)
    # report roles (JSON keys) -> input slot whose file's sha256 the report must record; the
    # role "model" of a command that writes the model names its output instead (see below)
    hashed: dict[str, str] = field(default_factory=dict)
    writes_model: str | None = None  # output file that is a model (train, harden, unlearn)
    output_role: str = "model"  # the report's name for it (harden: "output"; "model" the parent)
    report: str = "report.json"  # the JSON report among the outputs


def _train(i: Inputs, out: str) -> list[str]:
    return [
        "train",
        i["data"],
        "-o",
        f"{out}/model.pt",
        "--report",
        f"{out}/report.json",
        "--epochs",
        "2",
        "--val-split",
        "0",
        "-q",
        "--format",
        "json",
        *TINY,
    ]


def _predict(i: Inputs, out: str) -> list[str]:
    return ["predict", i["model"], i["data"], "--report", f"{out}/report.json", "-q"]


def _membership(i: Inputs, out: str) -> list[str]:
    return [
        "membership",
        i["model"],
        "--members",
        i["members"],
        "--nonmembers",
        i["nonmembers"],
        "--features",
        "loss,logits+loss",
        "--bootstrap",
        "20",
        "--report",
        f"{out}/report.json",
        "-q",
        "--format",
        "json",
    ]


def _audit(i: Inputs, out: str) -> list[str]:
    return [
        "audit",
        i["model"],
        "--members",
        i["members"],
        "--nonmembers",
        i["nonmembers"],
        "--bootstrap",
        "20",
        "--report",
        f"{out}/report.json",
        "--report",
        f"{out}/report.sarif",
        "-q",
        "--format",
        "json",
    ]


def _harden(i: Inputs, out: str) -> list[str]:
    return [
        "harden",
        i["model"],
        "-o",
        f"{out}/hardened.pt",
        "--members",
        i["members"],
        "--nonmembers",
        i["nonmembers"],
        "--sigma",
        "2",
        "--key-file",
        i["key"],
        "--queries",
        "2",
        "--rewrites",
        "0",
        "--boundary-samples",
        "0",
        "--bootstrap",
        "20",
        "--report",
        f"{out}/report.json",
        "-q",
        "--format",
        "json",
    ]


def _poison(i: Inputs, out: str) -> list[str]:
    return [
        "poison",
        i["data"],
        "-o",
        f"{out}/poisoned.jsonl",
        "--trigger-type",
        "identifier",
        "--trigger",
        "rb_trigger",
        "--rate",
        "0.5",
        "--seed",
        "3",
        "--report",
        f"{out}/report.json",
        "-q",
        "--format",
        "json",
    ]


def _backdoor(i: Inputs, out: str) -> list[str]:
    return [
        "backdoor",
        i["scan_model"],
        "--data",
        i["data"],
        "--victim-samples",
        "3",
        "--heldout",
        "5",
        "--steps",
        "3",
        "--topk",
        "8",
        "--candidates",
        "8",
        "--unlearn",
        "-o",
        f"{out}/repaired.pt",
        "--report",
        f"{out}/report.json",
        "-q",
        "--format",
        "json",
    ]


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "train",
            _train,
            outputs=("model.pt", "report.json"),
            data_slot="data",
            hashed={"data": "data"},
            writes_model="model.pt",
        ),
        Command(
            "predict",
            _predict,
            outputs=("report.json",),
            data_slot="data",
            model_slot="model",
            hashed={"model": "model", "data": "data"},
        ),
        Command(
            "membership",
            _membership,
            outputs=("report.json",),
            data_slot="members",
            model_slot="model",
            hashed={"model": "model", "members": "members", "nonmembers": "nonmembers"},
        ),
        Command(
            "audit",
            _audit,
            outputs=("report.json", "report.sarif"),
            data_slot="nonmembers",
            model_slot="model",
            hashed={"model": "model", "members": "members", "nonmembers": "nonmembers"},
        ),
        Command(
            "harden",
            _harden,
            outputs=("hardened.pt", "report.json"),
            data_slot="members",
            model_slot="model",
            hashed={"model": "model", "members": "members", "nonmembers": "nonmembers"},
            writes_model="hardened.pt",
            output_role="output",
        ),
        Command(
            "poison",
            _poison,
            outputs=("poisoned.jsonl", "poisoned.jsonl.manifest.json", "report.json"),
            data_slot="data",
            hashed={"data": "data"},
        ),
        Command(
            "backdoor",
            _backdoor,
            outputs=("repaired.pt", "report.json"),
            data_slot="data",
            model_slot="scan_model",
            hashed={"model": "scan_model", "data": "data"},
            writes_model="repaired.pt",
            output_role="output",
        ),
    )
}
# A new command joins every test in tests/reliability (hostile models and data, determinism,
# sha256 in the report, no partial output) with one Command entry above.


@dataclass(frozen=True)
class World:
    """Valid inputs every command can run on; a hostile case replaces one of them."""

    root: Path
    inputs: Inputs  # slot -> path: data, model, members, nonmembers
    hf_dir: Path  # a small Hugging Face sequence-classification directory

    def records(self, n: int = 12, seed: int = 5) -> list[dict]:
        return planted_records(n, seed=seed)


def make_world(root: Path) -> World:
    """A tiny trained BiGRU, its training data (the members), held-out data, and a Hugging Face
    directory with random weights and a BPE tokenizer trained on the same code."""
    from codeaudit import api
    from codeaudit.config import TrainConfig

    root.mkdir(parents=True, exist_ok=True)
    train = write_jsonl(root / "train.jsonl", planted_records(40, seed=1))
    test = write_jsonl(root / "test.jsonl", planted_records(30, seed=2))
    model = root / "model.pt"
    key = root / "nmid.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    api.train(
        TrainConfig(
            data=str(train),
            output=str(model),
            epochs=2,
            batch_size=16,
            max_len=48,
            embed_dim=8,
            hidden_dim=8,
            min_freq=1,
            val_split=0.0,
            device="cpu",
        )
    )
    # the backdoor scan needs a model that gets both labels right: the same, trained longer
    scan_model = root / "scan_model.pt"
    api.train(
        TrainConfig(
            data=str(train),
            output=str(scan_model),
            epochs=15,
            batch_size=16,
            max_len=48,
            embed_dim=8,
            hidden_dim=8,
            min_freq=1,
            lr=0.01,
            val_split=0.0,
            device="cpu",
        )
    )
    return World(
        root=root,
        inputs={
            "data": str(test),
            "model": str(model),
            "members": str(train),
            "nonmembers": str(test),
            "key": str(key),
            "scan_model": str(scan_model),
        },
        hf_dir=make_hf_dir(root / "hf", [r["func"] for r in planted_records(40, seed=1)]),
    )


def make_hf_dir(path: Path, texts: list[str]) -> Path:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from codeaudit.lang.lexer import lex
    from codeaudit.models.tokenizer import HFTokenizer, joined_text

    tok = HFTokenizer.train_bpe((joined_text(lex(t, "c").tokens)[0] for t in texts), vocab_size=300)
    config = RobertaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=66,
        type_vocab_size=1,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.tok.bos_token_id,
        eos_token_id=tok.tok.eos_token_id,
        num_labels=2,
    )
    import torch

    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(path)
    tok.tok.save_pretrained(path)
    return path


# -- running the CLI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def invoke(argv: list[str]) -> Outcome:
    """The real entry point in process (click's runner catches SystemExit, nothing else)."""
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def codeaudit_process(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.Popen[str]:
    """``codeaudit ARGV`` as a real process (python -m codeaudit, this interpreter)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "codeaudit", *argv],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


READY = "codeaudit-test: ready"
# Imports what every command imports, says so, then runs the real entry point: a test can wait
# until the process is past start-up (where Python itself, not codeaudit, would handle Ctrl-C).
PRELOADED_MAIN = (
    "import sys, torch, sklearn.linear_model, codeaudit.cli, codeaudit.api, "
    "codeaudit.membership.check, codeaudit.train.trainer\n"
    f"print({READY!r}, file=sys.stderr, flush=True)\n"
    "sys.argv = ['codeaudit', *sys.argv[1:]]\n"
    "codeaudit.cli.main()\n"
)


@dataclass
class Interrupted:
    """A real codeaudit process that will receive ``sig`` ``delay`` seconds after start-up."""

    argv: list[str]
    cwd: Path
    delay: float
    sig: int = signal.SIGINT
    proc: subprocess.Popen[str] | None = None
    outcome: Outcome | None = None


def interrupt_after_start(runs: list[Interrupted], *, timeout: float = 180) -> None:
    """Start every run at once (they overlap: start-up is what costs), send each its signal
    ``delay`` seconds after its imports are done, and collect how each ended."""
    for run in runs:
        run.proc = subprocess.Popen(
            [sys.executable, "-c", PRELOADED_MAIN, *run.argv],
            cwd=run.cwd,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    deadline = time.monotonic() + timeout
    try:
        ready = []
        for run in runs:
            assert run.proc is not None and run.proc.stderr is not None
            line = run.proc.stderr.readline()
            assert line.strip() == READY, line
            ready.append(time.monotonic())
        for run, at in sorted(zip(runs, ready, strict=True), key=lambda x: x[1] + x[0].delay):
            time.sleep(max(0.0, at + run.delay - time.monotonic()))
            assert run.proc is not None
            assert run.proc.poll() is None, "the command finished before it could be interrupted"
            run.proc.send_signal(run.sig)
        for run in runs:
            assert run.proc is not None
            stdout, stderr = run.proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            run.outcome = Outcome(run.proc.returncode, stdout, stderr)
    finally:
        for run in runs:
            if run.proc is not None and run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()


def one_line_error(outcome: Outcome) -> str:
    """The single stderr line of a failed command (asserts there is exactly one, no traceback)."""
    lines = outcome.stderr.strip().splitlines()
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("codeaudit: error: "), lines[0]
    assert len(lines[0]) <= 600, f"error line of {len(lines[0])} characters"
    return lines[0]


def files_under(path: Path) -> list[str]:
    """Every file and directory under ``path`` (relative, sorted), hidden ones included."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def read_report(out: Path, command: Command) -> dict:
    return json.loads((out / command.report).read_text(encoding="utf-8"))


# -- the same commands twice, in two fresh processes ----------------------------------------------

# Runs several command lines in one process, in order, through the real entry point; prints each
# exit code. (One interpreter start for all commands keeps this affordable.)
SEQUENCE_MAIN = (
    "import json, sys\n"
    "from codeaudit.cli import cli\n"
    "codes = [cli.main(argv, prog_name='codeaudit', standalone_mode=False)\n"
    "         for argv in json.loads(sys.argv[1])]\n"
    "print(json.dumps(codes))\n"
)


@dataclass(frozen=True)
class TwinRuns:
    """Every command run twice on the same inputs with the same command lines (same paths): the
    outputs of the first run are in ``runs[0] / NAME``, of the second in ``runs[1] / NAME``."""

    inputs: Inputs
    runs: tuple[Path, Path]
    codes: tuple[list[int], list[int]]


def twin_runs(world: World, root: Path, *, processes: bool) -> TwinRuns:
    """Run every command of COMMANDS twice: in this process, or (``processes``) in two fresh
    processes with different PYTHONHASHSEEDs, so that set and dict orders of strings differ."""
    import shutil

    work = root / "work"
    argvs = [[*c.argv(world.inputs, str(work / c.name)), "--no-config"] for c in COMMANDS.values()]
    runs = (root / "a", root / "b")
    codes: list[list[int]] = []
    for run_dir, hash_seed in zip(runs, ("1", "2"), strict=True):
        for name in COMMANDS:
            (work / name).mkdir(parents=True)
        if processes:
            proc = subprocess.run(
                [sys.executable, "-c", SEQUENCE_MAIN, json.dumps(argvs)],
                cwd=work,
                env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": hash_seed},
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            codes.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            outcomes = [invoke(argv) for argv in argvs]
            assert all(o.code in (0, 1) for o in outcomes), [o.stderr for o in outcomes]
            codes.append([o.code for o in outcomes])
        shutil.move(work, run_dir)
    return TwinRuns(dict(world.inputs), runs, (codes[0], codes[1]))


# What differs between two runs of the same command on the same inputs, and nothing else: when
# it ran and how long it took. Each such value is replaced by "<normalised>" before comparing.
VOLATILE_KEYS = frozenset(
    {
        "created",  # header: when the report was made (UTC)
        "started",  # gate: when the command started
        "finished",  # gate: when it finished
        "seconds",  # train: total; epochs, attack rows, audit sections: durations
        "timings",  # membership: seconds per stage
        "threads",  # header: the thread count chosen for the run and why (load-dependent)
        "startTimeUtc",  # SARIF invocation
        "endTimeUtc",  # SARIF invocation
    }
)


def normalised(document: object) -> object:
    if isinstance(document, dict):
        return {
            k: "<normalised>" if k in VOLATILE_KEYS else normalised(v) for k, v in document.items()
        }
    if isinstance(document, list):
        return [normalised(v) for v in document]
    return document
