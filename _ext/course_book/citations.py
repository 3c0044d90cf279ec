"""One author-year citation style for the text and the reference lists.

In the text, sphinxcontrib-bibtex's `author_year` style writes "(He et al., 2016)" for two
different papers of the same authors and year. Here such papers get year suffixes a, b, ...
(ordered by title, over the whole bibliography, so every page agrees), and the reference lists
use the same "He et al., 2016a" label instead of pybtex's alpha labels such as [HZRS16].
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

STYLE_NAME = "course_author_year"
_SUFFIXED = re.compile(r"^(\d{4})[a-z]$")


def author_text(entry) -> str:
    """The author part of an in-text citation: "He", "He and Sun", "He et al."."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [" ".join(p.last_names) for p in people]
    if not last:
        return entry.fields.get("organization", entry.key)
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


def _plain(text: str) -> str:
    return re.sub(r"[{}\\]", "", text)


def original_year(entry) -> str:
    year = entry.fields.get("year", "")
    match = _SUFFIXED.match(year)
    return match.group(1) if match else year


def year_suffixes(entries: Iterable) -> dict[str, str]:
    """key -> year with a suffix for the entries that the in-text author-year would confuse."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for entry in entries:
        groups[(_plain(author_text(entry)), original_year(entry))].append(entry)
    years = {}
    for (_, year), group in groups.items():
        if len(group) > 1:
            group.sort(key=lambda e: _plain(e.fields.get("title", "")).lower())
            for i, entry in enumerate(group):
                years[entry.key] = f"{year}{chr(ord('a') + i)}"
    return years


def suffix_years(bibdata) -> None:
    """Rewrite the year of each ambiguous entry to carry its suffix (idempotent)."""
    entries = bibdata.entries
    for entry in entries.values():
        entry.fields["year"] = original_year(entry)
    for key, year in year_suffixes(entries.values()).items():
        entries[key].fields["year"] = year


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield f"{_plain(author_text(entry))}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def register() -> None:
    register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle)
