"""Storage throughput against a plain file copy of the same bytes, and the server's memory.

Workloads, against one `supalite start` (one worker, disk backend in its data folder):
  1. upload   1 MB and 256 MB objects   POST /storage/v1/object/bench/<name> (raw body, streamed)
  2. download 1 MB and 256 MB objects   GET  /storage/v1/object/authenticated/bench/<name>
     (client: curl, one keep-alive connection for all objects of a size, bodies to files on
     the same disk; throughput = bytes / wall time of the whole batch)
  3. 4 kB objects, requests/s            wrk: upserts (POST x-upsert) and downloads (GET), 32
                                         connections
  4. peak RSS of the server process while a 256 MB object is uploaded and downloaded

Baselines in the same run, on the same disk, medians of as many copies: `shutil.copyfile` of
the same bytes (the kernel copies, no user-space buffer) and a user-space copy in 1 MiB chunks
(what any program that handles the bytes does).  Ratios printed last.  The page cache is warm
for both sides alike (no root to drop it).

    python bench/storage.py [--runs 5] [--seconds 10]      (needs `wrk`: apt-get install wrk)
    python bench/storage.py --backend s3 [--runs 1]

With `--backend s3` the server stores object bytes in a bucket of a moto server (`moto[server]`,
the test extra) started on a free port.  moto is an in-memory mock written in Python: the
figures show that the S3 path streams and keeps memory flat, not what S3 or MinIO sustain.
moto keeps every object in its own memory (about runs x 266 MB), hence `--runs 1` there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
from load import free_port, start_supalite, wait_http, wrk

MB = 1000 * 1000
CHUNK = 1024 * 1024
UPSERT_LUA = """
wrk.method = "POST"
wrk.body = string.rep("x", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-upsert"] = "true"
"""


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class PeakRss:
    """The highest RSS of a process, sampled every 10 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self.peak = self.proc.memory_info().rss
        t = self.proc.cpu_times()
        self._cpu0 = t.user + t.system
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        t = self.proc.cpu_times()
        self.cpu = t.user + t.system - self._cpu0  # the server's CPU seconds in the block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--backend", choices=("disk", "s3"), default="disk")
    args = ap.parse_args()
    moto: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="supalite-bench-storage-", dir=Path.cwd()) as d:
        root = Path(d)
        subprocess.run([sys.executable, "-m", "supalite.cli", "init"], cwd=root, check=True,
                       capture_output=True)  # fmt: skip
        cfg = root / "supabase" / "config.toml"
        port = free_port()
        text = cfg.read_text().replace("port = 54321", f"port = {port}")
        text = text.replace("port = 54322", f"port = {free_port()}")
        text = text.replace('file_size_limit = "50MiB"', 'file_size_limit = "1GiB"')
        if args.backend == "s3":
            moto, s3_toml = start_moto()
            text = text.replace("[storage]\n", '[storage]\nbackend = "s3"\n', 1) + s3_toml
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPALITE_", "PGRST_"))}
        env.pop("DATABASE_URL", None)
        server, banner = start_supalite(root, env)
        try:
            service = banner["service_role key"]
            base = f"http://127.0.0.1:{port}/storage/v1"
            h = {"apikey": service, "Authorization": f"Bearer {service}"}
            wait_http(f"http://127.0.0.1:{port}/health")
            results = run(root, base, h, server.pid, args.runs, args.seconds)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
            if moto is not None:
                moto.terminate()
                moto.wait(30)
    report(results, args.runs, args.seconds, args.backend)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's S3 server on a free port with one bucket; the `[storage.s3]` table for it."""
    import boto3  # the test extra (moto[server])

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/moto-api/")
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
    s3.create_bucket(Bucket="bench")
    toml = (
        f'\n[storage.s3]\nbucket = "bench"\nendpoint = "{endpoint}"\nregion = "us-east-1"\n'
        'force_path_style = true\naccess_key_id = "bench"\nsecret_access_key = "bench"\n'
    )
    return proc, toml


def _curl(h: dict[str, str]) -> list[str]:
    cmd = ["curl", "-sS", "--fail-with-body", "-H", "expect:"]
    for k, v in h.items():
        cmd += ["-H", f"{k}: {v}"]
    return cmd


def upload(base: str, h: dict[str, str], names: list[str], src: Path) -> None:
    """curl as the client (a separate C process), one keep-alive connection for all `names`:
    what the server sustains, not what a Python client does."""
    cmd = [*_curl(h), "-X", "POST", "-H", "content-type: application/octet-stream"]
    for name in names:
        cmd += ["-T", str(src), "-o", "/dev/null", f"{base}/object/bench/{name}"]
    subprocess.run(cmd, check=True)


def download(base: str, h: dict[str, str], names: list[str], work: Path, size: int) -> None:
    cmd = _curl(h)
    for name in names:
        cmd += ["-o", str(work / f"dl-{name}"), f"{base}/object/authenticated/bench/{name}"]
    subprocess.run(cmd, check=True)
    for name in names:
        assert (work / f"dl-{name}").stat().st_size == size
        (work / f"dl-{name}").unlink()


def python_copy(src: Path, dst: Path) -> None:
    """A copy through user space in 1 MiB chunks, as any program that handles the bytes."""
    with src.open("rb") as i, dst.open("wb") as o:
        while chunk := i.read(CHUNK):
            o.write(chunk)


def measure(
    base: str, h: dict[str, str], pid: int, work: Path, label: str, size: int, n: int
) -> dict[str, float]:
    src = work / f"src-{label}"
    with src.open("wb") as f:
        left = size
        while left:
            f.write(os.urandom(min(CHUNK, left)))
            left -= min(CHUNK, left)
    copies, user_copies = [], []
    for i in range(n):
        dst = work / f"copy-{label}-{i}"
        copies.append(timed(lambda: shutil.copyfile(src, dst)))  # noqa: B023 (called here)
        dst.unlink()
        user_copies.append(timed(lambda: python_copy(src, dst)))  # noqa: B023
        dst.unlink()
    names = [f"{label}-{i}" for i in range(n)]
    idle = psutil.Process(pid).memory_info().rss
    with PeakRss(pid) as up_rss:
        up = timed(lambda: upload(base, h, names, src))
    with PeakRss(pid) as down_rss:
        down = timed(lambda: download(base, h, names, work, size))
    src.unlink()
    mb = size / MB
    return {
        f"{label} copy MB/s": mb / statistics.median(copies),
        f"{label} user copy MB/s": mb / statistics.median(user_copies),
        f"{label} upload MB/s": n * mb / up,
        f"{label} download MB/s": n * mb / down,
        f"{label} idle RSS MB": idle / MB,
        f"{label} peak RSS upload MB": up_rss.peak / MB,
        f"{label} peak RSS download MB": down_rss.peak / MB,
        f"{label} upload CPU ms/MB": 1000 * up_rss.cpu / (n * mb),
        f"{label} download CPU ms/MB": 1000 * down_rss.cpu / (n * mb),
    }


def run(
    root: Path, base: str, h: dict[str, str], pid: int, runs: int, seconds: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    http = httpx.Client(base_url=base, headers=h, timeout=600)
    assert http.post("/bucket", json={"name": "bench"}).status_code == 200
    work = root / "work"
    work.mkdir()
    out.update(measure(base, h, pid, work, "1MB", MB, runs * 10))
    out.update(measure(base, h, pid, work, "256MB", 256 * MB, runs))
    # 4 kB objects: upserts onto one key, then downloads of it.
    small = f"{base}/object/bench/small-4k"
    wrk(small, h, UPSERT_LUA, 2)
    out["4kB upload req/s"] = wrk(small, h, UPSERT_LUA, seconds)["rps"]
    get_url = f"{base}/object/authenticated/bench/small-4k"
    wrk(get_url, h, "", 2)
    out["4kB download req/s"] = wrk(get_url, h, "", seconds)["rps"]
    return out


def report(r: dict[str, float], runs: int, seconds: int, backend: str = "disk") -> None:
    if backend == "s3":
        print(
            "backend: S3, served by moto (an in-memory mock S3 server in Python, on this"
            " machine): not a performance baseline; the figures show streaming and flat"
            " memory, not what a real S3 service sustains"
        )
    else:
        print("backend: disk (the data folder)")
    print(
        f"{runs * 10} x 1 MB and {runs} x 256 MB objects, curl, one keep-alive connection per"
        f" batch; copies: medians, same disk; 4 kB: wrk, 32 connections, {seconds}s; one worker"
    )
    print(f"{'':>6}  {'copyfile':>9} {'user copy':>10} {'upload':>8} {'download':>9}   (MB/s)")
    for label in ("1MB", "256MB"):
        print(
            f"{label:>6}  {r[f'{label} copy MB/s']:9.0f} {r[f'{label} user copy MB/s']:10.0f}"
            f" {r[f'{label} upload MB/s']:8.0f} {r[f'{label} download MB/s']:9.0f}"
        )
    print(
        f"4 kB objects: upload {r['4kB upload req/s']:.0f} req/s,"
        f" download {r['4kB download req/s']:.0f} req/s"
    )
    for label in ("1MB", "256MB"):
        print(
            f"server RSS ({label}): idle {r[f'{label} idle RSS MB']:.0f} MB, peak during upload "
            f"{r[f'{label} peak RSS upload MB']:.0f} MB, during download "
            f"{r[f'{label} peak RSS download MB']:.0f} MB"
        )
    for label in ("1MB", "256MB"):
        print(
            f"server CPU ({label}): upload {r[f'{label} upload CPU ms/MB']:.2f} ms/MB,"
            f" download {r[f'{label} download CPU ms/MB']:.2f} ms/MB"
            "  (load-independent: what the figures above cost the server)"
        )
    print()
    for label in ("1MB", "256MB"):
        for base, name in (("copy", "copyfile (kernel)"), ("user copy", "user-space copy")):
            copy = r[f"{label} {base} MB/s"]
            print(
                f"ratio {label:>6} vs {name:<18} upload {r[f'{label} upload MB/s'] / copy:.2f}x"
                f"   download {r[f'{label} download MB/s'] / copy:.2f}x"
            )
    growth = r["256MB peak RSS upload MB"] - r["256MB idle RSS MB"]
    print(f"peak RSS growth during 256 MB upload: {growth:.0f} MB")


if __name__ == "__main__":
    main()
