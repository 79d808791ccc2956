"""Writing a model folder atomically: checks on the output folder, a temporary sibling
to write into, and the rename that puts it in place (a failure leaves nothing behind)."""
import os
import secrets
import shutil
from pathlib import Path


def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """FileExistsError unless ``output_dir`` is free: missing, an empty folder, or any folder with ``overwrite``."""
    if output_dir.is_symlink() or (output_dir.exists() and not output_dir.is_dir()):
        raise FileExistsError(f"{output_dir} exists and is not a directory; refusing to replace it")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty; pass overwrite=True to replace it")


def temp_sibling(output_dir: Path, tag: str) -> Path:
    """A fresh hidden name next to ``output_dir`` (same file system, so renames are atomic)."""
    return output_dir.parent / f".{output_dir.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def move_into_place(tmp: Path, output_dir: Path) -> None:
    """Rename ``tmp`` to ``output_dir``; an old folder is swapped out, then removed."""
    old = None
    if output_dir.exists():
        old = temp_sibling(output_dir, "old")
        os.rename(output_dir, old)
    try:
        os.rename(tmp, output_dir)
    except BaseException:
        if old is not None:
            os.rename(old, output_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
