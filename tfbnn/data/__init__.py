"""Loading data: the UCI regression benchmarks and delimited text tables."""

from tfbnn.data.cells import DataWarning
from tfbnn.data.reading import DEFAULT_NA_VALUES
from tfbnn.data.tabular import Table, infer_task, prepare_features, read_frame, read_table
from tfbnn.data.uci import UCI_DATASETS, UCIDataset, default_data_dir, load_uci

__all__ = [
    "DEFAULT_NA_VALUES",
    "UCI_DATASETS",
    "DataWarning",
    "Table",
    "UCIDataset",
    "default_data_dir",
    "infer_task",
    "load_uci",
    "prepare_features",
    "read_frame",
    "read_table",
]
