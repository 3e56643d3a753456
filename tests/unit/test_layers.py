"""The folders are floors: each imports only from the floors below it, so the tree reads
like the architecture and no folder depends on another in a loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. Folders on one floor do not import each other.
FLOORS = [
    ["domain"],  # pure rules: the standard library only
    ["gateway"],  # the shared vocabulary: config, keys, wire format, errors, metrics
    ["gateway.realtime"],
    ["gateway.services"],
    ["gateway.pipeline", "gateway.clock"],
    ["gateway.push"],
    ["gateway.api", "gateway.ops"],
    ["gateway.processes"],
]
FLOOR_OF = {folder: level for level, folders in enumerate(FLOORS) for folder in folders}
ENTRY_SHIMS = {ROOT / "gateway" / "__main__.py"}  # `python -m gateway`, imported by nothing


def _folder(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "gateway" and len(parts) > 1 and (ROOT / "gateway" / parts[1]).is_dir():
        return f"gateway.{parts[1]}"
    return parts[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module in FLOOR_OF:  # `from gateway import wire`
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("gateway", "domain")}


def test_every_folder_has_a_floor() -> None:
    folders = {"domain", "gateway"} | {
        f"gateway.{path.name}"
        for path in (ROOT / "gateway").iterdir()
        if path.is_dir()
        if (path / "__init__.py").exists()
    }
    assert folders == set(FLOOR_OF)


def test_imports_only_go_down() -> None:
    upward = []
    for path in sorted(
        [*ROOT.joinpath("domain").rglob("*.py"), *ROOT.joinpath("gateway").rglob("*.py")]
    ):
        if path in ENTRY_SHIMS:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        here = _folder(module)
        for imported in _imports(path):
            there = _folder(imported)
            if there != here and FLOOR_OF[there] >= FLOOR_OF[here]:
                upward.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert upward == []
