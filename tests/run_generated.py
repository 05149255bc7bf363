"""Run a generated model the way a user would: torch only.

Usage: python -I run_generated.py MODEL_DIR INPUTS.npz OUTPUT.npz

Imports of the converter and its dependencies are blocked before the model
is imported, so a generated file that needs any of them fails here. Saves the
forward output(s) and model.activations() (outputs of MATLAB layers by name).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import sys
from pathlib import Path

BLOCKED = ("codegen", "matio", "jinja2", "black", "libcst", "scipy", "pandas")


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not available to generated code")
        return None


def main() -> None:
    model_dir, inputs_path, out_path = (Path(a) for a in sys.argv[1:4])
    sys.meta_path.insert(0, _Block())
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            continue
        raise SystemExit(f"could not block {name}")

    import numpy as np
    import torch

    spec = importlib.util.spec_from_file_location("model", model_dir / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model()  # load_state_dict is strict by default

    data = np.load(inputs_path)
    inputs = [torch.from_numpy(data[f"arg{i}"]) for i in range(len(data.files))]
    with torch.no_grad():
        result = model(*inputs)
    outputs = result if isinstance(result, tuple) else (result,)
    saved = {f"output{i}": o.numpy() for i, o in enumerate(outputs)}
    activations = model.activations(*inputs)  # by MATLAB layer name
    names = sorted(activations)
    saved["layer_names"] = np.array(json.dumps(names))
    for i, name in enumerate(names):
        saved[f"layer{i}"] = activations[name].numpy()
    np.savez(out_path, **saved)


if __name__ == "__main__":
    main()
