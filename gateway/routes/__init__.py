"""HTTP routes, one module (and one APIRouter, named `router`) per resource.

The app serves every module's router, found here, so a new resource is one new
module and no list to extend: `health` at the root (probes are no part of the
API), every other one under the API's version prefix.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

# Served at the root rather than under the version prefix.
UNVERSIONED = ("health",)


def _routers(unversioned: bool) -> tuple[APIRouter, ...]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return tuple(
        importlib.import_module(f"{__name__}.{name}").router
        for name in names
        if (name in UNVERSIONED) == unversioned
    )


ROOT_ROUTERS = _routers(unversioned=True)
# Every resource router, served under the API's version prefix (/v1).
ROUTERS = _routers(unversioned=False)
