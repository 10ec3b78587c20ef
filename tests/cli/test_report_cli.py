"""``crossrank report`` end to end on the tiny example with tiny random checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crossrank.cli.main import build_parser, main
from crossrank.data import load_collection, write_run
from crossrank.evaluation.metrics import evaluate
from crossrank.inference import CrossEncoder
from crossrank.models.registry import DEFAULT_RERANKER
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.retrieval.bm25 import BM25Retriever

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return build_tiny_checkpoint(root / "ce"), build_tiny_checkpoint(
        root / "bi", plain_encoder=True
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny collection plus a ``train`` split to fit calibrators on."""
    root = tmp_path_factory.mktemp("data") / "tiny"
    shutil.copytree(EXAMPLE, root)
    lines = (EXAMPLE / "qrels" / "test.tsv").read_text().splitlines()
    (root / "qrels" / "train.tsv").write_text("\n".join([lines[0], *lines[1:6]]) + "\n")
    return root


def _args(data: Path, models: tuple[Path, Path], tmp: Path, *extra: str) -> list[str]:
    ce, bi = models
    return ["report", "--data", str(data), "--split", "test", "--model", str(ce),
            "--top-k", "5", "--depths", "2", "--max-lengths", "64", "--backends", "torch",
            "--queries", "2", "--samples", "200", "--fit-queries", "4",
            "--perturbations", "query_typos", "--robustness-top-k", "3",
            "--dense-model", str(bi), "--dense-cache-dir", str(tmp / "cache"), "--quiet",
            *extra]  # fmt: skip


@pytest.mark.slow
def test_report_end_to_end(tmp_path: Path, data: Path, models: tuple[Path, Path]) -> None:
    col = load_collection(data, "test")
    first = BM25Retriever.build(col.corpus).retrieve(col.query_texts(), top_k=5)
    write_run(tmp_path / "bm25-file.run", first)
    out = tmp_path / "report"
    systems = ["bm25", "dense", "hybrid", "rerank", f"run:{tmp_path / 'bm25-file.run'}"]
    code = main([*_args(data, models, tmp_path, "--out", str(out)), "--systems", *systems])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "depth.png", "pareto.png", "reliability-0.png", "reliability-1.png",
        "report.html", "report.json", "report.md",
    ]  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert (report["schema_version"], report["kind"], report["n_queries"]) == (
        1, "crossrank-report", 4,
    )  # fmt: skip
    ndcg = report["accuracy"]["tables"][0]
    assert ndcg["metric"] == "nDCG@10"
    means = {row["system"]: row["mean"] for row in ndcg["rows"]}
    assert list(means) == ["bm25", "dense", "hybrid", "rerank", "bm25-file"]
    assert means["bm25-file"] == pytest.approx(means["bm25"])

    # The report's re-ranker row equals an independent re-ranking of the same candidates.
    model = CrossEncoder.from_pretrained(models[0], backend="torch", max_length=64)
    docs = {d: doc.full_text for d, doc in col.corpus.items()}
    reranked = model.rerank(first, col.query_texts(), docs, top_k=5)
    expected = evaluate(reranked, col.qrels, ["nDCG@10"]).means["nDCG@10"]
    assert means["rerank"] == pytest.approx(expected)

    efficiency = report["efficiency"]
    names = [row["name"] for row in efficiency["rows"]]
    assert names == ["bm25", "dense", "hybrid", "bm25+CE[L=64,torch]@2", "bm25+CE[L=64,torch]@5"]
    (throughput,) = efficiency["throughput"]
    assert throughput["pairs"] == sum(len(r) for r in first.values())
    assert throughput["model"]["parameters"] > 0 and throughput["peak_rss_bytes"] > 0
    assert all(row["latency"]["n"] == 2 for row in efficiency["rows"])
    assert set(efficiency["frontier"]) <= set(names)

    calibration = report["calibration"]
    assert calibration["fit_split"] == "train" and calibration["fit_pairs"] > 0
    assert [r["variant"] for r in calibration["rows"]] == [
        "raw sigmoid", "temperature scaling (fit on train)", "Platt scaling (fit on train)",
    ]  # fmt: skip
    assert [r["perturbation"] for r in report["robustness"]["rows"]] == ["query_typos"]

    tradeoff = report["tradeoff"]
    assert [d["depth"] for d in tradeoff["depths"]] == [2, 5]
    assert tradeoff["gaps"][0]["feature"] == "all" and tradeoff["gaps"][0]["n_queries"] == 4
    assert tradeoff["break_even_depth"] in (0, 2, 5)
    cross5 = next(r for r in tradeoff["accuracy"]["rows"] if r["system"] == "cross@5")
    assert cross5["mean"] == pytest.approx(expected)

    md = (out / "report.md").read_text()
    assert "crossrank report --data" in md and "--out" in md
    for heading in ("## Accuracy", "## Calibration", "## Robustness", "## Efficiency",
                    "## Cross- vs dual-encoder"):  # fmt: skip
        assert heading in md
    assert "Not computed" not in md


def test_report_bm25_only_skips_reranker_sections(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "report"
    code = main(["report", "--data", str(data), "--split", "test", "--systems", "bm25",
                 "--queries", "2", "--samples", "100", "--top-k", "5", "--depths", "2",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["calibration"] is None and report["tradeoff"] is None
    assert [row["name"] for row in report["efficiency"]["rows"]] == ["bm25"]


@pytest.mark.parametrize(
    "case",
    [
        (["--fit-split", "test"], "is the report split"),
        (["--depths", "50"], "must not exceed --top-k"),
        (["--systems", "bm25", "nonsense"], "unknown system 'nonsense'"),
    ],
)
def test_report_rejects_bad_arguments(
    tmp_path: Path,
    data: Path,
    models: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], str],
) -> None:
    extra, message = case
    out = tmp_path / "report"
    assert main([*_args(data, models, tmp_path, "--out", str(out)), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_report_refuses_to_replace_a_foreign_folder(
    tmp_path: Path, data: Path, models: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "README.md").write_text("keep")
    assert main([*_args(data, models, tmp_path, "--out", str(out)), "--systems", "bm25"]) == 2
    assert "does not hold a crossrank report" in capsys.readouterr().err
    assert (out / "README.md").read_text() == "keep"


def test_report_reranks_with_the_shipped_model_by_default(tmp_path: Path, data: Path) -> None:
    args = build_parser("report").parse_args(
        ["report", "--data", str(data), "--split", "test", "--out", str(tmp_path / "r")]
    )
    assert args.model == DEFAULT_RERANKER
