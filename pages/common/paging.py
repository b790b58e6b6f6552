"""Widgets for lists that grow with the fleet: a table's page number, and pickers that
search first and offer a few matches, since a select box of 100,000 serials can be
neither sent nor read."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.bootstrap import App
from core.db.models import User
from core.views._sql import COUNT_CAP
from core.views.fleet import find_serials
from pages.common import ui

PAGE_ROWS = 50
MATCHES = 20  # a picker's options: the first matches of its search


def page_offset(key: str, total: int, rows: int = PAGE_ROWS) -> int:
    """The page number input (`key`) under a table of `total` rows (counted up to
    COUNT_CAP: the pages stop there, a search goes further); the page's offset.
    A page past the end (the filter narrowed) becomes the last page."""
    pages = max(1, -(-min(total, COUNT_CAP) // rows))
    if int(st.session_state.get(key) or 1) > pages:
        st.session_state[key] = pages
    narrow, _ = st.columns([1, 4])
    page = narrow.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1,
                               key=key)  # fmt: skip
    return (int(page) - 1) * rows


def counted(total: int) -> str:
    """A capped count as text: "10,000+" past COUNT_CAP."""
    return f"{COUNT_CAP:,}+" if total > COUNT_CAP else f"{total:,}"


def showing(offset: int, count: int, total: int, what: str) -> str:
    """ "51-100 of 100,200 meters": what a page of a table holds."""
    if not count:
        return f"0 of {counted(total)} {what}"
    return f"{offset + 1:,}-{offset + count:,} of {counted(total)} {what}"


def find_box(label: str, key: str) -> str:
    """The search box of picker `key` (drawn apart when the picker sits in a form, whose
    widgets send nothing until it is submitted)."""
    return st.text_input(f"Find {label[0].lower()}{label[1:]}", key=f"{key}.find",
                         placeholder="part of the name, any case")  # fmt: skip


def pick_one(
    label: str,
    key: str,
    find: Callable[[str, str | None], list[str]],
    *,
    first: bool = False,
    needle: str | None = None,
) -> str | None:
    """A search box, then a select box of its first matches (`find(needle, current)`,
    which keeps the current choice among them). `first`: the first match is chosen
    until the user picks one; else nothing is, and a choice outlives a new search."""
    if needle is None:
        needle = find_box(label, key)
    # A `first` picker follows its search (the first match); the other keeps its choice.
    options = find(needle, None if first else st.session_state.get(key))
    if first and options and st.session_state.get(key) not in options:
        # The key keeps its old value (None while nothing matched) past a change of options.
        st.session_state[key] = options[0]
    return st.selectbox(
        label, options, index=0 if first and options else None, key=key,
        placeholder="Search, then pick" if options else "No match",
    )  # fmt: skip


def pick_many(label: str, key: str, matches: list[str]) -> list[str]:
    """A multiselect of the chosen so far and a search's `matches`: search, pick, search
    again; the choices stay. Not in a form: a form's choices reach the session only
    when it is submitted, so a search in between would drop them."""
    chosen = list(st.session_state.get(key) or [])
    options = chosen + [o for o in matches if o not in chosen]
    return st.multiselect(label, options, key=key, placeholder="Search, then pick")


def serial_finder(app: App, viewer: User) -> Callable[[str, str | None], list[str]]:
    """`find` for a meter picker: the first MATCHES serials holding the search."""

    def find(needle: str, current: str | None = None) -> list[str]:
        with ui.reading(app) as reading:
            return find_serials(reading, viewer, needle, limit=MATCHES, keep=current)

    return find
