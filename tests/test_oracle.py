"""MATLAB's own answers: the converted fault-detection BiLSTM reproduces them.

fixtures/oracles/fault-detection-bilstm holds 176 validation sequences and the
labels MATLAB's classify() gave them with the network in fixtures/real.
"""

from __future__ import annotations

import torch
from conftest import FIXTURES, import_generated, require_fixtures

from codegen.matfile import load_variables
from codegen.pipeline import convert

NETWORK = "matlab-deep-learning__Fault-Detection-Using-Deep-Learning-Classification__SavedData__TrainedModel@e4d7e6f.mat"


def test_bilstm_reproduces_matlab_classify(tmp_path) -> None:
    require_fixtures()
    oracle = FIXTURES / "oracles" / "fault-detection-bilstm"
    features = load_variables(
        oracle / "ValidationFeatures.mat", ["validationFeatures"]
    )["validationFeatures"]
    labels = load_variables(oracle / "ValidationResults.mat", ["validationResults"])[
        "validationResults"
    ]
    assert len(features) == len(labels) == 176

    convert(FIXTURES / "real" / NETWORK, tmp_path / "out", var="airCompNet")
    module = import_generated(tmp_path / "out")
    model = module.load_model()
    predicted = []
    with torch.no_grad():
        for sequence in features:  # 10×T, one at a time as MATLAB's classify
            probabilities = model(module.from_matlab(sequence))
            predicted.append(module.CLASSES[int(probabilities.argmax(dim=1))])
    agree = sum(p == m for p, m in zip(predicted, labels, strict=True))
    assert agree == 176, f"{agree}/176 labels agree with MATLAB"
