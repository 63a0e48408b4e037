"""ocisift: find, select and move content inside OCI artifacts.

The public surface is this package: the functions of the API (one per
command), the values they take and return, the errors they raise, and the
store capabilities. Everything else lives in private modules. Names are
imported when first used, so that the command line starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._core.version import __version__

_EXPORTS = {
    # the API, one function per command
    "resolve": "_api", "pull": "_api", "tree": "_api", "tags": "_api", "manifest": "_api", "open": "_api",
    "copy": "_api", "push": "_api", "index_create": "_api", "index_add": "_api", "index_remove": "_api",
    "tag": "_api", "untag": "_api", "delete": "_api", "gc": "_api", "login": "_api", "logout": "_api",
    "sample": "_api", "blob": "_api", "cancel": "_core.cancel", "copy_tags": "_api", "referrers": "_api",
    "sync": "_api", "verify": "_api", "sign": "_api",
    # values taken and returned
    "Selector": "_graph.select", "Candidate": "_graph.select", "LayerSelector": "_unpack.layers",
    "ExtractLimits": "_unpack.limits", "RegistryOptions": "_core.options", "Resolved": "_graph.resolve",
    "PullResult": "_graph.results", "CopyResult": "_graph.results", "Pushed": "_graph.results", "TreeNode": "_graph.tree",
    "GcResult": "_graph.results", "Deleted": "_graph.results", "Platform": "_core.platform",
    "SyncResult": "_graph.sync", "ReferrerNode": "_graph.referrers", "SyncSpec": "_core.syncspec",
    "Shard": "_core.shards", "TagOutcome": "_graph.sync",
    "TagFilter": "_core.versions",
    "VerifySpec": "_core.trustspec", "IdentityMatch": "_core.trustspec", "TrustPolicy": "_core.trustspec",
    "ScopedVerify": "_core.trustspec", "load_trust_policy": "_core.specfile",
    "Verification": "_graph.trustresults", "SignatureAttempt": "_graph.trustresults", "Signed": "_graph.signed",
    "Descriptor": "_core.models", "Manifest": "_core.models",
    "Index": "_core.models", "parse_document": "_core.models", "Digest": "_core.digest",
    "parse_reference": "_core.reference", "Target": "_core.reference",
    # stores and their capabilities
    "open_store": "_stores.open", "MemoryStore": "_stores.memory", "Reader": "_stores.base",
    "RootLister": "_stores.base", "Pusher": "_stores.base", "Tagger": "_stores.base",
    "RootRecorder": "_stores.base", "Untagger": "_stores.base", "TagLister": "_stores.base",
    "ReferrerLister": "_stores.base", "Mounter": "_stores.base", "Deleter": "_stores.base",
    "Finisher": "_stores.base", "BlobSweeper": "_stores.base", "BlobStatter": "_stores.base",
    "RemoteReader": "_stores.base", "TagPeeker": "_stores.base", "NameBatcher": "_stores.base",
    "ReferrerPeeker": "_stores.base", "ReferrerIndexAdopter": "_stores.base",
    # errors, each with its exit code
    "OcisiftError": "_core.errors", "UsageError": "_core.errors", "UnsupportedError": "_core.errors",
    "NotFoundError": "_core.errors", "AmbiguousError": "_core.errors", "IntegrityError": "_core.errors",
    "MalformedDocument": "_core.errors", "UnsafeContentError": "_core.errors", "ConflictError": "_core.errors",
    "AuthError": "_core.errors", "MetadataError": "_core.errors", "Cancelled": "_core.cancel",
    "NotTrustedError": "_core.errors",
}

_MODULES = {"mediatypes": "_core.mediatypes"}  # the media type and annotation constants

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value: Any = import_module(f"ocisift.{_MODULES[name]}")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ocisift' has no attribute {name!r}")
    value = getattr(import_module(f"ocisift.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from ._api import (
        blob,
        copy,
        copy_tags,
        delete,
        gc,
        index_add,
        index_create,
        index_remove,
        login,
        logout,
        manifest,
        open,
        pull,
        push,
        referrers,
        resolve,
        sample,
        sign,
        sync,
        tag,
        tags,
        tree,
        untag,
        verify,
    )
    from ._core import mediatypes
    from ._core.cancel import Cancelled, cancel
    from ._core.digest import Digest
    from ._core.errors import (
        AmbiguousError,
        AuthError,
        ConflictError,
        IntegrityError,
        MalformedDocument,
        MetadataError,
        NotFoundError,
        NotTrustedError,
        OcisiftError,
        UnsafeContentError,
        UnsupportedError,
        UsageError,
    )
    from ._core.models import Descriptor, Index, Manifest, parse_document
    from ._core.options import RegistryOptions
    from ._core.platform import Platform
    from ._core.reference import Target, parse_reference
    from ._core.shards import Shard
    from ._core.specfile import load_trust_policy
    from ._core.syncspec import SyncSpec
    from ._core.trustspec import IdentityMatch, ScopedVerify, TrustPolicy, VerifySpec
    from ._core.versions import TagFilter
    from ._graph.referrers import ReferrerNode
    from ._graph.resolve import Resolved
    from ._graph.results import CopyResult, Deleted, GcResult, PullResult, Pushed
    from ._graph.select import Candidate, Selector
    from ._graph.signed import Signed
    from ._graph.sync import SyncResult, TagOutcome
    from ._graph.tree import TreeNode
    from ._graph.trustresults import SignatureAttempt, Verification
    from ._stores.base import (
        BlobStatter,
        BlobSweeper,
        Deleter,
        Finisher,
        Mounter,
        NameBatcher,
        Pusher,
        Reader,
        ReferrerIndexAdopter,
        ReferrerLister,
        ReferrerPeeker,
        RemoteReader,
        RootLister,
        RootRecorder,
        Tagger,
        TagLister,
        TagPeeker,
        Untagger,
    )
    from ._stores.memory import MemoryStore
    from ._stores.open import open_store
    from ._unpack.layers import LayerSelector
    from ._unpack.limits import ExtractLimits
