"""Per-turn and per-round hand-off overhead: NVIDIA FLARE's simulator vs the SSH ring.

The same turn on both: the hematoma trainer (HematomaTurnTrainer) on one
approved real CT-ICH case per site, three sites a, b, c, fixed order, weights
only (the ring with --reset-optimizer, as the NVFlare job sends no optimizer
state). Overhead = wall time of a turn minus its training time:

- SSH ring over loopback SFTP (real sshd): lease + download/verify + upload +
  manifest, from the ring's own timings (TurnTimings.overhead_s); the sites run
  one after another in this process, so no polling wait is included (a real
  site notices its turn within --poll seconds, 5 by default, 2 in the app).
- NVFlare simulator: the server's send-to-result time per turn (record.json)
  minus the client's training time (its log); this includes NVFlare's task
  polling, serialisation and the controller's model-file writing.

Turns of the first round include each site's patch preparation and are left
out. Prints both, and the machine's fp32 GEMM rate for reference. Run as root
with openssh-server and the flare extra installed:
    nice .venv/bin/python bench/bench_flare_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from sshd import SshdFactory  # noqa: E402

from core.cases.datasets import shared_data_root  # noqa: E402
from core.cases.worklist import CaseStatus, scan_folder  # noqa: E402
from core.flare.job import JobSettings, write_job  # noqa: E402
from core.flare.simulate import run_simulator  # noqa: E402
from core.progress import NEVER_CANCELLED, run_to_end  # noqa: E402
from core.ring.manifest import RingConfig  # noqa: E402
from core.ring.server import init_ring  # noqa: E402
from core.ring.transport import parse_server_url  # noqa: E402
from core.ring.transport_sftp import SftpTransport, SshOptions  # noqa: E402
from core.ring.turn import SiteOptions, take_turn  # noqa: E402
from core.site.training import approved_cases  # noqa: E402
from core.training.config import load_config  # noqa: E402
from core.training.ring_turn import HematomaTurnTrainer  # noqa: E402

SETTINGS = ["patches_per_volume=8", "patch_size=48", "threads=2"]
SITES = ("a", "b", "c")


def gemm_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def make_sites(work: Path) -> dict[str, Path]:
    data = shared_data_root() / "ctich"
    picks = {"a": ("site-a", 0), "b": ("site-b", 0), "c": ("site-a", 1)}
    out = {}
    for s, (src, i) in picks.items():
        train = work / f"data-{s}" / "train"
        train.mkdir(parents=True)
        ct = sorted((data / src / "train").glob("ct_*.nii.gz"))[i]
        for f in (ct, ct.with_name(ct.name.replace("ct_", "mask_"))):
            (train / f.name).symlink_to(f)
        wl = scan_folder(train.parent)
        wl.set_status(wl.cases[0].label, CaseStatus.APPROVED)
        out[s] = train.parent
    return out


def ssh_ring(work: Path, sites: dict[str, Path], rounds: int) -> list[tuple[int, str, float, float]]:
    factory = SshdFactory()
    try:
        server = factory()
        opts = SshOptions(identity=server.client_key, known_hosts=server.known_hosts)
        t = SftpTransport(parse_server_url(server.url(work / "ring")), opts)
        t.connect()
        init_ring(t, RingConfig(sites=SITES, patience=100, reset_optimizer=True))
        config = load_config("cpu-small", None, SETTINGS)
        trainers = {s: HematomaTurnTrainer(d, config, cases=approved_cases(d)) for s, d in sites.items()}
        rows = []
        for k in range(rounds * len(SITES)):
            s = SITES[k % len(SITES)]
            out = run_to_end(take_turn(t, trainers[s], SiteOptions(s, poll_s=0.05), NEVER_CANCELLED))
            rows.append((k, s, out.timings.train_s, out.timings.overhead_s))
        t.close()
        return rows
    finally:
        factory.close()


def nvflare(work: Path, sites: dict[str, Path], rounds: int) -> list[tuple[int, str, float, float]]:
    job = write_job(
        JobSettings(sites=SITES, preset="cpu-small", overrides=tuple(SETTINGS), rounds=rounds, patience=100),
        work / "jobs",
    )
    res = run_simulator(job, work / "ws", sites)
    train = {}
    for s in SITES:
        for m in re.finditer(
            r"site \w+ turn (\d+): val loss \S+, training ([0-9.]+) s", (work / "ws" / s / "log.txt").read_text()
        ):
            train[int(m.group(1))] = float(m.group(2))
    return [(t.turn, t.site, train[t.turn], t.seconds - train[t.turn]) for t in res.record.turns]


def summary(name: str, rows, n_sites: int) -> float:
    steady = [o for k, _, _, o in rows if k >= n_sites]
    tr = [t for k, _, t, _ in rows if k >= n_sites]
    med = statistics.median(steady)
    print(
        f"{name:<28} per turn: overhead median {med:.3f} s (min {min(steady):.3f}, max {max(steady):.3f}), "
        f"training median {statistics.median(tr):.3f} s; per round of {n_sites} turns: "
        f"overhead {med * n_sites:.2f} s"
    )
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"fp32 GEMM (torch.mm 2048^2, this run): {gemm_gflops():.1f} GFLOP/s")
    work = Path(tempfile.mkdtemp(prefix="flare-bench-"))
    sites = make_sites(work)
    t0 = time.perf_counter()
    ring = ssh_ring(work, sites, args.rounds)
    print(f"SSH ring: {len(ring)} turns in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    fl = nvflare(work, sites, args.rounds)
    print(f"NVFlare simulator: {len(fl)} turns in {time.perf_counter() - t0:.1f} s (start and stop included)")
    for name, rows in (("SSH ring (loopback SFTP)", ring), ("NVFlare 2.9 simulator", fl)):
        for k, s, t, o in rows:
            print(f"  {name[:8]} turn {k + 1} site {s}: training {t:.3f} s, overhead {o:.3f} s")
    a = summary("SSH ring (loopback SFTP)", ring, len(SITES))
    b = summary("NVFlare 2.9 simulator", fl, len(SITES))
    print(f"NVFlare / SSH ring overhead per turn: {b / a:.1f}x")
    print(f"fp32 GEMM (torch.mm 2048^2, end of run): {gemm_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
