"""syncd — keep local drop folders in sync with the OpenAI Files API."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

__version__ = "0.1.0"

__all__ = ["__version__", "public_name"]


def public_name(package: str, modules: Sequence[str], name: str) -> object:
    """``package.name``, for a package's module ``__getattr__``: the name as the first of
    ``modules`` whose ``__all__`` lists it defines it, and ``__all__`` as their union.

    Modules are imported only when a name is asked for, so that importing one module of a
    package (``syncd.service.activity`` for ``syncd status``) does not load the others; and each
    module's own ``__all__`` stays the one list of its public names.
    """
    loaded = (importlib.import_module(f"{package}.{module}") for module in modules)
    if name == "__all__":
        return sorted(n for module in loaded for n in module.__all__)
    for module in loaded:
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
