"""Loading data: the UCI regression benchmarks and delimited text tables."""

from tfbnn.data.tabular import Table, infer_task, prepare_features, read_frame, read_table
from tfbnn.data.uci import UCI_DATASETS, UCIDataset, default_data_dir, load_uci

__all__ = [
    "UCI_DATASETS",
    "Table",
    "UCIDataset",
    "default_data_dir",
    "infer_task",
    "load_uci",
    "prepare_features",
    "read_frame",
    "read_table",
]
