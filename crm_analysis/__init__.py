"""crm_analysis: patient-relationship analytics for clinics.

Importing the package only defines things: it reads no files, sets up no
logging and touches no network. It does not import the data stack either:
``ClinicData``, ``load_clinic``, ``read_mapping`` and ``write_clinic`` are
loaded on first use (PEP 562), so a command that needs none of them, such as
the front desk's ``crm-analysis lookup`` on a card index, starts in a fraction
of a second. The exceptions are standard library only and load at once.
"""

from crm_analysis.lazy_imports import lazy_exports

from crm_analysis._version import __version__
from crm_analysis.exceptions import (
    CrmAnalysisError,
    CrmAnalysisWarning,
    DataValidationError,
    MappingError,
    MissingTableError,
)

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

#: Name → module of the names loaded on first use.
_LAZY = {"ClinicData": "crm_analysis.clinic", "load_clinic": "crm_analysis.io", "read_mapping": "crm_analysis.io",
         "write_clinic": "crm_analysis.io"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
