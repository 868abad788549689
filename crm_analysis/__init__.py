"""crm_analysis: patient-relationship analytics for clinics.

Importing the package only defines things: it reads no files, sets up no
logging and touches no network.
"""

from crm_analysis._version import __version__
from crm_analysis.clinic import ClinicData
from crm_analysis.exceptions import (
    CrmAnalysisError,
    CrmAnalysisWarning,
    DataValidationError,
    MappingError,
    MissingTableError,
)
from crm_analysis.io import load_clinic, read_mapping, write_clinic

__all__ = [
    "__version__",
    "ClinicData",
    "load_clinic",
    "read_mapping",
    "write_clinic",
    "CrmAnalysisError",
    "CrmAnalysisWarning",
    "DataValidationError",
    "MappingError",
    "MissingTableError",
]
