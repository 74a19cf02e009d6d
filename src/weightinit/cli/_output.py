"""What the CLI writes: streams that print any text (a lone surrogate in a module name, a path
from undecodable bytes) instead of failing mid-line, consoles of a width, and the output paths
the commands take (every one creates missing parent folders, and refuses a file where a folder
must be, before any work starts)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from .._errors import InitError

MIN_WIDTH, MAX_WIDTH = 40, 1000  # --width


class SafeStream(io.TextIOBase):
    """A text stream over `stream` that writes what its encoding cannot (a lone surrogate such
    as '\\ud800', or '━' to an ASCII terminal) as a backslash escape instead of raising."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream

    @property
    def stream(self) -> Any:
        return self._stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "backslashreplace"

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
        except UnicodeEncodeError:
            encoding = self.encoding
            self._stream.write(text.encode(encoding, "backslashreplace").decode(encoding,
                                                                               "replace"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(isatty is not None and isatty())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def writable(self) -> bool:
        return True


def safe(stream: Any) -> Any:
    """`stream` wrapped in a SafeStream (once)."""
    return stream if isinstance(stream, SafeStream) else SafeStream(stream)


def console(width: int | None, *, stderr: bool = False) -> Any:
    """A rich Console of `width` columns (None: the terminal's, or $COLUMNS, or 80)."""
    from rich.console import Console

    return Console(width=width, stderr=stderr)


def check_output(option: str, path: str, kind: str) -> Path:
    """Refuse, before any work, an output `path` that cannot be written as a `kind` ("file" or
    "folder"): a file where a folder must be, or a folder where the file must be. Missing
    folders are fine (`make_parents` creates them)."""
    target = Path(path)
    if kind == "file" and target.is_dir():
        raise InitError(f"{option} {path!r} is a folder; give a file name such as "
                        "report.html.")
    if kind == "folder" and target.exists() and not target.is_dir():
        raise InitError(f"{option} {path!r} is a file; give a folder.")
    for folder in target.parents:
        if folder.exists() and not folder.is_dir():
            raise InitError(f"{option} {path!r}: {str(folder)!r} is a file, not a folder.")
    return target


def make_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; returns them, deepest last (for
    `remove_created` if what is written there fails)."""
    missing = [folder for folder in reversed(path.parents) if not folder.exists()]
    for folder in missing:
        os.mkdir(folder)
    return missing


def remove_created(folders: list[Path]) -> None:
    """Remove folders `make_parents` created, deepest first, if still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return
