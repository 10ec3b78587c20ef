"""Data formats: BEIR collections, TREC runs and qrels, with validating streaming readers."""

from crossrank.data.beir import (
    iter_corpus,
    load_collection,
    load_corpus,
    load_queries,
    read_qrels_tsv,
    write_collection,
    write_corpus,
    write_qrels_tsv,
    write_queries,
)
from crossrank.data.trec import read_run, read_trec_qrels, write_run, write_trec_qrels
from crossrank.data.types import Collection, Document, Qrels, Query, Run

__all__ = [
    "Collection",
    "Document",
    "Qrels",
    "Query",
    "Run",
    "iter_corpus",
    "load_collection",
    "load_corpus",
    "load_queries",
    "read_qrels_tsv",
    "read_run",
    "read_trec_qrels",
    "write_collection",
    "write_corpus",
    "write_qrels_tsv",
    "write_queries",
    "write_run",
    "write_trec_qrels",
]
