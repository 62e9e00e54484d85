"""The docs can be trusted to navigate by: README.md and docs/**/*.md are checked against the
repository and the code, so a renamed file, heading, command, option or setting fails here.

- every relative link resolves (a file or folder of the repository), and every ``#anchor`` names
  a heading of the target file (GitHub's slugs: lower case, punctuation dropped, spaces to
  ``-``, ``-1``, ``-2`` for repeats);
- every ``solarsync ...`` command line in code (fenced blocks and inline spans) parses against
  :func:`pipelines.cli.build_parser`: global options before the command, the command, its own
  options and the choices of its positionals; a lone ``--flag`` in code is an option of some
  command;
- every setting named as an environment variable (``SOURCES__X__Y``, ``DESTINATION__X__Y``,
  ``SOLARSYNC__X``), as ``[section] key`` in code or as a key of a TOML example exists: the known
  settings are derived from solarsync's configspecs, dlt's destination configspecs and the
  parameters of each source function in the registry;
- docs/configuration.md names the environment variable of every setting solarsync defines;
- README.md is at most 260 lines and starts with the ``make demo`` / ``make test`` block.

The checks are plain functions over text; the last tests feed them broken docs, so each check
is shown to fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import tomllib
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
#: also checked for links (they stay beside the code they describe)
OTHER_DOCS = [ROOT / "warehouse" / "README.md", ROOT / "bench" / "README.md"]
MAX_README_LINES = 260

# ---------------------------------------------------------------------------- markdown


@dataclasses.dataclass
class Block:
    """A fenced code block: its language and text."""

    lang: str
    text: str
    line: int


@dataclasses.dataclass
class Markdown:
    prose: str  # the text outside fenced blocks (code blocks blanked, line numbers kept)
    blocks: list[Block]

    @classmethod
    def parse(cls, text: str) -> Markdown:
        prose, blocks, fence, lang, body, start = [], [], None, "", [], 0
        for number, line in enumerate(text.split("\n"), 1):
            stripped = line.strip()
            if fence is None:
                match = re.match(r"(`{3,}|~{3,})\s*([\w+-]*)", stripped)
                if match:
                    fence, lang, body, start = match.group(1), match.group(2).lower(), [], number
                    prose.append("")
                else:
                    prose.append(line)
            elif stripped.startswith(fence) and not stripped.strip(fence[0]):
                blocks.append(Block(lang, "\n".join(body), start))
                fence = None
                prose.append("")
            else:
                body.append(line)
                prose.append("")
        return cls("\n".join(prose), blocks)

    def spans(self) -> list[str]:
        """Inline code spans of the prose."""
        return [m.group(2) for m in re.finditer(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", self.prose, re.S)]

    def prose_without_code(self) -> str:
        return re.sub(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", "CODE", self.prose, flags=re.S)

    def headings(self) -> list[str]:
        found = re.finditer(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", self.prose, re.M)
        return [m.group(1).strip() for m in found]

    def links(self) -> list[str]:
        """The targets of ``[text](target)`` and images, outside code."""
        found = re.finditer(
            r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", self.prose_without_code()
        )
        return [m.group(1) for m in found]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading (github-slugger): the rendered text, lower case, every
    character but letters, digits, ``_``, ``-`` and spaces dropped, spaces to ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    rendered = []
    # re.split with the two groups: text, backticks, code, text, backticks, code, ...
    for i, part in enumerate(re.split(r"(`+)(.+?)\1", text)):
        if i % 3 == 0:  # outside code: no emphasis markers, no HTML tags
            rendered.append(re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", re.sub(r"<[^>]+>", "", part)))
        elif i % 3 == 2:  # a code span's text as written
            rendered.append(part)
    text = "".join(rendered)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: Markdown) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in markdown.headings():
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def check_links(path: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of ``path`` resolves, anchors included."""
    errors = []
    for target in Markdown.parse(path.read_text()).links():
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        where = f"{path.relative_to(root)}: link ({target})"
        if not resolved.exists():
            errors.append(f"{where}: {file} does not exist")
            continue
        if root.resolve() not in (resolved, *resolved.parents):
            errors.append(f"{where}: points outside the repository")
        if anchor:
            if resolved.suffix != ".md":
                errors.append(f"{where}: an anchor into a file that is not markdown")
            elif anchor not in anchors(Markdown.parse(resolved.read_text())):
                errors.append(f"{where}: no heading #{anchor} in {resolved.relative_to(root)}")
    return errors


# ---------------------------------------------------------------------------- the CLI


@dataclasses.dataclass
class Cli:
    options: dict[str, argparse.Action]
    commands: dict[str, argparse.ArgumentParser]
    sources: set[str]

    @classmethod
    def build(cls) -> Cli:
        from pipelines.cli import build_parser
        from pipelines.registry import SOURCES

        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return cls(parser._option_string_actions, dict(sub.choices), set(SOURCES))

    def every_option(self) -> set[str]:
        names = set(self.options)
        for command in self.commands.values():
            names |= set(command._option_string_actions)
        return names


def placeholder(token: str) -> bool:
    """``SOURCE``, ``PATH``, ``[SOURCE...]``, ``<source>``, ``...``: not a literal value."""
    return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*\.*|.*(\.\.\.|<|>|\[|\]|\|).*", token))


def _takes_value(action: argparse.Action, token: str) -> bool:
    return action.nargs != 0 and "=" not in token


def check_command(tokens: list[str], cli: Cli) -> list[str]:
    """``tokens``: what follows ``solarsync`` on a documented command line."""
    errors, i = [], 0
    while i < len(tokens) and tokens[i].startswith("-"):
        flag = tokens[i].split("=")[0]
        action = cli.options.get(flag)
        if action is None:
            errors.append(f"unknown option {flag} (before the command)")
            i += 1
            continue
        i += 1 + _takes_value(action, tokens[i])
    if i >= len(tokens) or placeholder(tokens[i]):
        return errors
    names = tokens[i].split("/")  # `solarsync run/backfill/poll/status`
    unknown = [n for n in names if n not in cli.commands]
    if unknown or len(names) > 1:
        return errors + [f"unknown command {n!r}" for n in unknown]
    command = cli.commands[names[0]]
    positionals = [a for a in command._actions if not a.option_strings]
    position, i = 0, i + 1
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-") and token != "-":
            flag = token.split("=")[0]
            action = command._option_string_actions.get(flag)
            if action is None:
                where = " (an option of solarsync itself goes before the command)"
                errors.append(
                    f"{names[0]}: unknown option {flag}" + (where if flag in cli.options else "")
                )
                # its value, if any, cannot be told from an argument: skip it (reported already)
                follows = i + 1 < len(tokens) and not tokens[i + 1].startswith("-")
                i += 1 + (follows and "=" not in token)
                continue
            i += 1 + _takes_value(action, token)
            continue
        if position >= len(positionals):
            if not placeholder(token):
                errors.append(f"{names[0]}: unexpected argument {token!r}")
            i += 1
            continue
        action = positionals[position]
        allowed = action.choices or (cli.sources if action.dest == "sources" else None)
        if allowed and not placeholder(token) and token not in allowed:
            errors.append(f"{names[0]}: {token!r} is not one of {sorted(allowed)}")
        if action.nargs not in ("*", "+"):
            position += 1
        i += 1
    return errors


_INVOCATION = re.compile(r"(?:^|(?<=[\s/(;&|]))solarsync[ \t]+([^\n#`|;&>]*)")


def command_lines(markdown: Markdown) -> Iterator[str]:
    """What follows ``solarsync`` wherever code runs it: shell-like fenced blocks (comments
    included: a TOML comment may name a command) and inline code spans."""
    texts = list(markdown.spans())
    for block in markdown.blocks:
        if block.lang in ("python", "sql"):
            continue
        for line in block.text.replace("\\\n", " ").split("\n"):
            comment_at = 0 if line.lstrip().startswith("#") else line.find(" #")
            code, comment = (line, "") if comment_at < 0 else (line[:comment_at], line[comment_at:])
            texts.append(code)
            # a comment names a command in backticks (`solarsync run` syncs ...)
            texts += [m.group(2) for m in re.finditer(r"(`+)(.+?)\1", comment)]
    for text in texts:
        for match in _INVOCATION.finditer(text):
            yield match.group(1).strip()


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


def check_cli(path: Path, cli: Cli) -> list[str]:
    markdown = Markdown.parse(path.read_text())
    errors = []
    for line in command_lines(markdown):
        try:
            tokens = shlex.split(line)
        except ValueError:
            tokens = line.split()
        # `[--since DATE]`, `[SOURCE...]`: an optional part is still checked
        tokens = [t.strip("[]") for t in tokens if t.strip("[]")]
        errors += [f"{_where(path)}: `solarsync {line}`: {e}" for e in check_command(tokens, cli)]
    every = cli.every_option()
    for span in markdown.spans():
        if span.strip().startswith("--"):  # a lone option, e.g. `--fail-if-stale`
            for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", span):
                if flag not in every:
                    errors.append(f"{_where(path)}: `{span}`: {flag} is no option of solarsync")
    return errors


# ---------------------------------------------------------------------------- settings

#: below these sections any key is a setting: a table whose keys are the user's (site names,
#: fsspec options, ...)
FREE = None
NESTED = "nested configspecs"


def _fields(spec: type) -> dict[str, typing.Any]:
    return dict(spec.get_resolvable_fields())


def _is_configspec(kind: typing.Any) -> bool:
    from dlt.common.configuration.specs import BaseConfiguration

    return isinstance(kind, type) and issubclass(kind, BaseConfiguration)


def _sections_of(path: tuple[str, ...], fields: Mapping[str, typing.Any]) -> dict:
    """``path``'s keys from a configspec's fields; nested configspecs and mappings as sections
    (the key ``NESTED`` lists the paths of the nested configspecs)."""
    out: dict[typing.Any, typing.Any] = {path: set(fields), NESTED: set()}
    for name, kind in fields.items():
        origin = typing.get_origin(kind)
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        specs = [k for k in (kind, *args) if _is_configspec(k)]
        if specs:
            keys: set[str] = set()
            for spec in specs:
                for sub, value in _sections_of((*path, name), _fields(spec)).items():
                    if sub == NESTED:
                        out[NESTED] |= value
                    elif sub == (*path, name):
                        keys |= value or set()
                    else:
                        out[sub] = value
            out[(*path, name)] = keys
            out[NESTED].add((*path, name))
        elif (
            kind is typing.Any
            or origin in (dict, Mapping)
            or (args and any(typing.get_origin(a) in (dict, Mapping) for a in args))
        ):
            out[(*path, name)] = FREE
    return out


class Settings:
    """The settings solarsync reads, derived from the code (see the module docstring)."""

    #: parameters of a source function that ``solarsync backfill`` sets, never a user
    INTERNAL = {
        ("solarknock", "backfill"),
        ("solarknock", "backfill_since"),
        ("solarknock", "backfill_until"),
    }

    def __init__(self) -> None:
        from pipelines.destinations.duckdb.settings import DuckDBSettings
        from pipelines.destinations.lake.settings import LakeSettings
        from pipelines.destinations.postgres.config import PostgresSettings
        from pipelines.registry import SOURCES
        from pipelines.settings import SolarsyncSettings, SourceRunSettings
        from sources.tesla.config import GatewayConfig

        self.sections: dict[tuple[str, ...], set[str] | None] = {}
        self._nested: set[tuple[str, ...]] = set()
        #: the settings solarsync itself defines (its configspecs, the source functions), each
        #: as (section..., key); dlt's own (credentials, bucket_url) are known but not listed
        self.own: list[tuple[str, ...]] = []
        self._add(("solarsync",), _fields(SolarsyncSettings) | {"lake": LakeSettings})
        self._add(("destination", "duckdb"), _fields(DuckDBSettings))
        self._add(("destination", "postgres"), _fields(PostgresSettings))
        self.sections[("sources",)] = set(SOURCES)
        for name, spec in SOURCES.items():
            hints = typing.get_type_hints(spec.factory())
            hints.pop("return", None)
            params = {k: v for k, v in hints.items() if (name, k) not in self.INTERNAL}
            if name == "solarknock":  # path overrides by table name
                params["endpoints"] = str
                self.sections[("sources", name, "endpoints")] = set(spec.resources)
            if name == "tesla":  # [[sources.tesla.gateways]]: a list of one gateway's keys
                params["gateways"] = str
                fields = {f.name for f in dataclasses.fields(GatewayConfig)}
                self.sections[("sources", name, "gateways")] = fields
            self._add(("sources", name), params)
            self.sections[("sources", name)] |= set(_fields(SourceRunSettings))
            self.own += [("sources", name, key) for key in _fields(SourceRunSettings)]
        self.sections[("sources", "<name>")] = set(_fields(SourceRunSettings))
        self.sections[("destination",)] = set()
        # dlt's own settings of the destinations solarsync loads into (credentials, bucket_url)
        for kind in ("duckdb", "postgres", "filesystem"):
            self._add_dlt(kind)
        # settings, not the sections holding them (``attachments``, ``lake``)
        self.own = [path for path in dict.fromkeys(self.own) if path not in self._nested]

    def _add(self, path: tuple[str, ...], fields: Mapping[str, typing.Any]) -> None:
        sections = _sections_of(path, fields)
        self._nested |= sections.pop(NESTED)
        for section, keys in sections.items():
            if section in self.sections and keys is not FREE and self.sections[section]:
                self.sections[section] = (self.sections[section] or set()) | keys
            else:
                self.sections.setdefault(section, keys)
            if keys is not FREE:
                self.own += [(*section, key) for key in keys]

    def _add_dlt(self, kind: str) -> bool:
        import dlt

        factory = getattr(dlt.destinations, kind, None)
        try:
            spec = factory().spec  # type: ignore[misc]
        except Exception:
            return False
        own, nested = list(self.own), set(self._nested)
        self._add(("destination", kind), _fields(spec))
        self.own, self._nested = own, nested  # dlt's settings, not solarsync's
        self.sections[("destination",)] |= {kind}  # type: ignore[operator]
        return True

    def problem(self, path: tuple[str, ...], *, section: bool = False) -> str | None:
        """Why ``path`` (a key, or with ``section`` a section) is no setting; None when it is."""
        path = tuple(p.lower() for p in path)
        if path and path[0] == "sources" and len(path) > 1 and re.fullmatch(r"<\w+>", path[1]):
            path = ("sources", "<name>", *path[2:])
        if len(path) > 3 and path[0] == "sources" and path[2] == "accounts":
            # a named account (docs/accounts.md): its settings are the source's
            from pipelines.registry import SOURCES

            spec = SOURCES.get(path[1])
            if path[1] != "<name>" and (spec is None or not spec.accounts):
                return f"[sources.{path[1]}] takes no accounts"
            path = ("sources", path[1], *path[4:])
        if (
            path[0] == "destination"
            and len(path) > 1
            and ("destination", path[1]) not in self.sections
        ):
            if not self._add_dlt(path[1]):
                return f"no destination {path[1]!r} in dlt"
        for i in range(1, len(path) + 1):
            prefix = path[:i]
            if prefix in self.sections and self.sections[prefix] is FREE:
                return None  # a table of the user's keys
            if i == len(path):
                if prefix in self.sections:
                    return None
                parent = self.sections.get(path[:-1])
                if not section and parent and path[-1] in parent:
                    return None
                what = "section" if section else "key"
                known = ", ".join(sorted(parent or ())) or "none"
                return f"[{'.'.join(path[:-1])}] has no {what} {path[-1]!r} (known: {known})"
            if prefix not in self.sections:
                known = sorted(self.sections.get(prefix[:-1]) or ())
                return f"no section [{'.'.join(prefix)}] (known: {', '.join(known)})"
        return None


_ENV = re.compile(r"(?<![A-Za-z0-9_])((?:SOURCES|DESTINATION|SOLARSYNC)__[A-Z0-9_]*)")
_SECTION = re.compile(r"\[\[?((?:solarsync|sources|destination)(?:\.[\w<>-]+)*)\]\]?")
_SECTION_KEY = re.compile(
    r"\[((?:solarsync|sources|destination)(?:\.[\w<>-]+)*)\][ \t]+([a-z_][a-z0-9_]*)"
)


def _toml_keys(value: typing.Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            yield from _toml_keys(item, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _toml_keys(item, (*path, key))
    else:
        yield path


def setting_names(markdown: Markdown) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(as written, path, is a section) of every setting the text names."""
    text = "\n".join([markdown.prose, *(b.text for b in markdown.blocks)])
    for match in _ENV.finditer(text):
        name = match.group(1)
        yield name, tuple(name.rstrip("_").split("__")), name.endswith("__")
    for match in _SECTION.finditer(text):
        yield match.group(0), tuple(match.group(1).split(".")), True
    for span in markdown.spans():
        for match in _SECTION_KEY.finditer(span):
            yield match.group(0), (*match.group(1).split("."), match.group(2)), False


def toml_settings(text: str) -> Iterator[tuple[str, ...]]:
    for path in _toml_keys(tomllib.loads(text), ()):
        if path[0] in ("solarsync", "sources", "destination"):
            yield path


def check_settings(path: Path, settings: Settings) -> list[str]:
    markdown = Markdown.parse(path.read_text())
    errors = []
    for written, name, section in setting_names(markdown):
        problem = settings.problem(name, section=section)
        if problem:
            errors.append(f"{_where(path)}: {written}: {problem}")
    for block in markdown.blocks:
        if block.lang != "toml":
            continue
        try:
            names = list(toml_settings(block.text))
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{_where(path)}:{block.line}: the TOML example does not parse: {exc}")
            continue
        for name in names:
            problem = settings.problem(name)
            if problem:
                errors.append(f"{_where(path)}:{block.line}: {'.'.join(name)}: {problem}")
    return errors


def env_name(path: Iterable[str]) -> str:
    return "__".join(p.upper() for p in path)


# ---------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def cli() -> Cli:
    return Cli.build()


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_pages_exist() -> None:
    """The pages the README's contents promise (one per source and per destination)."""
    from pipelines.registry import SOURCES

    names = {_name(p) for p in DOCS}
    expected = {f"docs/sources/{name}.md" for name in SOURCES} | {
        f"docs/destinations/{name}.md" for name in ("duckdb", "postgres", "lake")
    }
    expected |= {"docs/configuration.md", "docs/contributing.md", "docs/testing.md"}
    assert expected <= names, f"missing: {sorted(expected - names)}"


@pytest.mark.parametrize("path", DOCS + OTHER_DOCS, ids=_name)
def test_links_resolve(path: Path) -> None:
    errors = check_links(path)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_commands_exist(path: Path, cli: Cli) -> None:
    errors = check_cli(path, cli)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_settings_exist(path: Path, settings: Settings) -> None:
    errors = check_settings(path, settings)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", [".dlt/config.toml", ".dlt/secrets.toml.example"])
def test_shipped_config_names_real_settings(name: str, settings: Settings) -> None:
    problems = [
        f"{'.'.join(path)}: {settings.problem(path)}"
        for path in toml_settings((ROOT / name).read_text())
        if settings.problem(path)
    ]
    assert not problems, "\n".join(problems)


def undocumented(text: str, settings: Settings) -> list[str]:
    """The environment variables of solarsync's settings that ``text`` does not name."""
    return [env_name(path) for path in settings.own if env_name(path) not in text]


def test_configuration_page_names_every_setting(settings: Settings) -> None:
    """docs/configuration.md has the environment variable of every setting solarsync defines
    (its configspecs, each source function's parameters, ``schedule`` / ``expected_interval``)."""
    assert undocumented((ROOT / "docs" / "configuration.md").read_text(), settings) == []


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    body = [line for line in lines if line.strip() and not line.startswith("# ")]
    assert body[0].startswith("```"), f"README.md starts with {body[0]!r}"
    assert body[1].startswith("make demo") and body[2].startswith("make test"), body[:3]
    assert body[3].startswith("```")


# ---------------------------------------------------------------------------- the checks fail


def test_a_broken_link_or_anchor_fails(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## The `storage_version` (DuckDB)\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n## Same\n\n## Same\n\n"
        "[ok](docs/page.md#the-storage_version-duckdb) [ok](#same-1) [ok](docs/)\n"
        "[web](https://example.com/x.md) `[not a link](nowhere.md)`\n\n"
        "```sh\n[in code](nowhere.md)\n```\n"
        "[gone](docs/gone.md) [bad anchor](docs/page.md#storage-version) [self](#nope)\n"
    )
    errors = check_links(page, root=tmp_path)
    assert len(errors) == 3, errors
    assert "docs/gone.md does not exist" in errors[0]
    assert "no heading #storage-version in docs/page.md" in errors[1]
    assert "no heading #nope" in errors[2]


def test_a_wrong_command_or_option_fails(tmp_path: Path, cli: Cli) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "`solarsync run heat` `solarsync --destination postgres status --json` "
        "`solarsync lake optimize tesla --retention-hours 0` `--fail-if-stale` `--for 1h`\n"
        "```sh\n15 2 * * * cd /opt && .venv/bin/solarsync run >> log 2>&1\n"
        "solarsync backfill solarknock --since 2024-01-01 --resource leads  # comment --x\n```\n"
        "`solarsync sync` `solarsync run --warehouse x.duckdb` `solarsync poll heat`\n"
        "```sh\nsolarsync report --out x.html\n```\n`--no-such-flag` `solarsync lake compact`\n"
    )
    errors = check_cli(page, cli)
    assert len(errors) == 6, errors
    for fragment in (
        "unknown command 'sync'",
        "run: unknown option --warehouse (an option of solarsync itself",
        "poll: 'heat' is not one of",
        "lake: 'compact' is not one of",
        "report: unknown option --out",
        "--no-such-flag is no option",
    ):
        assert any(fragment in e for e in errors), (fragment, errors)


def test_an_unknown_setting_fails(tmp_path: Path, settings: Settings) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "`SOURCES__HEAT__API_KEY`, `SOURCES__SOLARKNOCK__ATTACHMENTS__BLOB_URL`, "
        "`SOLARSYNC__LAKE__JOB_MEMORY`, `DESTINATION__FILESYSTEM__CREDENTIALS__AWS_ACCESS_KEY_ID`,"
        " `[sources.<name>] expected_interval`, `[destination.duckdb] publish_every`, "
        "`SOURCES__TESLA__<KEY>`, `[sources.solarassistant.site_timezones]`\n"
        "```toml\n[[sources.tesla.gateways]]\nname = 'home'\n"
        "[sources.solarknock.endpoints]\ncounties = 'geo/counties'\n```\n"
        "`SOURCES__HEAT__API_KEYS` `[solarsync] publish_every` `DESTINATION__DUCKDB__PUBLISHEVERY`"
        " `[sources.weather]` `SOLARSYNC__LAKE__JOB_MEM`\n"
        "```toml\n[sources.tesla]\nhost = 'x'\nport = 1\n```\n```toml\n[sources.heat\n```\n"
    )
    errors = check_settings(page, settings)
    assert len(errors) == 7, errors
    for fragment in (
        "SOURCES__HEAT__API_KEYS: [sources.heat] has no key 'api_keys'",
        "DESTINATION__DUCKDB__PUBLISHEVERY: [destination.duckdb] has no key 'publishevery'",
        "SOLARSYNC__LAKE__JOB_MEM: [solarsync.lake] has no key 'job_mem'",
        "[sources.weather]: [sources] has no section 'weather'",
        "[solarsync] publish_every: [solarsync] has no key 'publish_every'",
        "sources.tesla.port: [sources.tesla] has no key 'port'",
        "the TOML example does not parse",
    ):
        assert any(fragment.lower() in e.lower() for e in errors), (fragment, errors)


def test_the_configuration_check_sees_a_setting_missing(settings: Settings) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert undocumented(text.replace("SOURCES__TESLA__STATE_DIR", "state dir"), settings) == [
        "SOURCES__TESLA__STATE_DIR"
    ]
    assert ("solarsync", "lake", "job_memory") in settings.own
    assert ("sources", "tesla", "state_dir") in settings.own
    assert ("sources", "solarknock", "attachments", "purge_removed") in settings.own
    assert ("sources", "heat", "expected_interval") in settings.own
    assert ("sources", "solarknock", "backfill") not in settings.own
    assert ("destination", "filesystem", "bucket_url") not in settings.own  # dlt's, not ours
