"""The training loop: staged group training with exact resume and data parallelism.

Each stage gets a fresh AdamW (weight decay, layer-wise LR decay) and a warmup-then-decay
schedule; each step takes ``groups_per_step`` groups (length-bucketed, see
:func:`~crossrank.training.data.epoch_batches`), splits them over the ranks and the
gradient-accumulation micro-batches, runs the model under autocast, scores the groups with
the stage's losses, clips and steps. Rank 0 logs, evaluates on dev and checkpoints.

Resume is exact: the batch order is a pure function of (seed, stage, epoch), and a checkpoint
holds the weights, optimiser, schedule, scaler, the position in the epoch and every rank's
RNG states, so a resumed run takes the same steps with the same dropout masks.

Final weights are those of the best dev evaluation (``eval.metric`` of the model alone), or
the average of the ``output.average_best`` best when that scores higher on dev, or the last
weights when no dev split is given or ``output.final_weights = "last"``.

Example:
    >>> trainer = Trainer(model, plans, config, out_dir=out, ctx=DistContext.single("cpu"))  # doctest: +SKIP
    >>> result = trainer.fit(resume=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from crossrank.errors import ConfigError, DataFormatError
from crossrank.training.averaging import keep_if_top, try_average
from crossrank.training.checkpoint import (
    Checkpoint,
    capture_rng,
    read_checkpoint,
    recipe_fingerprint,
    restore_rng,
    resume_state,
    save_checkpoint,
    save_weights,
)
from crossrank.training.config import TrainConfig
from crossrank.training.data import epoch_batches, split_micro_batches
from crossrank.training.dev import DevEvaluator
from crossrank.training.distributed import DistContext
from crossrank.training.loader import ChunkedForward, MicroBatch, StepLoader
from crossrank.training.outputs import (
    CHECKPOINT_DIR,
    run_summary,
    weight_files,
    write_final,
    write_metrics,
)
from crossrank.training.state import StageEvent, StagePlan, TrainResult, TrainState
from crossrank.training.stepping import (
    LogWindow,
    StageSession,
    check_plans,
    open_session,
    optimizer_step,
)

__all__ = ["StageEvent", "StagePlan", "StageStart", "TrainResult", "TrainState", "Trainer"]

# stage_start(index, plan, resumed) -> the plan the stage trains on (see Trainer).
StageStart = Callable[[int, StagePlan, bool], StagePlan]


class Trainer:
    """Runs the stages of a recipe on one model (see the module docstring).

    ``model`` is trained in place (moved to ``ctx.device``). ``evaluator`` must be given on
    every rank or on none (only rank 0 calls it, the others wait for its decision);
    ``callbacks`` run on every rank after every optimiser step. ``prefetch`` steps are
    prepared ahead on a background thread (0: in the training thread; same results).
    ``stage_start(index, plan, resumed)`` runs on every rank before each stage trains and
    returns its plan (e.g. with negatives mined by the model as it is now); ``resumed`` says
    the stage is resumed mid-way from a checkpoint. It must keep the number of groups.
    ``cudnn_attention`` lets SDPA use cuDNN's attention on CUDA (off: it plans every new
    batch shape; see :mod:`~crossrank.models.attention_kernels`).
    """

    def __init__(
        self,
        model: nn.Module,
        plans: Sequence[StagePlan],
        config: TrainConfig,
        *,
        out_dir: Path,
        ctx: DistContext,
        evaluator: DevEvaluator | None = None,
        callbacks: Sequence[Callable[[StageEvent], None]] = (),
        quiet: bool = False,
        prefetch: int = 2,
        stage_start: StageStart | None = None,
        cudnn_attention: bool = False,
    ) -> None:
        check_plans(plans, ctx.world_size)
        self.model = model.to(ctx.device)
        self._forward = ChunkedForward(self.model)
        self.wrapped = self._wrap(self._forward, ctx)
        self.plans = list(plans)
        self.config = config
        self.out_dir = Path(out_dir)
        self.ctx = ctx
        self.evaluator = evaluator
        self.callbacks = tuple(callbacks)
        self.quiet = quiet
        self.prefetch = prefetch
        self.stage_start = stage_start
        self.cudnn_attention = cudnn_attention
        self._window = LogWindow()
        self._deadline = math.inf

    def close(self) -> None:
        """Drop the DDP wrapper; call before the process group is destroyed.

        Its C++ reducer holds a reference to the process group, and pybind11 frees it with
        the GIL held: if that were the group's last reference, gloo's destructor would wait
        for worker threads that need the GIL, and the process would hang at exit.
        """
        self.wrapped = self._forward
        gc.collect()

    @staticmethod
    def _wrap(model: nn.Module, ctx: DistContext) -> nn.Module:
        if not ctx.distributed:
            return model
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / CHECKPOINT_DIR / "last"

    @property
    def best_dir(self) -> Path:
        return self.out_dir / CHECKPOINT_DIR / "best"

    @property
    def top_dir(self) -> Path:
        return self.out_dir / CHECKPOINT_DIR / "top"

    @property
    def _average_best(self) -> int:
        output = self.config.output
        return output.average_best if output.final_weights == "best" else 1

    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train every remaining stage, then write the final weights and summary (rank 0)."""
        state, checkpoint = self._initial_state(resume)
        limit = self.config.time_limit_minutes
        self._deadline = math.inf if limit is None else time.monotonic() + 60.0 * limit
        total = sum(plan.total_steps for plan in self.plans)
        bar = tqdm(
            total=total,
            initial=state.global_step,
            desc="train",
            disable=self.quiet or not self.ctx.is_main,
            dynamic_ncols=True,
        )
        for index in range(state.stage, len(self.plans)):
            self._start_stage(index, state, resumed=checkpoint is not None and state.stage_step > 0)
            session = self._open_stage(index)
            if checkpoint is not None:
                if state.stage_step > 0:
                    checkpoint.load_training(session.optimizer, session.scheduler, session.scaler)
                restore_rng(checkpoint.rng(self.ctx.rank, self.ctx.world_size))
                checkpoint = None
            self._run_stage(session, state, bar)
            state.next_stage()
        bar.close()
        return self._finish(state)

    def _initial_state(self, resume: bool) -> tuple[TrainState, Checkpoint | None]:
        if not resume or not self.checkpoint_dir.is_dir():
            return TrainState(), None
        state, checkpoint = resume_state(self.checkpoint_dir, self.config)
        checkpoint.load_model(self.model)
        return state, checkpoint

    def _start_stage(self, index: int, state: TrainState, *, resumed: bool) -> None:
        """Let ``stage_start`` replace the stage's plan (not for a stage that will not run)."""
        plan = self.plans[index]
        if self.stage_start is None or plan.config.name in state.stopped_early:
            return
        fresh = self.stage_start(index, plan, resumed)
        if fresh.total_steps != plan.total_steps:
            raise ConfigError(
                f"stage {plan.config.name!r}: stage_start changed the plan from "
                f"{plan.total_steps} to {fresh.total_steps} steps"
            )
        self.plans[index] = fresh

    def _open_stage(self, index: int) -> StageSession:
        return open_session(
            self.model,
            self.plans[index],
            index,
            device=self.ctx.device,
            precision=self.config.precision,
        )

    def _run_stage(self, session: StageSession, state: TrainState, bar: tqdm) -> None:
        plan = session.plan

        def done() -> bool:
            return state.stage_step >= plan.total_steps or plan.config.name in state.stopped_early

        while not done():
            batches = epoch_batches(
                plan.lengths,
                plan.config.groups_per_step,
                seed=self.config.seed,
                stage=session.index,
                epoch=state.epoch,
            )
            loader = StepLoader(
                self.model,
                plan.groups,
                batches,
                start=state.batch,
                split=functools.partial(
                    split_micro_batches,
                    world_size=self.ctx.world_size,
                    rank=self.ctx.rank,
                    grad_accum=plan.config.grad_accum,
                ),
                chunk_tokens=self.config.model.chunk_tokens,
                pin=self.ctx.device.type == "cuda",
                prefetch=self.prefetch,
            )
            # closing(): stopping early (or an error) joins the prefetch thread right here.
            with contextlib.closing(iter(loader)) as steps:
                for micro in steps:
                    if done():
                        break
                    self._step(session, micro)
                    state.batch += 1
                    state.stage_step += 1
                    state.global_step += 1
                    bar.update(1)
                    self._after_step(session, state, bar)
            if state.batch >= len(batches):
                state.epoch, state.batch = state.epoch + 1, 0
        if self.evaluator is not None and state.last_eval_step != state.global_step:
            self._evaluate(session, state)

    def _step(self, session: StageSession, micro: list[MicroBatch]) -> None:
        optimizer_step(
            session,
            self.wrapped,
            micro,
            self.model,
            self._window,
            device=self.ctx.device,
            precision=self.config.precision,
            distributed=self.ctx.distributed,
            cudnn_attention=self.cudnn_attention,
        )

    def _after_step(self, session: StageSession, state: TrainState, bar: tqdm) -> None:
        """Log, evaluate (early stopping is recorded in the state), checkpoint, call back."""
        output = self.config.output
        stage = session.plan.config
        stage_end = state.stage_step == session.plan.total_steps
        if state.global_step % output.log_every == 0 or stage_end:
            self._log(session, state, bar)
        due = stage.eval_every and state.stage_step % stage.eval_every == 0
        if self.evaluator is not None and due and self._evaluate(session, state) and not stage_end:
            # Recorded before the checkpoint below, so a resumed run stops here too.
            state.stopped_early.append(stage.name)
        if state.global_step % output.checkpoint_every == 0 and not stage_end:
            if self._window.steps:
                self._log(session, state, bar)  # the saved state then counts every step
            self._checkpoint(session, state)
        if self._deadline < math.inf and self.ctx.broadcast_flag(time.monotonic() > self._deadline):
            self._stop_for_time(state)
        event = StageEvent(stage.name, state.stage_step, state.global_step)
        for callback in self.callbacks:
            callback(event)

    def _stop_for_time(self, state: TrainState) -> None:
        """End this stage (it still gets its closing dev evaluation) and skip the later ones."""
        state.time_limit_reached = True
        for plan in self.plans[state.stage :]:
            if plan.config.name not in state.stopped_early:
                state.stopped_early.append(plan.config.name)

    def _log(self, session: StageSession, state: TrainState, bar: tqdm) -> None:
        window, self._window = self._window, LogWindow()
        steps = max(window.steps, 1)
        loss = self.ctx.mean(float(window.loss) / steps)
        pairs = round(self.ctx.mean(window.pairs) * self.ctx.world_size)
        state.pairs += pairs
        state.train_seconds += window.seconds
        entry = {
            "event": "train",
            "stage": session.plan.config.name,
            "step": state.global_step,
            "epoch": state.epoch,
            "loss": loss,
            "lr": max(session.scheduler.get_last_lr()),
            "pairs_per_s": pairs / window.seconds if window.seconds > 0 else 0.0,
        }
        state.history.append(entry)
        if self.ctx.is_main:
            bar.set_postfix(
                loss=f"{loss:.4f}", lr=f"{entry['lr']:.2e}", pairs_s=f"{entry['pairs_per_s']:.1f}"
            )
            write_metrics(self.out_dir, state.history)

    def _evaluate(self, session: StageSession, state: TrainState) -> bool:
        """Dev evaluation on rank 0; returns the (broadcast) early-stopping decision."""
        state.last_eval_step = state.global_step
        stop = False
        if self.ctx.is_main and self.evaluator is not None:
            scores = self.evaluator(self.model)
            entry = {"event": "eval", "stage": session.plan.config.name, "step": state.global_step}
            state.history.append({**entry, **scores.to_dict()})
            best = state.best["model"] if state.best else -math.inf
            if scores.model > best + self.config.eval.min_delta:
                state.best = {**entry, **scores.to_dict()}
                state.bad_evals = 0
                save_weights(self.best_dir, self.model, state.best)
            else:
                state.bad_evals += 1
            if self._average_best > 1:
                state.top = keep_if_top(
                    state.top,
                    {**entry, **scores.to_dict()},
                    k=self._average_best,
                    root=self.top_dir,
                    model=self.model,
                )
            patience = session.plan.config.patience
            stop = patience > 0 and state.bad_evals >= patience
            write_metrics(self.out_dir, state.history)
        return self.ctx.broadcast_flag(stop)

    def _checkpoint(self, session: StageSession, state: TrainState) -> None:
        rng = self.ctx.gather(capture_rng())
        if self.ctx.is_main:
            save_checkpoint(
                self.checkpoint_dir,
                module=self.model,
                optimizer=session.optimizer,
                scheduler=session.scheduler,
                scaler=session.scaler,
                state={**dataclasses.asdict(state), "recipe": recipe_fingerprint(self.config)},
                rng=rng,
            )
        self.ctx.barrier()

    def _finish(self, state: TrainState) -> TrainResult:
        """Select the final weights (best dev or last), save them and the run summary."""
        # Only rank 0 evaluates, so only its state knows whether a best checkpoint exists.
        use_best = self.ctx.broadcast_flag(
            self.config.output.final_weights == "best" and state.best is not None
        )
        average = None
        if use_best:
            if self.ctx.is_main:
                best = read_checkpoint(self.best_dir)
                if best.state.get("step") != state.best["step"]:
                    raise DataFormatError(
                        self.best_dir,
                        None,
                        f"holds step {best.state.get('step')}, the run's "
                        f"best is step {state.best['step']}",
                    )
                best.load_model(self.model)
                average = self._average(state, best)
            self.ctx.broadcast_module(self.model)
        summary = run_summary(state, use_best=use_best, world_size=self.ctx.world_size)
        if average is not None:
            summary["average"] = average
            if average["kept"]:
                summary["weights"], summary["dev"] = "average_of_best", average
        if self.ctx.is_main:
            self.model.save_pretrained(
                self.out_dir, max_shard_size=self.config.output.max_shard_size
            )
            summary["weight_files"] = weight_files(self.out_dir)
            write_metrics(self.out_dir, state.history)
            write_final(self.out_dir, summary)
            if not self.config.output.keep_checkpoints:
                shutil.rmtree(self.out_dir / CHECKPOINT_DIR, ignore_errors=True)
        self.ctx.barrier()
        return TrainResult(self.out_dir, summary, state, self.model)

    def _average(self, state: TrainState, best: Checkpoint) -> dict[str, Any] | None:
        """Evaluate the average of the kept best weights; keep it only if it beats the best."""
        if self._average_best < 2 or len(state.top) < 2 or self.evaluator is None:
            return None
        scores, better = try_average(self.model, state.top, self.top_dir, self.evaluator)
        if not better:
            best.load_model(self.model)
        state.history.append(scores)
        return {**scores, "kept": better}
