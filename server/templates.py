"""Consultation templates: one TOML file per consultation kind, parsed strictly.

Every mistake in a file becomes a `Problem` with the file, the line and a hint; a file is
rejected as a whole with all its problems, never half-loaded. The layout is documented in
consult_templates/README.md.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from server.permissions import PRESETS, Permission

JOIN_METHODS = ("link", "passcode", "staff", "registration")
ANONYMITY = ("none", "pseudonym", "sealed")
FLOOR_MODES = ("open", "raise_hand")
RECORDING = ("off", "consent")

# bounds catch unit mistakes (minutes written as seconds) as much as absurd values
TURN_SECONDS = (10, 3600)
DURATION_MINUTES = (5, 24 * 60)
PARTICIPANTS = (1, 10_000)
DEFAULT_DURATION_MINUTES = 60
MAX_DURATION_MINUTES = 120

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# key path inside the document: table names, keys and array-of-tables indexes
KeyPath = tuple[str | int, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Label:
    """A text shown to people, in Japanese and English."""

    ja: str
    en: str


@dataclass(frozen=True)
class Role:
    """What one kind of participant may do, and how they join."""

    name: str
    label: Label
    permissions: frozenset[Permission]
    join: frozenset[str]
    lobby: bool
    anonymous: bool
    ask_display_name: bool
    max_participants: int | None

    def can(self, permission: Permission) -> bool:
        """Whether the role grants `permission` (deny by default)."""
        return permission in self.permissions


@dataclass(frozen=True)
class Floor:
    """Who may speak: everyone (`open`) or whoever holds the floor (`raise_hand`)."""

    mode: str
    turn_seconds: int | None


@dataclass(frozen=True)
class Problem:
    """One mistake in a template file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class TemplateError(Exception):
    """One or more template files are wrong; `problems` lists every mistake."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class Template:
    """A consultation kind: roles, joining, anonymity, floor, limits, recording, labels."""

    name: str
    path: Path
    label: Label
    description: Label
    anonymity: str
    roles: Mapping[str, Role]
    floor: Floor
    default_duration_minutes: int
    max_duration_minutes: int
    recording: str
    checklist: tuple[Label, ...]
    registration: bool
    # the role of the staff member who creates a consultation from this template
    creator_role: str = "staff"

    def role(self, name: str) -> Role:
        """The role called `name`; a TemplateError (with a hint) if there is none."""
        try:
            return self.roles[name]
        except KeyError:
            message = f"template `{self.name}` has no role `{name}`{_hint(name, self.roles)}"
            raise TemplateError([Problem(str(self.path), 0, message)]) from None

    def roles_with(self, permission: Permission) -> list[Role]:
        """The roles that grant `permission`, in file order."""
        return [role for role in self.roles.values() if role.can(permission)]


# ---------------------------------------------------------------------------------------------
# public functions


def load_template(path: Path) -> Template:
    """Read and check one template file; raises TemplateError listing all its problems."""
    template, problems = _load(path)
    if template is None:
        raise TemplateError(problems)
    return template


def load_templates(directory: Path) -> dict[str, Template]:
    """Load every *.toml file of `directory`, by name; a city's new file needs no code change."""
    if not directory.is_dir():
        raise TemplateError([Problem(str(directory), 0, "template directory not found")])
    templates: dict[str, Template] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.toml")):
        template, found = _load(path)
        problems.extend(found)
        if template is not None:
            templates[template.name] = template
    if problems:
        raise TemplateError(problems)
    return templates


def check_files(paths: Iterable[Path]) -> list[Problem]:
    """Every problem of every file, for `madoguchi check-templates`."""
    return [problem for path in paths for problem in _load(path)[1]]


def _load(path: Path) -> tuple[Template | None, list[Problem]]:
    try:
        # utf-8-sig: Windows Notepad may save UTF-8 with a byte order mark
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        message = f"not UTF-8 text (byte {error.start}); save the file as UTF-8"
        return None, [Problem(str(path), 0, message)]
    except OSError as error:
        return None, [Problem(str(path), 0, f"cannot read the file: {error.strerror}")]
    reader = _Reader(str(path), text)
    template = reader.template(path)
    problems = sorted(reader.problems, key=lambda problem: problem.line)
    return (template if not problems else None), problems


# ---------------------------------------------------------------------------------------------
# line numbers: tomllib gives none, so a small scan maps key paths to the lines that set them

_HEADER = re.compile(r"^\s*(\[\[?)([^\[\]]+)\]\]?\s*(#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_ASSIGN = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_TOML_ERROR = re.compile(r"\s*\((?:at line (\d+), column \d+|at end of document)\)$")


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+', key)
    return tuple(part.strip("\"'") for part in parts)


class _LineIndex:
    """Where each table and key of a TOML text is written (1-based lines)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self._where: dict[KeyPath, int] = {}
        self._scan()

    def _scan(self) -> None:
        table: KeyPath = ()
        counts: dict[KeyPath, int] = {}
        in_string = False
        for number, line in enumerate(self.lines, start=1):
            # skip the inside of multi-line strings, where `key =` means nothing
            quotes = line.count('"""') + line.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            in_string = quotes % 2 == 1
            header = _HEADER.match(line)
            if header:
                table = self._header(header, counts)
                # `[roles.heir]` also marks where [roles] first appears
                for end in range(1, len(table) + 1):
                    self._where.setdefault(table[:end], number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                self._where.setdefault(table + _split_key(assign.group(1)), number)

    @staticmethod
    def _header(match: re.Match[str], counts: dict[KeyPath, int]) -> KeyPath:
        path: KeyPath = _split_key(match.group(2))
        if match.group(1) == "[[":
            index = counts.get(path, 0)
            counts[path] = index + 1
            path = (*path, index)
        return path

    def line(self, path: KeyPath, value: str | None = None) -> int:
        """The line of the longest known prefix of `path`; with `value`, the line quoting it."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._where:
                found = self._where[path[:end]]
                return self._find_value(found, value) if value is not None else found
        return 1

    def _find_value(self, start: int, value: str) -> int:
        # a value in a multi-line array sits a few lines below its key
        for number in range(start, min(start + 40, len(self.lines)) + 1):
            text = self.lines[number - 1]
            if number > start and (_HEADER.match(text) or _ASSIGN.match(text)):
                break
            if f'"{value}"' in text or f"'{value}'" in text:
                return number
        return start


# ---------------------------------------------------------------------------------------------
# reading values: each getter records a problem and returns None instead of raising


def _hint(word: str, choices: Iterable[str]) -> str:
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f"; did you mean `{close[0]}`?"
    return "; expected one of " + ", ".join(f"`{option}`" for option in options)


def _where(path: KeyPath) -> str:
    tables = [str(part) for part in path if isinstance(part, str)]
    return f"[{'.'.join(tables)}]" if tables else "the top level"


def _kind(value: object) -> str:
    kinds = {bool: "true/false", int: "an integer", str: "a string", list: "a list"}
    kinds |= {dict: "a table", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


@dataclass
class _Table:
    """One TOML table being read, with the reader that collects its problems."""

    reader: _Reader
    path: KeyPath
    data: dict[str, Any]

    def only(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key in allowed:
                continue
            message = f"unknown key `{key}` in {_where(self.path)}"
            # a key of another table is a misplaced key, not a typo
            home = _HOMES.get(key)
            self.problem(
                key, message + (f"; it belongs in {home}" if home else _hint(key, allowed))
            )

    def problem(self, key: str, message: str, value: str | None = None) -> None:
        self.reader.problem((*self.path, key), message, value)

    def get(self, key: str, kind: type[T], required: bool) -> T | None:
        if key not in self.data:
            if required:
                here = self.reader.index.line(self.path)
                self.reader.add(here, f"missing required key `{key}` in {_where(self.path)}")
            return None
        value = self.data[key]
        # bool is an int in Python, but `true` is no number of minutes
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = _kind(kind())
            self.problem(key, f"`{key}` must be {expected}, not {_kind(value)}")
            return None
        return value

    def string(self, key: str, choices: Sequence[str], default: str) -> str | None:
        value = self.get(key, str, required=False)
        if key not in self.data:
            return default
        if value is not None and value not in choices:
            self.problem(key, f"invalid `{key}` value `{value}`{_hint(value, choices)}")
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool | None:
        if key not in self.data:
            return default
        return self.get(key, bool, required=False)

    def integer(self, key: str, bounds: tuple[int, int]) -> int | None:
        value = self.get(key, int, required=False)
        low, high = bounds
        if value is not None and not low <= value <= high:
            self.problem(key, f"`{key}` must be between {low} and {high}, not {value}")
            return None
        return value

    def names(self, key: str, choices: Sequence[str], what: str) -> list[str] | None:
        """A list of strings from `choices`, e.g. permissions or join methods."""
        if key not in self.data:
            return []
        values = self.get(key, list, required=False)
        if values is None:
            return None
        good: list[str] = []
        for value in values:
            if not isinstance(value, str):
                self.problem(key, f"`{key}` must list strings, not {_kind(value)}")
            elif value not in choices:
                self.problem(key, f"unknown {what} `{value}`{_hint(value, choices)}", value)
            else:
                good.append(value)
        return good if len(good) == len(values) else None

    def table(self, key: str, required: bool = False) -> _Table | None:
        value = self.get(key, dict, required)
        return None if value is None else _Table(self.reader, (*self.path, key), value)

    def label(self, key: str, required: bool = True) -> Label | None:
        if isinstance(self.data.get(key), str):
            message = f'`{key}` needs both languages: {key} = {{ ja = "…", en = "…" }}'
            self.problem(key, message)
            return None
        table = self.table(key, required)
        return None if table is None else table.as_label()

    def as_label(self) -> Label | None:
        self.only(("ja", "en"))
        ja = self._text("ja")
        en = self._text("en")
        return Label(ja=ja, en=en) if ja is not None and en is not None else None

    def _text(self, key: str) -> str | None:
        value = self.get(key, str, required=True)
        if value is not None and not value.strip():
            self.problem(key, f"`{key}` must not be empty")
            return None
        return value


# ---------------------------------------------------------------------------------------------
# the template file


_TOP_KEYS = (
    "label",
    "description",
    "anonymity",
    "registration",
    "recording",
    "creator_role",
    "limits",
    "floor",
    "roles",
    "checklist",
)
_ROLE_KEYS = (
    "label",
    "preset",
    "permissions",
    "deny",
    "join",
    "lobby",
    "anonymous",
    "ask_display_name",
    "max_participants",
)
_PERMISSIONS = tuple(Permission)
# where each key belongs: TOML puts every key after `[floor]` into [floor] until the next header
_HOMES = {
    **{key: "the top level, before the first [table]" for key in _TOP_KEYS},
    **{key: "[roles.<name>]" for key in _ROLE_KEYS},
    "mode": "[floor]",
    "turn_seconds": "[floor]",
    "default_duration_minutes": "[limits]",
    "max_duration_minutes": "[limits]",
    "ja": "a label",
    "en": "a label",
}


@dataclass
class _Parts:
    """What the reader made of a file; None where a field was wrong."""

    label: Label | None = None
    description: Label | None = None
    anonymity: str | None = None
    registration: bool | None = None
    recording: str | None = None
    creator_role: str | None = None
    floor: Floor | None = None
    durations: tuple[int, int] | None = None
    roles: dict[str, Role] = field(default_factory=dict)
    roles_ok: bool = False
    checklist: tuple[Label, ...] | None = None


class _Reader:
    """Reads one template file, collecting every problem."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.index = _LineIndex(text)
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def problem(self, path: KeyPath, message: str, value: str | None = None) -> None:
        self.add(self.index.line(path, value), message)

    def template(self, path: Path) -> Template | None:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as error:
            self._syntax_error(error)
            return None
        if not _NAME.match(path.stem):
            self.add(0, f"file name `{path.stem}` must be snake_case (a-z, 0-9, _)")
        parts = self._parts(_Table(self, (), data))
        for line, message in _inconsistencies(parts, self.index):
            self.add(line, message)
        if self.problems:
            return None
        return _build(path, parts)

    def _syntax_error(self, error: tomllib.TOMLDecodeError) -> None:
        message = str(error)
        match = _TOML_ERROR.search(message)
        line = int(match.group(1)) if match else len(self.index.lines)
        self.add(line, f"TOML syntax error: {_TOML_ERROR.sub('', message)}")

    def _parts(self, top: _Table) -> _Parts:
        top.only(_TOP_KEYS)
        parts = _Parts(
            label=top.label("label"),
            description=top.label("description"),
            anonymity=top.string("anonymity", ANONYMITY, "none"),
            registration=top.boolean("registration", False),
            recording=top.string("recording", RECORDING, "off"),
            floor=_floor(top.table("floor")),
            durations=_durations(top.table("limits")),
            checklist=_checklist(top),
        )
        parts.roles, parts.roles_ok = _roles(top)
        parts.creator_role = _creator_role(top, parts.roles, parts.roles_ok)
        return parts


def _floor(table: _Table | None) -> Floor | None:
    if table is None:
        return Floor(mode="open", turn_seconds=None)
    table.only(("mode", "turn_seconds"))
    mode = table.string("mode", FLOOR_MODES, "open")
    turn_seconds = table.integer("turn_seconds", TURN_SECONDS)
    if mode == "open" and turn_seconds is not None:
        table.problem("turn_seconds", "`turn_seconds` applies only to floor mode `raise_hand`")
        return None
    bad = mode is None or ("turn_seconds" in table.data and turn_seconds is None)
    return None if bad else Floor(mode=mode or "open", turn_seconds=turn_seconds)


def _durations(table: _Table | None) -> tuple[int, int] | None:
    if table is None:
        return DEFAULT_DURATION_MINUTES, MAX_DURATION_MINUTES
    table.only(("default_duration_minutes", "max_duration_minutes"))
    default = table.integer("default_duration_minutes", DURATION_MINUTES)
    maximum = table.integer("max_duration_minutes", DURATION_MINUTES)
    # an omitted limit follows the given one: `max_duration_minutes = 30` alone means 30/30
    if "default_duration_minutes" not in table.data and maximum is not None:
        default = min(DEFAULT_DURATION_MINUTES, maximum)
    if "max_duration_minutes" not in table.data and default is not None:
        maximum = max(MAX_DURATION_MINUTES, default)
    if default is None or maximum is None:
        return None
    if default > maximum:
        message = (
            f"`default_duration_minutes` ({default}) exceeds `max_duration_minutes` ({maximum})"
        )
        table.problem("default_duration_minutes", message)
        return None
    return default, maximum


def _checklist(top: _Table) -> tuple[Label, ...] | None:
    items = top.get("checklist", list, required=False)
    if items is None:
        return () if "checklist" not in top.data else None
    labels: list[Label | None] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            top.problem("checklist", "write checklist items as [[checklist]] tables with ja and en")
            return None
        labels.append(_Table(top.reader, ("checklist", index), item).as_label())
    good = [label for label in labels if label is not None]
    return tuple(good) if len(good) == len(labels) else None


def _roles(top: _Table) -> tuple[dict[str, Role], bool]:
    table = top.table("roles", required=True)
    if table is None:
        return {}, False
    if not table.data:
        top.problem("roles", "a template needs at least one role under [roles.<name>]")
        return {}, False
    roles: dict[str, Role] = {}
    for name in table.data:
        role = _role(table, name)
        if role is not None:
            roles[name] = role
    return roles, len(roles) == len(table.data)


def _role(roles: _Table, name: str) -> Role | None:
    if not _NAME.match(name):
        roles.problem(name, f"role name `{name}` must be snake_case (a-z, 0-9, _)")
        return None
    table = roles.table(name)
    if table is None:
        return None
    before = len(table.reader.problems)
    table.only(_ROLE_KEYS)
    label = table.label("label")
    permissions = _permissions(table)
    join = _join(table)
    lobby = table.boolean("lobby", False)
    anonymous = table.boolean("anonymous", False)
    ask_display_name = table.boolean("ask_display_name", False)
    max_participants = table.integer("max_participants", PARTICIPANTS)
    # an unknown key leaves every value fine but still spoils the role
    if len(table.reader.problems) != before:
        return None
    if label is None or permissions is None or join is None:
        return None
    if lobby is None or anonymous is None or ask_display_name is None:
        return None
    return Role(
        name=name,
        label=label,
        permissions=permissions,
        join=join,
        lobby=lobby,
        anonymous=anonymous,
        ask_display_name=ask_display_name,
        max_participants=max_participants,
    )


def _permissions(table: _Table) -> frozenset[Permission] | None:
    """The preset, plus `permissions`, minus `deny`."""
    if "preset" not in table.data and "permissions" not in table.data:
        message = f"role {_where(table.path)} needs a `preset` or `permissions`"
        table.reader.add(table.reader.index.line(table.path), message)
        return None
    preset = _preset(table)
    extra = table.names("permissions", _PERMISSIONS, "permission")
    deny = table.names("deny", _PERMISSIONS, "permission")
    if preset is None or extra is None or deny is None:
        return None
    both = sorted(set(extra) & set(deny))
    if both:
        table.problem("deny", f"`{both[0]}` is both granted in `permissions` and denied", both[0])
        return None
    granted = (preset | {Permission(p) for p in extra}) - {Permission(p) for p in deny}
    if not granted:
        table.problem("deny", f"role {_where(table.path)} is left with no permission at all")
        return None
    return frozenset(granted)


def _preset(table: _Table) -> frozenset[Permission] | None:
    if "preset" not in table.data:
        return frozenset()
    preset = table.get("preset", str, required=False)
    if preset is not None and preset not in PRESETS:
        table.problem("preset", f"unknown preset `{preset}`{_hint(preset, PRESETS)}", preset)
        return None
    return None if preset is None else PRESETS[preset]


def _join(table: _Table) -> frozenset[str] | None:
    if "join" not in table.data:
        table.get("join", list, required=True)
        return None
    methods = table.names("join", JOIN_METHODS, "join method")
    if methods is not None and not methods:
        table.problem("join", "`join` must name at least one way in" + _hint("", JOIN_METHODS))
        return None
    return None if methods is None else frozenset(methods)


def _creator_role(top: _Table, roles: Mapping[str, Role], roles_ok: bool) -> str | None:
    if "creator_role" not in top.data:
        if roles_ok and "staff" not in roles:
            message = (
                "no role `staff`: set `creator_role` to the role staff create consultations as"
            )
            top.reader.problem(("roles",), message)
            return None
        return "staff"
    name = top.get("creator_role", str, required=False)
    if name is not None and roles_ok and name not in roles:
        top.problem("creator_role", f"`creator_role` names no role: `{name}`{_hint(name, roles)}")
        return None
    return name


def _build(path: Path, parts: _Parts) -> Template:
    # only called when no problem was found, so every part is present
    assert parts.label and parts.description and parts.floor and parts.durations
    assert parts.anonymity and parts.recording and parts.creator_role
    assert parts.registration is not None and parts.checklist is not None
    roles = parts.roles
    if parts.recording == "off":
        # `host` grants `record`; with recording off nobody may, whatever the preset says
        roles = {
            name: replace(role, permissions=role.permissions - {Permission.record})
            for name, role in roles.items()
        }
    return Template(
        name=path.stem,
        path=path,
        label=parts.label,
        description=parts.description,
        anonymity=parts.anonymity,
        roles=MappingProxyType(roles),
        floor=parts.floor,
        default_duration_minutes=parts.durations[0],
        max_duration_minutes=parts.durations[1],
        recording=parts.recording,
        checklist=parts.checklist,
        registration=parts.registration,
        creator_role=parts.creator_role,
    )


# ---------------------------------------------------------------------------------------------
# consistency: rules across fields, checked once every role has been read


def _inconsistencies(parts: _Parts, index: _LineIndex) -> Iterator[tuple[int, str]]:
    if not parts.roles_ok:
        return  # judging half-read roles would only add false alarms
    for rule in _RULES:
        for path, message in rule(parts):
            yield index.line(path), message


Finding = Iterator[tuple[KeyPath, str]]


def _holders(parts: _Parts, permission: Permission) -> list[Role]:
    return [role for role in parts.roles.values() if permission in role.permissions]


def _role_path(role: Role, key: str) -> KeyPath:
    return ("roles", role.name, key)


def _lobby_needs_admit(parts: _Parts) -> Finding:
    waiting = [role for role in parts.roles.values() if role.lobby]
    admitters = [role for role in _holders(parts, Permission.admit) if not role.lobby]
    if waiting and not admitters:
        name = waiting[0].name
        message = f"role `{name}` waits in the lobby, but no role outside it can `admit`"
        yield _role_path(waiting[0], "lobby"), message


def _raise_hand_floor(parts: _Parts) -> Finding:
    if parts.floor is None or parts.floor.mode != "raise_hand":
        return
    for permission in (Permission.grant_floor, Permission.raise_hand):
        if not _holders(parts, permission):
            yield ("floor", "mode"), f"floor mode `raise_hand` needs a role with `{permission}`"


def _anonymity_roles(parts: _Parts) -> Finding:
    anonymous = [role for role in parts.roles.values() if role.anonymous]
    if parts.anonymity != "none" and not anonymous:
        message = f"anonymity `{parts.anonymity}` needs a role with `anonymous = true`"
        yield ("anonymity",), message
    if parts.anonymity == "none":
        for role in anonymous:
            message = f"role `{role.name}` is anonymous, but the template's `anonymity` is `none`"
            yield _role_path(role, "anonymous"), message


def _sealed_identities(parts: _Parts) -> Finding:
    if parts.anonymity != "sealed":
        return
    for role in _holders(parts, Permission.see_identities):
        message = (
            f"role `{role.name}` may `see_identities`, but anonymity `sealed` hides identities "
            'from everyone in the room; add deny = ["see_identities"] or use `pseudonym`'
        )
        yield ("roles", role.name), message


def _anonymous_faces(parts: _Parts) -> Finding:
    for role in parts.roles.values():
        if not role.anonymous:
            continue
        if Permission.publish_video in role.permissions:
            message = (
                f"anonymous role `{role.name}` may publish video, which shows their face; "
                'add deny = ["publish_video"]'
            )
            yield ("roles", role.name), message
        if role.ask_display_name:
            message = f"anonymous role `{role.name}` is shown by pseudonym, not a display name"
            yield _role_path(role, "ask_display_name"), message


def _registration_roles(parts: _Parts) -> Finding:
    registering = [role for role in parts.roles.values() if "registration" in role.join]
    if parts.registration and not registering:
        yield ("registration",), "`registration = true` needs a role with `registration` in `join`"
    for role in registering:
        if not parts.registration:
            message = f"role `{role.name}` joins by `registration`, but `registration` is off"
            yield _role_path(role, "join"), message
        if "passcode" not in role.join:
            # registrants are answered with an ID and passcode by email
            message = f'role `{role.name}` joins by `registration`: add "passcode" to `join`'
            yield _role_path(role, "join"), message


def _recording_roles(parts: _Parts) -> Finding:
    if parts.recording == "consent" and not _holders(parts, Permission.record):
        yield ("recording",), '`recording = "consent"` needs a role with `record`'


def _creator_is_staff(parts: _Parts) -> Finding:
    role = parts.roles.get(parts.creator_role or "")
    if role is not None and ("staff" not in role.join or role.lobby):
        message = f"creator role `{role.name}` must join by `staff` and skip the lobby"
        yield _role_path(role, "join"), message


_RULES = (
    _lobby_needs_admit,
    _raise_hand_floor,
    _anonymity_roles,
    _sealed_identities,
    _anonymous_faces,
    _registration_roles,
    _recording_roles,
    _creator_is_staff,
)
