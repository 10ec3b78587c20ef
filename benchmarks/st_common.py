"""What the sentence-transformers comparisons share: the same groups as a ``datasets.Dataset``
and the same ``CrossEncoderTrainingArguments`` (so both benchmarks give ST one recipe).

Used by benchmarks/st_trainer_accuracy.py and benchmarks/train_throughput.py.
"""

from __future__ import annotations

from datasets import Dataset
from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

from crossrank.training.data import GroupSet


def groups_dataset(groups: GroupSet, *, listwise: bool) -> Dataset:
    """crossrank's training groups as ST rows: one (query, docs, labels) row per group when
    ``listwise``, else one (query, doc, label) row per pair. Padding members are dropped."""
    real = groups.members >= 0
    docs = [groups.texts[m[r]].tolist() for m, r in zip(groups.members, real, strict=True)]
    labels = [lab[r].tolist() for lab, r in zip(groups.labels, real, strict=True)]
    queries = groups.queries.tolist()
    if listwise:
        return Dataset.from_dict({"query": queries, "docs": docs, "labels": labels})
    rows = [(q, d, y) for q, ds, ys in zip(queries, docs, labels, strict=True)
            for d, y in zip(ds, ys, strict=True)]  # fmt: skip
    q, d, y = zip(*rows, strict=True)
    return Dataset.from_dict({"query": list(q), "doc": list(d), "label": list(y)})


def training_arguments(
    output_dir: str,
    *,
    batch_size: int,
    lr: float,
    device: str,
    bf16: bool,
    epochs: float = 1.0,
    max_steps: int = -1,
    drop_last: bool = False,
) -> CrossEncoderTrainingArguments:
    """The recipe both comparisons give ST: 10% warmup, weight decay 0.01, clipping at 1,
    no saving, logging or progress bars, seed 42; ``drop_last`` keeps every step full
    (the throughput bench times equal steps)."""
    return CrossEncoderTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=0.1,  # a float is a ratio in transformers 5
        weight_decay=0.01,
        max_grad_norm=1.0,
        bf16=bf16,
        use_cpu=device == "cpu",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_drop_last=drop_last,
        seed=42,
    )
