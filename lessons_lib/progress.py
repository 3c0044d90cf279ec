"""Progress bars: tqdm's, plus the one mode tqdm lacks, a static bar for the published book.

`progress_bar(total, desc)` is a tqdm bar (a widget in Jupyter, text in a terminal).
`TQDM_DISABLE=1`, tqdm's own switch, turns every bar off. (tqdm's text bars read it when tqdm
is imported; its Jupyter widget ignores it, so `progress_bar` passes it on itself, and also
honours it when a notebook sets it with `os.environ`.) The environment variable
`LESSONS_PROGRESS=static`, which the book build sets, makes bars silent while they run and makes
each bar created with `leave=True` print its final state once, as one line of text: a static
page cannot show a live widget, but it can show how many runs a cell made and how long they
took on the machine that built it.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

from tqdm.std import tqdm as tqdm_std

from lessons_lib._checks import check_bool, check_int

ENV_VAR = "LESSONS_PROGRESS"
MODES = ("", "static")  # unset or empty: live bars


class _StaticBar(tqdm_std):
    """Counts silently; on closing prints its final state once, as one line of text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            file=io.StringIO(), mininterval=math.inf, leave=False, ascii=False, **kwargs
        )

    def close(self) -> None:
        if not self.disable:
            print(self.format_meter(**self.format_dict))
        super().close()  # sets disable, so a second close prints nothing


def progress_mode() -> str:
    """The bar mode from `LESSONS_PROGRESS`: "" (live bars) or "static"."""
    value = os.environ.get(ENV_VAR, "")
    if value not in MODES:
        hint = " (to switch bars off, set TQDM_DISABLE=1)" if value in ("0", "off") else ""
        raise ValueError(f"{ENV_VAR} must be unset or 'static', got {value!r}{hint}")
    return value


def progress_bar(total: int, desc: str, enabled: bool = True, leave: bool = False) -> tqdm_std:
    """A tqdm bar over `total` steps; `leave=True` keeps it on screen once done.

    `enabled=False` or `TQDM_DISABLE` gives a disabled bar (counting, showing nothing);
    `LESSONS_PROGRESS=static` gives the static bar described in the module docstring.
    """
    check_int("total", total)
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a str, got {type(desc).__name__}")
    check_bool("enabled", enabled)
    check_bool("leave", leave)
    static = progress_mode() == "static"
    # tqdm takes any non-empty TQDM_DISABLE as True; so do we.
    switched_off = not enabled or bool(os.environ.get("TQDM_DISABLE")) or (static and not leave)
    # Pass `disable` only to switch a bar off: an explicit False would override tqdm's settings.
    off = {"disable": True} if switched_off else {}
    if static:  # only the bars that stay on screen print their line
        return _StaticBar(total=total, desc=desc, **off)
    from tqdm.auto import tqdm

    bar: tqdm_std = tqdm(total=total, desc=desc, leave=leave, **off)
    return bar
