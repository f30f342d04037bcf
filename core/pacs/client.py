"""What the product asks of a PACS, whatever the protocol: the query types, the
answers, and :class:`PacsClient`, which :mod:`.dicomweb` and :mod:`.dimse` implement.

Queries and answers are plain dataclasses (the GUI shows them, the CLI prints
them); every call raises :class:`~core.pacs.errors.PacsError` with one line a
user can act on, never a library's exception. :func:`core.pacs.connect.open_client`
makes the client of the configured protocol.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Iterator, Protocol

from ..errors import ConfigError
from .config import PacsConfig

_DATE_RE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def dicom_date(text: str) -> str:
    """``2024-01-31`` or ``20240131`` -> ``20240131`` ("" stays ""); ConfigError otherwise."""
    text = text.strip()
    if not text:
        return ""
    if not _DATE_RE.match(text):
        raise ConfigError(f"Date '{text}': use YYYY-MM-DD.")
    digits = text.replace("-", "")
    try:
        _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise ConfigError(f"Date '{text}' does not exist.") from None
    return digits


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    accession_number: str = ""
    date_from: str = ""  # YYYY-MM-DD or YYYYMMDD; "" = open
    date_to: str = ""
    modality: str = "CT"  # "" = any
    limit: int = 100

    def date_range(self) -> str:
        """The DICOM range matching value (``20240101-20240131``, ``20240101-``), "" for any date."""
        a, b = dicom_date(self.date_from), dicom_date(self.date_to)
        if a and b and a > b:
            raise ConfigError(f"Date range: {self.date_from} is after {self.date_to}.")
        if a == b:
            return a
        return f"{a}-{b}"

    def validated(self) -> "StudyQuery":
        self.date_range()
        for name, value in (("patient id", self.patient_id), ("accession number", self.accession_number)):
            if "\\" in value or len(value) > 64:
                raise ConfigError(f"The {name} '{value[:70]}' is not a DICOM identifier.")
        if self.modality and not re.match(r"^[A-Z]{2,16}$", self.modality):
            raise ConfigError(f"Modality '{self.modality}': use a DICOM modality code such as CT.")
        return self


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""  # YYYYMMDD as the PACS gives it
    accession_number: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    n_series: int | None = None
    n_instances: int | None = None

    @property
    def has_ct(self) -> bool:
        return "CT" in self.modalities


@dataclass(frozen=True)
class SeriesMatch:
    study_uid: str
    series_uid: str
    modality: str = ""
    description: str = ""
    number: str = ""
    n_instances: int | None = None


@dataclass(frozen=True)
class InstanceRef:
    sop_uid: str
    instance_number: int | None = None


class PacsClient(Protocol):
    config: PacsConfig

    def find_studies(self, query: StudyQuery) -> list[StudyMatch]: ...

    def find_series(self, study_uid: str) -> list[SeriesMatch]: ...

    def list_instances(self, study_uid: str, series_uid: str) -> list[InstanceRef]: ...

    def fetch(
        self, study_uid: str, series_uid: str, sop_uids: list[str], whole_series: bool = False
    ) -> Iterator[tuple[str, bytes]]:
        """Each asked instance as a DICOM file's bytes, as it arrives; ``whole_series``: the
        caller wants every image of the series (one request instead of one per image)."""
        ...

    def store(self, files: list[bytes]) -> None:
        """Store DICOM files (their bytes) on the PACS."""
        ...

    def close(self) -> None: ...


def int_or_none(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
