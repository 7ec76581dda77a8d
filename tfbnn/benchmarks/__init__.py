"""Benchmarks that reproduce published tables: `run_uci_benchmark` and its report."""

from tfbnn.benchmarks import published
from tfbnn.benchmarks.tables import format_comparison, format_markdown, summarise, write_summary
from tfbnn.benchmarks.uci import read_results, run_uci_benchmark

__all__ = [
    "format_comparison",
    "format_markdown",
    "published",
    "read_results",
    "run_uci_benchmark",
    "summarise",
    "write_summary",
]
