"""Benchmarks that reproduce published tables: `run_uci_benchmark` and its report."""

from tfbnn.benchmarks import published
from tfbnn.benchmarks.uci import (
    format_comparison,
    format_markdown,
    read_results,
    run_uci_benchmark,
    summarise,
    write_summary,
)

__all__ = [
    "format_comparison",
    "format_markdown",
    "published",
    "read_results",
    "run_uci_benchmark",
    "summarise",
    "write_summary",
]
