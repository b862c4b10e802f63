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
import inspect
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

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

    def built(self, name: str) -> bool:
        """True once the command ``name`` has been built."""
        return self._entries.get(name) is not None


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands come from ``sources``: command name -> module with ``register(app)``.

    Subclass it with the table and pass the subclass as ``typer.Typer(cls=...)``."""

    sources: ClassVar[dict[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, list(self.sources), self._build)
        self._listing = False  # True while --help lists the commands

    def list_commands(self, ctx: Any) -> list[str]:  # a click Context
        """Every command name in registration order, without building any."""
        return list(self.commands)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # the listing needs each command's help text only: read it from the registration
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        """The command ``cmd_name``, built now if need be (while listing help: its summary only)."""
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        if self._listing and cmd_name in commands and not commands.built(cmd_name):
            return self._summary(cmd_name)
        return commands.get(cmd_name)

    def _registered(self, name: str) -> typer.Typer:
        """A scratch app holding only what ``name``'s module registers under that name."""
        module = importlib.import_module(self.sources[name])
        sub = typer.Typer(
            rich_markup_mode=self.rich_markup_mode, pretty_exceptions_enable=False, add_completion=False
        )
        module.register(sub)
        sub.registered_commands = [c for c in sub.registered_commands if c.name == name]
        sub.registered_groups = [g for g in sub.registered_groups if g.name == name]
        if not sub.registered_commands and not sub.registered_groups:
            raise LookupError(f"{self.sources[name]}.register() does not add the command {name!r}")
        return sub

    def _summary(self, name: str) -> Command:
        """A stand-in that carries what the help listing shows (name, help, panel), as typer would
        build it, without the parameters (reading every signature is most of the build)."""
        sub = self._registered(name)
        if sub.registered_commands:
            info = sub.registered_commands[0]
            text = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
            short, hidden, deprecated, panel = (
                info.short_help,
                info.hidden,
                info.deprecated,
                info.rich_help_panel,
            )
        else:
            solved = typer.main.solve_typer_info_defaults(sub.registered_groups[0])
            text, short, hidden = solved.help, solved.short_help, solved.hidden
            deprecated, panel = solved.deprecated, solved.rich_help_panel
        return TyperCommand(
            name=name,
            help=text,
            short_help=short,
            hidden=hidden,
            deprecated=deprecated,
            rich_help_panel=panel,
            rich_markup_mode=self.rich_markup_mode,
        )

    def _build(self, name: str) -> Command:
        # build only the one asked for: the others of its module may never be needed
        return typer.main.get_group(self._registered(name)).commands[name]
