"""Storage throughput against a plain file copy (or a direct S3 put/get) of the same bytes.

Workloads, against one `supalite start` (one worker; disk backend in its data folder, or S3):
  1. upload   1 MB and 256 MB objects   POST /storage/v1/object/bench/<name> (raw body, streamed)
  2. download 1 MB and 256 MB objects   GET  /storage/v1/object/authenticated/bench/<name>
     each at concurrency 1 and 8: that many curl processes at once, each on one keep-alive
     connection for its share of the objects, bodies to files on the same disk; throughput =
     all bytes / wall time of the whole batch
  3. 4 kB objects, requests/s            wrk: upserts (POST x-upsert) and downloads (GET), 32
                                         connections
  4. the server's peak RSS, and the CPU seconds per MB of the server and of curl, during each
     batch

Each figure is the median of `--runs` rounds; a round measures the baselines, then supalite, on
the same batch (1 MB: 10 objects per client; 256 MB: 1 per client), so its figures share the
machine's load of that moment, and each ratio is taken within a round.  Baselines, same shape
(as many objects, as many at once), same disk:
  disk: `shutil.copyfile` of the same bytes (the kernel copies, no user-space buffer) and a
        user-space copy in 1 MiB chunks (what any program that handles the bytes does);
  s3:   boto3's put_object of the same file and get_object streamed to a file, straight to the
        S3 server (what supalite's S3 backend does behind its HTTP API).
A third baseline, the transport's ceiling: the same curl commands against a bare uvicorn app
on this machine (same uvicorn, uvloop and httptools, same heap settings as supalite's storage)
that drops an upload's body and streams a download from a file in the same 1 MiB chunks —
what loopback HTTP and curl cost with no storage work at all.  Ratios printed last (supalite
against each baseline).  The page cache is warm for all sides alike (no root to drop it).

    python bench/storage.py [--runs 3] [--seconds 10]      (needs `wrk`: apt-get install wrk)
    python bench/storage.py --etag mtime                    (Supabase's other file ETag)
    python bench/storage.py --bare PORT FOLDER              (the ceiling's server alone)
    python bench/storage.py --backend s3 [--runs 3]

With `--backend s3` the server stores object bytes in a bucket of a moto server (`moto[server]`,
the test extra) started on a free port.  moto is an in-memory mock written in Python: the
figures show that the S3 path streams and keeps memory flat, and what supalite adds over a
direct put to the same server, not what S3 or MinIO sustain.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from load import free_port, start_supalite, wait_http, wrk
from starlette.types import Message, Receive, Scope, Send

MB = 1000 * 1000
CHUNK = 1024 * 1024
SIZES = (("1MB", MB), ("256MB", 256 * MB))
CONCURRENCY = (1, 8)
UPSERT_LUA = """
wrk.method = "POST"
wrk.body = string.rep("x", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-upsert"] = "true"
"""


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class PeakRss:
    """The highest RSS of a process, sampled every 10 ms while the block runs, and the CPU
    seconds it spent in the block."""

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
        self.cpu = t.user + t.system - self._cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="rounds per figure (medians)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--backend", choices=("disk", "s3"), default="disk")
    ap.add_argument(
        "--etag", choices=("md5", "mtime"), default="md5",
        help="the disk backend's ETag (STORAGE_FILE_ETAG_ALGORITHM, as Supabase's)",
    )  # fmt: skip
    ap.add_argument("--bare", nargs=2, metavar=("PORT", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare:
        serve_bare(int(args.bare[0]), Path(args.bare[1]))
        return
    moto: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="supalite-bench-storage-", dir=Path.cwd()) as d:
        root = Path(d)
        work = root / "work"
        work.mkdir()
        subprocess.run([sys.executable, "-m", "supalite.cli", "init"], cwd=root, check=True,
                       capture_output=True)  # fmt: skip
        cfg = root / "supabase" / "config.toml"
        port = free_port()
        text = cfg.read_text().replace("port = 54321", f"port = {port}")
        text = text.replace("port = 54322", f"port = {free_port()}")
        text = text.replace('file_size_limit = "50MiB"', 'file_size_limit = "1GiB"')
        direct: Direct = DiskCopy()
        if args.backend == "s3":
            moto, s3_toml, endpoint = start_moto()
            text = text.replace("[storage]\n", '[storage]\nbackend = "s3"\n', 1) + s3_toml
            direct = S3Direct(endpoint)
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPALITE_", "PGRST_"))}
        env.pop("DATABASE_URL", None)
        env["STORAGE_FILE_ETAG_ALGORITHM"] = args.etag
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port), str(work)])
        server, banner = start_supalite(root, env)
        try:
            service = banner["service_role key"]
            h = {"apikey": service, "Authorization": f"Bearer {service}"}
            wait_http(f"http://127.0.0.1:{port}/health")
            wait_http(f"http://127.0.0.1:{bare_port}/health")
            servers = Servers(
                base=f"http://127.0.0.1:{port}/storage/v1", pid=server.pid,
                bare_base=f"http://127.0.0.1:{bare_port}", bare_pid=bare.pid,
            )  # fmt: skip
            results = run(work, servers, h, direct, args.runs, args.seconds, args.etag)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
            bare.terminate()
            bare.wait(30)
            if moto is not None:
                moto.terminate()
                moto.wait(30)
    report(results, direct, args.runs, args.seconds, args.backend, args.etag)


def start_moto() -> tuple[subprocess.Popen[bytes], str, str]:
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
    for bucket in ("bench", "direct"):
        s3.create_bucket(Bucket=bucket)
    toml = (
        f'\n[storage.s3]\nbucket = "bench"\nendpoint = "{endpoint}"\nregion = "us-east-1"\n'
        'force_path_style = true\naccess_key_id = "bench"\nsecret_access_key = "bench"\n'
    )
    return proc, toml, endpoint


# ------------------------------------------------------------------------------ baselines


class Direct:
    """A baseline: what moving the same bytes costs without supalite, as (name, MB/s) per
    direction; `batch` objects of `size` bytes from `src`, `concurrency` at a time."""

    names: tuple[str, ...] = ()

    def measure(
        self, src: Path, work: Path, size: int, batch: int, concurrency: int
    ) -> list[float]:
        raise NotImplementedError


class DiskCopy(Direct):
    names = ("copyfile", "user copy")

    def measure(
        self, src: Path, work: Path, size: int, batch: int, concurrency: int
    ) -> list[float]:
        out = []
        for copy in (shutil.copyfile, python_copy):
            dsts = [work / f"copy-{i}" for i in range(batch)]
            wall = timed(lambda: in_parallel(lambda d: copy(src, d), dsts, concurrency))  # noqa: B023
            for d in dsts:
                d.unlink()
            out.append(batch * size / MB / wall)
        return out


class S3Direct(Direct):
    names = ("S3 put", "S3 get")

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="bench", aws_secret_access_key="bench",
        )  # fmt: skip

    def measure(
        self, src: Path, work: Path, size: int, batch: int, concurrency: int
    ) -> list[float]:
        keys = [f"direct-{i}" for i in range(batch)]

        def put(key: str) -> None:
            with src.open("rb") as f:
                self.s3.put_object(Bucket="direct", Key=key, Body=f)

        def get(key: str) -> None:
            body = self.s3.get_object(Bucket="direct", Key=key)["Body"]
            with (work / key).open("wb") as f:
                while chunk := body.read(CHUNK):
                    f.write(chunk)
            (work / key).unlink()

        up = timed(lambda: in_parallel(put, keys, concurrency))
        down = timed(lambda: in_parallel(get, keys, concurrency))
        self.s3.delete_objects(Bucket="direct", Delete={"Objects": [{"Key": k} for k in keys]})
        return [batch * size / MB / up, batch * size / MB / down]


def python_copy(src: Path, dst: Path) -> None:
    """A copy through user space in 1 MiB chunks, as any program that handles the bytes."""
    with src.open("rb") as i, dst.open("wb") as o:
        while chunk := i.read(CHUNK):
            o.write(chunk)


def in_parallel(fn: Callable[[Any], object], items: list[Any], concurrency: int) -> None:
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(fn, items):
            pass


# ------------------------------------------------------------------------------ the ceiling


def serve_bare(port: int, folder: Path) -> None:
    """The transport's ceiling: uvicorn as supalite runs it (uvloop, httptools, no access log)
    with an ASGI app that does no storage work — an upload's body is received and dropped, a
    download streams `<folder>/<last path segment>` in 1 MiB `pread`s on the event loop (the
    page cache is warm: no thread hops) — and the heap settings supalite's storage makes."""
    import uvicorn

    from supalite.storage.heap import keep_buffers

    keep_buffers()

    async def send_json(send: Send, body: bytes, status: int = 200) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] != "GET":
            body: Message = {"more_body": True}
            while body.get("more_body"):
                body = await receive()
            await send_json(send, b"{}")
            return
        if scope["path"] == "/health":
            await send_json(send, b"{}")
            return
        try:
            fd = os.open(folder / scope["path"].rpartition("/")[2], os.O_RDONLY)
        except OSError:
            await send_json(send, b"{}", 404)
            return
        try:
            size = os.fstat(fd).st_size
            headers = [(b"content-type", b"application/octet-stream"),
                       (b"content-length", b"%d" % size)]  # fmt: skip
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            pos = 0
            while pos < size:
                chunk = os.pread(fd, CHUNK, pos)
                pos += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": pos < size})
        finally:
            os.close(fd)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                server_header=False, lifespan="on")  # fmt: skip


# ------------------------------------------------------------------------------ supalite


def _curl(h: dict[str, str]) -> list[str]:
    cmd = ["curl", "-sS", "--fail-with-body", "-H", "expect:"]
    for k, v in h.items():
        cmd += ["-H", f"{k}: {v}"]
    return cmd


def _shares(names: list[str], concurrency: int) -> list[list[str]]:
    return [names[i::concurrency] for i in range(concurrency) if names[i::concurrency]]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _curls(cmds: list[list[str]]) -> float:
    """Several curl processes at once (a separate C client each: what the server sustains,
    not what a Python client does); any failure ends the bench.  The CPU seconds they took
    (the bench's only children that end meanwhile)."""
    cpu = _children_cpu()
    procs = [subprocess.Popen(c) for c in cmds]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"curl failed: {codes}")
    return _children_cpu() - cpu


def upload(base: str, h: dict[str, str], names: list[str], src: Path, concurrency: int) -> float:
    cmds = []
    for share in _shares(names, concurrency):
        cmd = [*_curl(h), "-X", "POST", "-H", "content-type: application/octet-stream"]
        for name in share:
            cmd += ["-T", str(src), "-o", "/dev/null", f"{base}/object/bench/{name}"]
        cmds.append(cmd)
    return _curls(cmds)


def download(
    base: str, h: dict[str, str], names: list[str], work: Path, size: int, concurrency: int
) -> float:
    cmds = []
    for share in _shares(names, concurrency):
        cmd = _curl(h)
        for name in share:
            cmd += ["-o", str(work / f"dl-{name}"), f"{base}/object/authenticated/bench/{name}"]
        cmds.append(cmd)
    cpu = _curls(cmds)
    for name in names:
        assert (work / f"dl-{name}").stat().st_size == size
        (work / f"dl-{name}").unlink()
    return cpu


def write_source(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            f.write(os.urandom(min(CHUNK, left)))
            left -= min(CHUNK, left)


@dataclass(frozen=True)
class Servers:
    base: str  # supalite's /storage/v1
    pid: int
    bare_base: str  # the ceiling's bare app (`serve_bare`)
    bare_pid: int


def transfer(
    s: Servers, bare: bool, h: dict[str, str], names: list[str], src: Path, work: Path,
    concurrency: int, figures: dict[str, float], cpu: dict[str, float],
) -> tuple[int, int]:  # fmt: skip
    """One upload batch then its download, against supalite or the bare app: MB/s into
    `figures`, the CPU seconds of the server and of curl added to `cpu`; the server's peak
    RSS during each."""
    base, pid = (s.bare_base, s.bare_pid) if bare else (s.base, s.pid)
    side = "bare " if bare else ""
    size = src.stat().st_size
    mb = len(names) * size / MB
    if bare:
        for name in names:  # the files the bare app serves
            os.link(src, work / name)
    curl: dict[str, float] = {}
    with PeakRss(pid) as up_rss:
        up = timed(lambda: curl.update(upload=upload(base, h, names, src, concurrency)))
    with PeakRss(pid) as down_rss:
        down = timed(
            lambda: curl.update(download=download(base, h, names, work, size, concurrency))
        )
    if bare:
        for name in names:
            (work / name).unlink()
    figures.update({f"{side}upload": mb / up, f"{side}download": mb / down})
    for way, server in (("upload", up_rss), ("download", down_rss)):
        for who, seconds in ((f"{side}server", server.cpu), (f"{side}curl", curl[way])):
            cpu[f"{who} {way}"] = cpu.get(f"{who} {way}", 0.0) + seconds
    return up_rss.peak, down_rss.peak


def measure(
    http: httpx.Client, s: Servers, h: dict[str, str], direct: Direct, work: Path,
    label: str, size: int, concurrency: int, runs: int,
) -> dict[str, Any]:  # fmt: skip
    """`runs` rounds of: the baselines, the bare app's upload and download, then supalite's,
    of the same batch, one after the other, so each round's figures share the machine's load
    of that moment (a ratio is taken within a round, then the median over rounds)."""
    src = work / f"src-{label}"
    write_source(src, size)
    batch = (10 if size < 100 * MB else 1) * concurrency
    mb = batch * size / MB
    rounds: dict[str, list[float]] = {}
    rss = {"idle": psutil.Process(s.pid).memory_info().rss, "upload": 0, "download": 0}
    cpu: dict[str, float] = {}
    for i in range(runs):
        figures = dict(zip(direct.names, direct.measure(src, work, size, batch, concurrency),
                           strict=True))  # fmt: skip
        names = [f"{label}-c{concurrency}-{i}-{j}" for j in range(batch)]
        transfer(s, True, h, names, src, work, concurrency, figures, cpu)
        up_peak, down_peak = transfer(s, False, h, names, src, work, concurrency, figures, cpu)
        # Removed at once, so every round starts from the same state (and moto's memory
        # holds one batch at most).
        r = http.request("DELETE", "/object/bench", json={"prefixes": names})
        assert r.status_code == 200, r.text
        for k, v in figures.items():
            rounds.setdefault(k, []).append(v)
        for base_name in (*direct.names, "bare"):
            for way in ("upload", "download"):
                against = figures[f"bare {way}" if base_name == "bare" else base_name]
                rounds.setdefault(f"{way}/{base_name}", []).append(figures[way] / against)
        rss["upload"] = max(rss["upload"], up_peak)
        rss["download"] = max(rss["download"], down_peak)
    src.unlink()
    return {
        "batch": batch,
        "median": {k: statistics.median(v) for k, v in rounds.items()},
        "rss MB": {k: v / MB for k, v in rss.items()},
        "cpu ms/MB": {k: 1000 * v / (runs * mb) for k, v in cpu.items()},
    }


def run(
    work: Path, s: Servers, h: dict[str, str], direct: Direct, runs: int, seconds: int,
    etag: str,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    http = httpx.Client(base_url=s.base, headers=h, timeout=600)
    assert http.post("/bucket", json={"name": "bench"}).status_code == 200
    if isinstance(direct, DiskCopy):
        # The server made the ETag asked for: an MD5 is 32 hex digits, an mtime one has a dash.
        assert http.post("/object/bench/etag-probe", content=b"x").status_code == 200
        made = http.get("/object/info/bench/etag-probe").json()["etag"]
        if ("-" in made) != (etag == "mtime"):
            raise SystemExit(f"asked for {etag} ETags, the server made {made}")
    for label, size in SIZES:
        for c in CONCURRENCY:
            out[f"{label} c{c}"] = measure(http, s, h, direct, work, label, size, c, runs)
    # 4 kB objects: upserts onto one key, then downloads of it.  (A 10 s request timeout:
    # moto, behind the S3 backend, can take over wrk's default 2 s on a loaded machine.)
    small = f"{s.base}/object/bench/small-4k"
    wrk(small, h, UPSERT_LUA, 2, request_timeout="10s")
    out["4kB upload req/s"] = wrk(small, h, UPSERT_LUA, seconds, request_timeout="10s")["rps"]
    get_url = f"{s.base}/object/authenticated/bench/small-4k"
    wrk(get_url, h, "", 2, request_timeout="10s")
    out["4kB download req/s"] = wrk(get_url, h, "", seconds, request_timeout="10s")["rps"]
    return out


def report(
    r: dict[str, Any], direct: Direct, runs: int, seconds: int, backend: str, etag: str
) -> None:
    if backend == "s3":
        print(
            "backend: S3, served by moto (an in-memory mock S3 server in Python, on this"
            " machine): not a performance baseline; the figures show streaming and flat"
            " memory, and what supalite adds over a direct put/get to the same server"
        )
    else:
        print(f"backend: disk (the data folder), {etag} ETags")
    print(
        f"medians of {runs} rounds; a round: the baselines, the bare app, then supalite, on the"
        " same batch (1 MB: 10 objects per client, 256 MB: 1 per client), same disk; curl, one"
        f" keep-alive connection per client; 4 kB: wrk, 32 connections, {seconds}s; one server"
        " worker; bare up/down: the transport's ceiling (a bare uvicorn app, no storage work)"
    )
    rows = [f"{label} c{c}" for label, _ in SIZES for c in CONCURRENCY]
    cols = [*direct.names, "bare upload", "bare download", "upload", "download"]
    heads = [*direct.names, "bare up", "bare down", "upload", "download"]
    print(f"{'':>10}  " + " ".join(f"{c:>10}" for c in heads) + "   (MB/s)")
    for key in rows:
        m = r[key]["median"]
        print(f"{key:>10}  " + " ".join(f"{m[col]:10.0f}" for col in cols))
    print(
        f"4 kB objects: upload {r['4kB upload req/s']:.0f} req/s,"
        f" download {r['4kB download req/s']:.0f} req/s"
    )
    for key in rows:
        rss = r[key]["rss MB"]
        print(
            f"server {key:>10}: RSS idle {rss['idle']:.0f} MB, peak during upload"
            f" {rss['upload']:.0f} MB, download {rss['download']:.0f} MB"
        )
    print("CPU ms/MB (up / down)        supalite    curl to it    bare app    curl to it")
    for key in rows:
        cpu = r[key]["cpu ms/MB"]
        pairs = [
            f"{cpu[f'{who} upload']:5.2f} / {cpu[f'{who} download']:4.2f}"
            for who in ("server", "curl", "bare server", "bare curl")
        ]
        print(f"cpu   {key:>10}:        " + "  ".join(pairs))
    print("(CPU: what the figures above cost each process, whatever else the machine runs)")
    print()
    titles = {"copyfile": "copyfile (kernel)", "user copy": "user-space copy",
              "S3 put": "direct S3 put/get", "bare": "bare app (ceiling)"}  # fmt: skip
    for key in rows:
        m = r[key]["median"]
        if backend == "s3":
            print(
                f"ratio {key:>10} vs {titles['S3 put']:<18} upload {m['upload/S3 put']:.2f}x"
                f"   download {m['download/S3 get']:.2f}x"
            )
        else:
            for name in direct.names:
                print(
                    f"ratio {key:>10} vs {titles[name]:<18} upload {m[f'upload/{name}']:.2f}x"
                    f"   download {m[f'download/{name}']:.2f}x"
                )
        print(
            f"ratio {key:>10} vs {titles['bare']:<18} upload {m['upload/bare']:.2f}x"
            f"   download {m['download/bare']:.2f}x"
        )
    for c in CONCURRENCY:
        rss = r[f"256MB c{c}"]["rss MB"]
        print(
            f"peak RSS growth during 256 MB uploads at concurrency {c}:"
            f" {rss['upload'] - rss['idle']:.0f} MB"
        )


if __name__ == "__main__":
    main()
