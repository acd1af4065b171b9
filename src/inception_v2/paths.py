"""The one alias for "a path argument": a ``str`` or any ``os.PathLike`` (``pathlib.Path``)."""

from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]
