"""Hand-off overhead of a ring turn over loopback SFTP (real sshd), against training time.

Prints upload/download MB/s of the SFTP transport and, for toy models of
several sizes, each turn's overhead (lease, download+verify, upload, manifest)
versus its training time. Run as root with openssh-server installed:
    .venv/bin/python bench/ring_overhead.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1] if (Path(__file__).resolve().parents[1] / "core").is_dir() else Path.cwd()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from sshd import SshdFactory  # noqa: E402

from core.progress import NEVER_CANCELLED, run_to_end  # noqa: E402
from core.ring.manifest import RingConfig  # noqa: E402
from core.ring.server import init_ring  # noqa: E402
from core.ring.toy import ToyTrainer, write_toy_site  # noqa: E402
from core.ring.transport import parse_server_url  # noqa: E402
from core.ring.transport_sftp import SftpTransport, SshOptions  # noqa: E402
from core.ring.turn import SiteOptions, take_turn  # noqa: E402

torch.set_num_threads(2)
factory = SshdFactory()
try:
    server = factory()
    work = Path(tempfile.mkdtemp(prefix="ring-bench-"))
    opts = SshOptions(identity=server.client_key, known_hosts=server.known_hosts)

    def transport(path: Path) -> SftpTransport:
        return SftpTransport(parse_server_url(server.url(path)), opts)

    t = transport(work)
    t0 = time.perf_counter()
    t.connect()
    print(f"connect + auth: {time.perf_counter() - t0:.3f} s")
    for mb in (1, 10, 50):
        blob = os.urandom(mb << 20)
        ups, downs = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            t.write_atomic("blob", blob)
            ups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert t.read_bytes("blob") == blob
            downs.append(time.perf_counter() - t0)
        print(
            f"{mb:>3} MB: upload {min(ups):.3f} s ({mb / min(ups):.0f} MB/s), "
            f"download {min(downs):.3f} s ({mb / min(downs):.0f} MB/s)  [best of 3]"
        )
    t.close()

    data = {s: work / f"site-{s}" for s in "ab"}
    for i, s in enumerate("ab", 1):
        write_toy_site(data[s], i, n_cases=8, per_case=256)
    for hidden in (16, 20_000, 250_000):
        ring = work / f"ring-{hidden}"
        tr = transport(ring)
        init_ring(tr, RingConfig(sites=("a", "b"), patience=100))
        trainers = {s: ToyTrainer(data[s], hidden=hidden) for s in "ab"}
        rows = []
        for k in range(4):
            s = "ab"[k % 2]
            out = run_to_end(take_turn(tr, trainers[s], SiteOptions(s, poll_s=0.05), NEVER_CANCELLED))
            rows.append(out.timings)
        tm = rows[-1]
        mb = (tm.bytes_up + tm.bytes_down) / 2 / 1e6
        print(
            f"toy hidden={hidden:>7} ({mb:6.2f} MB weights+optimizer per direction): train {tm.train_s:.3f} s; "
            f"overhead {tm.overhead_s:.3f} s = lease {tm.lease_s:.3f} + download {tm.download_s:.3f} + "
            f"upload {tm.upload_s:.3f} + publish {tm.publish_s:.3f}"
        )
        tr.close()
finally:
    factory.close()
