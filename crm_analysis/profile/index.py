"""The phone index: any spelling of a phone number → the patients who share it.

:class:`PhoneIndex` is built once from the ``patients`` table, column-wise:
every phone is normalised with :func:`crm_analysis.phones.normalise_phones`
(``010-1234-5678``, ``01012345678``, ``+82 10-1234-5678`` all become
``010-1234-5678``), turned into one 64-bit integer key and sorted. A lookup
normalises the query the same way and finds its key by binary search, so it
takes microseconds on a million patients. Several patients may share a phone
(a mother and her children); a lookup returns all of them.

Keys are the number's digits as an integer (the trunk ``0`` of Korean numbers
dropped); numbers kept in international form (foreign numbers) get
``10**15`` added, so they never collide with Korean ones. One function makes
the key of one number, :func:`crm_analysis.phones.phone_key` (re-exported
here): the card index (:mod:`crm_analysis.profile.card_store`) uses it too.

The index holds phone numbers, which are personal data: :meth:`PhoneIndex.save`
writes it with file mode 0600, for the clinic's own machine only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analysis.phones import INTERNATIONAL_KEY, normalise_phones, phone_key

__all__ = ["PhoneIndex", "phone_key"]

_INTERNATIONAL = np.int64(INTERNATIONAL_KEY)


def _keys(canonical: pd.Series) -> np.ndarray:
    """Keys of a column of canonical numbers (missing → -1), column-wise."""
    text = canonical.astype("string")
    digits = text.str.replace(r"\D", "", regex=True)
    keys = pd.to_numeric(digits, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    # 15 digits at most, so float64 holds every key exactly; converted back to int64 below
    keys = np.where(np.isnan(keys), -1, keys).astype(np.int64)
    intl = text.str.startswith("+").fillna(False).to_numpy(dtype=bool)
    keys[intl & (keys >= 0)] += _INTERNATIONAL
    return keys


class PhoneIndex:
    """Normalised phone number → positions of the patients who have it.

    Build it with :meth:`from_patients`; look numbers up with :meth:`rows` or
    :meth:`patient_ids`.

    Parameters
    ----------
    keys : ndarray of int64
        Sorted phone keys (:func:`phone_key`), one per patient with a usable phone.
    rows : ndarray of int64
        The patient's row position in the patients table, aligned with `keys`.
    patient_ids : ndarray
        ``patient_id`` of every row of the patients table.

    Examples
    --------
    >>> patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"],
    ...                          "phone": ["010-1234-5678", "01012345678", None]})
    >>> index = PhoneIndex.from_patients(patients)
    >>> index.patient_ids("+82 10-1234-5678")
    ['P1', 'P2']
    >>> index.patient_ids("010-9999-8888")
    []
    """

    def __init__(self, keys: np.ndarray, rows: np.ndarray, patient_ids: np.ndarray):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.positions = np.asarray(rows, dtype=np.int64)
        self.ids = np.asarray(patient_ids)
        if len(self.keys) != len(self.positions):
            raise ValueError("PhoneIndex: keys and rows must have the same length")
        if len(self.keys) and np.any(self.keys[1:] < self.keys[:-1]):
            raise ValueError("PhoneIndex: keys must be sorted; build the index with PhoneIndex.from_patients")

    @classmethod
    def from_patients(cls, patients: pd.DataFrame) -> "PhoneIndex":
        """Build the index from a patients table (columns ``patient_id`` and ``phone``); column-wise, no loop.

        The input is not modified. Patients without a usable phone are not indexed.
        """
        missing = [c for c in ("patient_id", "phone") if c not in patients]
        if missing:
            raise KeyError(f"PhoneIndex needs the patients column(s) {missing}")
        canonical, _ = normalise_phones(patients["phone"].reset_index(drop=True))
        keys = _keys(canonical)
        has = np.flatnonzero(keys >= 0)
        order = np.argsort(keys[has], kind="stable")  # stable: family members in table order
        ids = patients["patient_id"].astype(str).to_numpy(dtype=object)
        return cls(keys[has][order], has[order], ids)

    def __len__(self) -> int:
        """Number of patients indexed (those with a usable phone)."""
        return len(self.keys)

    def rows(self, phone: object) -> np.ndarray:
        """Row positions (in the patients table) of every patient with `phone`, in table order.

        Raises
        ------
        ValueError
            If `phone` is not a usable phone number (the message does not repeat it).
        """
        key = phone_key(phone)
        if key is None:
            raise ValueError("the phone number given is not a valid Korean phone number; "
                             "write it like 010-1234-5678, 01012345678 or +82 10-1234-5678")
        lo, hi = np.searchsorted(self.keys, [key, key + 1])
        return np.sort(self.positions[lo:hi])

    def patient_ids(self, phone: object) -> list[str]:
        """``patient_id`` of every patient with `phone` (empty if none); see :meth:`rows`."""
        return [str(i) for i in self.ids[self.rows(phone)]]

    def save(self, path: str | Path) -> Path:
        """Write the index to `path` (``.npz``), readable by its owner only (mode 0600).

        The file holds phone numbers as integers and patient ids: personal data.
        Keep it on the clinic's machine and out of reports.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, keys=self.keys, rows=self.positions, ids=self.ids.astype(str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PhoneIndex":
        """Read an index written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as data:
            return cls(data["keys"], data["rows"], data["ids"].astype(object))

    def __repr__(self) -> str:
        return f"PhoneIndex({len(self):,} patients with a phone, {len(np.unique(self.keys)):,} distinct numbers)"
