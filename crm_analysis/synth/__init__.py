"""The demo clinic: a synthetic Korean clinic whose generating truth is known.

>>> from crm_analysis import synth
>>> clinic = synth.generate_clinic(n_patients=20_000, seed=42)   # doctest: +SKIP
>>> clinic.tables["visits"].head()                               # doctest: +SKIP
>>> clinic.truth["return_model"]["hazard_ratios"]                # doctest: +SKIP
>>> clinic.write("data/demo", format="csv")                      # doctest: +SKIP

Estimators are tested against ``clinic.truth``; ``docs/demo_clinic.md``
describes every model equation. Importing this package draws nothing.
"""

from crm_analysis.synth.generator import (
    DEFAULT_END,
    DEFAULT_START,
    GENERATOR_VERSION,
    SyntheticClinic,
    generate_clinic,
)
from crm_analysis.synth.params import CampaignSpec, SynthParams
from crm_analysis.synth.writer import write_demo

__all__ = [
    "generate_clinic",
    "SyntheticClinic",
    "SynthParams",
    "CampaignSpec",
    "write_demo",
    "GENERATOR_VERSION",
    "DEFAULT_START",
    "DEFAULT_END",
]
