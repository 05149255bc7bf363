"""Regenerating into a folder with an edited model.py: merge, conflicts, --check/--diff.

Networks come from tests/resnets.py (a 44-layer bottleneck ResNet as MATLAB
saves it) and from a real file rewritten with the project's MAT writer;
numbers are compared with the NumPy reference of MATLAB semantics.
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FIXTURES, assert_parity, import_generated, require_fixtures
from resnets import resnet

from codegen import cli
from codegen import reference as R
from codegen.matfile import MatObject, load_variables, write_mat
from codegen.pipeline import convert
from codegen.regenerate import (
    MERGE_NAME,
    PAUSE_ENV,
    SIDECAR_NAME,
    _write,
    diff3,
    merge,
    read_sidecar,
)
from codegen.weights import Serialized, Weights

INSERT = ("insert", "extra_drop")


def mat2torch(
    *args: Any, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def cli_run(capsys: Any, *args: Any) -> tuple[int, str, str]:
    """The command line in-process (a subprocess costs seconds of imports)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def save(tmp_path: Path, variables: dict[str, Any]) -> Path:
    """Always the same file name: the docstring names the source file."""
    path = tmp_path / "net.mat"
    write_mat(path, variables)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def reference_output(record: Any, x: np.ndarray) -> np.ndarray:
    """The network's output for MATLAB-layout input x, from the NumPy reference."""
    layers, pairs = R.matlab_graph(record)
    if pairs is None:
        return R.to_torch(R.run_layers(layers, x)[-1])
    values = R.run_graph(layers, pairs, {layers[0].get("Name"): x})
    return R.to_torch(values["fc_softmax"][0])


def assert_matches_reference(
    out: Path, record: Any, size: tuple[int, ...], strict: bool = True, rtol=1e-5
) -> None:
    x = np.random.default_rng(0).standard_normal((*size, 2)).astype(np.float32)
    model = import_generated(out).load_model(strict=strict)
    with torch.no_grad():
        y = model(torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))))
    assert_parity(y.numpy(), reference_output(record, x), str(out), rtol=rtol)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def user_edits(code: str) -> str:
    """The hand edits of the issue: none changes the numbers in eval mode."""
    code = edit(
        code,
        "        self.fc = ",
        "        # the classifier head\n        self.fc = ",
    )
    code = edit(code, "self.drop = nn.Dropout()", "self.drop = nn.Dropout(0.2)")
    code = edit(
        code,
        "            x = (x - self.input_mean) / self.input_std\n",
        "            x = (x - self.input_mean) / self.input_std\n"
        "        assert x.dim() == 4, x.shape\n",
    )
    for old, new in [
        ("        res2b_relu = x\n", "        identity = x\n"),
        ("self.res3a_branch1(res2b_relu)", "self.res3a_branch1(identity)"),
        ("        del res2b_relu\n", "        del identity\n"),
    ]:
        code = edit(code, old, new)
    return edit(
        code,
        "    def activations(",
        "    def embed(self, x: torch.Tensor) -> torch.Tensor:\n"
        '        """Pooled features before the head."""\n'
        "        return self.activations(x, layers=['avg_pool'])['avg_pool']\n\n"
        "    def activations(",
    )


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    convert(save(tmp_path, resnet()), out)
    return out


# ---- 1. weights only -------------------------------------------------------------


def test_weights_only_change_keeps_edited_model_byte_for_byte(
    tmp_path: Path, generated: Path
) -> None:
    mine = user_edits((generated / "model.py").read_text())
    (generated / "model.py").write_text(mine)
    before = snapshot(generated)
    retrained = resnet(seed=1)
    result = convert(save(tmp_path, retrained), generated)
    after = snapshot(generated)
    assert after["model.py"] == mine.encode()
    assert after[SIDECAR_NAME] == before[SIDECAR_NAME]
    assert after["weights.pt"] != before["weights.pt"]
    assert any("only weights.pt was rewritten" in n for n in result.notes)
    assert_matches_reference(generated, retrained["net"], (16, 16, 3))


def test_weights_only_on_a_real_file(tmp_path: Path) -> None:
    """A real network, edited, regenerated from its retrained copy."""
    require_fixtures()
    real = FIXTURES / "real" / "brkgyln__VehicleDetection__cnn.mat"
    record = load_variables(real, ["net"])["net"]
    out = tmp_path / "out"
    convert(save(tmp_path, {"net": record}), out)
    mine = (
        (out / "model.py")
        .read_text()
        .replace("    def activations(", "    # my note\n    def activations(")
    )
    (out / "model.py").write_text(mine)
    retrained = _with_layer(record, "fc", Weights=_scaled(record, "fc", 1.5))
    convert(save(tmp_path, {"net": retrained}), out)
    assert (out / "model.py").read_text() == mine
    assert_matches_reference(out, retrained, (40, 40, 3), rtol=1e-4)


# ---- 2. architecture change with unrelated edits ---------------------------------


def test_architecture_change_merges_into_user_edits(
    tmp_path: Path, generated: Path
) -> None:
    mine = user_edits((generated / "model.py").read_text())
    (generated / "model.py").write_text(mine)
    changed = resnet(edit=INSERT)
    result = convert(save(tmp_path, changed), generated)
    merged = (generated / "model.py").read_text()
    for line in [  # the user's edits
        "        # the classifier head\n",
        "self.drop = nn.Dropout(0.2)",
        "        assert x.dim() == 4, x.shape\n",
        "        identity = x\n        x = self.res3a_branch2a(x)\n",
        "    def embed(self, x: torch.Tensor) -> torch.Tensor:\n",
        # the converter's
        "        self.res2a_branch2a_relu = nn.ReLU(inplace=True)\n"
        "        self.extra_drop = nn.Dropout(0.25)\n",
        "        x = self.res2a_branch2a_relu(x)\n        x = self.extra_drop(x)\n",
    ]:
        assert line in merged, line
    # nothing else moved: the merged file is ours plus exactly the converter's lines
    ours_lines = set(mine.splitlines())
    added = [line for line in merged.splitlines() if line not in ours_lines]
    assert len(added) == 2 and all("extra_drop" in line for line in added), added
    assert any("merged the regenerated code" in n for n in result.notes)
    assert_matches_reference(generated, changed["net"], (16, 16, 3))
    assert (
        read_sidecar(generated / SIDECAR_NAME)
        == convert(save(tmp_path, changed), None).code
    )


def test_real_file_hyper_parameter_change(tmp_path: Path) -> None:
    """A real network with one layer's hyper-parameter changed in a rewritten copy."""
    require_fixtures()
    real = FIXTURES / "real" / "brkgyln__VehicleDetection__cnn.mat"
    record = load_variables(real, ["net"])["net"]
    out = tmp_path / "out"
    convert(save(tmp_path, {"net": record}), out)
    before = (out / "model.py").read_text()
    mine = before.replace("    def forward(", "    # hand-checked\n    def forward(")
    (out / "model.py").write_text(mine)
    changed = _with_layer(record, "crossnorm_3", Alpha=np.array([[2e-4]]))
    convert(save(tmp_path, {"net": changed}), out)
    merged = (out / "model.py").read_text()
    diff = [
        line
        for line in difflib.unified_diff(mine.splitlines(), merged.splitlines(), n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert len(diff) == 2 and all("crossnorm_3" in line for line in diff), diff
    assert "0.0002" in diff[1] and "# hand-checked" in merged
    assert_matches_reference(out, changed, (40, 40, 3), rtol=1e-4)


def _with_layer(record: MatObject, name: str, **fields: Any) -> MatObject:
    layers = [
        (
            type(la)(la.classname, {**la.fields, **fields}, la.saveobj)
            if la.get("Name") == name
            else la
        )
        for la in record.get("Layers")
    ]
    return type(record)(
        record.classname, {**record.fields, "Layers": layers}, record.saveobj
    )


def _scaled(record: MatObject, name: str, factor: float) -> dict[str, Any]:
    layer = next(la for la in record.get("Layers") if la.get("Name") == name)
    weights = layer.get("Weights")
    return {**weights, "Value": np.asarray(weights["Value"]) * np.float32(factor)}


# ---- conflicts -------------------------------------------------------------------


def test_conflict_writes_only_model_py_merge(
    tmp_path: Path, generated: Path, capsys: Any
) -> None:
    mine = (generated / "model.py").read_text()
    mine = edit(mine, "self.drop = nn.Dropout()", "self.drop = nn.Dropout(0.1)")
    (generated / "model.py").write_text(mine)
    before = snapshot(generated)
    mat = save(tmp_path, resnet(edit=("hyper", 0.3)))
    proc = mat2torch("convert", mat, "-o", generated)
    assert proc.returncode == 1, proc.stderr
    assert "CONFLICT" in proc.stderr and "Traceback" not in proc.stderr
    assert re.search(r"model\.py\.merge:\d+: Net\.__init__\.self\.drop", proc.stderr)
    assert "nn.Dropout(0.1)" in proc.stderr and "nn.Dropout(0.3)" in proc.stderr
    after = snapshot(generated)
    assert {k: v for k, v in after.items() if k in before} == before
    conflicted = (generated / MERGE_NAME).read_text()
    block = re.search(
        r"<<<<<<< .*?\n(.*?)\|\|\|\|\|\|\| .*?\n(.*?)=======\n(.*?)>>>>>>> ",
        conflicted,
        re.S,
    )
    assert block, conflicted
    assert "nn.Dropout(0.1)" in block[1] and "nn.Dropout()" in block[2]
    assert "nn.Dropout(0.3)" in block[3]
    # still conflicted: refused again, nothing written
    code, _, err = cli_run(capsys, "convert", mat, "-o", generated)
    assert code == 1 and "conflict markers" in err
    # the user resolves in model.py.merge, keeping their side; the next run takes it
    resolved = re.sub(
        r"<<<<<<< [^\n]*\n(.*?)\|{7} [^\n]*\n.*?=======\n.*?>>>>>>> [^\n]*\n",
        r"\1",
        conflicted,
        flags=re.S,
    )
    assert "<<<<<<<" not in resolved and "nn.Dropout(0.1)" in resolved
    (generated / MERGE_NAME).write_text(resolved)
    code, _, err = cli_run(capsys, "convert", mat, "-o", generated)
    assert code == 0, err
    assert (generated / "model.py").read_text() == resolved
    assert not (generated / MERGE_NAME).exists()
    assert sorted(p.name for p in generated.iterdir()) == [
        SIDECAR_NAME,
        "model.py",
        "weights.pt",
    ]
    # and it stays resolved: the same .mat again changes nothing
    assert cli_run(capsys, "convert", mat, "-o", generated, "--check")[0] == 0


def test_foreign_or_damaged_model_is_not_touched(
    tmp_path: Path, generated: Path, capsys: Any
) -> None:
    mat = save(tmp_path, resnet(edit=INSERT))
    (generated / SIDECAR_NAME).write_text(
        (generated / SIDECAR_NAME).read_text().replace('"sha256": "', '"sha256": "0')
    )
    before = snapshot(generated)
    code, _, err = cli_run(capsys, "convert", mat, "-o", generated)
    assert code == 1 and "damaged" in err and "--force" in err
    assert snapshot(generated) == before
    convert(mat, generated, force=True)
    (generated / "model.py").write_text(
        "import torch\n\n\nclass Mine(torch.nn.Module):\n    pass\n"
    )
    before = snapshot(generated)
    code, _, err = cli_run(capsys, "convert", save(tmp_path, resnet()), "-o", generated)
    assert code == 1 and "does not match" in err
    assert snapshot(generated) == before


# ---- --check and --diff ----------------------------------------------------------


def test_check_and_diff(tmp_path: Path, generated: Path, capsys: Any) -> None:
    mat = save(tmp_path, resnet())
    code, out, err = cli_run(capsys, "convert", mat, "-o", generated, "--check")
    assert code == 0 and "is up to date" in out, err
    base, retrained = resnet(), resnet(seed=1, edit=INSERT)
    mat = save(tmp_path, retrained)
    before = snapshot(generated)
    proc = subprocess.run(  # as in CI: no terminal, no input
        [
            sys.executable,
            "-m",
            "codegen",
            "convert",
            str(mat),
            "-o",
            str(generated),
            "--check",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    reasons = proc.stderr.strip().splitlines()
    assert len(reasons) == 2, reasons
    assert "model.py: would change" in reasons[0] and "extra_drop" in reasons[0]
    assert "weights.pt: would change" in reasons[1]
    code, diff, _ = cli_run(capsys, "convert", mat, "-o", generated, "--diff")
    assert code == 0
    assert snapshot(generated) == before  # neither writes anything
    assert "+        self.extra_drop = nn.Dropout(0.25)\n" in diff
    assert diff.startswith("--- a/")
    # the weights summary, against the MATLAB weights themselves
    fc = re.search(r"^  fc\.weight: max abs change (\S+)$", diff, re.M)
    old_w, new_w = (
        next(la for la in r["net"].get("Layers") if la.get("Name") == "fc").get(
            "Weights"
        )["Value"]
        for r in (base, retrained)
    )
    assert fc and float(fc[1]) == pytest.approx(np.abs(new_w - old_w).max(), rel=1e-3)
    assert re.search(r"^  extra_drop", diff, re.M) is None  # a dropout has no weights
    assert cli_run(capsys, "convert", mat, "-o", generated)[0] == 0
    code, _, err = cli_run(capsys, "convert", mat, "-o", generated, "--check")
    assert code == 0, err
    code, _, err = cli_run(
        capsys, "convert", mat, "-o", tmp_path / "nothing", "--check"
    )
    assert code == 1 and "would be created" in err
    assert not (tmp_path / "nothing").exists()


# ---- weights that no longer fit --------------------------------------------------


def test_edited_head_is_told_which_weights_it_rejects(
    tmp_path: Path, generated: Path
) -> None:
    mine = edit(
        (generated / "model.py").read_text(), "nn.Linear(32, 5)", "nn.Linear(32, 10)"
    )
    (generated / "model.py").write_text(mine)
    proc = mat2torch("convert", save(tmp_path, resnet(seed=2)), "-o", generated)
    assert proc.returncode == 0, proc.stderr
    note = next(
        line for line in proc.stdout.splitlines() if "no longer accepts" in line
    )
    assert "fc.weight (5, 32) (module: (10, 32))" in note and "fc.bias (5,)" in note
    assert "bn" not in note and "strict=False" in note
    module = import_generated(generated)
    with pytest.raises(RuntimeError, match="size mismatch"):
        module.load_model()
    model = module.load_model(strict=False)
    state = torch.load(generated / "weights.pt", weights_only=True)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert model.fc.weight.shape == (10, 32)


# ---- stubs and hand-written classes ----------------------------------------------


def test_hand_written_class_survives(tmp_path: Path, generated: Path) -> None:
    stub = (
        "\n\nclass Scale(nn.Module):\n"
        '    """Filled in by hand."""\n\n'
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return x * 1.0\n"
    )
    mine = edit(
        (generated / "model.py").read_text(), "\n\nclass Net(", stub + "\n\nclass Net("
    )
    mine = edit(
        mine,
        "        self.drop = nn.Dropout()\n",
        "        self.drop = nn.Dropout()\n        self.scale = Scale()\n",
    )
    mine = edit(
        mine,
        "        x = self.drop(x)\n",
        "        x = self.drop(x)\n        x = self.scale(x)\n",
    )
    (generated / "model.py").write_text(mine)
    changed = resnet(edit=("delete", "res2a_branch2b_relu"))
    convert(save(tmp_path, changed), generated)
    merged = (generated / "model.py").read_text()
    assert (
        stub in merged
        and "self.scale = Scale()" in merged
        and "x = self.scale(x)" in merged
    )
    assert "res2a_branch2b_relu" not in merged
    assert_matches_reference(generated, changed["net"], (16, 16, 3))


# ---- determinism and idempotence -------------------------------------------------


def test_merge_is_deterministic_and_idempotent(tmp_path: Path, generated: Path) -> None:
    base = (generated / "model.py").read_text()
    mine = user_edits(base)
    (generated / "model.py").write_text(mine)
    mat = save(tmp_path, resnet(edit=INSERT))
    new = convert(mat, None).code
    first = merge(base, mine, new)
    assert merge(base, mine, new).text == first.text and not first.conflicts
    convert(mat, generated)
    once = snapshot(generated)
    assert once["model.py"] == first.text.encode()
    stamps = {p.name: p.stat().st_mtime_ns for p in generated.iterdir()}
    convert(mat, generated)
    assert snapshot(generated) == once
    assert {p.name: p.stat().st_mtime_ns for p in generated.iterdir()} == stamps
    # merging a result again changes nothing: new is already in it
    assert merge(new, first.text, new).text == first.text
    assert merge(base, first.text, new).text == first.text


# ---- 4. small, stable diffs ------------------------------------------------------


def forward_lines(code: str) -> list[str]:
    body = code.split("    def forward(", 1)[1].split("\n    def ", 1)[0]
    return body.splitlines()[1:]


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (("hyper", 0.3), {"drop"}),
        (INSERT, {"extra_drop"}),
        (("delete", "res2a_branch2b_relu"), {"res2a_branch2b_relu"}),
        (("rename", "res2b_branch2b", "res2b_mid"), {"res2b_branch2b", "res2b_mid"}),
    ],
    ids=["hyper-parameter", "insert", "delete", "rename"],
)
def test_one_layer_change_touches_only_its_lines(
    tmp_path: Path, change: tuple, names: set[str]
) -> None:
    before = convert(save(tmp_path, resnet()), None)
    assert len(before.network.nodes) >= 20
    after = convert(save(tmp_path, resnet(edit=change)), None).code
    mention = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")

    def allowed(code: str) -> set[str]:
        """Forward statements next to one about the changed layer(s)."""
        lines = forward_lines(code)
        hits = [i for i, line in enumerate(lines) if mention.search(line)]
        return {lines[j] for i in hits for j in (i - 1, i + 1) if 0 <= j < len(lines)}

    near = allowed(before.code) | allowed(after)
    changed = [
        line[1:]
        for line in difflib.unified_diff(
            before.code.splitlines(), after.splitlines(), n=0
        )
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed
    stray = [line for line in changed if not mention.search(line) and line not in near]
    assert not stray, stray


# ---- 5. atomic writes ------------------------------------------------------------


@pytest.mark.skipif(
    not hasattr(os, "O_TMPFILE"), reason="anonymous temporary files are Linux-only"
)
def test_kill_9_while_writing_leaves_the_folder_as_it_was(
    tmp_path: Path, generated: Path
) -> None:
    (generated / "model.py").write_text(
        user_edits((generated / "model.py").read_text())
    )
    before = snapshot(generated)
    mat = save(tmp_path, resnet(seed=3, edit=INSERT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen", "convert", str(mat), "-o", str(generated)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, PAUSE_ENV: "60"},
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "pausing before commit" in line, line + proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(generated) == before
    # the same run, not killed, does change all three files
    proc2 = mat2torch(
        "convert", mat, "-o", generated, env={**os.environ, PAUSE_ENV: "0.01"}
    )
    assert proc2.returncode == 0, proc2.stderr
    after = snapshot(generated)
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before)


@pytest.mark.skipif(
    not hasattr(os, "O_TMPFILE"), reason="anonymous temporary files are Linux-only"
)
@pytest.mark.parametrize("exists", [True, False])
def test_weights_are_linked_into_place_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    """The archive is serialized on the output's filesystem and linked there (a
    553 MB copy took 1 s), with the mode a new file gets, whether or not the
    folder exists yet; its bytes are the conversion's."""
    out = tmp_path / "out" / "deeper"
    if exists:
        out.mkdir(parents=True)

    def no_copy(self: Serialized, fd: int) -> None:
        raise AssertionError("the archive was copied")

    monkeypatch.setattr(Serialized, "write_to", no_copy)
    umask = os.umask(0o027)
    try:
        result = convert(save(tmp_path, resnet()), out)
    finally:
        os.umask(umask)
    weights = out / "weights.pt"
    assert result.weights == weights.read_bytes()
    assert (
        weights.stat().st_mode & 0o777
        == 0o640
        == (out / "model.py").stat().st_mode & 0o777
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.py", "weights.pt", SIDECAR_NAME]
    )


def test_archive_elsewhere_is_copied(tmp_path: Path) -> None:
    """Serialized where temporary files go (no output folder, or its
    filesystem failing): the write copies it, byte for byte."""
    state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    data = bytes(Weights(state))
    serialized = Weights(state).serialize()
    assert serialized.adopt(tmp_path) == -1
    _write(tmp_path, {"weights.pt": serialized})
    assert (tmp_path / "weights.pt").read_bytes() == data


def test_full_output_filesystem_serializes_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while serializing next to the output (a full disk) is not a
    traceback: the archive goes where temporary files go instead."""
    state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
    data = bytes(Weights(state))
    write = Weights.write
    calls: list[int] = []

    def full_once(self: Weights, fh: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        write(self, fh)

    monkeypatch.setattr(Weights, "write", full_once)
    serialized = Weights(state).serialize(tmp_path)
    assert len(calls) == 2 and serialized == data
    assert not serialized.linkable


# ---- the diff3 underneath --------------------------------------------------------


def test_diff3_regions() -> None:
    """Hand-worked cases: separate changes merge, the same spot conflicts."""
    base, ours, new = list("abcdefg"), list("aXcdefg"), list("abcdeYg")
    kinds = [
        (k, "".join(base[b.start : b.stop])) for k, b, _, _ in diff3(base, ours, new)
    ]
    assert kinds == [
        ("same", "a"),
        ("ours", "b"),
        ("same", "cde"),
        ("new", "f"),
        ("same", "g"),
    ]
    regions = diff3(list("abc"), list("aXc"), list("aYc"))
    assert [k for k, *_ in regions] == ["same", "conflict", "same"]
    regions = diff3(list("abc"), list("aXc"), list("aXc"))
    assert [k for k, *_ in regions] == ["same", "both", "same"]
    # an insertion by one side next to an unchanged stretch is not a conflict
    regions = diff3(list("abc"), list("abQc"), list("abc"))
    assert [(k, o.start, o.stop) for k, _, o, _ in regions if k != "same"] == [
        ("ours", 2, 3)
    ]


def test_crlf_model_keeps_its_line_endings() -> None:
    base = (
        "import torch\n\n\nclass A:\n    def __init__(self):\n        self.a = 1\n"
        "        self.b = 2\n\n    def forward(self, x):\n        x = x + 1\n"
        "        return x\n"
    )
    ours = base.replace("return x", "x = x * 1\n        return x").replace("\n", "\r\n")
    merged = merge(base, ours, base.replace("self.b = 2", "self.b = 3"))
    assert not merged.conflicts
    assert merged.text == ours.replace("self.b = 2", "self.b = 3")


# ---- the project's example networks ----------------------------------------------


@pytest.mark.parametrize(
    "name", ["residual_dag", "two_input_two_output", "lstm_classifier"]
)
def test_examples_regenerate_onto_edits_unchanged(tmp_path: Path, name: str) -> None:
    """Same .mat again onto an edited model.py: nothing to do, nothing touched."""
    from codegen.regenerate import preview

    mat = Path(__file__).resolve().parent.parent / "examples" / f"{name}.mat"
    out = tmp_path / "out"
    convert(mat, out)
    mine = (out / "model.py").read_text()
    mine = mine.replace("    def activations(", "    # mine\n    def activations(", 1)
    mine += "\n\ndef helper() -> int:\n    return 1\n"
    (out / "model.py").write_text(mine)
    before = snapshot(out)
    result = convert(mat, None)
    assert preview(out, result, force=False, diff=False)[0]
    convert(mat, out)
    assert snapshot(out) == before


def test_example_hyper_parameter_change_merges(tmp_path: Path) -> None:
    """legacy_alexnet_2017 with its dropout's probability changed, onto edits."""
    from examples import legacy_alexnet_2017

    variables = legacy_alexnet_2017()
    out = tmp_path / "out"
    convert(save(tmp_path, variables), out)
    mine = edit(
        (out / "model.py").read_text(),
        "        x = self.drop6(x)\n",
        "        x = self.drop6(x)  # regularize\n",
    )
    (out / "model.py").write_text(mine)
    changed = _with_layer(variables["net"], "drop6", Probability=np.array([[0.3]]))
    convert(save(tmp_path, {"net": changed}), out)
    merged = (out / "model.py").read_text()
    assert merged == mine.replace(
        "self.drop6 = nn.Dropout()", "self.drop6 = nn.Dropout(0.3)"
    )
    assert_matches_reference(out, changed, (19, 17, 3))
