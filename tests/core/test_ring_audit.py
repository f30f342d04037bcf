"""``hemarelay ring audit`` (issue 15): a site's privacy officer lists every file and
field on the ring server, and anything that is not weights, hashes, signatures,
scalars or site names is flagged.

The site's case is a real DICOM CT series whose tags carry a patient name, id and
accession number and whose folder is named after them (as exported by many PACS).
A real turn of the hematoma trainer on it leaves nothing of that on the server;
the same strings planted by a careless or hostile member are flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cases.datasets import Case
from core.cli import main as cli_main
from core.io import load_ct, save_mask
from core.progress import NEVER_CANCELLED, run_to_end
from core.ring import turn as T
from core.ring.manifest import MANIFEST, RingConfig
from core.ring.server import init_ring, read_manifest
from core.ring.server_audit import audit_server
from core.ring.signing import TurnSigner
from core.ring.transport_dir import DirectoryTransport
from core.turn_trainers import network_shapes

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "PID778899", "AccessionNumber": "ACC445566"}
CASE = "DOE_JANE_PID778899_ACC445566"  # the folder name a PACS export gave the series
SECRETS = ("DOE", "JANE", "778899", "445566")


@pytest.fixture(scope="module")
def dicom_site(data_root: Path, tmp_path_factory) -> Path:
    import pydicom

    site = tmp_path_factory.mktemp("site-with-dicom")
    series = site / CASE
    series.mkdir()
    for f in sorted((data_root / "headct" / "dicom-ge-tilt").glob("*.dcm")):
        ds = pydicom.dcmread(str(f))
        for tag, value in PATIENT.items():
            setattr(ds, tag, value)
        ds.save_as(str(series / f.name))
    ct = load_ct(series)
    mask = np.zeros(ct.shape, np.uint8)
    ci, cj, ck = (s // 2 for s in ct.shape)
    box = (slice(ci - 12, ci + 12), slice(cj - 12, cj + 12), slice(ck - 2, ck + 3))
    mask[box] = (ct.data[box] > 20) & (ct.data[box] < 90)  # a "hematoma" in the middle of the brain
    save_mask(mask, ct, site / f"mask_{CASE}.nii.gz")
    return site


def test_a_real_turn_on_a_dicom_case_leaves_nothing_flagged_and_planted_patient_data_is(dicom_site, tmp_path, capsys):
    from core.training.config import load_config
    from core.training.ring_turn import HematomaTurnTrainer

    ring = tmp_path / "ring"
    t = DirectoryTransport(ring)
    key = TurnSigner.load_or_create("a", tmp_path / "a.key")
    init_ring(t, RingConfig(sites=("a",), signers={"a": key.public}, max_turns=1))
    config = load_config("cpu-small", None, ["patches_per_volume=4", "patch_size=24", "threads=1"])
    trainer = HematomaTurnTrainer(
        dicom_site, config, cases=[Case(CASE, dicom_site / CASE, dicom_site / f"mask_{CASE}.nii.gz")]
    )
    opts = T.SiteOptions(
        "a", signer=key, trust_dir=tmp_path / "trust", require_signed=True, poll_s=0.02, share_optimizer=True
    )
    assert run_to_end(T.take_turn(t, trainer, opts, NEVER_CANCELLED)).trained
    everything = b"".join(p.read_bytes() for p in ring.rglob("*") if p.is_file())
    assert not [s for s in SECRETS if s.encode() in everything]

    assert cli_main(["ring", "audit", "--server", str(ring)]) == 0
    out = capsys.readouterr().out
    m = read_manifest(t)
    for name in ("manifest.json", m.weights.file, m.optimizer.file):
        assert name in out  # every file listed ...
    for field in (
        "config.sites[*]: site name",
        "history[*].weights_sha256: hash",
        "history[*].signature: signature",
        "config.signers.<site>: public key",
        "history[*].metrics.val_loss: scalar",
        "metadata.site: site name",
    ):
        assert field in out  # ... with every field and what it is
    assert "0 item(s) flagged" in out

    # A careless or hostile member writes patient data where the ring would carry it.
    (ring / "leases").mkdir(exist_ok=True)
    (ring / "leases" / f"{CASE}.json").write_text("{}")
    (ring / CASE).mkdir()
    doc = json.loads((ring / MANIFEST).read_text())
    doc["history"][0]["detail"] = "Ring created for DOE^JANE PID778899"
    doc["per_site"]["a"]["note"] = "ACC445566"
    (ring / MANIFEST).write_text(json.dumps(doc))
    w = ring / m.weights.file
    data = w.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["case"] = CASE
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    w.write_bytes(len(blob).to_bytes(8, "little") + blob + data[8 + n :])
    report = audit_server(t, network_shapes)
    flagged = "\n".join(f"{f}: {p}" for f, p in report.flagged)
    assert f"leases/{CASE}.json: not a file the ring writes" in flagged
    assert f"{CASE}/: a folder the ring does not make" in flagged
    assert "DOE^JANE" in flagged and "ACC445566" in flagged and f"metadata.case = '{CASE}'" in flagged
    assert cli_main(["ring", "audit", "--server", str(ring), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["flagged"]) == len(report.flagged) >= 5


def test_an_honest_two_site_ring_audits_clean_including_lease_breaks(tmp_path):
    from core.ring.toy import ToyTrainer, write_toy_site

    ring = tmp_path / "ring"
    t = DirectoryTransport(ring)
    keys = {s: TurnSigner.load_or_create(s, tmp_path / f"{s}.key") for s in ("a", "b")}
    init_ring(
        t,
        RingConfig(
            sites=("a", "b"),
            signers={s: k.public for s, k in keys.items()},
            patience=1,
            max_turns=6,
            lease_ttl_s=0.2,
            clock_skew_s=0.0,
        ),
    )
    write_toy_site(tmp_path / "toy", site_seed=1)
    trainer = ToyTrainer(tmp_path / "toy")
    from core.ring.lease import new_lease, try_acquire

    assert try_acquire(t, new_lease("b", 0, 0.2))  # a stalled lease that a breaks and records
    while read_manifest(t).status == "running":
        m = read_manifest(t)
        site = "a" if m.turns_done == 0 else m.next_site
        opts = T.SiteOptions(site, signer=keys[site], poll_s=0.02, obsolete_grace_s=0.0, share_optimizer=True)
        run_to_end(T.take_turn(t, trainer, opts, NEVER_CANCELLED))
    m = read_manifest(t)
    assert any(getattr(h, "event", "") == "lease_break" for h in m.history) and m.convergence is not None
    report = audit_server(t, network_shapes)
    assert report.flagged == [], report.describe()
