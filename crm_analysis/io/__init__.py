"""Reading clinic data from exports and databases, and writing it back."""

from crm_analysis.io.loading import load_clinic
from crm_analysis.io.mapping import Mapping, read_mapping
from crm_analysis.io.sources import open_source
from crm_analysis.io.writing import atomic_write, write_clinic

__all__ = ["load_clinic", "read_mapping", "Mapping", "open_source", "write_clinic", "atomic_write"]
