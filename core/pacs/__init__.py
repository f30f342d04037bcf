"""The hospital's PACS: query, retrieve CT series into the worklist, send results back.

Two protocols behind one :class:`~core.pacs.client.PacsClient`: DICOMweb
(QIDO-RS / WADO-RS / STOW-RS through ``dicomweb-client``, :mod:`.dicomweb`)
and DIMSE (C-FIND / C-GET / C-STORE through ``pynetdicom``, :mod:`.dimse`).
:mod:`.config` is the site's set-up (no secrets: :mod:`.credentials` finds the
password in the OS keyring or the environment), :mod:`.retrieve` turns a series
into a worklist case (staged, verified, moved into place atomically, resumable),
:mod:`.send` stores the approved mask as DICOM SEG, the TID 1500 report
(:mod:`.sr`) and optionally the PDF (:mod:`.pdf`) with UIDs derived from the
mask (:mod:`.uids`), so re-sending never duplicates.

Images fetched here stay at the site like every other case: nothing in this
package is imported by the ring (an import-linter contract).
"""
