"""Regenerating into a folder that holds an edited model.py: a three-way merge.

*base* is what mat2torch generated last time (kept in the sidecar
``mat2torch-base.json`` beside model.py), *ours* is model.py as the user
has it, *new* is what the converter generates now. The converter's changes
(base → new) are carried into ours, structurally, with libcst:

- module level and class bodies: statements keyed by what they define
  (functions and classes by name, assignments by target, imports by text,
  the docstring); ours' order is kept and new elements go after their
  predecessor in the new file;
- ``__init__``: statements keyed by the attribute they assign or the buffer,
  parameter or submodule they register;
- every other function (``forward``, helpers): statement by statement, a
  diff3 over the statement lists.

An element both sides changed is merged inside (a class, a method) or, for a
single statement, line by line; if that also overlaps it is a conflict, and
nothing but ``model.py.merge`` is written. Every element carries its leading
comments and blank lines, so comments stay with the code they describe.

Why a sidecar and this format: the base must be exactly what was generated
(not re-derived from an old .mat that may be gone), and it must travel with
model.py through version control. A plain copy would show every change
twice in a review; a delta against model.py would stop applying as soon as
the user edits model.py. So the sidecar is a small JSON file whose base text
is zlib-compressed and base64-encoded on one line, addressed by its SHA-256:
a regeneration changes two lines of it, and a damaged or hand-edited sidecar
is detected. It holds no paths, dates or host names (same input, same bytes).

Writes are all-or-nothing: model.py, the weights and the sidecar are staged
as anonymous files in the output folder (O_TMPFILE on Linux; named dot-files
elsewhere) and linked into place only once all three are complete, so a
process killed while writing leaves the folder as it was.
"""

from __future__ import annotations

import ast
import base64
import difflib
import functools
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import types
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codegen.diagnostics import ConversionError
from codegen.render import WEIGHTS_NAME
from codegen.weights import Serialized

if TYPE_CHECKING:  # libcst is imported where a merge needs it, not by every convert
    import libcst as cst

MODEL_NAME = "model.py"
SIDECAR_NAME = "mat2torch-base.json"
MERGE_NAME = "model.py.merge"
PENDING_NAME = ".model.py.merge.base.json"  # the base of an unresolved merge
FORMAT = "mat2torch-base/1"
ABOUT = (
    "The model.py that mat2torch generated last (zlib, base64), the base of the "
    "three-way merge when you regenerate. Commit it with model.py; do not edit it."
)
MARKERS = ("<<<<<<< ", "||||||| ", "=======", ">>>>>>> ")
# Test hook: seconds to wait once every file is staged, before any rename.
PAUSE_ENV = "MAT2TORCH_TEST_PAUSE_BEFORE_COMMIT"


# --------------------------------------------------------------------------
# The sidecar


def sidecar_bytes(base: str) -> bytes:
    """The sidecar recording ``base``: deterministic JSON, the text on one line."""
    data = base.encode()
    record = {
        "about": ABOUT,
        "format": FORMAT,
        "file": MODEL_NAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "zlib_base64": base64.b64encode(zlib.compress(data, 9)).decode(),
    }
    return (json.dumps(record, indent=1) + "\n").encode()


def read_sidecar(path: Path) -> str | None:
    """The base text recorded in ``path``; None when there is none.

    A damaged record raises: merging against a wrong base would silently
    drop edits.
    """
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("format") != FORMAT:
            raise ValueError(f"unknown format {record.get('format')!r}")
        data = zlib.decompress(base64.b64decode(record["zlib_base64"]))
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise ValueError("its SHA-256 does not match its content")
        return data.decode()
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        raise ConversionError(
            f"{path} is damaged ({exc}), so mat2torch cannot tell what it generated "
            "last time.",
            hint="Restore it from version control, or pass --force to regenerate "
            "model.py from scratch (your edits to it are then lost).",
        ) from exc


def refuse_foreign(out_dir: Path) -> None:
    """Refuse early (before converting) a model.py that mat2torch did not write."""
    model = out_dir / MODEL_NAME
    if model.exists() and read_sidecar(out_dir / SIDECAR_NAME) is None:
        raise ConversionError(
            f"{model} exists already and was not generated by mat2torch "
            f"(there is no {SIDECAR_NAME} beside it), so it is not overwritten.",
            hint="Pass --force to overwrite it, or choose another output folder.",
        )


# --------------------------------------------------------------------------
# Source as a tree of line ranges


@dataclass
class _Node:
    """One statement with its leading comments, as lines of its file.

    Classes and functions are containers: header lines (decorators, the def
    line), children, footer lines (trailing comments of the block); their
    ``style`` says how the children merge.
    """

    key: tuple[Any, ...]
    lines: list[str]
    first: int  # line number of lines[0] in its file
    style: str = ""  # "keyed", "init", "sequence" or "" for a leaf
    header: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _tree(text: str, what: str) -> _Node:
    """The statements of ``text`` as line ranges.

    libcst says which comment and blank lines belong to which statement (its
    leading lines, a block's footer); the statements' line numbers come from
    the ast module, which finds them some 30 times faster than libcst's
    position metadata.
    """
    import libcst as cst

    try:
        return _parsed(text)
    except (cst.ParserSyntaxError, SyntaxError) as exc:
        line = getattr(exc, "raw_line", None) or getattr(exc, "lineno", "?")
        raise ConversionError(
            f"{what} is not valid Python (line {line}), so mat2torch cannot merge "
            "into it.",
            hint="Fix it first, or pass --force to regenerate it from scratch.",
        ) from exc


@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> _Node:
    """Parsed once per text: a regeneration looks at base and ours twice."""
    import libcst as cst

    module = cst.parse_module(text)
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    end = len(lines) - len(module.footer)
    root = _Node(("module",), lines, 1, style="keyed")
    if not module.body:
        root.header = lines
        return root
    root.children = _children(module.body, tree.body, "keyed", end, lines)
    root.header = lines[: root.children[0].first - 1]
    root.footer = lines[end:]
    return root


def _starts(stmts: Any, nodes: list[ast.stmt]) -> list[tuple[int, ast.stmt]]:
    """Each statement's first line (decorators and leading lines included).

    ``nodes`` is the same body as ast sees it: a libcst line ``a = 1; b = 2``
    is two ast statements.
    """
    import libcst as cst

    out = []
    k = 0
    for stmt in stmts:
        node = nodes[k]
        k += len(stmt.body) if isinstance(stmt, cst.SimpleStatementLine) else 1
        decorators = getattr(node, "decorator_list", None)
        first = decorators[0].lineno if decorators else node.lineno
        out.append((first - len(getattr(stmt, "leading_lines", ())), node))
    return out


def _children(
    stmts: Any, nodes: list[ast.stmt], style: str, end: int, lines: list[str]
) -> list[_Node]:
    import libcst as cst

    starts = _starts(stmts, nodes)
    bounds = [a for a, _ in starts] + [end + 1]
    seen: Counter[tuple[Any, ...]] = Counter()
    out = []
    for i, stmt in enumerate(stmts):
        a, b = bounds[i], bounds[i + 1] - 1
        key = _key(stmt, style, i == 0)
        seen[key] += 1
        node = _Node((*key, seen[key]), lines[a - 1 : b], a)
        body = getattr(stmt, "body", None)
        if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)) and isinstance(
            body, cst.IndentedBlock
        ):
            if isinstance(stmt, cst.ClassDef):
                node.style = "keyed"
            elif style == "keyed" and stmt.name.value == "__init__":
                node.style = "init"
            else:
                node.style = "sequence"
            inner_end = b - len(body.footer)
            inner = starts[i][1].body  # type: ignore[attr-defined]
            node.children = _children(body.body, inner, node.style, inner_end, lines)
            node.header = lines[a - 1 : node.children[0].first - 1]
            node.footer = lines[inner_end:b]
        out.append(node)
    return out


_REGISTER = {"register_buffer", "register_parameter", "add_module", "register_module"}


def _key(stmt: cst.CSTNode, style: str, first: bool) -> tuple[Any, ...]:
    """What a statement defines: its identity across the three versions."""
    import libcst as cst

    if style == "sequence":
        return ("statement",)
    if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)):
        return ("def", stmt.name.value)
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if (
            first
            and isinstance(small, cst.Expr)
            and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
        ):
            return ("docstring",)
        targets: list[cst.BaseExpression] = []
        if isinstance(small, cst.Assign):
            targets = [t.target for t in small.targets]
        elif isinstance(small, cst.AnnAssign):
            targets = [small.target]
        if style == "init":
            names = [
                t.attr.value
                for t in targets
                if isinstance(t, cst.Attribute)
                and isinstance(t.value, cst.Name)
                and t.value.value == "self"
            ]
            if names and len(names) == len(targets):
                return ("attribute", *names)
            registered = _registered(small)
            if registered:
                return ("attribute", registered)
        else:
            if targets and all(isinstance(t, cst.Name) for t in targets):
                return ("name", *(t.value for t in targets))  # type: ignore[attr-defined]
            if isinstance(small, (cst.Import, cst.ImportFrom)):
                return ("import", cst.Module([]).code_for_node(small))
    code = cst.Module([]).code_for_node(stmt.with_changes(leading_lines=()))
    return ("code", code)


def _registered(small: cst.BaseSmallStatement) -> str | None:
    """The name in ``self.register_buffer("name", ...)`` and its kin."""
    import libcst as cst

    call = small.value if isinstance(small, cst.Expr) else None
    if (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and isinstance(call.func.value, cst.Name)
        and call.func.value.value == "self"
        and call.func.attr.value in _REGISTER
        and call.args
        and isinstance(call.args[0].value, cst.SimpleString)
    ):
        value = call.args[0].value.evaluated_value
        return value if isinstance(value, str) else None
    return None


# --------------------------------------------------------------------------
# diff3 over sequences


def diff3(
    base: list[str], ours: list[str], new: list[str]
) -> list[tuple[str, range, range, range]]:
    """Regions of a three-way comparison, each with its index ranges.

    Kinds: "same" (all three agree), "ours" or "new" (only that side
    changed), "both" (the same change on both sides), "conflict". Matches are
    found with difflib (autojunk off: ``del x`` lines repeat in forward);
    stretches of base matched in both sides are the stable points, and what
    lies between them is compared as in diff3.
    """
    stable = _stable(base, ours, new)
    regions: list[tuple[str, range, range, range]] = []
    b = o = n = 0
    for bs, os_, ns, size in [*stable, (len(base), len(ours), len(new), 0)]:
        if bs > b or os_ > o or ns > n:
            rb, ro, rn = range(b, bs), range(o, os_), range(n, ns)
            in_base, in_ours, in_new = base[b:bs], ours[o:os_], new[n:ns]
            if in_ours == in_base:
                kind = "new"
            elif in_new == in_base:
                kind = "ours"
            elif in_ours == in_new:
                kind = "both"
            else:
                kind = "conflict"
            regions.append((kind, rb, ro, rn))
        if size:
            regions.append(
                (
                    "same",
                    range(bs, bs + size),
                    range(os_, os_ + size),
                    range(ns, ns + size),
                )
            )
        b, o, n = bs + size, os_ + size, ns + size
    return regions


def _stable(
    base: list[str], ours: list[str], new: list[str]
) -> list[tuple[int, int, int, int]]:
    def blocks(other: list[str]) -> list[tuple[int, int, int]]:
        matcher = difflib.SequenceMatcher(None, base, other, autojunk=False)
        return [tuple(m) for m in matcher.get_matching_blocks() if m.size]  # type: ignore[misc]

    a, c = blocks(ours), blocks(new)
    out: list[tuple[int, int, int, int]] = []
    i = j = 0
    while i < len(a) and j < len(c):
        (ab, ao, asz), (cb, cn, csz) = a[i], c[j]
        lo, hi = max(ab, cb), min(ab + asz, cb + csz)
        if lo < hi:
            out.append((lo, ao + lo - ab, cn + lo - cb, hi - lo))
        if ab + asz < cb + csz:
            i += 1
        else:
            j += 1
    return out


# --------------------------------------------------------------------------
# The merge


@dataclass
class Conflict:
    """Both sides changed the same code: the three versions of it."""

    where: str
    ours: list[str]
    base: list[str]
    new: list[str]
    ours_line: int | None  # in model.py
    line: int = 0  # of the <<<<<<< marker in model.py.merge


@dataclass
class Merge:
    text: str  # the merged file; with conflict markers when there are conflicts
    conflicts: list[Conflict]
    changes: list[str]  # where the converter's changes went in


Piece = str | Conflict


def merge(
    base: str, ours: str, new: str, *, labels: tuple[str, str] = ("", "")
) -> Merge:
    """Carry the changes base → new into ours (see the module docstring).

    A model.py saved with CRLF line endings is merged as LF and given its
    CRLF back, so that a Windows editor does not turn every line into a change.
    """
    if "\r\n" in ours:
        done = merge(base, ours.replace("\r\n", "\n"), new, labels=labels)
        done.text = done.text.replace("\n", "\r\n")
        return done
    b, o = _tree(base, "the recorded base"), _tree(ours, labels[0] or MODEL_NAME)
    n = _tree(new, "the new model.py")
    pieces = _Merger().pair(b, o, n, "")
    return _assemble(pieces, _changed(b, n, ""), labels)


def _changed(b: _Node, n: _Node, where: str) -> list[str]:
    """Where the converter's output changed from base to new, by element."""
    if b.text == n.text:
        return []
    if not (b.style and b.style == n.style) or b.style == "sequence":
        return [where or "module"]
    prefix = f"{where}." if where else ""
    old = {c.key: c for c in b.children}
    found = [where] if b.header != n.header or b.footer != n.footer else []
    for c in n.children:
        if c.key not in old:
            found.append(prefix + _describe(c.key) + " (added)")
        else:
            found += _changed(old[c.key], c, prefix + _describe(c.key))
    keys = {c.key for c in n.children}
    found += [prefix + _describe(k) + " (removed)" for k in old if k not in keys]
    return found


class _Merger:
    def pair(self, b: _Node, o: _Node, n: _Node, where: str) -> list[Piece]:
        if n.text == b.text:
            return [o.text]
        if o.text == b.text:
            return [n.text]
        if o.text == n.text:
            return [o.text]
        if o.style and o.style == n.style == b.style:
            inside = f"{where}." if where else ""
            pieces = self.lines(b.header, o.header, n.header, where or "module", o)
            if o.style == "sequence":
                pieces += self.sequence(b.children, o.children, n.children, where)
            else:
                pieces += self.keyed(b.children, o.children, n.children, inside)
            pieces += self.lines(b.footer, o.footer, n.footer, where or "module", o)
            return pieces
        return self.lines(b.lines, o.lines, n.lines, where, o)

    def lines(
        self, b: list[str], o: list[str], n: list[str], where: str, node: _Node | None
    ) -> list[Piece]:
        """Line-level diff3 of one element; one conflict if the changes overlap."""
        if n == b or o == n:
            return ["".join(o)]
        if o == b:
            return ["".join(n)]
        out: list[str] = []
        for kind, _, ro, rn in diff3(b, o, n):
            if kind == "conflict":
                return [Conflict(where, o, b, n, node.first if node else None)]
            out += n[rn.start : rn.stop] if kind == "new" else o[ro.start : ro.stop]
        return ["".join(out)]

    def keyed(
        self, base: list[_Node], ours: list[_Node], new: list[_Node], prefix: str
    ) -> list[Piece]:
        B = {c.key: c for c in base}
        N = {c.key: c for c in new}
        out: list[tuple[tuple[Any, ...], list[Piece]]] = []
        for o in ours:
            b, n = B.get(o.key), N.get(o.key)
            where = prefix + _describe(o.key)
            if b is None and n is None:
                out.append((o.key, [o.text]))
            elif b is None:
                assert n is not None
                both = self.lines([], o.lines, n.lines, where, o)
                out.append((o.key, both))
            elif n is None:
                if o.text != b.text:
                    out.append(
                        (o.key, [Conflict(where, o.lines, b.lines, [], o.first)])
                    )
            else:
                out.append((o.key, self.pair(b, o, n, where)))
        placed = {key for key, _ in out}
        for i, n in enumerate(new):
            if n.key in placed:
                continue
            b = B.get(n.key)
            where = prefix + _describe(n.key)
            if b is not None and b.text == n.text:
                continue  # the user deleted it and the converter did not change it
            if b is not None:
                pieces: list[Piece] = [Conflict(where, [], b.lines, n.lines, None)]
            else:
                pieces = [n.text]
            at = 0
            for prev in reversed(new[:i]):
                if prev.key in placed:
                    at = next(j for j, (k, _) in enumerate(out) if k == prev.key) + 1
                    break
            out.insert(at, (n.key, pieces))
            placed.add(n.key)
        return [piece for _, pieces in out for piece in pieces]

    def sequence(
        self, base: list[_Node], ours: list[_Node], new: list[_Node], where: str
    ) -> list[Piece]:
        texts = [[c.text for c in nodes] for nodes in (base, ours, new)]
        out: list[Piece] = []
        for kind, rb, ro, rn in diff3(*texts):
            side = (
                new[rn.start : rn.stop] if kind == "new" else ours[ro.start : ro.stop]
            )
            if kind != "conflict":
                out += [c.text for c in side]
                continue
            flat = [
                [line for c in nodes for line in c.lines]
                for nodes in (base[rb.start : rb.stop], side, new[rn.start : rn.stop])
            ]
            first = side[0] if side else None
            out += self.lines(flat[0], flat[1], flat[2], where, first)
        return out


def _describe(key: tuple[Any, ...]) -> str:
    kind, *rest = key
    name = rest[0] if rest else ""
    if kind == "attribute":
        return f"self.{name}"
    if kind in ("def", "name"):
        return str(name)
    if kind == "docstring":
        return "docstring"
    first_line = str(name).strip().splitlines()[0] if str(name).strip() else ""
    return first_line[:60]


def _assemble(
    pieces: list[Piece], changes: list[str], labels: tuple[str, str]
) -> Merge:
    out: list[str] = []
    conflicts: list[Conflict] = []
    line = 1
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            line += piece.count("\n")
            continue
        piece.line = line
        conflicts.append(piece)
        block = [f"<<<<<<< {labels[0] or 'yours'}\n", *_ended(piece.ours)]
        block += ["||||||| base (generated last time)\n", *_ended(piece.base)]
        block += [
            "=======\n",
            *_ended(piece.new),
            f">>>>>>> {labels[1] or 'regenerated'}\n",
        ]
        out += block
        line += len(block)
    unique = list(dict.fromkeys(c for c in changes if c))
    return Merge("".join(out), conflicts, unique)


def _ended(lines: list[str]) -> list[str]:
    return (
        [*lines[:-1], lines[-1] if lines[-1].endswith("\n") else lines[-1] + "\n"]
        if lines
        else []
    )


# --------------------------------------------------------------------------
# What a regeneration would do


@dataclass
class Plan:
    """The files a regeneration into ``out_dir`` writes, before writing them."""

    out_dir: Path
    code: str  # model.py after regeneration
    ours: str | None  # model.py as it is on disk (None: there is none)
    new: str  # what the converter generates now: the next base
    weights: bytes | Serialized
    kind: str = "fresh"  # "fresh", "forced", "code unchanged" or "merged"
    merge: Merge | None = None
    resolving: bool = False  # merged from the user's resolution in model.py.merge
    notes: list[str] = field(default_factory=list)

    @property
    def sidecar(self) -> bytes:
        return sidecar_bytes(self.new)


def plan(out_dir: Path, result: Any, *, force: bool, source: str = "") -> Plan:
    """Merge the new generation into ``out_dir``'s model.py, without writing."""
    new: str = result.code
    model = out_dir / MODEL_NAME
    ours = _read(model) if model.is_file() else None
    if force or ours is None:
        kind = "forced" if ours is not None else "fresh"
        return Plan(out_dir, new, ours, new, result.weights, kind=kind)
    resolution = out_dir / MERGE_NAME
    resolving = resolution.is_file()
    mine = ours
    if resolving:
        mine = _read(resolution)
        _refuse_markers(resolution, mine)
        base = read_sidecar(out_dir / PENDING_NAME)
        if base is None:
            raise ConversionError(
                f"{resolution} is there but the record of its merge "
                f"({PENDING_NAME}) is missing.",
                hint=f"Delete {resolution} and convert again to merge afresh.",
            )
    else:
        base = read_sidecar(out_dir / SIDECAR_NAME)
        if base is None:
            refuse_foreign(out_dir)
            raise AssertionError("unreachable")
    result_plan = Plan(out_dir, mine, ours, new, result.weights, resolving=resolving)
    if base == new:
        result_plan.kind = "code unchanged"
        return result_plan  # only the weights changed: model.py stays as it is
    _refuse_unrelated(model, base, mine)
    labels = (
        f"{MODEL_NAME} (yours)",
        f"regenerated{' from ' + source if source else ''}",
    )
    result_plan.kind = "merged"
    result_plan.merge = merge(base, mine, new, labels=labels)
    result_plan.code = result_plan.merge.text
    if not result_plan.merge.conflicts:
        try:
            ast.parse(result_plan.code)  # a clean merge must still be Python
        except SyntaxError as exc:
            raise ConversionError(
                f"merging the regenerated code into {model} gave invalid Python "
                f"(line {exc.lineno}); nothing was written.",
                hint="Please report this with both files; --force regenerates "
                "model.py from scratch.",
            ) from exc
    return result_plan


def _read(path: Path) -> str:
    """The file's text with its own line endings (CRLF stays CRLF)."""
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError as exc:
        raise ConversionError(
            f"{path} is not UTF-8 text (byte {exc.start}), so mat2torch cannot merge "
            "into it.",
            hint="Save it as UTF-8, or pass --force to regenerate it from scratch.",
        ) from exc


def _refuse_markers(path: Path, text: str) -> None:
    lines = [
        i for i, line in enumerate(text.splitlines(), 1) if line.startswith(MARKERS)
    ]
    if lines:
        raise ConversionError(
            f"{path} still has conflict markers (line {', '.join(map(str, lines[:8]))}).",
            hint=f"Resolve them and convert again; or delete {path.name} to merge "
            "afresh, or pass --force to discard your edits.",
        )


def _refuse_unrelated(model: Path, base: str, ours: str) -> None:
    """A model.py that shares little with what mat2torch wrote is not merged into.

    The measure: at least half of the top-level names and definitions mat2torch
    wrote must still be there.
    """
    wrote = {c.key for c in _tree(base, "the recorded base").children}
    kept = wrote & {c.key for c in _tree(ours, str(model)).children}
    if len(kept) * 2 < len(wrote):
        raise ConversionError(
            f"{model} does not match the model.py that {SIDECAR_NAME} records "
            f"(only {len(kept)} of its {len(wrote)} top-level definitions are left), "
            "so it is not merged into.",
            hint="Pass --force to overwrite it, or choose another output folder.",
        )


def weights_fit(code: str, class_name: str, weights: bytes | Serialized) -> list[str]:
    """Notes on weights an edited module no longer accepts (empty when all fit)."""

    module = types.ModuleType("mat2torch_edited")
    module.__file__ = MODEL_NAME
    try:
        exec(compile(code, MODEL_NAME, "exec"), module.__dict__)
        expected = getattr(module, class_name)().state_dict()
    except Exception as exc:  # the user's code: say so, do not fail the write
        return [
            f"could not build {class_name}() from the edited {MODEL_NAME} to check "
            f"the weights against it ({type(exc).__name__}: {exc})."
        ]
    state = _load_state(weights)
    rejected = [
        f"{k} {tuple(v.shape)}"
        + (f" (module: {tuple(expected[k].shape)})" if k in expected else "")
        for k, v in state.items()
        if not _fits(v, expected.get(k))
    ]
    if len(rejected) > 12:
        rejected[12:] = [f"and {len(rejected) - 12} more"]
    unfilled = sorted(set(expected) - set(state))
    notes = []
    if rejected:
        notes.append(
            f"your edited {class_name} no longer accepts these {WEIGHTS_NAME} entries: "
            f"{', '.join(rejected)}. {WEIGHTS_NAME} holds MATLAB's weights all the same; "
            "load_model(strict=False) loads the others and skips these."
        )
    if unfilled:
        notes.append(
            f"{WEIGHTS_NAME} has nothing for {', '.join(unfilled)} of your edited "
            f"{class_name}: with load_model(strict=False) they keep their initialization."
        )
    return notes


def _fits(value: Any, own: Any) -> bool:
    """load_state_dict's rule: same shape, or one value for a 0-d entry."""
    if own is None:
        return False
    return value.shape == own.shape or (own.dim() == 0 and value.numel() == 1)


# --------------------------------------------------------------------------
# Writing, checking, showing


class MergeConflict(ConversionError):
    """The regeneration conflicts with the user's edits; model.py.merge holds both."""


def regenerate(out_dir: Path, result: Any, *, force: bool) -> tuple[Path, ...]:
    """Write model.py (merged into the user's edits), the weights and the sidecar.

    The one entry point for pipeline.convert. Notes on what happened go to
    ``result.notes``; a conflict writes model.py.merge and raises MergeConflict.
    """
    net = result.network
    the_plan = plan(out_dir, result, force=force, source=net.source)
    if the_plan.merge and the_plan.merge.conflicts:
        _write(
            out_dir,
            {MERGE_NAME: the_plan.code.encode(), PENDING_NAME: the_plan.sidecar},
        )
        raise MergeConflict(_conflict_report(the_plan), hint=_conflict_hint(the_plan))
    files: dict[str, bytes | Serialized] = {
        WEIGHTS_NAME: result.weights,
        MODEL_NAME: the_plan.code.encode(),
        SIDECAR_NAME: the_plan.sidecar,
    }
    if the_plan.ours == the_plan.code:
        del files[MODEL_NAME]  # byte for byte as the user has it: not even touched
    for name in (WEIGHTS_NAME, SIDECAR_NAME):  # nor are files that would not change
        path = out_dir / name
        if path.is_file() and path.stat().st_size == len(files[name]):
            if _same(path, files[name]):
                del files[name]
    if the_plan.code != the_plan.new:
        result.notes += weights_fit(the_plan.code, net.class_name, result.weights)
    result.notes += _summary(the_plan)
    _write(out_dir, files, remove=(MERGE_NAME, PENDING_NAME))
    return tuple(out_dir / name for name in (MODEL_NAME, WEIGHTS_NAME, SIDECAR_NAME))


def _summary(p: Plan) -> list[str]:
    done = (
        f"your resolution in {MERGE_NAME} is now {MODEL_NAME}; " if p.resolving else ""
    )
    if p.kind == "code unchanged":
        return [
            f"{done}the network's code did not change: {MODEL_NAME} is left as you "
            f"have it and only {WEIGHTS_NAME} was rewritten."
        ]
    if p.kind == "merged" and p.merge is not None:
        where = ", ".join(p.merge.changes) or "nothing to change"
        return [f"{done}merged the regenerated code into your {MODEL_NAME} ({where})."]
    return []


def _conflict_report(p: Plan) -> str:
    assert p.merge is not None
    model, merged = p.out_dir / MODEL_NAME, p.out_dir / MERGE_NAME
    n = len(p.merge.conflicts)
    lines = [
        f"CONFLICT (content): merge conflict in {model}: {n} place{'s' if n > 1 else ''} "
        "that both you and the converter changed. model.py was not written; the merged "
        f"text with conflict markers is in {merged}."
    ]
    for c in p.merge.conflicts:
        at = f" (yours: {model}:{c.ours_line})" if c.ours_line else ""
        lines.append(f"{merged}:{c.line}: {c.where or 'module'}{at}")
        for label, side in (("yours", c.ours), ("regenerated", c.new)):
            lines.append(f"  {label}:")
            lines += [f"    {line.rstrip()}" for line in side if line.strip()] or [
                "    (deleted)"
            ]
    return "\n".join(lines)


def _conflict_hint(p: Plan) -> str:
    merged = p.out_dir / MERGE_NAME
    return (
        f"Edit {merged} until no <<<<<<< ||||||| ======= >>>>>>> markers are left, then "
        "run the same mat2torch convert command again: it moves your resolution into "
        f"model.py. Delete {merged.name} to give up the merge; --force discards your edits."
    )


def preview(
    out_dir: Path, result: Any, *, force: bool, diff: bool
) -> tuple[bool, str, list[str]]:
    """For --check and --diff: (up to date, unified diff text, one reason per file).

    A folder that cannot be merged into raises ConversionError, as convert does.
    """
    p = plan(out_dir, result, force=force, source=result.network.source)
    reasons: list[str] = []
    model = out_dir / MODEL_NAME
    if p.merge and p.merge.conflicts:
        reasons.append(
            f"{model}: regenerating would conflict with your edits in "
            f"{len(p.merge.conflicts)} place(s) ({', '.join(c.where or 'module' for c in p.merge.conflicts)})."
        )
    elif p.ours is None:
        reasons.append(f"{model}: would be created.")
    elif p.code != p.ours:
        where = ", ".join(p.merge.changes) if p.merge else "regenerated from scratch"
        reasons.append(f"{model}: would change ({where}).")
    weights_path = out_dir / WEIGHTS_NAME
    old = weights_path if weights_path.is_file() else None
    if old is None:
        reasons.append(f"{weights_path}: would be created.")
    elif not _same(old, p.weights):
        reasons.append(
            f"{weights_path}: would change ({_weights_summary(old, p.weights, short=True)})."
        )
    text = ""
    if diff:
        text = "".join(
            difflib.unified_diff(
                (p.ours or "").splitlines(keepends=True),
                p.code.splitlines(keepends=True),
                f"a/{model}" if p.ours is not None else "/dev/null",
                f"b/{model}",
            )
        )
        if old is not None and not _same(old, p.weights):
            text += _weights_summary(old, p.weights, short=False)
    return not reasons, text, reasons


def _same(path: Path, data: bytes | Serialized) -> bool:
    """Whether the file at ``path`` holds ``data``, without reading it whole
    into memory next to a big ``data``."""
    if isinstance(data, Serialized):
        return data.same_as_file(path)
    return path.stat().st_size == len(data) and path.read_bytes() == data


def _load_state(data: bytes | Serialized | Path) -> dict[str, Any]:
    import torch

    if isinstance(data, Serialized):
        source: Any = data.reader()
    elif isinstance(data, Path):
        source = data
    else:
        source = io.BytesIO(data)
    return torch.load(source, map_location="cpu", weights_only=True)


def _weights_summary(old: Path | None, new: bytes | Serialized, *, short: bool) -> str:
    """Changed tensors by key with their largest absolute change."""
    import torch

    a, b = (_load_state(old) if old is not None else {}), _load_state(new)
    rows = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            rows.append((key, f"added {tuple(b[key].shape)}"))
        elif key not in b:
            rows.append((key, "removed"))
        elif a[key].shape != b[key].shape:
            rows.append((key, f"shape {tuple(a[key].shape)} -> {tuple(b[key].shape)}"))
        elif not torch.equal(a[key], b[key]):
            change = (b[key].double() - a[key].double()).abs().max().item()
            rows.append((key, f"max abs change {change:.4g}"))
    if short:
        return f"{len(rows)} of {len(b)} tensors differ"
    body = "".join(f"  {key}: {what}\n" for key, what in rows)
    return f"{WEIGHTS_NAME}: {len(rows)} of {len(b)} tensors change\n{body}"


def _write(
    out_dir: Path,
    files: dict[str, bytes | Serialized],
    remove: tuple[str, ...] = (),
) -> None:
    """Stage every file in ``out_dir``, then link them into place, then remove ``remove``.

    Staged files are anonymous (O_TMPFILE) where the system has them, so a
    process killed before the renames leaves nothing behind; elsewhere they
    are dot-files that a later run overwrites. The renames themselves take
    microseconds; a run killed among them is completed by running it again.
    """
    staged: dict[str, tuple[int, str | None]] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            staged[name] = _stage(out_dir, name, data)
        pause = os.environ.get(PAUSE_ENV)
        if pause:
            print(
                "mat2torch: staged, pausing before commit", file=sys.stderr, flush=True
            )
            time.sleep(float(pause))
        for name, (fd, tmp) in staged.items():
            if tmp is None:  # name the anonymous file (linkat, following /proc's link)
                tmp = f".{name}.{uuid.uuid4().hex}"
                dir_fd = os.open(out_dir, os.O_RDONLY)
                try:
                    os.link(
                        f"/proc/self/fd/{fd}",
                        tmp,
                        dst_dir_fd=dir_fd,
                        follow_symlinks=True,
                    )
                    tmp = str(out_dir / tmp)
                except OSError:  # no usable /proc: write it again under a name
                    os.close(fd)
                    fd, tmp = _stage(out_dir, name, files[name], anonymous=False)
                finally:
                    os.close(dir_fd)
                staged[name] = (fd, tmp)
            os.replace(tmp, out_dir / name)
        for name in remove:
            (out_dir / name).unlink(missing_ok=True)
        _fsync_dir(out_dir)
    except OSError as exc:
        for _, tmp in staged.values():
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        raise ConversionError(
            f"could not write into {out_dir}: {exc.strerror or exc}.",
            hint="Check that the folder is writable and the disk has space.",
        ) from exc
    finally:
        for fd, _ in staged.values():
            try:
                os.close(fd)
            except OSError:
                pass


def _stage(
    out_dir: Path, name: str, data: bytes | Serialized, anonymous: bool = True
) -> tuple[int, str | None]:
    """An open, complete, synced file holding ``data``: (fd, its name or None)."""
    tmp: str | None = None
    fd = -1
    if anonymous and isinstance(data, Serialized) and Path("/proc/self/fd").is_dir():
        fd = data.adopt(out_dir)  # already on this filesystem: linked, not copied
        if fd >= 0:
            os.fsync(fd)
            return fd, None
    if anonymous and hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir():
        try:
            fd = os.open(out_dir, os.O_TMPFILE | os.O_RDWR, 0o666)  # umask applies
        except OSError:
            fd = -1
    if fd < 0:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what users expect
    if isinstance(data, Serialized):
        data.write_to(fd)
    else:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    os.fsync(fd)
    return fd, tmp


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
