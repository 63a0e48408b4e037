"""node-semver, imported when a version is first compared: a pull or copy by plain tag pays nothing for it."""

from __future__ import annotations

from types import ModuleType
from typing import Any


class _Lazy:
    """Stands for the module; the first attribute asked for imports it."""

    _module: ModuleType | None = None

    def __getattr__(self, name: str) -> Any:
        if _Lazy._module is None:
            import nodesemver as module  # type: ignore[import-untyped]

            _Lazy._module = module
        return getattr(_Lazy._module, name)


nodesemver: Any = _Lazy()
