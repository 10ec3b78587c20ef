"""``crossrank calibrate``: fit on one split's run, save beside the model, report held-out ECE."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest

from crossrank.cli.main import main
from crossrank.data.trec import write_run
from crossrank.evaluation.calibration import PlattScaling, TemperatureScaling, load_calibrator


def _split(root: Path, split: str, seed: int, bias: float = 4.0, spread: float = 1.5) -> Path:
    """Qrels for 40 queries (one relevant doc each) and a run of biased logits: the model's
    sigmoid is far too high, as with a listwise-trained reranker."""
    rng = np.random.default_rng(seed)
    qrels, run = [], {}
    for q in range(40):
        qrels.append(f"{split}{q}\td{q}_0\t1")
        scores = rng.normal(0.0, spread, size=20) + bias
        scores[0] += 3.0
        run[f"{split}{q}"] = {f"d{q}_{i}": float(s) for i, s in enumerate(scores)}
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n"
    )
    write_run(root / f"{split}.run", run)
    return root / f"{split}.run"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    _split(tmp_path, "train", seed=0)
    _split(tmp_path, "dev", seed=1)
    (tmp_path / "model").mkdir()
    return tmp_path


def _calibrate(data: Path, *extra: str) -> int:
    return main(["calibrate", "--data", str(data), "--split", "train", "--run",
                 str(data / "train.run"), "--out", str(data / "model"), *extra])  # fmt: skip


def test_platt_is_saved_and_lowers_held_out_ece(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _calibrate(data, "--eval-split", "dev", "--eval-run", str(data / "dev.run")) == 0
    calibrator = load_calibrator(data / "model")
    assert isinstance(calibrator, PlattScaling) and calibrator.a > 0 and calibrator.b < 0
    ece = dict(
        re.findall(
            r"dev \(800 pairs\) (raw sigmoid|calibrated) +ECE ([0-9.]+)", capsys.readouterr().out
        )
    )
    assert float(ece["calibrated"]) < float(ece["raw sigmoid"]) / 3


def test_temperature_method(data: Path) -> None:
    # Centred but over-confident logits: what a temperature (> 1) can fix.
    _split(data, "train", seed=2, bias=-4.0, spread=4.0)
    assert _calibrate(data, "--method", "temperature") == 0
    calibrator = load_calibrator(data / "model")
    assert isinstance(calibrator, TemperatureScaling) and calibrator.temperature > 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--eval-split", "dev"), "--eval-split and --eval-run go together"),
        (("--eval-split", "train", "--eval-run", "x.run"), "is the fit split"),
        (("--depth", "0"), "expected a positive integer"),
    ],
)
def test_bad_arguments_are_named(
    data: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SystemExit) if "--depth" in extra else contextlib.nullcontext():
        assert _calibrate(data, *extra) == 2
    assert message in capsys.readouterr().err
    assert not (data / "model" / "calibration.json").exists()


def test_out_must_be_a_model_directory(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["calibrate", "--data", str(data), "--split", "train", "--run",
                 str(data / "train.run"), "--out", str(data / "nope")])  # fmt: skip
    assert code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_run_without_relevant_pairs_is_refused(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(data / "train.run", {"train0": {"x1": 1.0, "x2": 0.5}})
    assert _calibrate(data) == 2
    assert "needs both relevant and non-relevant pairs" in capsys.readouterr().err
