"""``train(config)``: data, negatives, model and dev set from a recipe, then the trainer.

This is what ``crossrank train`` runs. Every rank builds the same groups (they are a pure
function of the data, the recipe and its seed), so nothing but gradients, a few scalars and
RNG states ever crosses processes.

Output directory (written by rank 0):

* ``config.toml``: the resolved recipe (CLI overrides applied);
* ``metrics.jsonl``: loss, learning rate and pairs/s every ``log_every`` steps, and every dev
  evaluation;
* ``final.json``: the dev numbers of the selected weights and a run summary;
* the weights in the plain Hugging Face layout (``config.json``, safetensors shards of at most
  ``output.max_shard_size`` each unless a single tensor is larger, tokenizer files);
  an interaction model (``model.arch``) writes its own layout instead (``config.json``,
  ``model.safetensors``, ``vocab.txt`` for word2vec embeddings), read by
  ``load_interaction_model``; CEDR (``model.arch = "cedr"``) writes ``config.json``,
  ``model.safetensors`` (its ranking layer) and ``backbone/`` (the cross-encoder), read by
  ``load_cedr``;
* ``checkpoints/`` while training (removed at the end unless ``keep_checkpoints``), with
  ``checkpoints/mined/`` holding the model-mined negatives of stages that use them.

Example:
    >>> result = train(load_config("configs/scifact-cpu.toml").replace(  # doctest: +SKIP
    ...     data=DataConfig("../shared/data/scifact")), out_dir=Path("runs/cpu"))
    >>> result.summary["dev"]["model"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.data.beir import load_collection, load_queries, read_qrels_tsv
from crossrank.data.types import Collection
from crossrank.errors import ConfigError, MissingDataError
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.loading import set_head_bias
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.dense import DenseRetriever, default_cache_dir
from crossrank.retrieval.encoder import DenseConfig, DenseEncoder, resolve_model_path
from crossrank.training.cedr import build_cedr
from crossrank.training.config import (
    CEDR,
    CROSS_ENCODER,
    ModelConfig,
    TrainConfig,
    interaction_config,
)
from crossrank.training.data import RetrieveFn
from crossrank.training.dev import DevEvaluator, DevSet
from crossrank.training.distributed import (
    DistContext,
    determinism,
    init_distributed,
    seed_everything,
    shutdown_distributed,
)
from crossrank.training.hard_negatives import MinedStageStart, ModelMiner
from crossrank.training.interaction import build_interaction_trainable
from crossrank.training.outputs import CHECKPOINT_DIR, CONFIG_FILE, FINAL_FILE
from crossrank.training.planning import make_plan, plan_stages, replay_mined
from crossrank.training.trainable import (
    CrossEncoderTrainable,
    TrainableModel,
    prune_layers,
    set_dropout,
)
from crossrank.training.trainer import StageEvent, Trainer, TrainResult

__all__ = ["build_cross_encoder", "build_model", "make_plan", "plan_stages", "train"]


def train(
    config: TrainConfig,
    *,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    callbacks: Sequence[Callable[[StageEvent], None]] = (),
    prefetch: int = 2,
) -> TrainResult:
    """Run a recipe end to end (under ``torchrun`` as one rank of a data-parallel job).

    ``resume`` continues from ``out_dir/checkpoints/last`` when it exists (and starts fresh
    otherwise); without it, an ``out_dir`` that already holds a run is an error. ``prefetch``
    steps are prepared ahead on a background thread (0: none; the weights are the same).
    """
    out = Path(out_dir)
    _check_inputs(config, out, resume)
    ctx = init_distributed(config.device)
    try:
        with determinism(config.deterministic, config.threads):
            return _run(
                config,
                out,
                ctx,
                resume=resume,
                quiet=quiet,
                callbacks=callbacks,
                prefetch=prefetch,
            )
    finally:
        shutdown_distributed()


def _run(
    config: TrainConfig,
    out: Path,
    ctx: DistContext,
    *,
    resume: bool,
    quiet: bool,
    callbacks: Sequence[Callable[[StageEvent], None]],
    prefetch: int,
) -> TrainResult:
    seed_everything(config.seed + ctx.rank)  # dropout differs across ranks, data does not
    if ctx.is_main:
        with atomic_write(out / CONFIG_FILE) as fh:
            fh.write(config.to_toml())
    collection = load_collection(config.data.path, config.data.train_split)
    bm25 = BM25Retriever.build(collection.corpus)
    model = build_model(config.model, seed=config.seed, device_type=ctx.device.type)
    dense = _dense_retriever(config, collection, ctx)
    # Until a stage mines with the model (at its start), its BM25 pool stands in for the
    # model's candidates: the plan's number of groups and steps do not depend on them.
    stand_in = replay_mined(bm25.retrieve)
    plans = plan_stages(config, model, collection, bm25.retrieve, dense=dense, mine=stand_in)
    miner = ModelMiner(
        model,
        bm25.retrieve,
        device=ctx.device,
        precision=config.precision,
        batch_size=config.eval.batch_size,
    )
    evaluator = _dev_evaluator(config, collection, bm25, ctx)
    trainer = Trainer(
        model,
        plans,
        config,
        out_dir=out,
        ctx=ctx,
        evaluator=evaluator,
        callbacks=callbacks,
        quiet=quiet,
        prefetch=prefetch,
        stage_start=MinedStageStart(
            config,
            model,
            collection,
            retrieve=bm25.retrieve,
            dense=dense,
            miner=miner,
            ctx=ctx,
            out_dir=out,
        ),
    )
    try:
        return trainer.fit(resume=resume)
    finally:
        trainer.close()  # before the process group goes (see Trainer.close)


def _check_inputs(config: TrainConfig, out: Path, resume: bool) -> None:
    if not config.model.backbone:
        raise ConfigError("no backbone: set model.backbone in the recipe or pass --backbone")
    if not config.data.path:
        raise ConfigError("no data: set data.path in the recipe or pass --data")
    if (out / FINAL_FILE).exists():
        raise ConfigError(f"{out} already holds a finished run ({FINAL_FILE}); choose a new --out")
    if not resume and (out / CHECKPOINT_DIR).exists():
        raise ConfigError(
            f"{out} holds checkpoints of an unfinished run; pass --resume to continue it "
            "or choose a new --out"
        )


def build_model(config: ModelConfig, *, seed: int, device_type: str = "cpu") -> TrainableModel:
    """The trainable model ``config.arch`` names: the cross-encoder, CEDR or an interaction model."""
    if config.arch == CROSS_ENCODER:
        return build_cross_encoder(config, seed=seed, device_type=device_type)
    if config.arch == CEDR:
        cedr = interaction_config(CEDR, config.interaction)
        return build_cedr(config, cedr, seed=seed, device_type=device_type)
    return build_interaction_trainable(config, seed=seed)


def build_cross_encoder(
    config: ModelConfig, *, seed: int, device_type: str = "cpu"
) -> CrossEncoderTrainable:
    """Load the backbone (fresh 1-logit head for a plain encoder), prune, set dropout."""
    model = CrossEncoderModel.from_pretrained(resolve_model_path(config.backbone), seed=seed)
    if config.head_bias is not None:
        if not model.fresh_head:
            raise ConfigError(
                f"model.head_bias starts a fresh head's bias, but backbone {config.backbone!r} "
                "already has a trained classification head"
            )
        set_head_bias(model.module, config.head_bias)
    if config.keep_layers is not None:
        prune_layers(model.module, config.keep_layers)
    set_dropout(model.module, hidden=config.hidden_dropout, attention=config.attention_dropout)
    return CrossEncoderTrainable(
        model,
        max_length=config.max_length,
        max_query_length=config.max_query_length,
        pad_multiple=8 if device_type == "cuda" else 1,
    )


def _dense_retriever(
    config: TrainConfig, collection: Collection, ctx: DistContext
) -> RetrieveFn | None:
    """The bi-encoder retriever of ``dense`` negatives, built only when a stage asks for them."""
    if not any(stage.negatives.get("dense", 0.0) > 0 for stage in config.stages):
        return None
    model = config.data.dense_model or "all-MiniLM-L6-v2"
    encoder = DenseEncoder(DenseConfig(model=model), device=ctx.device)
    cache_dir = default_cache_dir(config.data.path, model)
    return DenseRetriever.build(collection.corpus, encoder, cache_dir=cache_dir).retrieve


def _dev_evaluator(
    config: TrainConfig, collection: Collection, bm25: BM25Retriever, ctx: DistContext
) -> DevEvaluator | None:
    split = config.data.dev_split
    if not split:
        return None
    root = Path(config.data.path)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise MissingDataError(f"{qrels_path}: no qrels for dev split {split!r}")
    qrels = read_qrels_tsv(qrels_path)
    queries = load_queries(root / "queries.jsonl")
    texts = {qid: queries[qid].text for qid in qrels if qid in queries}
    run = bm25.retrieve(texts, config.eval.top_k)
    docs = {doc_id: doc.full_text for doc_id, doc in collection.corpus.items()}
    devset = DevSet.build(texts, docs, run, qrels, top_k=config.eval.top_k)
    return DevEvaluator(devset, config.eval, ctx.device, config.precision)
