"""Image loading with one-line errors for missing, truncated or corrupt files."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from darkside.errors import ImageError


def load_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully into an RGB PIL image.

    PIL decodes lazily and, by default, refuses truncated files only when pixels are read; we
    force the full decode here so that a truncated JPEG/PNG fails now, with its file name,
    rather than as an obscure error deep inside a data loader worker.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: image file does not exist")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{p}: corrupt or truncated image ({reason})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only, with the same one-line errors."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            return im.size
    except FileNotFoundError:
        raise ImageError(f"{p}: image file does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{p}: unreadable image header ({exc})") from None
