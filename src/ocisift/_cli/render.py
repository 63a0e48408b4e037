"""Human output: rich trees and summaries. Imported only when a person is reading.

Text taken from documents (names, annotations, media types, titles) is data:
it goes into rich as `Text`, so `[bold red]` in an annotation is printed, not
interpreted, and control characters and escape sequences are shown escaped,
never sent to the terminal. Output that is not a terminal is never wrapped or
cut: a long annotation value arrives whole on one line.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from .._core.models import Descriptor
from .._graph.referrers import ReferrerNode
from .._graph.results import PullResult
from .._graph.tree import TreeNode
from .text import printable

UNWRAPPED = 1 << 20  # the width when nobody's terminal decides it: lines arrive whole


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else UNWRAPPED
    return Console(file=stream, soft_wrap=True, highlight=False, markup=False, emoji=False, width=width)


def _data(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def _label(node: TreeNode, *, root: bool = False) -> Text:
    """A node's line: its annotations are those it is listed with; a root's own annotations too, since
    nothing lists a root with them (its index.json entry carries its name, a registry nothing)."""
    digest = node.descriptor.digest
    label = Text.assemble((node.kind, "bold red" if node.kind == "absent" else "bold"),
                          f" {digest.algorithm}:{digest.hex[:12]}")
    if node.names:
        label.append("  ")
        label.append_text(_data(", ".join(node.names), "cyan"))
    if node.platform:
        label.append("  ")
        label.append_text(_data(str(node.platform), "green"))
    if node.artifact_type:
        label.append("  ")
        label.append_text(_data(node.artifact_type, "magenta"))
    listed = dict(node.own_annotations) if root else {}
    listed.update(node.descriptor.annotations)
    ann = {k: v for k, v in listed.items() if not k.startswith(("org.opencontainers.image.ref", "io.containerd"))}
    if ann:
        label.append("  ")
        label.append_text(_data(" ".join(f"{k}={v}" for k, v in sorted(ann.items())), "dim"))
    if node.kind == "absent":
        label.append("  (listed by its index, not held in this store)", "dim")
    return label


def _layer(i: int, layer: Descriptor) -> Text:
    text = Text.assemble((f"layer {i}", "dim"), " ")
    text.append_text(_data(layer.media_type))
    text.append(f" {layer.size} B")
    if layer.title:
        text.append(" ")
        text.append_text(_data(layer.title))
    return text


def _referrer(node: TreeNode) -> Text:
    text = Text.assemble(("referrer", "yellow"), f" {node.descriptor.digest} ")
    text.append_text(_data(node.artifact_type or ""))
    return text


def _grow(branch: Tree, node: TreeNode) -> None:
    for child in node.children:
        _grow(branch.add(_label(child)), child)
    for i, layer in enumerate(node.layers):
        branch.add(_layer(i, layer))
    for ref in node.referrers:
        branch.add(_referrer(ref))


def render_tree(nodes: list[TreeNode]) -> None:
    out = console()
    if not nodes:
        out.print("(empty)")
    for node in nodes:
        root = Tree(_label(node, root=True))
        _grow(root, node)
        out.print(root)


def render_pull(result: PullResult) -> None:
    out = console()
    verb = "would write" if result.dry_run else "wrote"
    out.print(_data(f"selected {result.resolved.pinned}"))
    for p in result.plan:
        out.print(_data(f"  {verb} layer {p.position} {p.descriptor.digest.hex[:12]} ({p.descriptor.size} B, "
                        f"{p.descriptor.media_type}) -> {p.destination}"))
    if not result.dry_run:
        out.print(_data(f"revision {result.revision}; {len(result.files)} file(s) in {result.output}"))


def _discovered(node: ReferrerNode) -> Text:
    """One referrer as oras discover shows it: artifact type, digest; its title or creation time if any."""
    text = _data(node.descriptor.artifact_type or node.descriptor.media_type, "yellow")
    text.append(f" {node.descriptor.digest}")
    for key in ("org.opencontainers.image.title", "org.opencontainers.image.created"):
        value = node.descriptor.annotations.get(key)
        if value:
            text.append(" ")
            text.append_text(_data(value, "dim"))
            break
    return text


def render_referrers(subject: ReferrerNode) -> None:
    def grow(branch: Tree, node: ReferrerNode) -> None:
        for ref in node.referrers:
            grow(branch.add(_discovered(ref)), ref)

    root = Tree(_data(subject.reference, "bold"))
    grow(root, subject)
    out = console()
    out.print(root)
    if not subject.referrers:
        out.print("(no referrers)")
