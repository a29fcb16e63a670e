"""Image transformations (`/render/image/…`): resize, re-encode, cache — no HTTP here.

Supabase Storage hands this to imgproxy; supalite does it in-process with Pillow, keeping the
observable behaviour of Supabase's renderer and of imgproxy as Supabase configures it:

- options `width`, `height` (0 or absent: not set; otherwise clamped to 1..2500, Supabase's
  hosted limits, or as configured: `limits_for`), `resize` (`cover` default → imgproxy `fill`:
  scale to cover the box, crop the centre; `contain` → `fit`: scale to fit inside; `fill` →
  `force`: stretch), `quality` (20..100, default 80, imgproxy's), `format` (`origin`, `webp`,
  `avif`);
- images are never enlarged (imgproxy's `enlarge` is off), EXIF orientation is applied
  (imgproxy's auto-rotate), an animated source renders its first frame;
- without `format`, the result is WebP when the client's `Accept` names `image/webp`
  (imgproxy's WebP detection), else the source's own format; `format=origin` never converts;
- errors are the messages Supabase maps imgproxy's to (`InvalidRequest`, logical 400).

Work is bounded: the source is at most `Limits.max_source_bytes` (checked before reading it)
and `Limits.max_source_pixels` (checked from the header, before decoding — the decompression
bomb guard), and the output is at most 2500×2500.  Decoding and encoding run in a worker
thread, a few at a time, so the event loop never waits on them.  Results are cached on disk,
keyed by (bucket, object version, options): a new upload is a new version, so a stale result
is never served, and old versions' results age out of the size-capped LRU cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from supalite.config import StorageSettings
from supalite.storage import errors as E
from supalite.storage import objects
from supalite.storage.context import StorageContext

RESIZE_MODES = ("cover", "contain", "fill")
FORMATS = ("origin", "avif", "webp")
# imgproxy's names for the resize modes (Supabase's `formatResizeType`): the X-Transformations
# header says what was applied in those words, as Supabase's does.
_IMGPROXY_RESIZE = {"cover": "fill", "contain": "fit", "fill": "force"}
DEFAULT_QUALITY = 80  # imgproxy's IMGPROXY_QUALITY default
MIN_QUALITY, MAX_QUALITY = 20, 100

# Decoders a source may use: the web's image formats (and BMP/TIFF), nothing exotic — every
# decoder is attack surface, and imgproxy's list is about this one.
_SOURCE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "AVIF", "BMP", "TIFF")
_MIME = {
    "JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
    "AVIF": "image/avif", "BMP": "image/bmp", "TIFF": "image/tiff",
}  # fmt: skip

INVALID_SOURCE = "The source image is invalid or unsupported for rendering"
SOURCE_TOO_BIG = "The source image file is too large to process"
RESOLUTION_TOO_BIG = "The source image resolution is too large to process"


@dataclass(frozen=True)
class Limits:
    min_size: int = 1
    max_size: int = 2500  # Supabase (hosted): width and height 1..2500, larger ones clamped
    max_source_bytes: int = 25 * 1024 * 1024  # Supabase: "image size cannot exceed 25MB"
    max_source_pixels: int = 50_000_000  # Supabase: "resolution cannot exceed 50MP"
    cache_bytes: int = 256 * 1024 * 1024
    workers: int = 2  # decodes at once: each may hold a decoded 50MP image (~200 MB RGBA)


def limits_for(st: StorageSettings) -> Limits:
    """The limits as configured (Supabase's names, config.py); unset ones keep the defaults."""
    configured = {
        "min_size": st.image_min_size, "max_size": st.image_max_size,
        "max_source_pixels": st.image_max_source_pixels,
        "max_source_bytes": st.image_max_source_bytes,
    }  # fmt: skip
    return dataclasses.replace(Limits(), **{k: v for k, v in configured.items() if v is not None})


@dataclass(frozen=True)
class Options:
    width: int | None = None
    height: int | None = None
    resize: str = "cover"
    quality: int | None = None  # None: the default (80), sent on as not set
    format: str | None = None  # None: negotiated from Accept

    def segments(self) -> list[str]:
        """What is applied, as Supabase names it for imgproxy (the X-Transformations header)."""
        return self._parts(resize_key="resizing_type", resize=_IMGPROXY_RESIZE[self.resize])

    def token_string(self) -> str:
        """The `transformations` claim of a signed URL, as Supabase writes it
        (`applyTransformation(…, keepOriginal=true)`)."""
        return ",".join(self._parts(resize_key="resize", resize=self.resize))

    def _parts(self, *, resize_key: str, resize: str) -> list[str]:
        """The options set, in Supabase's order; the two forms differ only in the resize."""
        out = []
        if self.height:
            out.append(f"height:{self.height}")
        if self.width:
            out.append(f"width:{self.width}")
        if self.width or self.height:
            out.append(f"{resize_key}:{resize}")
        if self.quality:
            out.append(f"quality:{self.quality}")
        if self.format and self.format != "origin":
            out.append(f"format:{self.format}")
        return out

    @property
    def empty(self) -> bool:
        return not (self.width or self.height or self.quality or self.format)


# ------------------------------------------------------------------------------ options


def _bad(message: str) -> E.StorageError:
    # Supabase validates these with its route schema: Fastify's validation error, rendered
    # as InvalidRequest with error "Bad Request" and ajv's message.
    return E.StorageError(400, "InvalidRequest", message, error="Bad Request")


def _integer(raw: Any, where: str, lo: int | None = None, hi: int | None = None) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise _bad(f"{where} must be integer")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str):
        s = raw.strip()
        if not s.lstrip("-").isdigit():
            raise _bad(f"{where} must be integer")
        raw = int(s)
    if not isinstance(raw, int):
        raise _bad(f"{where} must be integer")
    if lo is not None and raw < lo:
        raise _bad(f"{where} must be >= {lo}")
    if hi is not None and raw > hi:
        raise _bad(f"{where} must be <= {hi}")
    return raw


def _choice(raw: Any, where: str, allowed: tuple[str, ...]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise _bad(f"{where} must be equal to one of the allowed values")
    return str(raw)


def parse_options(source: Mapping[str, Any], where: str, limits: Limits) -> Options:
    """Options from a query string (`where` = "querystring") or a sign request's `transform`
    (`where` = "body/transform"), checked in the order of Supabase's schema."""
    height = _integer(source.get("height"), f"{where}/height", lo=0)
    width = _integer(source.get("width"), f"{where}/width", lo=0)
    resize = _choice(source.get("resize"), f"{where}/resize", RESIZE_MODES)
    fmt = _choice(source.get("format"), f"{where}/format", FORMATS)
    quality = _integer(source.get("quality"), f"{where}/quality", MIN_QUALITY, MAX_QUALITY)
    return Options(
        width=_clamp(width, limits), height=_clamp(height, limits), resize=resize or "cover",
        quality=quality, format=fmt,
    )  # fmt: skip


def _clamp(value: int | None, limits: Limits) -> int | None:
    # 0 means "not set" (Supabase tests truthiness); anything else is clamped, not refused.
    if not value:
        return None
    return min(max(value, limits.min_size), limits.max_size)


def options_from_token(transformations: str, fmt: Any, limits: Limits) -> Options:
    """The options a signed URL carries (Supabase's `setTransformationsFromString`: lenient,
    since only this server signs them).  `format: "origin"` in the token is honoured."""
    values: dict[str, str] = {}
    for part in transformations.split(","):
        name, _, value = part.partition(":")
        if value:
            values[name] = value.split(":", 1)[0]

    def num(name: str) -> int | None:
        v = values.get(name, "")
        return int(v) if v.isdigit() else None

    resize = values.get("resize", "cover")
    out_fmt = values.get("format")
    if out_fmt not in FORMATS:
        out_fmt = "origin" if fmt == "origin" else None
    quality = num("quality")
    if quality is not None:
        quality = min(max(quality, MIN_QUALITY), MAX_QUALITY)
    return Options(
        width=_clamp(num("width"), limits), height=_clamp(num("height"), limits),
        resize=resize if resize in RESIZE_MODES else "cover", quality=quality, format=out_fmt,
    )  # fmt: skip


def sign_claims(transform: Any, limits: Limits | None = None) -> dict[str, str]:
    """Extra claims for a signed URL from the request's `transform` (empty: a plain download
    URL), as Supabase's `getSignedURL` adds them."""
    if transform is None:
        return {}
    if not isinstance(transform, dict):
        raise _bad("body/transform must be object")
    options = parse_options(transform, "body/transform", limits or Limits())
    claims = {"transformations": options.token_string(), "format": options.format or ""}
    # Supabase drops empty claims; with none left, the URL is a plain /object/sign/ one.
    return {k: v for k, v in claims.items() if v}


# ------------------------------------------------------------------------------ pixels


def _target(size: tuple[int, int], o: Options) -> tuple[tuple[int, int], tuple[int, int]]:
    """(size to scale to, size to crop to), imgproxy's geometry without enlarging."""
    sw, sh = size
    w, h = o.width, o.height
    if not w and not h:
        return size, size
    if o.resize == "fill" and w and h:
        sx, sy = min(w / sw, 1.0), min(h / sh, 1.0)
    else:
        if w and h:
            pick = max if o.resize == "cover" else min
            scale = pick(w / sw, h / sh)
        else:
            scale = w / sw if w else (h or sh) / sh
        sx = sy = min(scale, 1.0)
    scaled = (max(1, round(sw * sx)), max(1, round(sh * sy)))
    if o.resize == "cover":
        return scaled, (min(w or scaled[0], scaled[0]), min(h or scaled[1], scaled[1]))
    return scaled, scaled


def _out_format(source: str, o: Options, webp_ok: bool) -> str:
    if o.format == "webp" or (o.format is None and webp_ok):
        return "WEBP"
    if o.format == "avif":
        return "AVIF"
    return source if source in _MIME else "PNG"


def render_bytes(data: bytes, o: Options, webp_ok: bool, limits: Limits) -> tuple[bytes, str]:
    """The transformed image and its media type.  Blocking: run in a thread."""
    try:
        with warnings.catch_warnings():
            # The pixel bound is ours (below); Pillow's global one only warns before it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_SOURCE_FORMATS)
    except Image.DecompressionBombError as e:
        raise E.StorageError(400, "InvalidRequest", RESOLUTION_TOO_BIG) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise E.StorageError(400, "InvalidRequest", INVALID_SOURCE) from e
    with im:
        # Image.open read only the header: refuse a bomb before a pixel is decoded.
        if im.width * im.height > limits.max_source_pixels:
            raise E.StorageError(400, "InvalidRequest", RESOLUTION_TOO_BIG)
        source_format = im.format or "PNG"
        try:
            im.seek(0)  # an animation renders its first frame
            im.load()
            frame = ImageOps.exif_transpose(im) or im
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise E.StorageError(400, "InvalidRequest", INVALID_SOURCE) from e
        scaled, crop = _target(frame.size, o)
        if frame.mode not in ("RGB", "RGBA", "L", "LA"):
            frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
        if scaled != frame.size:
            frame = frame.resize(scaled, Image.Resampling.LANCZOS, reducing_gap=3.0)
        if crop != scaled:
            left, top = (scaled[0] - crop[0]) // 2, (scaled[1] - crop[1]) // 2
            frame = frame.crop((left, top, left + crop[0], top + crop[1]))
        fmt = _out_format(source_format, o, webp_ok)
        quality = o.quality or DEFAULT_QUALITY
        out = io.BytesIO()
        if fmt == "JPEG":
            if frame.mode in ("RGBA", "LA"):
                # JPEG has no alpha: flatten on white, as imgproxy does.
                background = Image.new("RGB", frame.size, (255, 255, 255))
                background.paste(frame, mask=frame.getchannel("A"))
                frame = background
            frame.save(out, "JPEG", quality=quality)
        elif fmt in ("WEBP", "AVIF"):
            frame.save(out, fmt, quality=quality)
        else:
            frame.save(out, fmt)
        return out.getvalue(), _MIME[fmt]


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info


# ------------------------------------------------------------------------------ cache


class ResultCache:
    """Rendered images on disk, one file per key, evicted least recently used first once the
    total passes `cap` bytes.  Each entry starts with its media type and a newline.  Files are
    written under a temporary name and renamed, so a reader (another worker process too) sees
    a whole entry or none."""

    def __init__(self, root: Path, cap: int) -> None:
        self.root = root
        self.cap = cap
        self._total: int | None = None  # an estimate between scans; a scan corrects it

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
            os.utime(path)  # access time by hand: data folders are often mounted noatime
        except FileNotFoundError:
            return None
        mime, sep, data = raw.partition(b"\n")
        return (data, mime.decode()) if sep else None

    def put(self, key: str, data: bytes, mime: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(mime.encode() + b"\n" + data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self._total is not None:
            self._total += len(data)
        if self._total is None or self._total > self.cap:
            self._evict()

    def _evict(self) -> None:
        entries = []
        for p in self.root.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                st = p.stat()
                entries.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries, key=lambda e: e[0]):
            if total <= self.cap:
                break
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            total -= size
        self._total = total


def cache_key(bucket_id: str, version: str, o: Options, webp_ok: bool) -> str:
    # The version names the bytes (a new upload is a new version); the options and whether
    # WebP was negotiated decide everything else about the result.
    negotiated = "webp" if (o.format is None and webp_ok) else ""
    text = "\0".join([bucket_id, version, repr(o), negotiated])
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------ service


@dataclass(frozen=True)
class Rendered:
    obj: objects.ObjectRow
    data: bytes
    mimetype: str


class ImageRenderer:
    def __init__(self, cache_dir: Path, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.cache = ResultCache(cache_dir, self.limits.cache_bytes)
        self._slots = asyncio.Semaphore(self.limits.workers)

    async def render(
        self,
        ctx: StorageContext,
        obj: objects.ObjectRow,
        find: Callable[[], Awaitable[objects.ObjectRow]],
        options: Options,
        accept: str,
    ) -> Rendered:
        """`obj`, which `find` returned (its access check: made before, so a caller who may
        not read the object learns nothing from the cache), transformed.  `find` is asked
        again if an overwrite removed the bytes meanwhile."""
        webp_ok = "image/webp" in accept.lower()
        if obj.version:
            key = cache_key(obj.bucket_id, obj.version, options, webp_ok)
            hit = await asyncio.to_thread(self.cache.get, key)
            if hit is not None:
                return Rendered(obj, hit[0], hit[1])
        obj, blob = await objects.open_current(ctx, obj, find)
        try:
            if blob.size > self.limits.max_source_bytes:
                raise E.StorageError(400, "InvalidRequest", SOURCE_TOO_BIG)
            # The source is bounded (above), so buffering it whole is fine: Pillow needs
            # random access to decode anyway.
            chunks = [chunk async for chunk in blob.read(0, blob.size - 1)] if blob.size else []
        finally:
            await blob.close()
        async with self._slots:
            data, mime = await asyncio.to_thread(
                render_bytes, b"".join(chunks), options, webp_ok, self.limits
            )
        if obj.version:
            key = cache_key(obj.bucket_id, obj.version, options, webp_ok)
            await asyncio.to_thread(self.cache.put, key, data, mime)
        return Rendered(obj, data, mime)
