"""Tests write screenshots under test-artifacts/ (ignored by git) unless UPDATE_SCREENSHOTS=1 asks
for the committed copies in docs/screenshots/ to be replaced: a test run leaves ``git status`` clean."""
from __future__ import annotations

import ast

from portal.testing.screenshots import REPO, screenshot_dir

TEST_FILES = [*(REPO / "tests").rglob("*.py"), *(REPO / "portal").glob("*/tests/**/*.py")]


def test_screenshots_go_to_test_artifacts_by_default(monkeypatch):
    monkeypatch.delenv("UPDATE_SCREENSHOTS", raising=False)
    assert screenshot_dir("review") == REPO / "test-artifacts" / "review"
    monkeypatch.setenv("UPDATE_SCREENSHOTS", "0")
    assert screenshot_dir("review") == REPO / "test-artifacts" / "review"


def test_update_screenshots_writes_the_docs_copies(monkeypatch):
    monkeypatch.setenv("UPDATE_SCREENSHOTS", "1")
    assert screenshot_dir("review") == REPO / "docs" / "screenshots" / "review"


def _code_strings(tree: ast.AST) -> list[str]:
    """String constants of a module that are not docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_test_names_the_committed_screenshots_itself():
    offenders = []
    for path in sorted(TEST_FILES):
        if path.name == "test_screenshot_paths.py":
            continue
        strings = _code_strings(ast.parse(path.read_text(encoding="utf-8")))
        if any("docs/screenshots" in s or s in ("docs", "screenshots") for s in strings):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
