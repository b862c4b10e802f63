"""A typer group that builds a command only when it is used.

``provision gpus`` must answer in well under 0.3 s, and building every command (importing the
cloud and image modules, reading every signature) cost more than a third of that. The root group
knows each command's name and the module whose ``register(app)`` adds it; the click command is
built from that module the first time the command is looked up: running ``provision gpus`` imports
the pricing commands and nothing else, while ``--help``, completion and anything that walks
``group.commands`` still sees every command, in order, with its help.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup

#: a click command (typer 0.26 to 0.28 vendor click privately, so no public name for its class)
Command = Any


class LazyCommands(MutableMapping[str, Command]):
    """Command name -> click command, each built on first access; iteration never builds one."""

    def __init__(self, built: Mapping[str, Command], names: list[str], build: Callable[[str], Any]):
        self._entries: dict[str, Command | None] = {**dict.fromkeys(names), **built}
        self._build = build

    def __getitem__(self, name: str) -> Command:
        cmd = self._entries[name]
        if cmd is None:
            cmd = self._entries[name] = self._build(name)
        return cmd

    def __setitem__(self, name: str, cmd: Command) -> None:
        self._entries[name] = cmd

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands come from ``sources``: command name -> module with ``register(app)``.

    Subclass it with the table and pass the subclass as ``typer.Typer(cls=...)``."""

    sources: ClassVar[dict[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, list(self.sources), self._build)

    def list_commands(self, ctx: Any) -> list[str]:  # a click Context
        """Every command name in registration order, without building any."""
        return list(self.commands)

    def _build(self, name: str) -> Command:
        module = importlib.import_module(self.sources[name])
        sub = typer.Typer(
            rich_markup_mode=self.rich_markup_mode, pretty_exceptions_enable=False, add_completion=False
        )
        module.register(sub)
        # build only the one asked for: the others of its module may never be needed
        sub.registered_commands = [c for c in sub.registered_commands if c.name == name]
        sub.registered_groups = [g for g in sub.registered_groups if g.name == name]
        built = typer.main.get_group(sub).commands.get(name)
        if built is None:
            raise LookupError(f"{self.sources[name]}.register() does not add the command {name!r}")
        return built
