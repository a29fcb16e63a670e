"""Encryption at rest: byte-compatible with mcp-ts (vectors made by node's `crypto` here),
strict about keys, loud about values that do not decrypt, and rotatable."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supalite.sessions import errors
from supalite.sessions.crypto import Cipher, parse_key

KEY = "4f" * 32
OTHER = "a1" * 32

# mcp-ts's format as node writes and reads it: AES-256-GCM, 12-byte IV, 16-byte tag, hex,
# `enc:1:<iv>:<tag>:<ciphertext>` over JSON.stringify(value).
NODE = r"""
const crypto = require('crypto');
const [mode, keyHex, input] = process.argv.slice(1);
const key = Buffer.from(keyHex, 'hex');
if (mode === 'encrypt') {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(input, 'utf8'), c.final()]);
  process.stdout.write(`enc:1:${iv.toString('hex')}:${c.getAuthTag().toString('hex')}:${ct.toString('hex')}`);
} else {
  const [, , ivHex, tagHex, ctHex] = input.split(':');
  const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(ivHex, 'hex'));
  d.setAuthTag(Buffer.from(tagHex, 'hex'));
  const out = Buffer.concat([d.update(Buffer.from(ctHex, 'hex')), d.final()]).toString('utf8');
  process.stdout.write(JSON.stringify(JSON.parse(out)));
}
"""

VALUES = [
    {"access_token": "eyJ.a.b", "refresh_token": "r-1", "expires_in": 3600, "scope": "read"},
    {"Authorization": "Bearer x", "X-Ünïcode": "naïve ☃"},
    "pkce-verifier-0123456789abcdefghijklmnopqrstuvwxyz",
    {"client_id": "c", "redirect_uris": ["https://a/cb"], "nested": {"n": [1, 2.5, None, True]}},
]


def node(mode: str, key: str, text: str) -> str:
    r = subprocess.run(
        ["node", "-e", NODE, mode, key, text], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("value", VALUES)
def test_node_encrypts_python_decrypts(value: object) -> None:
    sealed = node("encrypt", KEY, json.dumps(value))
    assert sealed.startswith("enc:1:")
    assert Cipher(bytes.fromhex(KEY)).open(sealed) == value


@pytest.mark.parametrize("value", VALUES)
def test_python_encrypts_node_decrypts(value: object) -> None:
    sealed = Cipher(bytes.fromhex(KEY)).seal(value)
    iv, tag, ct = sealed.split(":")[2:]
    assert (len(iv), len(tag)) == (24, 32) and len(ct) > 0
    assert json.loads(node("decrypt", KEY, sealed)) == value


def test_each_value_gets_a_fresh_iv() -> None:
    c = Cipher(bytes.fromhex(KEY))
    a, b = c.seal({"t": 1}), c.seal({"t": 1})
    assert a != b and a.split(":")[2] != b.split(":")[2]


@pytest.mark.parametrize(
    "bad", ["short", "0" * 63, "0" * 65, "g" * 64, "secret-passphrase-of-32-chars!!!"]
)
def test_a_key_that_is_not_64_hex_is_an_error(bad: str) -> None:
    with pytest.raises(errors.SessionStoreError) as e:
        Cipher.from_env({"STORAGE_ENCRYPTION_KEY": bad})
    assert e.value.code == errors.BAD_KEY and "64 hex" in e.value.message
    with pytest.raises(errors.SessionStoreError):
        parse_key(bad)


def test_wrong_key_and_tampering_raise_instead_of_returning_ciphertext() -> None:
    sealed = Cipher(bytes.fromhex(KEY)).seal({"access_token": "t"})
    with pytest.raises(errors.SessionStoreError) as e:
        Cipher(bytes.fromhex(OTHER)).open(sealed, "tokens")
    assert e.value.code == errors.DECRYPTION_FAILED and "tokens" in e.value.message
    iv, tag, ct = sealed.split(":")[2:]
    flipped = f"enc:1:{iv}:{tag}:{'0' if ct[0] != '0' else '1'}{ct[1:]}"
    for broken in (flipped, f"enc:1:{iv}:{tag}", f"enc:1:{iv[:-2]}:{tag}:{ct}", "enc:1:zz:yy:xx"):
        with pytest.raises(errors.SessionStoreError) as e:
            Cipher(bytes.fromhex(KEY)).open(broken)
        assert e.value.code == errors.DECRYPTION_FAILED
    with pytest.raises(errors.SessionStoreError) as e:
        Cipher().open(sealed)  # encrypted, but no key configured
    assert e.value.code == errors.DECRYPTION_FAILED and "not set" in e.value.message


def test_plain_values_pass_through_and_no_key_stores_plain() -> None:
    assert Cipher(bytes.fromhex(KEY)).open({"legacy": "plain"}) == {"legacy": "plain"}
    assert Cipher().seal({"a": 1}) == {"a": 1}
    assert Cipher(bytes.fromhex(KEY)).seal(None) is None


def test_previous_key_reads_but_does_not_write() -> None:
    old = Cipher(bytes.fromhex(OTHER))
    sealed_old = old.seal({"v": "old"})
    rotating = Cipher.from_env(
        {"STORAGE_ENCRYPTION_KEY": KEY, "STORAGE_ENCRYPTION_KEY_PREVIOUS": OTHER}
    )
    assert rotating.open(sealed_old) == {"v": "old"}
    assert not rotating.is_current(sealed_old)
    fresh = rotating.seal({"v": "new"})
    assert rotating.is_current(fresh)
    assert Cipher(bytes.fromhex(KEY)).open(fresh) == {"v": "new"}
    with pytest.raises(errors.SessionStoreError):
        old.open(fresh)
    with pytest.raises(errors.SessionStoreError) as e:
        Cipher.from_env({"STORAGE_ENCRYPTION_KEY_PREVIOUS": OTHER})
    assert e.value.code == errors.BAD_KEY


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_round_trips(value: object) -> None:
    c = Cipher(bytes.fromhex(KEY))
    sealed = c.seal(value)
    if value is None:
        assert sealed is None
    else:
        assert sealed.startswith("enc:1:") and c.open(sealed) == value
