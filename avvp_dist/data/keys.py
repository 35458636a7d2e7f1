"""Video name <-> shard sample key: an exact, collision-free round trip for every real name.

WebDataset splits a tar member name at the first '.' of its last path component into
the sample key and the member suffix (`AKVyIQoSyBA_131.8_141.8.json` would become key
`AKVyIQoSyBA_131` and suffix `8_141.8.json`), and keys of the form `__name__` are its
own fields. Real LLP names contain '.' (five in `AVVP_train.csv`), and YouTube ids may
start with '-', '_' or '__'. So the key is the name with every character outside
`[A-Za-z0-9_-]`, and `%` itself, written as `%XX` (its UTF-8 bytes, upper-case hex),
and the first '_' of a name that would read `__...__` written as `%5F`. Ordinary
names (YouTube ids, UnAV-100 ids) are their own keys; `decode_key` inverts
`encode_key` exactly, so two names never share a key.

    >>> encode_key("AKVyIQoSyBA_131.8_141.8")
    'AKVyIQoSyBA_131%2E8_141%2E8'
    >>> decode_key(encode_key("__x__")) == "__x__"
    True
"""
from __future__ import annotations

import re
from urllib.parse import unquote

_SAFE = re.compile(r"[A-Za-z0-9_-]")
_KEY = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")


def encode_key(name: str) -> str:
    """The shard sample key of video `name` (non-empty)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"video name {name!r}: names must be non-empty strings")
    key = "".join(ch if _SAFE.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode()) for ch in name)
    if key.startswith("__") and key.endswith("__"):
        key = "%5F" + key[1:]
    return key


def decode_key(key: str) -> str:
    """The video name behind a shard sample key; a key `encode_key` cannot have written is a `ValueError`."""
    if not _KEY.fullmatch(key or "") or (key.startswith("__") and key.endswith("__")):
        raise ValueError(f"sample key {key!r} was not written by avvp_dist (see avvp_dist.data.keys)")
    name = unquote(key, errors="strict")
    if encode_key(name) != key:  # e.g. '%41' for 'A': a name has exactly one key
        raise ValueError(f"sample key {key!r} was not written by avvp_dist (see avvp_dist.data.keys)")
    return name
