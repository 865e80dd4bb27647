"""The LanguageSupport contract, checked on every registered language: a language added to
``codeaudit.lang.languages.LANGUAGES`` is tested here without a line of test code. Also the
registry itself: every language module is registered, every registered name resolves, and the
shared modules never branch on a language's name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import re
import types
from pathlib import Path

import pytest
import tree_sitter

import codeaudit.lang
from codeaudit.backdoor.triggers import (
    DEFAULT_DEADCODE,
    DEFAULT_POSTFIX,
    TriggerSpec,
    TriggerType,
    check_trigger,
    grammar_deadcode,
    insert_trigger,
)
from codeaudit.errors import LanguageError, PoisonError
from codeaudit.lang.languages import (
    LANGUAGES,
    get_language,
    get_parser,
    language_support,
    normalize_language,
    reserved_words,
    supported_languages,
)
from codeaudit.lang.lexer import lex
from codeaudit.lang.rewrite import (
    FRESH_NAMES,
    RewriteKind,
    apply_rewrite,
    fresh_names,
    renamable_variables,
    rename_variable,
    supported_kinds,
)
from codeaudit.lang.support import LanguageSupport

SUPPORTS = list(LANGUAGES.values())
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=SUPPORTS, ids=[s.name for s in SUPPORTS])
def support(request: pytest.FixtureRequest) -> LanguageSupport:
    return request.param


def parse_errors(code: str, lang: str) -> int:
    stack, count = [get_parser(lang).parse(code.encode("utf-8")).root_node], 0
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def nodes_of(code: str, lang: str, node_types: frozenset[str]) -> list[tree_sitter.Node]:
    stack, found = [get_parser(lang).parse(code.encode("utf-8")).root_node], []
    while stack:
        node = stack.pop()
        if node.type in node_types:
            found.append(node)
        stack.extend(node.children)
    return found


# ---------------------------------------------------------------------------------------------
# Names and grammar
# ---------------------------------------------------------------------------------------------


def test_every_declared_member_is_defined(support: LanguageSupport) -> None:
    declared = {
        name for cls in type(support).__mro__ for name in getattr(cls, "__annotations__", {})
    }
    missing = sorted(name for name in declared if not hasattr(support, name))
    assert not missing, f"{type(support).__name__} does not define {missing}"
    assert not inspect.isabstract(type(support))


def test_the_grammar_loads_and_reads_the_sample(support: LanguageSupport) -> None:
    assert isinstance(get_language(support.name), tree_sitter.Language)
    assert support.grammar() is get_language(support.name)
    assert parse_errors(support.sample_function, support.name) == 0
    assert len(nodes_of(support.sample_function, support.name, support.definition_types)) == 1


def test_aliases_normalise_to_the_name(support: LanguageSupport) -> None:
    assert support.name in support.aliases
    for alias in (support.name, *support.aliases):
        assert alias == alias.lower()
        for spelling in (alias, alias.upper(), f" {alias} "):
            assert normalize_language(spelling) == support.name
            assert language_support(spelling) is support


def test_reserved_words_exclude_soft_keywords(support: LanguageSupport) -> None:
    words = reserved_words(support.name)
    assert len(words) >= 10
    assert not words & support.soft_keywords
    assert support.builtin_words <= words
    assert support.reserved_words() == words


# ---------------------------------------------------------------------------------------------
# Names a variable may be given
# ---------------------------------------------------------------------------------------------


def test_accepted_fresh_names_are_valid_names(support: LanguageSupport) -> None:
    sample, lang = support.sample_function, support.name
    accepted = [n for n in FRESH_NAMES if support.new_name_problem(n) is None]
    assert len(accepted) >= len(FRESH_NAMES) // 2
    old = renamable_variables(sample, lang)[0]
    for new in fresh_names(sample, lang, len(FRESH_NAMES)):
        assert new in accepted or re.fullmatch(r"v\d+", new)
        renamed = rename_variable(sample, lang, old, new)
        assert parse_errors(renamed, lang) == 0, renamed
        assert new in [t.text for t in lex(renamed, lang).tokens if t.is_identifier]


def test_reserved_words_are_refused_as_names(support: LanguageSupport) -> None:
    sample, lang = support.sample_function, support.name
    old = renamable_variables(sample, lang)[0]
    for word in sorted(reserved_words(lang) | support.soft_keywords | support.extra_reserved):
        assert support.new_name_problem(word) is not None, word
        with pytest.raises(ValueError, match="cannot rename"):
            rename_variable(sample, lang, old, word)
    for bad in ("", "1x", "a-b", "a b"):
        assert support.new_name_problem(bad) is not None, bad


# ---------------------------------------------------------------------------------------------
# Rewrites on the sample function
# ---------------------------------------------------------------------------------------------


def test_every_rewrite_kind_applies_to_the_sample(support: LanguageSupport) -> None:
    sample, lang = support.sample_function, support.name
    assert supported_kinds(lang) == tuple(RewriteKind)
    for kind in RewriteKind:
        results = {apply_rewrite(sample, lang, kind, random.Random(seed)) for seed in range(10)}
        rewritten = results - {None}
        assert rewritten, f"no {kind.value} rewrite of the {lang} sample"
        for result in rewritten:
            assert result != sample
            assert parse_errors(result, lang) == 0, (kind, result)


def test_a_rename_of_the_sample_reparses(support: LanguageSupport) -> None:
    sample, lang = support.sample_function, support.name
    names = renamable_variables(sample, lang)
    assert names
    for old in names:
        new = fresh_names(sample, lang)[0]
        renamed = rename_variable(sample, lang, old, new)
        assert parse_errors(renamed, lang) == 0, renamed
        assert old not in [t.text for t in lex(renamed, lang).tokens]


# ---------------------------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------------------------


def test_the_probe_wrapper_makes_one_function(support: LanguageSupport) -> None:
    probe = support.probe_source(support.default_deadcode)
    assert parse_errors(probe, support.name) == 0, probe
    assert len(nodes_of(probe, support.name, support.definition_types)) == 1


def test_the_default_dead_code_is_one_statement(support: LanguageSupport) -> None:
    lang = support.name
    assert DEFAULT_DEADCODE[lang] == support.default_deadcode
    check_trigger(TriggerSpec(TriggerType.DEADCODE, support.default_deadcode, 0), lang)
    # Two statements, or an unfinished one, are refused: the check can fail.
    twice = support.default_deadcode + "\n" + support.default_deadcode
    for text in (twice, support.default_deadcode[:-1]):
        with pytest.raises(PoisonError, match="not one well-formed"):
            check_trigger(TriggerSpec(TriggerType.DEADCODE, text, 0), lang)


def test_grammar_dead_code_is_one_statement(support: LanguageSupport) -> None:
    lang = support.name
    drawn = {grammar_deadcode(lang, random.Random(seed)) for seed in range(30)}
    assert len(drawn) > 10
    for text in drawn:
        check_trigger(TriggerSpec(TriggerType.DEADCODE, text, 0), lang)


def test_every_trigger_type_goes_into_the_sample(support: LanguageSupport) -> None:
    sample, lang = support.sample_function, support.name
    specs = [
        TriggerSpec(TriggerType.IDENTIFIER, "rb_trigger", 1),
        TriggerSpec(TriggerType.POSTFIX, DEFAULT_POSTFIX, 1),
        TriggerSpec(TriggerType.DEADCODE, support.default_deadcode, 1),
        TriggerSpec(TriggerType.GRAMMAR, None, 1),
    ]
    for spec in specs:
        poisoned = insert_trigger(sample, lang, spec, random.Random(0))
        assert poisoned is not None and poisoned != sample, spec
        assert parse_errors(poisoned, lang) == 0, poisoned
    assert support.postfix_ok(DEFAULT_POSTFIX)
    assert not support.postfix_ok("a-b")


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


def _language_classes(module: types.ModuleType) -> list[type[LanguageSupport]]:
    """The concrete LanguageSupport subclasses a module defines."""
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, LanguageSupport)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _unregistered(module: types.ModuleType) -> list[str]:
    registered = {type(s) for s in LANGUAGES.values()}
    return [cls.__name__ for cls in _language_classes(module) if cls not in registered]


def test_every_language_module_is_registered() -> None:
    found = []
    for info in pkgutil.iter_modules(codeaudit.lang.__path__):
        module = importlib.import_module(f"codeaudit.lang.{info.name}")
        assert not _unregistered(module), f"register {_unregistered(module)} in LANGUAGES"
        found += _language_classes(module)
    assert sorted(cls.name for cls in found) == sorted(LANGUAGES)


def test_the_registration_check_sees_an_unregistered_language() -> None:
    module = types.ModuleType("codeaudit.lang.klingon")
    source = LANGUAGES["c"]

    class KlingonSupport(type(source)):  # type: ignore[misc]
        name = "klingon"

    KlingonSupport.__module__ = module.__name__
    module.KlingonSupport = KlingonSupport  # type: ignore[attr-defined]
    assert _unregistered(module) == ["KlingonSupport"]


def test_every_registered_name_resolves() -> None:
    assert supported_languages() == tuple(LANGUAGES)
    owner: dict[str, str] = {}
    for name, support in LANGUAGES.items():
        assert support.name == name
        assert language_support(name) is support
        for alias in support.aliases:
            assert owner.setdefault(alias, name) == name, f"{alias} names two languages"
    with pytest.raises(LanguageError, match="unsupported language"):
        language_support("klingon")


def test_the_shared_code_does_not_branch_on_a_language_name() -> None:
    branch = re.compile(r'lang(uage)? *(==|!=|in) *[\("]|"(c|cpp|java|python)":')
    for path in (
        "codeaudit/lang/rewrite.py",
        "codeaudit/lang/tree.py",
        "codeaudit/lang/support.py",
        "codeaudit/lang/lexer.py",
        "codeaudit/backdoor/triggers.py",
    ):
        text = (ROOT / path).read_text(encoding="utf-8")
        hits = [line for line in text.splitlines() if branch.search(line)]
        assert not hits, f"{path}: {hits}"


def test_every_grammar_package_is_a_dependency() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for support in SUPPORTS:
        assert f'"{support.package.replace("_", "-")}>=' in pyproject, support.package
