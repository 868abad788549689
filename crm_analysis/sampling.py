"""A random sample of a clinic's patients, with everything recorded about them.

Some models are fitted on every row of a large table: the reminder evaluation
fits five logistic models on every appointment, 18.5 million of them in a
hospital of a million patients, which takes tens of gigabytes. Such models can
be fitted on a random sample of patients instead. :func:`patient_sample` keeps
a fixed number of patients, chosen by a hash of their id (the same patients on
every run and whatever the row order), with all their rows in every table:
their visits, appointments and the reminders of those appointments, contacts,
pregnancies and vaccinations. Each sampled patient's history is complete, so
per-patient features (earlier no-shows, earlier visits) are exact, and errors
clustered by patient stay valid; estimates of rates and effects are estimates
for the whole clinic, while counts are the sample's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from crm_analysis.clinic import ClinicData
from crm_analysis.coercion import isin

__all__ = ["PatientSample", "patient_sample"]


@dataclass(frozen=True)
class PatientSample:
    """How many patients a sample kept (`patients`) out of how many (`of`)."""

    patients: int
    of: int

    @property
    def fraction(self) -> float:
        """The share of the clinic's patients in the sample."""
        return self.patients / self.of if self.of else 1.0


def _patient_ids(clinic: ClinicData) -> pd.Series:
    """Every patient id of the clinic: the patients table's, else those of the tables that name patients."""
    if "patients" in clinic.tables:
        ids = clinic.tables["patients"]["patient_id"]
    else:
        ids = pd.concat([t["patient_id"] for t in clinic.tables.values() if "patient_id" in t.columns],
                        ignore_index=True)
    return pd.Series(ids.dropna().unique())


def patient_sample(clinic: ClinicData, max_patients: int | None) -> tuple[ClinicData, PatientSample | None]:
    """`clinic` restricted to at most `max_patients` patients chosen at random, with all their rows.

    Parameters
    ----------
    clinic : ClinicData
    max_patients : int or None
        None, or a clinic with at most this many patients: `clinic` itself is
        returned, with no sample.

    Returns
    -------
    (ClinicData, PatientSample or None)
        The sampled clinic (the input is not modified) and what was kept.
        Patients are those with the smallest hashes of their id, so the same
        ids give the same sample on every run. Reminders follow their
        appointments.
    """
    if max_patients is None:
        return clinic, None
    if int(max_patients) < 1:
        raise ValueError(f"max_patients must be at least 1, not {max_patients!r}")
    ids = _patient_ids(clinic)
    if len(ids) <= max_patients:
        return clinic, None
    hashes = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy()
    chosen = ids.iloc[np.argpartition(hashes, int(max_patients) - 1)[:int(max_patients)]]
    tables = {name: table.loc[isin(table["patient_id"], chosen).to_numpy()]
              for name, table in clinic.tables.items() if "patient_id" in table.columns}
    if "reminders" in clinic.tables and "appointments" in tables:
        reminders = clinic.tables["reminders"]  # named by their appointment, not by patient
        tables["reminders"] = reminders.loc[isin(reminders["appointment_id"],
                                                 tables["appointments"]["appointment_id"]).to_numpy()]
    sampled = replace(clinic, tables={**clinic.tables, **tables})
    return sampled, PatientSample(int(max_patients), len(ids))
