"""Image transformations (`/render/image/{public|authenticated|sign}/…`) against a live server,
on both backends: each resize mode's geometry, format negotiation, quality, Supabase's errors
for bad options and bad sources, the size bounds, the result cache (hits, and no stale result
after a new upload), access exactly as the matching `/object/…` download decides it,
`If-None-Match` (304 before any rendering) and HEAD.  On servers of their own: the limits as
configured through Supabase's settings, and `[storage.image_transformation] enabled = false`
(the render routes are not there, as on Supabase)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from PIL import Image

from supalite.storage import transform as T
from tests.auth.conftest import AuthServer, start_server
from tests.storage.conftest import (
    FOLDER_POLICY,
    STORAGE_TOML,
    StorageServer,
    Who,
    storage_error,
    with_storage,
)

GREEN, RED, BLUE = (0, 255, 0), (255, 0, 0), (0, 0, 255)


def striped(fmt: str = "PNG", size: tuple[int, int] = (400, 200)) -> bytes:
    """Green left quarter, red middle half, blue right quarter: where the colours land tells
    a crop (cover) from a squeeze (fill, contain)."""
    w, h = size
    im = Image.new("RGB", size, RED)
    im.paste(GREEN, (0, 0, w // 4, h))
    im.paste(BLUE, (w - w // 4, 0, w, h))
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def image(r: httpx.Response) -> Image.Image:
    assert r.status_code == 200, r.text
    im = Image.open(io.BytesIO(r.content))
    im.load()
    return im


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    for name, public in (("pics", True), ("private", False)):
        r = storage.call("service", "POST", "/bucket", json={"name": name, "public": public})
        assert r.status_code == 200, r.text
    storage.auth.script(FOLDER_POLICY)
    assert (
        storage.upload("service", "pics", "stripes.png", striped(), "image/png").status_code == 200
    )
    jpeg = striped("JPEG")
    assert storage.upload("service", "pics", "stripes.jpg", jpeg, "image/jpeg").status_code == 200
    return storage


def render(s: StorageServer, path: str, who: str | None = None, **params: object) -> httpx.Response:
    headers = {"accept": str(params.pop("accept"))} if "accept" in params else {}
    kind = "authenticated" if who else "public"
    return s.call(who, "GET", f"/render/image/{kind}/{path}", params=params, headers=headers)


def test_resize_modes(s: StorageServer) -> None:
    src = "pics/stripes.png"
    # cover (the default): scaled to 200×100, the centre 100×100 kept — all red.
    for params in ({}, {"resize": "cover"}):
        r = render(s, src, width=100, height=100, format="origin", **params)
        im = image(r).convert("RGB")
        assert im.size == (100, 100)
        assert close(im.getpixel((2, 50)), RED) and close(im.getpixel((97, 50)), RED)
        assert r.headers["x-transformations"] == "height:100,width:100,resizing_type:fill"
    # fill: stretched to the box, nothing cropped — the green edge survives.
    im = image(render(s, src, width=100, height=100, resize="fill", format="origin"))
    assert im.size == (100, 100) and close(im.convert("RGB").getpixel((2, 50)), GREEN)
    # contain: fits inside the box, aspect kept.
    im = image(render(s, src, width=100, height=100, resize="contain", format="origin"))
    assert im.size == (100, 50) and close(im.convert("RGB").getpixel((2, 25)), GREEN)
    # One side given: the other follows the aspect ratio, whatever the mode.
    for mode in T.RESIZE_MODES:
        assert image(render(s, src, width=100, resize=mode, format="origin")).size == (100, 50)
        assert image(render(s, src, height=50, resize=mode, format="origin")).size == (100, 50)
    # Never enlarged; sizes past 2500 are clamped (as Supabase clamps), not refused.
    assert image(render(s, src, width=1000, format="origin")).size == (400, 200)
    r = render(s, src, width=5000, height=0, format="origin")
    assert image(r).size == (400, 200) and r.headers["x-transformations"].startswith("width:2500")
    # cover with a box taller than the scaled image: cropped to what there is.
    assert image(render(s, src, width=300, height=300, format="origin")).size == (300, 200)


def test_format_negotiation(s: StorageServer) -> None:
    webp = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"  # what Chrome sends
    cases = [
        ("stripes.png", {"accept": webp}, "WEBP", "image/webp"),
        ("stripes.png", {}, "PNG", "image/png"),
        ("stripes.png", {"accept": "image/png,*/*"}, "PNG", "image/png"),
        ("stripes.png", {"accept": webp, "format": "origin"}, "PNG", "image/png"),
        ("stripes.png", {"format": "webp"}, "WEBP", "image/webp"),
        ("stripes.png", {"format": "avif"}, "AVIF", "image/avif"),
        ("stripes.jpg", {}, "JPEG", "image/jpeg"),
        ("stripes.jpg", {"accept": webp}, "WEBP", "image/webp"),
        ("stripes.jpg", {"accept": webp, "format": "origin"}, "JPEG", "image/jpeg"),
    ]
    for path, params, fmt, mime in cases:
        r = render(s, f"pics/{path}", width=80, **params)
        im = image(r)
        assert (im.format, r.headers["content-type"], im.size) == (fmt, mime, (80, 40)), params
        assert "Accept" in r.headers["vary"]
    # The download's headers, as Supabase's renderer sends them.
    r = render(s, "pics/stripes.png", width=80, download="small.png")
    assert "filename=small.png" in r.headers["content-disposition"]
    assert r.headers["etag"] and r.headers["cache-control"] and r.headers["last-modified"]


def test_quality(s: StorageServer) -> None:
    sizes = {}
    for q in (20, 100):
        r = render(s, "pics/stripes.jpg", width=300, quality=q, format="origin")
        assert image(r).format == "JPEG"
        assert r.headers["x-transformations"].endswith(f"quality:{q}")
        sizes[q] = len(r.content)
    assert sizes[20] < sizes[100]
    # The default is 80: the same bytes as asking for 80.
    default = render(s, "pics/stripes.jpg", width=300, format="origin").content
    assert default == render(s, "pics/stripes.jpg", width=300, quality=80, format="origin").content
    assert default != render(s, "pics/stripes.jpg", width=300, quality=81, format="origin").content


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"quality": 19}, "querystring/quality must be >= 20"),
        ({"quality": 101}, "querystring/quality must be <= 100"),
        ({"quality": "high"}, "querystring/quality must be integer"),
        ({"width": "abc"}, "querystring/width must be integer"),
        ({"width": "1.5"}, "querystring/width must be integer"),
        ({"height": -1}, "querystring/height must be >= 0"),
        ({"resize": "stretch"}, "querystring/resize must be equal to one of the allowed values"),
        ({"format": "gif"}, "querystring/format must be equal to one of the allowed values"),
    ],
)
def test_bad_options(s: StorageServer, params: dict[str, object], message: str) -> None:
    body = storage_error(render(s, "pics/stripes.png", **params), "400", "InvalidRequest")
    assert body["message"] == message and body["error"] == "Bad Request"


def test_bad_sources(s: StorageServer) -> None:
    assert s.upload("service", "pics", "note.txt", b"not a picture").status_code == 200
    body = storage_error(render(s, "pics/note.txt", width=10), "400", "InvalidRequest")
    assert body["message"] == T.INVALID_SOURCE
    # A truncated PNG: the header reads, the pixels do not.
    cut = striped()[:300]
    assert s.upload("service", "pics", "cut.png", cut, "image/png").status_code == 200
    body = storage_error(render(s, "pics/cut.png", width=10), "400", "InvalidRequest")
    assert body["message"] == T.INVALID_SOURCE
    # 8000×7000 = 56 MP (a few KB of PNG): refused from its header, before decoding.
    bomb = io.BytesIO()
    Image.new("1", (8000, 7000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 1024 * 1024
    assert s.upload("service", "pics", "bomb.png", bomb.getvalue(), "image/png").status_code == 200
    body = storage_error(render(s, "pics/bomb.png", width=10), "400", "InvalidRequest")
    assert body["message"] == T.RESOLUTION_TOO_BIG
    # A missing object is the download's answer.
    storage_error(render(s, "pics/nothing.png", width=10), "404", "NoSuchKey")


def _cache_files(s: StorageServer) -> list[Path]:
    root = s.server.project / "supabase" / ".supalite" / "render-cache"
    return sorted(p for p in root.glob("*/*") if not p.name.startswith(".tmp-"))


def test_cache_hit_and_new_version(s: StorageServer) -> None:
    assert s.upload("service", "pics", "v.png", striped(), "image/png").status_code == 200
    before = set(_cache_files(s))
    first = render(s, "pics/v.png", width=64, format="origin")
    assert image(first).size == (64, 32)
    new = [p for p in _cache_files(s) if p not in before]
    assert len(new) == 1
    # Served from the cache: what the entry holds is what comes back (here, marked bytes).
    marked = first.content + b"<from cache>"
    new[0].write_bytes(b"image/png\n" + marked)
    assert render(s, "pics/v.png", width=64, format="origin").content == marked
    # Other options are another entry; the same options with WebP negotiated are too.
    assert render(s, "pics/v.png", width=65, format="origin").content != marked
    assert render(s, "pics/v.png", width=64, accept="image/webp").content != marked
    # A new upload is a new version: rendered afresh, never the old entry.
    blue = io.BytesIO()
    Image.new("RGB", (200, 200), BLUE).save(blue, "PNG")
    r = s.upload("service", "pics", "v.png", blue.getvalue(), "image/png", x_upsert="true")
    assert r.status_code == 200, r.text
    im = image(render(s, "pics/v.png", width=64, format="origin"))
    assert im.size == (64, 64) and close(im.convert("RGB").getpixel((10, 10)), BLUE)


def test_access(s: StorageServer) -> None:
    alice = s["alice"]
    mine = f"{alice.uid}/me.png"
    assert s.upload("alice", "private", mine, striped(), "image/png").status_code == 200
    # authenticated: RLS decides, as for /object/authenticated.
    assert image(render(s, f"private/{mine}", "alice", width=40)).size == (40, 20)
    storage_error(render(s, f"private/{mine}", "bob", width=40), "404", "NoSuchKey")
    storage_error(render(s, f"private/{mine}", "anon", width=40), "404", "NoSuchKey")
    body = storage_error(
        s.http.get(f"/storage/v1/render/image/authenticated/private/{mine}"), "403", "AccessDenied"
    )
    assert body["message"] == "Invalid Compact JWS"
    # public: only a public bucket, with no key at all.
    assert image(s.http.get("/storage/v1/render/image/public/pics/stripes.png?width=40"))
    storage_error(render(s, f"private/{mine}", width=40), "404", "NoSuchBucket")
    # sign: the options are fixed in the token; the query cannot change them.
    body_json = {"expiresIn": 60, "transform": {"width": 50, "resize": "contain"}}
    r = s.call("alice", "POST", f"/object/sign/private/{mine}", json=body_json)
    assert r.status_code == 200, r.text
    url = r.json()["signedURL"]
    assert url.startswith(f"/render/image/sign/private/{mine}?token=")
    token = parse_qs(urlsplit(url).query)["token"][0]
    secret = s.server.info["JWT secret"]
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["transformations"] == "width:50,resize:contain"
    got = s.http.get("/storage/v1" + url + "&width=10")
    assert image(got).size == (50, 25) and "expires" in got.headers
    # Without transform, a plain download URL; a bad transform is refused before signing.
    r = s.call("alice", "POST", f"/object/sign/private/{mine}", json={"expiresIn": 60})
    assert r.json()["signedURL"].startswith("/object/sign/")
    bad = {"expiresIn": 60, "transform": {"quality": 5}}
    body = storage_error(
        s.call("alice", "POST", f"/object/sign/private/{mine}", json=bad), "400", "InvalidRequest"
    )
    assert body["message"] == "body/transform/quality must be >= 20"
    # bob may not sign what RLS hides from him.
    r = s.call("bob", "POST", f"/object/sign/private/{mine}", json=body_json)
    storage_error(r, "404", "NoSuchKey")
    # Forged (another secret), for another path, missing.
    forged = jwt.encode(
        {"url": f"private/{mine}", "scope": "download", "exp": int(time.time()) + 60,
         "transformations": "width:10"},
        "not-the-secret" * 3,
    )  # fmt: skip
    path = f"/storage/v1/render/image/sign/private/{mine}"
    body = storage_error(s.http.get(path, params={"token": forged}), "400", "InvalidJWT")
    assert body["message"] == "signature verification failed"
    other = f"{alice.uid}/other.png"
    assert s.upload("alice", "private", other, striped(), "image/png").status_code == 200
    storage_error(
        s.http.get(f"/storage/v1/render/image/sign/private/{other}", params={"token": token}),
        "400", "InvalidSignature",
    )  # fmt: skip
    storage_error(s.http.get(path), "400", "InvalidRequest")


def test_if_none_match_is_304_before_rendering(s: StorageServer) -> None:
    first = render(s, "pics/stripes.png", width=90, format="origin")
    etag = first.headers["etag"]
    assert image(first).size == (90, 45)
    before = _cache_files(s)
    # The source's ETag: current whatever the options, so options never rendered yet (no
    # cache entry appears) answer 304 too; the answer keeps the response's caching headers.
    for who, kind in ((None, "public"), ("service", "authenticated")):
        for inm in (etag, f'"other", {etag}', "*"):
            r = s.call(who, "GET", f"/render/image/{kind}/pics/stripes.png",
                       params={"width": 91}, headers={"If-None-Match": inm})  # fmt: skip
            assert (r.status_code, r.content) == (304, b""), (kind, inm, r.text)
            assert r.headers["etag"] == etag and r.headers["cache-control"]
            assert "Accept" in r.headers["vary"]
    assert _cache_files(s) == before
    # Another tag (a stale copy): the image.
    params = {"width": 90, "format": "origin"}
    stale = s.call(None, "GET", "/render/image/public/pics/stripes.png", params=params,
                   headers={"If-None-Match": '"x"'})  # fmt: skip
    assert stale.status_code == 200 and stale.content == first.content
    # Through a signed URL too (its Expires kept on the 304).
    signed = s.call("service", "POST", "/object/sign/pics/stripes.png",
                    json={"expiresIn": 60, "transform": {"width": 30}})  # fmt: skip
    url = "/storage/v1" + signed.json()["signedURL"]
    r = s.http.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.headers["etag"] == etag and "expires" in r.headers
    assert image(s.http.get(url)).size == (30, 15)


def test_head_has_the_headers_of_get(s: StorageServer) -> None:
    webp = {"accept": "image/webp"}
    cases: list[tuple[str, dict[str, object]]] = [
        ("public/pics/stripes.png", {"width": 70}),
        ("public/pics/stripes.jpg", {"width": 70, "format": "origin"}),
    ]
    for path, params in cases:
        got = s.http.get(f"/storage/v1/render/image/{path}", params=params, headers=webp)
        head = s.http.head(f"/storage/v1/render/image/{path}", params=params, headers=webp)
        assert (head.status_code, head.content) == (200, b""), head.text
        for name in ("content-type", "content-length", "etag", "cache-control",
                     "x-transformations", "last-modified"):  # fmt: skip
            assert head.headers[name] == got.headers[name], name
        assert int(head.headers["content-length"]) == len(got.content)
    mine = f"{s['alice'].uid}/head.png"
    assert s.upload("alice", "private", mine, striped(), "image/png").status_code == 200
    r = s.call("alice", "HEAD", f"/render/image/authenticated/private/{mine}", params={"width": 8})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = s.call("bob", "HEAD", f"/render/image/authenticated/private/{mine}", params={"width": 8})
    assert r.status_code == 400 and r.content == b""  # NoSuchKey, without its body
    etag = s.http.get("/storage/v1/object/public/pics/stripes.png").headers["etag"]
    r = s.http.head("/storage/v1/render/image/public/pics/stripes.png",
                    params={"width": 8}, headers={"If-None-Match": etag})  # fmt: skip
    assert r.status_code == 304 and r.headers["etag"] == etag


def _server(auth: AuthServer) -> StorageServer:
    """A disk-backed storage server of its own with the service and anon callers, and a
    public bucket holding the striped PNG."""
    s = StorageServer(auth)
    s.callers["service"] = Who("service", auth.service)
    s.callers["anon"] = Who("anon", auth.anon)
    r = s.call("service", "POST", "/bucket", json={"name": "pics", "public": True})
    assert r.status_code == 200, r.text
    assert s.upload("service", "pics", "stripes.png", striped(), "image/png").status_code == 200
    return s


# Supabase's settings: Storage's own for the output size, imgproxy's for the source (as the
# Supabase CLI and the self-hosted compose file set them).
LIMITS_ENV = {
    "IMAGE_TRANSFORMATION_LIMIT_MAX_SIZE": "120",
    "IMAGE_TRANSFORMATION_LIMIT_MIN_SIZE": "16",
    "IMGPROXY_MAX_SRC_RESOLUTION": "0.05",  # megapixels: 50 000 px, below the 400×200 stripes
    "IMGPROXY_MAX_SRC_FILE_SIZE": "2000",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageServer]:
    server = start_server(tmp_path_factory.mktemp("render"), with_storage, LIMITS_ENV)
    s = _server(AuthServer(server, server.client()))
    yield s
    s.http.close()
    s.server.stop()


def test_configured_limits(limited: StorageServer) -> None:
    s = limited
    small = io.BytesIO()
    Image.new("RGB", (200, 100), RED).save(small, "PNG")  # 20 000 px, a few hundred bytes
    assert len(small.getvalue()) < 2000
    assert (
        s.upload("service", "pics", "small.png", small.getvalue(), "image/png").status_code == 200
    )
    # Sizes clamped to 16..120 instead of 1..2500.
    r = render(s, "pics/small.png", width=150, format="origin")
    assert image(r).size == (120, 60) and r.headers["x-transformations"].startswith("width:120")
    r = render(s, "pics/small.png", width=4, format="origin")
    assert image(r).size == (16, 8)
    # Signed URLs are clamped the same way when signed.
    signed = s.call("service", "POST", "/object/sign/pics/small.png",
                    json={"expiresIn": 60, "transform": {"width": 500}})  # fmt: skip
    token = parse_qs(urlsplit(signed.json()["signedURL"]).query)["token"][0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["transformations"].startswith("width:120,")
    # The source bounds: 80 000 px is over 0.05 MP; a file over 2000 bytes is too large.
    body = storage_error(render(s, "pics/stripes.png", width=10), "400", "InvalidRequest")
    assert body["message"] == T.RESOLUTION_TOO_BIG
    noisy = io.BytesIO()
    Image.frombytes("RGB", (60, 60), os.urandom(60 * 60 * 3)).save(noisy, "PNG")
    assert len(noisy.getvalue()) > 2000
    assert (
        s.upload("service", "pics", "noisy.png", noisy.getvalue(), "image/png").status_code == 200
    )
    body = storage_error(render(s, "pics/noisy.png", width=10), "400", "InvalidRequest")
    assert body["message"] == T.SOURCE_TOO_BIG


def image_transformation_off(text: str) -> str:
    return with_storage(text, STORAGE_TOML + "\n[storage.image_transformation]\nenabled = false\n")


@pytest.fixture(scope="module")
def render_off(auth_server_factory: Callable[..., AuthServer]) -> StorageServer:
    return _server(auth_server_factory(image_transformation_off))


def test_disabled_render_routes_are_not_there(render_off: StorageServer) -> None:
    s = render_off
    assert s.download("service", "pics", "stripes.png").status_code == 200
    for method in ("GET", "HEAD"):
        for who, path in (
            (None, "/render/image/public/pics/stripes.png?width=10"),
            ("service", "/render/image/authenticated/pics/stripes.png"),
            (None, "/render/image/sign/pics/stripes.png?token=x"),
            (None, "/render/image/authenticated/pics/stripes.png"),  # no JWT: still not there
        ):
            r = s.call(who, method, path)
            assert r.status_code == 404, (method, path, r.text)
            if method == "GET":
                assert r.json() == {
                    "statusCode": "404", "error": "Not Found", "code": "InvalidRequest",
                    "message": f"Route GET:{path} not found",
                }  # fmt: skip
    assert not (s.server.project / "supabase" / ".supalite" / "render-cache").exists()
    r = s.call("service", "GET", "/config")
    assert r.json()["features"]["imageTransformation"] == {"enabled": False}


# ------------------------------------------------------------------------------ no server


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = T.ResultCache(tmp_path, cap=250)
    for i, key in enumerate(("aa1", "bb2", "cc3")):
        cache.put(key, b"x" * 100 if key != "cc3" else b"x" * 40, "image/png")
        path = cache._path(key)
        os.utime(path, (1000 + i, 1000 + i))  # explicit ages: aa1 oldest, then bb2, cc3
    assert cache.get("aa1") == (b"x" * 100, "image/png")  # now the most recently used
    cache.put("dd4", b"y" * 100, "image/webp")  # over the cap: bb2 goes first
    assert cache.get("bb2") is None
    assert cache.get("aa1") is not None and cache.get("dd4") == (b"y" * 100, "image/webp")


def test_pixel_bound_in_process() -> None:
    small = T.Limits(max_source_pixels=400 * 200 - 1)
    with pytest.raises(T.E.StorageError) as info:
        T.render_bytes(striped(), T.Options(width=10), False, small)
    assert info.value.message == T.RESOLUTION_TOO_BIG
    data, mime = T.render_bytes(striped(), T.Options(width=10), False, T.Limits())
    assert mime == "image/png" and Image.open(io.BytesIO(data)).size == (10, 5)
