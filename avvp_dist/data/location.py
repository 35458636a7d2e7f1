"""Where shards live: a local folder, read as plain files, or a URL root, read with WebDataset's
opener (`webdataset.gopen`), the ecosystem's convention for object stores.

A shard root (`data.shards`) is a URL only when it starts with `http://`, `https://` or
`pipe:`; another scheme (`s3://`, `gs://`, ...) is refused with the `pipe:` form that reads
it (`check_root`); anything else is a local path, opened with `open()`, whatever ':' it holds (a
relative path such as `run:1/shards` is not a scheme, and `pipe:` never runs unless the
user wrote it). `http(s)://` roots are fetched by `curl` (webdataset's opener runs it), so
curl must be on PATH. A `pipe:` root is a command with `{}` where the path below the root
goes, e.g. `pipe:aws s3 cp s3://bucket/llp_shards/{} -`; its standard output is the file.

    >>> str(folder("http://host/shards", "train"))
    'http://host/shards/train'
    >>> file_in(folder("pipe:cat /data/{}", "train"), "manifest.json")
    'pipe:cat /data/train/manifest.json'
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import IO, Union

import webdataset as wds

Location = Union[str, Path]  # a URL (str) or a local path
URL_PREFIXES = ("http://", "https://", "pipe:")
PLACEHOLDER = "{}"


# how to read an object store's files as a pipe: root (its command-line tool writing to stdout)
PIPE_FORMS = {"s3": "pipe:aws s3 cp {url}/{{}} -", "gs": "pipe:gsutil cat {url}/{{}}",
              "az": "pipe:azcopy cp {url}/{{}} /dev/stdout", "hf": "pipe:curl -sL {url}/{{}}"}


def is_url(location: Location) -> bool:
    return isinstance(location, str) and location.startswith(URL_PREFIXES)


def check_root(shards: str) -> None:
    """A shard root with a URL scheme this reader does not open itself (`s3://`, `gs://`, ...)
    is a `ValueError` that shows the `pipe:` form reading it; a `file://` URL is refused too,
    naming the plain path. (Read as a local path, `s3://bucket/x` was a folder named `s3:`.)"""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", shards or "")
    if m is None or shards.startswith(URL_PREFIXES):
        return
    scheme, url = m.group(1).lower(), shards.rstrip("/")
    if scheme == "file":
        raise ValueError(f"data.shards {shards!r}: give the local folder as a path: {shards[len('file://'):]!r}")
    form = PIPE_FORMS.get(scheme, "pipe:<a command that writes {url}/<file> to stdout, with {{}} for <file>>")
    raise ValueError(f"data.shards {shards!r}: {scheme}:// roots are not opened directly; read them through a "
                     f"command, as a pipe: root: {form.format(url=url)!r}")


def _check_pipe(root: str) -> None:
    if root.startswith("pipe:") and PLACEHOLDER not in root:
        raise ValueError(f"shard root {root!r}: a pipe: root needs '{{}}' where the path below it goes, "
                         "e.g. 'pipe:aws s3 cp s3://bucket/shards/{} -'")


def shard_root(shards: str, default: Path) -> Location:
    """`data.shards` as a location: a URL as it is, a local path as a `Path`, `default` if empty."""
    return shards if is_url(shards) else Path(shards or default)


def folder(root: Location, *parts: str) -> Location:
    """A folder below `root` (a local path stays a `Path`)."""
    if not is_url(root):
        return Path(root).joinpath(*parts)
    _check_pipe(root)
    rel = "/".join(p.strip("/") for p in parts)
    if root.startswith("pipe:"):
        return root.replace(PLACEHOLDER, rel + "/" + PLACEHOLDER, 1) if rel else root
    return root.rstrip("/") + ("/" + rel if rel else "")


def file_in(where: Location, name: str) -> Location:
    """The file `name` in folder `where`, in the form `open_location` opens."""
    if not is_url(where):
        return Path(where) / name
    _check_pipe(where)
    return where.replace(PLACEHOLDER, name, 1) if where.startswith("pipe:") else where.rstrip("/") + "/" + name


def open_location(location: Location) -> IO[bytes]:
    """A binary reader: `open()` for local paths, webdataset's opener for URLs."""
    if not is_url(location):
        return open(location, "rb")
    if location.startswith(("http://", "https://")) and shutil.which("curl") is None:
        raise FileNotFoundError(f"{location}: http(s) shard roots are read with curl (webdataset's opener), "
                                "which is not on PATH; install curl")
    return wds.gopen(location, "rb")
