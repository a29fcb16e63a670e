"""The content type the Supabase CLI gives a file it uploads (`supabase seed buckets`, for a
bucket's `objects_path`): Go's `http.DetectContentType` on the first 512 bytes (the WHATWG
sniffing table as Go implements it), and, when that says `text/plain`, Go's
`mime.TypeByExtension` of the file's extension if it knows one (the CLI's
`pkg/storage/objects.go`, `UploadObject`).

Go's extension table is its built-in one (Go 1.25, the CLI's toolchain) completed by the
system's MIME database, which differs between machines; here the system's part is what Python's
`mimetypes` reads from the same files.  Text types get `; charset=utf-8`, as Go adds it.
"""

from __future__ import annotations

import mimetypes

SNIFF_LEN = 512
_WS = b"\t\n\x0c\r "

# (pattern, mask or None for an exact prefix, skip leading whitespace, type), in Go's order.
_Sig = tuple[bytes, bytes | None, bool, str]
_ANY4 = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_SIGNATURES: list[_Sig] = [
    (b"<?xml", b"\xff" * 5, True, "text/xml; charset=utf-8"),
    (b"%PDF-", None, False, "application/pdf"),
    (b"%!PS-Adobe-", None, False, "application/postscript"),
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", False, "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", None, False, "image/x-icon"),
    (b"\x00\x00\x02\x00", None, False, "image/x-icon"),
    (b"BM", None, False, "image/bmp"),
    (b"GIF87a", None, False, "image/gif"),
    (b"GIF89a", None, False, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", _ANY4 + b"\xff" * 6, False, "image/webp"),
    (b"\x89PNG\r\n\x1a\n", None, False, "image/png"),
    (b"\xff\xd8\xff", None, False, "image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", _ANY4 + b"\xff" * 4, False, "audio/aiff"),
    (b"ID3", b"\xff" * 3, False, "audio/mpeg"),
    (b"OggS\x00", b"\xff" * 5, False, "application/ogg"),
    (b"MThd\x00\x00\x00\x06", b"\xff" * 8, False, "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", _ANY4 + b"\xff" * 4, False, "video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", _ANY4 + b"\xff" * 4, False, "audio/wave"),
]
# After the MP4 check (Go's order).
_LATE_SIGNATURES: list[_Sig] = [
    (b"\x1a\x45\xdf\xa3", None, False, "video/webm"),
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", False, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", None, False, "font/ttf"),
    (b"OTTO", None, False, "font/otf"),
    (b"ttcf", None, False, "font/collection"),
    (b"wOFF", None, False, "font/woff"),
    (b"wOF2", None, False, "font/woff2"),
    (b"\x1f\x8b\x08", None, False, "application/x-gzip"),
    (b"PK\x03\x04", None, False, "application/zip"),
    (b"Rar!\x1a\x07\x00", None, False, "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", None, False, "application/x-rar-compressed"),
    (b"\x00asm", None, False, "application/wasm"),
]
_HTML_TAGS = [
    b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV", b"<FONT",
    b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR", b"<P", b"<!--",
]  # fmt: skip
# Go's `builtinTypesLower` (Go 1.25).
_GO_TYPES = {
    ".avif": "image/avif",
    ".css": "text/css; charset=utf-8",
    ".gif": "image/gif",
    ".htm": "text/html; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".mjs": "text/javascript; charset=utf-8",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".xml": "text/xml; charset=utf-8",
}


def _match(data: bytes, first_non_ws: int, sig: _Sig) -> bool:
    pattern, mask, skip_ws, _ = sig
    if mask is None:
        return data.startswith(pattern)
    if skip_ws:
        data = data[first_non_ws:]
    if len(data) < len(pattern):
        return False
    return all(data[i] & mask[i] == b for i, b in enumerate(pattern))


def _html(data: bytes) -> bool:
    for tag in _HTML_TAGS:
        if len(data) < len(tag) + 1:
            continue
        # Letters compare case-insensitively (Go masks the data byte with 0xDF).
        head = bytes(d & 0xDF if 0x41 <= t <= 0x5A else d for d, t in zip(data, tag, strict=False))
        if head == tag and data[len(tag)] in b" >":
            return True
    return False


def _mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 != 0 or data[4:8] != b"ftyp":
        return False
    # The 4 bytes at 12 are the major brand's version.
    return any(data[st : st + 3] == b"mp4" for st in range(8, box, 4) if st != 12)


def _text(data: bytes) -> bool:
    return not any(b <= 0x08 or b == 0x0B or 0x0E <= b <= 0x1A or 0x1C <= b <= 0x1F for b in data)


def detect_content_type(data: bytes) -> str:
    """Go's `http.DetectContentType`: always a type, `application/octet-stream` at worst."""
    data = data[:SNIFF_LEN]
    first = len(data) - len(data.lstrip(_WS))
    if _html(data[first:]):
        return "text/html; charset=utf-8"
    for sig in _SIGNATURES:
        if _match(data, first, sig):
            return sig[3]
    if _mp4(data):
        return "video/mp4"
    for sig in _LATE_SIGNATURES:
        if _match(data, first, sig):
            return sig[3]
    if _text(data[first:]):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def type_by_extension(ext: str) -> str:
    """Go's `mime.TypeByExtension` (`ext` with its dot); "" when unknown."""
    known = _GO_TYPES.get(ext.lower())
    if known:
        return known
    if not mimetypes.inited:
        mimetypes.init()  # reads the system's files, as Go's osInitMime does
    guessed = mimetypes.types_map.get(ext) or mimetypes.types_map.get(ext.lower())
    if not guessed:
        return ""
    if guessed.startswith("text/") and "charset" not in guessed:
        guessed += "; charset=utf-8"
    return guessed


def cli_content_type(head: bytes, filename: str) -> str:
    """The type the CLI uploads a file with, from its first bytes and its name."""
    sniffed = detect_content_type(head)
    if "text/plain" in sniffed:
        dot = filename.rfind(".")  # Go's filepath.Ext: from the last dot, "" without one
        by_ext = type_by_extension(filename[dot:]) if dot >= 0 else ""
        if by_ext:
            return by_ext
    return sniffed
