"""Human output: rich trees and tables. Imported only when a person is reading."""

from __future__ import annotations

from rich.console import Console
from rich.tree import Tree

from .._graph.results import PullResult
from .._graph.tree import TreeNode


def _label(node: TreeNode) -> str:
    bits = [f"[bold]{node.kind}[/bold] {node.descriptor.digest.algorithm}:{node.descriptor.digest.hex[:12]}"]
    if node.names:
        bits.append("[cyan]" + ", ".join(node.names) + "[/cyan]")
    if node.platform:
        bits.append(f"[green]{node.platform}[/green]")
    if node.artifact_type:
        bits.append(f"[magenta]{node.artifact_type}[/magenta]")
    ann = {k: v for k, v in node.descriptor.annotations.items() if not k.startswith(("org.opencontainers.image.ref", "io.containerd"))}
    if ann:
        bits.append("[dim]" + " ".join(f"{k}={v}" for k, v in sorted(ann.items())) + "[/dim]")
    return "  ".join(bits)


def _add(branch: Tree, node: TreeNode) -> None:
    sub = branch.add(_label(node))
    for child in node.children:
        _add(sub, child)
    for i, layer in enumerate(node.layers):
        title = f" {layer.title}" if layer.title else ""
        sub.add(f"[dim]layer {i}[/dim] {layer.media_type} {layer.size} B{title}")
    for ref in node.referrers:
        sub.add(f"[yellow]referrer[/yellow] {ref.descriptor.digest} {ref.artifact_type or ''}")


def render_tree(nodes: list[TreeNode]) -> None:
    console = Console(soft_wrap=True, highlight=False)
    if not nodes:
        console.print("(empty)")
    for node in nodes:
        root = Tree(_label(node))
        for child in node.children:
            _add(root, child)
        for i, layer in enumerate(node.layers):
            title = f" {layer.title}" if layer.title else ""
            root.add(f"[dim]layer {i}[/dim] {layer.media_type} {layer.size} B{title}")
        for ref in node.referrers:
            root.add(f"[yellow]referrer[/yellow] {ref.descriptor.digest} {ref.artifact_type or ''}")
        console.print(root)


def render_pull(result: PullResult) -> None:
    console = Console(soft_wrap=True, highlight=False)
    verb = "would write" if result.dry_run else "wrote"
    console.print(f"selected {result.resolved.pinned}")
    for p in result.plan:
        console.print(f"  {verb} layer {p.position} {p.descriptor.digest.hex[:12]} ({p.descriptor.size} B, "
                      f"{p.descriptor.media_type}) -> {p.destination}")
    if not result.dry_run:
        console.print(f"revision {result.revision}; {len(result.files)} file(s) in {result.output}")
