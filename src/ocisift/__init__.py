"""ocisift: find, select and move content inside OCI artifacts.

Imports are lazy so that the command line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "resolve": "api",
    "pull": "api",
    "tree": "api",
    "tags": "api",
    "manifest": "api",
    "open": "api",
    "copy": "api",
    "push": "api",
    "index_create": "api",
    "index_edit": "api",
    "tag": "api",
    "Pushed": "pusher",
    "RegistryOptions": "transport",
    "CopyResult": "copier",
    "TreeNode": "api",
    "Selector": "select",
    "LayerSelector": "layers",
    "ExtractLimits": "extract",
    "Platform": "platform",
    "Descriptor": "models",
    "Manifest": "models",
    "Index": "models",
    "Digest": "digest",
    "parse_reference": "reference",
    "open_store": "stores",
    "Store": "stores",
    "OcisiftError": "errors",
    "UsageError": "errors",
    "NotFoundError": "errors",
    "AmbiguousError": "errors",
    "IntegrityError": "errors",
    "UnsafeContentError": "errors",
    "AuthError": "errors",
    "PullResult": "puller",
    "Resolved": "resolver",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocisift' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"ocisift.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .api import TreeNode, copy, index_create, index_edit, manifest, open, pull, push, resolve, tag, tags, tree
    from .copier import CopyResult
    from .digest import Digest
    from .errors import (
        AmbiguousError,
        AuthError,
        IntegrityError,
        NotFoundError,
        OcisiftError,
        UnsafeContentError,
        UsageError,
    )
    from .extract import ExtractLimits
    from .layers import LayerSelector
    from .models import Descriptor, Index, Manifest
    from .platform import Platform
    from .puller import PullResult
    from .pusher import Pushed
    from .reference import parse_reference
    from .resolver import Resolved
    from .select import Selector
    from .stores import Store, open_store
    from .transport import RegistryOptions
