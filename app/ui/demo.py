"""Demo mode's first start, shown as steps (issue 14, defect 11: ~26 s of a bare spinner).

Seeding runs in the page run that finds an empty store, after `st.navigation` has drawn the
sidebar (before, Streamlit showed the `pages/` folder's lower-case file names), inside an
`st.status` that lists each step as it starts. One process-wide lock makes a second visitor
wait for the first one's seeding instead of starting another. The training stack is imported
under a spinner, so even that first wait shows something."""

from __future__ import annotations

import threading

import streamlit as st


@st.cache_resource(show_spinner=False)
def _lock(home: str) -> threading.Lock:
    return threading.Lock()


@st.cache_resource(show_spinner=False)
def _ready(home: str) -> dict[str, bool]:
    """Set once this server saw the store seeded: later page runs skip even the check."""
    return {"done": False}


def prepare_demo(home: str) -> None:
    """Seed the demo store once per server; show the steps to whoever triggers it."""
    ready = _ready(home)
    if ready["done"]:
        return
    lock = _lock(home)
    if not lock.acquire(blocking=False):
        with st.spinner("Another visitor is preparing the demo: it takes about half a "
                        "minute, once."):
            lock.acquire()
    try:
        if ready["done"]:  # seeded by the visitor this one waited for
            return
        with st.spinner("Opening the demo store…"):
            # imported here, under the spinner: the training stack takes seconds to load,
            # and the store's first open migrates it
            from app.ui.deps import database
            from core.usecases.demo import is_seeded, seed_demo

            seeded = is_seeded(db=database())
        if not seeded:
            with st.status("Preparing the demo (once, about half a minute)…",
                           expanded=True) as status:
                seed_demo(db=database(), progress=lambda text: st.write(f"{text}…"))
                status.update(label="The demo is ready: sample tables, two versions of "
                                    "breast_cancer, a 10 % canary and some traffic",
                              state="complete", expanded=False)
        ready["done"] = True
    finally:
        lock.release()
