"""A text without its translation cannot land: every Chinese string literal of the plugin is the
Chinese side of a pair whose English side has no CJK character, and no Chinese literal lives
outside utils/chat/texts/ (docstrings, and the words users type, aside)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.harness import REPO_ROOT
from tests.support.language import CJK

TEXTS_DIR = REPO_ROOT / "utils" / "chat" / "texts"
# The calls that make a pair: say(lang, zh=..., en=...), Words(zh, en), Command(zh, en).
PAIR_CALLS = {"say": None, "Words": 0, "Command": 0}  # name -> position of zh (None: keyword only)
# Outside the texts, Chinese is allowed only as what users type (parsed, never shown): these
# module-level names, by file.
INPUT_VOCABULARY = {
    "utils/chat/commands.py": {
        "OWN_AVATAR_PHRASES",
        "OWN_AVATAR_WORDS",
        "_AFTER_PHRASE",
        "_RATIO_WORD",
        "_RATIO_SEPARATORS",
        "RESET_KEY_WORDS",
    },
    "utils/chat/admin.py": {"RESET_WORDS"},
    "utils/chat/translate.py": {"QUOTE_PAIRS"},
    "utils/core/coerce.py": {"_TRUE", "_FALSE"},
    "utils/core/image_options.py": {"_DEFAULT_WORDS", "_SEPARATORS"},
    "utils/core/keys.py": {"_PLACEHOLDER_PATTERN"},
    "utils/core/settings.py": {"_ID_SEPARATORS"},
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _chinese_literals(tree: ast.AST) -> Iterator[ast.Constant]:
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and CJK.search(node.value)
        ):
            yield node


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _sides(call: ast.Call) -> tuple[ast.AST | None, ast.AST | None]:
    """The zh and en arguments of a pair call."""
    sides: dict[str, ast.AST] = {k.arg: k.value for k in call.keywords if k.arg in ("zh", "en")}
    position = PAIR_CALLS[_call_name(call)]
    if position is not None:
        for name, arg in zip(("zh", "en"), call.args[position:], strict=False):
            sides.setdefault(name, arg)
    return sides.get("zh"), sides.get("en")


def _has_text(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.strip()
        for n in ast.walk(node)
    ) or any(isinstance(n, ast.FormattedValue) for n in ast.walk(node))


def _pair_problem(literal: ast.Constant, parents: dict[int, ast.AST]) -> str:
    """'' when the literal is on the Chinese side of a pair with an English side; else why not."""
    node: ast.AST = literal
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, ast.Call) and _call_name(parent) in PAIR_CALLS:
            zh, en = _sides(parent)
            if zh is None or not any(n is literal for n in ast.walk(zh)):
                return "Chinese outside the zh side of its pair"
            if en is None or not _has_text(en):
                return "no English side"
            if any(isinstance(n, ast.Constant) and CJK.search(str(n.value)) for n in ast.walk(en)):
                return "CJK on the English side"
            return ""
        node = parent
    return "Chinese outside any pair"


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', '?')}"


def test_every_chinese_text_has_its_english_side():
    problems = []
    files = sorted(TEXTS_DIR.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = _parents(tree)
        for literal in _chinese_literals(tree):
            problem = _pair_problem(literal, parents)
            if problem:
                problems.append(f"{_where(path, literal)}: {problem}: {literal.value!r}")
    assert problems == []


def test_the_check_catches_a_missing_or_chinese_translation():
    """The check above on sources that get it wrong."""
    cases = {
        'x = "只有中文"': "Chinese outside any pair",
        'say(lang, zh="中文", en="")': "no English side",
        'say(lang, zh="中文", en="还是中文")': "CJK on the English side",
        'Words("中文", f"英文 {x}")': "CJK on the English side",  # and the en literal is misplaced
        'say(lang, zh="ok", en="中文")': "Chinese outside the zh side of its pair",
        'say(lang, zh=f"{a}中文", en=f"{a} English")': "",
        'Words("中文", "English")': "",
        'Command("画图", "draw")': "",
    }
    for source, expected in cases.items():
        tree = ast.parse(source)
        parents = _parents(tree)
        found = [_pair_problem(lit, parents) for lit in _chinese_literals(tree)]
        assert found and expected in found, source
        assert (expected == "") == (set(found) == {""}), source


def _assigned_name(node: ast.AST, parents: dict[int, ast.AST]) -> str:
    """The module-level name a literal is assigned to ('' if none)."""
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and isinstance(
            parents.get(id(parent)), ast.Module
        ):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return ",".join(t.id for t in targets if isinstance(t, ast.Name))
        node = parent
    return ""


def test_no_chinese_outside_the_texts():
    problems = []
    sources = [REPO_ROOT / "main.py", *sorted((REPO_ROOT / "utils").rglob("*.py"))]
    for path in sources:
        if TEXTS_DIR in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = _parents(tree)
        allowed = INPUT_VOCABULARY.get(str(path.relative_to(REPO_ROOT)), set())
        for literal in _chinese_literals(tree):
            if _assigned_name(literal, parents) not in allowed:
                problems.append(f"{_where(path, literal)}: {literal.value!r}")
    assert problems == []
