"""The largest classes and functions of the watcher, in lines (source lines, docstrings in).

    python bench/code_sizes.py [--top 10] [PATH ...]

Prints the longest classes and functions (methods and nested functions included, each counted
whole) under `watcher/` by default, to compare the code's shape before and after a refactor.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def definitions(path: Path) -> Iterator[tuple[str, str, int]]:
    """(kind, dotted name, lines) of every class and function defined in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                name = f"{prefix}.{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                yield kind, name, (child.end_lineno or child.lineno) - start + 1
                yield from walk(child, name)

    yield from walk(tree, module)


def _modules(base: Path) -> list[Path]:
    return [base] if base.is_file() else sorted(base.rglob("*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "watcher"])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    found = [
        item
        for base in args.paths
        for path in _modules(base.resolve())
        for item in definitions(path)
    ]
    for kind in ("class", "function"):
        print(f"largest {kind}es" if kind == "class" else f"largest {kind}s")
        ranked = sorted((i for i in found if i[0] == kind), key=lambda i: -i[2])
        for _, name, lines in ranked[: args.top]:
            print(f"  {lines:5d}  {name}")


if __name__ == "__main__":
    main()
