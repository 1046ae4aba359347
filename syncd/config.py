"""syncd's configuration: one TOML file, with ``SYNCD_*`` environment overrides.

The file has three parts — ``[api]``, ``[sync]`` and one ``[[folders]]`` table per drop
folder (see ``config.example.toml``, which documents every key). Any key of ``[api]`` and
``[sync]`` can be overridden from the environment as ``SYNCD_<SECTION>__<KEY>``, e.g.
``SYNCD_SYNC__CONCURRENCY=8``; the environment wins over the file. Folders can only be
configured in the file: a list of tables does not map onto flat variables in a way a person
could read back.

``load_config`` turns every problem into one :class:`ConfigError` whose text names the file,
the key and the reason, one line per problem::

    /etc/syncd/config.toml: folders[1].purpose: must be "assistants" or "fine-tune", got "finetune"

Folder indexes are 0-based, as in the TOML array. Relative paths in the file are taken
relative to the file's own directory, so a ``./syncd.toml`` next to its folders keeps working
from any working directory.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from syncd.api import (
    DEFAULT_BASE_URL,
    ChunkingStrategy,
    Client,
    ClientConfigError,
    RetryPolicy,
    is_loopback,
)
from syncd.engine.filters import is_excluded
from syncd.engine.model import (
    INGESTION_TIMEOUT,
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    SYNCD_ATTRIBUTES,
    AttributeValue,
    FolderSpec,
)

__all__ = [
    "CREDENTIAL_NAME",
    "ENV_DELIMITER",
    "ENV_PREFIX",
    "ENV_SECTIONS",
    "ApiSettings",
    "Config",
    "ConfigError",
    "FolderConfig",
    "SyncSettings",
    "config_search_path",
    "default_state_dir",
    "find_config",
    "load_config",
    "make_client",
    "write_config",
]

log = logging.getLogger("syncd.config")

ENV_PREFIX = "SYNCD_"
ENV_DELIMITER = "__"
#: The sections whose keys the environment may override.
ENV_SECTIONS = ("api", "sync")
#: The file name systemd's ``LoadCredential=openai-api-key:...`` makes available.
CREDENTIAL_NAME = "openai-api-key"

_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ASSISTANT_ID = re.compile(r"asst_[A-Za-z0-9_-]+")
_STORE_ID = re.compile(r"vs_[A-Za-z0-9_-]+")
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: The longest attribute key the service takes.
_MAX_KEY_CHARS = 64


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is the message to show, one line per
    problem, each ``<file>: <key>: <reason>``."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _not_a_boolean(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number belongs (pydantic would read true as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {'true' if value else 'false'}")
    return value


def _between(low: float, high: float, why: str) -> AfterValidator:
    """A number from ``low`` to ``high`` inclusive, and finite; ``why`` says what the bounds
    protect, for the message."""

    def check(value: float) -> float:
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"must be between {low:g} and {high:g} ({why}), got {value:g}")
        return value

    return AfterValidator(check)


# Every number in the configuration has bounds, each with its reason: a value outside them is a
# mistake (1e309 is infinite: the daemon would never upload), not a setting.
Seconds = Annotated[float, BeforeValidator(_not_a_boolean)]
TimeoutSeconds = Annotated[
    Seconds, _between(1, 3600, "how long to wait for the service's answer before retrying")
]
ConnectTimeoutSeconds = Annotated[
    Seconds, _between(0.1, 600, "how long to wait for a connection before retrying")
]
MaxAttempts = Annotated[
    int,
    BeforeValidator(_not_a_boolean),
    _between(1, 100, "tries per request; more only delays the error"),
]
Concurrency = Annotated[int, BeforeValidator(_not_a_boolean), _between(1, 64, "requests at once")]
DebounceSeconds = Annotated[
    Seconds,
    _between(0.05, 3600, "how long a changed file must stay quiet before it is uploaded"),
]
RescanSeconds = Annotated[
    Seconds, _between(10, 7 * 86400, "the time between full passes: 10 s to a week")
]
DeleteFraction = Annotated[
    float,
    BeforeValidator(_not_a_boolean),
    _between(0, 1, "the share of a folder's files one pass may remove"),
]
GraceSeconds = Annotated[
    Seconds, _between(0, 3600, "how long requests in flight may finish after a stop signal")
]
UnresolvedGraceSeconds = Annotated[
    Seconds, _between(0, 60, "how long an unanswered upload may still be landing on the service")
]


def _empty_to_none(value: Any) -> Any:
    """``key = ""`` in the file means "not set", so an example file can list every key."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class ApiSettings(BaseModel):
    """``[api]``: where the service is and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    # Declared before base_url: the base_url check reads it.
    allow_insecure_http: bool = False
    base_url: str | None = None
    organization: str | None = None
    api_key_file: Path | None = None
    timeout_seconds: TimeoutSeconds = 60
    connect_timeout_seconds: ConnectTimeoutSeconds = 10
    max_attempts: MaxAttempts = 8

    # Where api_key() looks when api_key_file is unset; load_config sets it to the environment
    # it was given. Private attributes stay out of repr() and model_dump().
    _environ: Mapping[str, str] | None = PrivateAttr(default=None)

    @field_validator("organization", "api_key_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return _empty_to_none(value)

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: Any, info: ValidationInfo) -> Any:
        value = _empty_to_none(value)
        if not isinstance(value, str):
            return value
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as {DEFAULT_BASE_URL}, got {url!r}")
        if (
            parts.scheme == "http"
            and not is_loopback(parts.hostname)
            and not info.data.get("allow_insecure_http")
        ):
            raise ValueError(
                f"{url} is plain http, which would send the API key unencrypted; "
                "use https, or set api.allow_insecure_http = true"
            )
        return url

    @field_validator("api_key_file", mode="after")
    @classmethod
    def _check_key_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        # Read it now so a bad path fails at start-up, not at the first upload; the content
        # itself is never part of a message.
        try:
            with path.open("rb") as f:
                present = bool(f.read(4096).strip())
                mode = os.fstat(f.fileno()).st_mode
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        if not present:
            raise ValueError(f"{path} is empty")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "the API key file %s can be read by other users (mode %o); "
                "`chmod 600 %s` to keep the key private",
                path,
                stat.S_IMODE(mode),
                path,
            )
        return path

    def api_key(self) -> str | None:
        """The API key: ``api_key_file``, else ``$OPENAI_API_KEY``, else the systemd credential
        ``$CREDENTIALS_DIRECTORY/openai-api-key``; None when none is set. Read on every call, so
        a rotated key file takes effect without a restart."""
        environ = os.environ if self._environ is None else self._environ
        if self.api_key_file is not None:
            return self.api_key_file.read_text(encoding="utf-8").strip() or None
        key = environ.get("OPENAI_API_KEY", "").strip()
        if key:
            return key
        credentials = environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            try:
                return (Path(credentials) / CREDENTIAL_NAME).read_text("utf-8").strip() or None
            except FileNotFoundError:
                return None
        return None

    def retry_policy(self) -> RetryPolicy:
        """How a sync pass retries requests: ``max_attempts`` tries, the client's backoff."""
        return RetryPolicy(max_attempts=self.max_attempts)


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where state lives when ``sync.state_dir`` is not set: systemd's ``$STATE_DIRECTORY``
    (``StateDirectory=syncd``), else ``$XDG_STATE_HOME/syncd``, else ``~/.local/state/syncd``."""
    environ = os.environ if environ is None else environ
    if environ.get("STATE_DIRECTORY"):
        # systemd passes a colon-separated list when the unit names several directories.
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if environ.get("XDG_STATE_HOME"):
        return Path(environ["XDG_STATE_HOME"]) / "syncd"
    return Path("~/.local/state/syncd").expanduser()


class SyncSettings(BaseModel):
    """``[sync]``: how the daemon paces itself and where it keeps its state."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(default_factory=default_state_dir)
    concurrency: Concurrency = 4
    debounce_seconds: DebounceSeconds = 2.0
    rescan_interval_seconds: RescanSeconds = 900
    max_delete_fraction: DeleteFraction = 0.5
    shutdown_grace_seconds: GraceSeconds = 30
    # After an upload whose answer was lost finds nothing on the service, how long to wait
    # and list again before sending it again: the service may still be storing it.
    unresolved_grace_seconds: UnresolvedGraceSeconds = 10
    metrics_address: str | None = None
    # Written on every store file syncd attaches; unset: generated once and kept in state_dir.
    instance_id: str | None = None

    @field_validator("instance_id", mode="before")
    @classmethod
    def _check_instance_id(cls, value: Any) -> Any:
        value = _empty_to_none(value)
        if isinstance(value, str) and not _INSTANCE_ID.fullmatch(value):
            raise ValueError(
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                f"digit, got {value!r}"
            )
        return value

    @field_validator("state_dir", mode="before")
    @classmethod
    def _default_when_blank(cls, value: Any) -> Any:
        # Reached by SYNCD_SYNC__STATE_DIR="" (the file's blank is filled before validation).
        return default_state_dir(_ENVIRON.get()) if _empty_to_none(value) is None else value

    @field_validator("state_dir", mode="after")
    @classmethod
    def _expand_state_dir(cls, value: Path) -> Path:
        return Path(os.path.abspath(value.expanduser()))

    @field_validator("metrics_address", mode="before")
    @classmethod
    def _check_metrics_address(cls, value: Any) -> Any:
        value = _empty_to_none(value)
        if not isinstance(value, str):
            return value
        host, sep, port = value.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'must be "HOST:PORT", e.g. "127.0.0.1:9464", got {value!r}')
        if host.startswith("[") != host.endswith("]"):
            raise ValueError(f"unbalanced brackets in {value!r}")
        return value.strip()


class FolderConfig(BaseModel):
    """One ``[[folders]]`` table: a local drop folder and what its files are for."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: Path
    purpose: Literal["assistants", "fine-tune"]
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    recursive: bool = True
    assistants: list[str] = Field(default_factory=list)
    vector_stores: list[str] = Field(default_factory=list)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    chunking_strategy: Literal["auto"] | dict[str, Any] = "auto"
    ingestion_timeout_seconds: float = Field(INGESTION_TIMEOUT, gt=0)
    on_delete: Literal["delete", "detach", "keep"] = "delete"

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _FOLDER_NAME.fullmatch(value):
            raise ValueError(
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                f"digit, got {value!r}"
            )
        return value

    @field_validator("path", mode="before")
    @classmethod
    def _path_not_blank(cls, value: Any) -> Any:
        if _empty_to_none(value) is None:
            raise ValueError("must name a directory")
        return value

    @field_validator("path", mode="after")
    @classmethod
    def _absolute_path(cls, value: Path) -> Path:
        # Kept unresolved: the root may be a symlink on purpose (e.g. to a mount point).
        return Path(os.path.abspath(value.expanduser()))

    @field_validator("include", "exclude")
    @classmethod
    def _check_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern.strip("/"):
                raise ValueError(f"empty pattern {pattern!r}")
            if ".." in pattern.split("/"):
                raise ValueError(f"pattern {pattern!r} points outside the folder")
        return patterns

    @field_validator("assistants")
    @classmethod
    def _check_assistants(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        return _target_ids(ids, info, "assistant", _ASSISTANT_ID, "asst_abc123", "attached")

    @field_validator("vector_stores")
    @classmethod
    def _check_vector_stores(cls, ids: list[str], info: ValidationInfo) -> list[str]:
        return _target_ids(ids, info, "vector store", _STORE_ID, "vs_abc123", "searched")

    @field_validator("attributes", mode="before")
    @classmethod
    def _check_attributes(cls, value: Any) -> Any:
        """As the service checks a store file's attributes, counting syncd's own within its
        16 keys, so that a bad one is named now rather than refused at every attach."""
        if not isinstance(value, dict):
            return value
        room = MAX_ATTRIBUTES - len(SYNCD_ATTRIBUTES)
        if len(value) > room:
            raise ValueError(
                f"at most {room} keys ({MAX_ATTRIBUTES} per file, {len(SYNCD_ATTRIBUTES)} of "
                f"them syncd's own), got {len(value)}"
            )
        for key, item in value.items():
            if key in SYNCD_ATTRIBUTES or key.startswith("syncd_"):
                raise ValueError(f"{key!r}: names starting with syncd_ are syncd's own")
            if not 1 <= len(key) <= _MAX_KEY_CHARS:
                raise ValueError(f"{key[:20]!r}...: a key is 1 to {_MAX_KEY_CHARS} characters")
            if isinstance(item, str):
                if len(item) > MAX_ATTRIBUTE_CHARS:
                    raise ValueError(
                        f"{key!r}: a text value is at most {MAX_ATTRIBUTE_CHARS} characters, "
                        f"got {len(item)}"
                    )
            elif not isinstance(item, bool | int | float):
                raise ValueError(f"{key!r}: must be a string, a number or true/false")
        return value

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _check_chunking(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto":
            raise ValueError(
                'must be "auto" or a table { max_chunk_size_tokens = 800, '
                f"chunk_overlap_tokens = 400 }}, got {value!r}"
            )
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"type", "max_chunk_size_tokens", "chunk_overlap_tokens"})
            if unknown:
                raise ValueError(
                    f"unknown key {unknown[0]!r} (known: type, max_chunk_size_tokens, "
                    "chunk_overlap_tokens)"
                )
            if value.get("type", "static") != "static":
                raise ValueError(f'a table is a "static" strategy, got type = {value["type"]!r}')
            sizes = {k: v for k, v in value.items() if k != "type"}
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes.values()):
                raise ValueError("max_chunk_size_tokens and chunk_overlap_tokens are whole numbers")
            ChunkingStrategy.fixed(**sizes)  # its ValueError names the size and its bounds
        return value

    def chunking(self) -> ChunkingStrategy:
        """The chunking strategy sent with each attach to a store (a store's own is not applied
        to files added later)."""
        if isinstance(self.chunking_strategy, dict):
            sizes = {k: v for k, v in self.chunking_strategy.items() if k != "type"}
            return ChunkingStrategy.fixed(**sizes)
        return ChunkingStrategy.auto()

    def spec(self) -> FolderSpec:
        """The part of this folder's configuration that the planner decides with."""
        return FolderSpec(
            name=self.name,
            purpose=self.purpose,
            assistants=tuple(self.assistants),
            on_delete=self.on_delete,
            vector_stores=tuple(self.vector_stores),
            attributes=tuple(sorted(self.attributes.items())),
            ingestion_timeout=self.ingestion_timeout_seconds,
        )


# The environment the settings source reads; load_config sets it for the duration of a load so
# that callers (and tests) can pass their own mapping instead of os.environ.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("syncd_config_environ", default=None)


def _overridable(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``SYNCD_API__*`` and ``SYNCD_SYNC__*`` variables of ``environ``."""
    prefixes = tuple(f"{ENV_PREFIX}{s}{ENV_DELIMITER}".lower() for s in ENV_SECTIONS)
    return {k: v for k, v in environ.items() if k.lower().startswith(prefixes)}


class _SectionEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, limited to the ``[api]`` and ``[sync]`` keys and
    reading the mapping load_config was given."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        environ = _ENVIRON.get()
        relevant = _overridable(os.environ if environ is None else environ)
        self.env_vars = {k.lower(): v for k, v in relevant.items()}


class Config(BaseSettings):
    """The whole configuration. Build it with :func:`load_config`, which also runs the checks
    that span several folders and turns errors into readable messages."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        case_sensitive=False,
        extra="forbid",
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    folders: list[FolderConfig] = Field(min_length=1)
    source: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: the environment overrides the file (passed as init values).
        return (_SectionEnvSource(settings_cls), init_settings)

    def folder(self, name: str) -> FolderConfig:
        """The folder called ``name``; KeyError if there is none."""
        for folder in self.folders:
            if folder.name == name:
                return folder
        raise KeyError(name)


def config_search_path(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where :func:`find_config` looks, in order."""
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return [
        Path("syncd.toml"),
        Path(xdg) / "syncd" / "config.toml",
        Path("/etc/syncd/config.toml"),
    ]


def find_config(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """The configuration file to use: ``explicit`` (``--config``) if given, else the first of
    ``./syncd.toml``, ``$XDG_CONFIG_HOME/syncd/config.toml``, ``/etc/syncd/config.toml``."""
    if explicit is not None:
        if not explicit.exists():
            raise ConfigError(f"{explicit}: no such file")
        return explicit
    candidates = config_search_path(environ)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no configuration file found (looked for {looked}); "
        "pass --config PATH, or start from config.example.toml"
    )


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the configuration; raises :class:`ConfigError`.

    ``path`` None means the default search (:func:`find_config`). ``env`` replaces
    ``os.environ`` for every variable the configuration reads (``SYNCD_*``, ``OPENAI_BASE_URL``,
    ``OPENAI_ORG_ID``, ``OPENAI_API_KEY``, ``CREDENTIALS_DIRECTORY``, ``STATE_DIRECTORY``,
    ``XDG_STATE_HOME``).
    """
    environ = os.environ if env is None else env
    path = find_config(path, environ)
    data = _read_toml(path)
    # Every problem at once, so nobody fixes one only to meet the next: the environment's, each
    # value's, and those across folders (among the folders that are valid on their own).
    problems = [f"{path}: {key}: {reason}" for key, reason in _env_key_problems(environ)]
    origins = _apply_env_fallbacks(data, environ)
    _resolve_relative_paths(data, path.parent)

    token = _ENVIRON.set(environ)
    try:
        config = Config(**data, source=path.absolute())
    except ValidationError as e:
        problems += _describe(e, path, environ, origins)
        folders, state_dir = _valid_parts(data)
        problems += [f"{path}: {k}: {r}" for k, r in _cross_checks(folders, state_dir)]
        raise ConfigError(problems) from None
    finally:
        _ENVIRON.reset(token)

    config.api._environ = environ
    checks = _cross_checks(list(enumerate(config.folders)), config.sync.state_dir)
    problems += [f"{path}: {key}: {reason}" for key, reason in checks]
    if problems:
        raise ConfigError(problems)
    return config


def _valid_parts(data: Mapping[str, Any]) -> tuple[list[tuple[int, FolderConfig]], Path | None]:
    """The folders that are valid on their own, and the state directory if it is: what the
    checks across folders can still judge when something else is wrong."""
    folders: list[tuple[int, FolderConfig]] = []
    raw_folders = data.get("folders")
    for i, raw in enumerate(raw_folders if isinstance(raw_folders, list) else []):
        try:
            folders.append((i, FolderConfig.model_validate(raw)))
        except ValidationError:
            continue
    try:
        state_dir = SyncSettings.model_validate(
            {"state_dir": (data.get("sync") or {}).get("state_dir")}
        ).state_dir
    except (ValidationError, AttributeError):
        state_dir = None
    return folders, state_dir


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {_toml_error(str(e))}") from None


def _toml_error(message: str) -> str:
    """tomllib's "Invalid value (at line 3, column 14)" as "line 3, column 14: invalid value"."""
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        reason = message[: found.start()]
        where = f"line {found.group(1)}, column {found.group(2)}"
    else:
        reason, where = message.replace(" (at end of document)", ""), "end of file"
    return f"{where}: {reason[:1].lower()}{reason[1:]}"


def _env_key_problems(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    folder_vars = sorted(k for k in environ if k.upper().startswith(f"{ENV_PREFIX}FOLDERS"))
    if folder_vars:
        yield (
            "folders",
            "set in the file only; the environment cannot change them "
            f"(found {', '.join(folder_vars)})",
        )


def _apply_env_fallbacks(data: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple, str]:
    """Fill the keys the file leaves unset from the variables the OpenAI tools use, and return
    where each filled value came from (for error messages)."""
    origins: dict[tuple, str] = {}
    api = data.get("api")
    if api is None:
        api = data["api"] = {}
    if not isinstance(api, dict):
        return origins
    fallbacks = {
        "base_url": ("OPENAI_BASE_URL", DEFAULT_BASE_URL),
        "organization": ("OPENAI_ORG_ID", None),
    }
    for key, (variable, default) in fallbacks.items():
        if _empty_to_none(api.get(key)) is not None:
            continue
        if environ.get(variable, "").strip():
            api[key] = environ[variable].strip()
            origins[("api", key)] = variable
        elif default is not None:
            api[key] = default
    sync = data.setdefault("sync", {})
    if isinstance(sync, dict) and _empty_to_none(sync.get("state_dir")) is None:
        sync["state_dir"] = str(default_state_dir(environ))
    return origins


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> None:
    """Make the file's relative paths relative to the file, not to the working directory."""

    def resolve(table: Any, key: str) -> None:
        if isinstance(table, dict) and isinstance(table.get(key), str) and table[key].strip():
            value = os.path.expanduser(table[key])
            table[key] = str(base / value) if not os.path.isabs(value) else value

    resolve(data.get("api"), "api_key_file")
    resolve(data.get("sync"), "state_dir")
    folders = data.get("folders")
    if isinstance(folders, list):
        for folder in folders:
            resolve(folder, "path")


# --- readable validation errors -----------------------------------------------------------------


def _describe(
    error: ValidationError, path: Path, environ: Mapping[str, str], origins: dict[tuple, str]
) -> list[str]:
    lines = []
    upper_env = {k.upper() for k in environ}
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        key = _key_name(loc)
        variable = f"{ENV_PREFIX}{ENV_DELIMITER.join(str(p) for p in loc)}".upper()
        from_env = len(loc) == 2 and loc[0] in ENV_SECTIONS and variable in upper_env
        if from_env:
            key = f"{key} (from {variable})"
        elif loc in origins:
            key = f"{key} (from {origins[loc]})"
        lines.append(f"{path}: {key}: {_reason(item, loc, raw=from_env)}")
    return lines


def _key_name(loc: tuple) -> str:
    """('folders', 1, 'purpose') -> 'folders[1].purpose'."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "(top level)"


def _shown(value: Any, raw: bool = False) -> str:
    """A value as the user typed it: in TOML, or (``raw``) in an environment variable."""
    if raw and isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list):
        text = "a list"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(item: Mapping[str, Any], loc: tuple, *, raw: bool) -> str:
    kind, ctx, got = item["type"], item.get("ctx") or {}, item.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"must be {expected}, got {_shown(got, raw)}"
    if kind == "value_error":
        return str(ctx.get("error", item["msg"]))
    simple = {
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "model_type": "must be a table",
        "dict_type": "must be a table",
        "path_type": "must be a path",
    }
    if kind in simple:
        return f"{simple[kind]}, got {_shown(got, raw)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        limit = ctx[name]
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)  # "at most 1", not "at most 1.0"
        return f"must be {words} {limit}, got {_shown(got, raw)}"
    if kind == "too_short" and loc == ("folders",):
        return "at least one [[folders]] table is required"
    message = str(item["msg"])
    return message[:1].lower() + message[1:]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model that the table at ``loc`` is validated as (for "did you mean")."""
    if not loc:
        return Config
    if loc == ("api",):
        return ApiSettings
    if loc == ("sync",):
        return SyncSettings
    if len(loc) == 2 and loc[0] == "folders" and isinstance(loc[1], int):
        return FolderConfig
    return None


def _unknown_key(loc: tuple) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = [n for n in model.model_fields if n != "source"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f'unknown key (did you mean "{close[0]}"?)'
    return f"unknown key (known keys: {', '.join(known)})"


# --- checks across folders ----------------------------------------------------------------------


def _cross_checks(
    folders: list[tuple[int, FolderConfig]], state_dir: Path | None
) -> Iterator[tuple[str, str]]:
    """Problems no single value shows: duplicate names, overlapping folders, state inside a
    folder that would be synced. ``folders`` pairs each folder with its index in the file."""
    seen: dict[str, int] = {}
    real: dict[int, Path] = {}
    for i, folder in folders:
        if folder.name in seen:
            yield (
                f"folders[{i}].name",
                f'"{folder.name}" is already used by folders[{seen[folder.name]}]',
            )
        seen.setdefault(folder.name, i)
        real[i] = Path(os.path.realpath(folder.path))

    earlier: list[int] = []
    for i, path in real.items():
        for j in earlier:
            other = real[j]
            if path == other:
                yield f"folders[{i}].path", f"{path} is the same directory as folders[{j}].path"
            elif path.is_relative_to(other) or other.is_relative_to(path):
                inner, outer = (i, j) if path.is_relative_to(other) else (j, i)
                yield (
                    f"folders[{i}].path",
                    f"folders[{inner}].path ({real[inner]}) is inside folders[{outer}].path "
                    f"({real[outer]}); folders must not overlap",
                )
        earlier.append(i)

    if state_dir is None:
        return
    state = Path(os.path.realpath(state_dir))
    for i, folder in folders:
        root = real[i]
        # Only a problem if the scan would pick the state files up (a hidden state directory
        # inside a synced home directory is fine).
        if state == root or (
            state.is_relative_to(root)
            and not is_excluded(f"{state.relative_to(root).as_posix()}/syncd.lock", folder)
        ):
            yield (
                "sync.state_dir",
                f"{state} is inside folders[{i}].path ({root}), whose files are synced; "
                "keep the state elsewhere",
            )


def write_config(
    path: Path,
    *,
    api: Mapping[str, object] | None = None,
    sync: Mapping[str, object] | None = None,
    folders: Iterable[Mapping[str, object]] = (),
) -> Path:
    """Write a configuration file that :func:`load_config` reads: an ``[api]`` and a ``[sync]``
    table and one ``[[folders]]`` table per folder, for tests, benchmarks and scripts that set
    syncd up. Values are strings, paths, numbers, booleans, lists of them or tables; ``None``
    is left out (the default applies)."""
    lines: list[str] = []
    for header, table in (("[api]", api or {}), ("[sync]", sync or {})):
        lines += [header, *_toml_pairs(table), ""]
    for folder in folders:
        lines += ["[[folders]]", *_toml_pairs(folder), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml_pairs(table: Mapping[str, object]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in table.items() if value is not None]


def _toml_value(value: object) -> str:
    # A JSON string, number, boolean or array of them is the same TOML value; a table is
    # written inline, its keys quoted.
    if isinstance(value, Path):
        value = str(value)
    elif isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    elif isinstance(value, Mapping):
        pairs = (f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(value)


def make_client(config: Config, retry: RetryPolicy) -> Client:
    """The API client ``config.api`` describes, with the given retry policy.

    Raises ``ClientConfigError`` when it cannot be built (no API key, key file unreadable)."""
    api = config.api
    try:
        key = api.api_key()
    except OSError as e:
        raise ClientConfigError(f"cannot read the API key file: {e}") from None
    if key is None:
        # Named here, where the places a key can come from are known.
        raise ClientConfigError(
            "no API key: set api.api_key_file in the configuration, or the OPENAI_API_KEY "
            f"environment variable (or, under systemd, LoadCredential={CREDENTIAL_NAME}:…)"
        )
    return Client(
        api.base_url,
        key,
        api.organization,
        connect_timeout=api.connect_timeout_seconds,
        timeout=api.timeout_seconds,
        retry=retry,
        allow_insecure_http=api.allow_insecure_http,
    )


def _target_ids(
    ids: list[str],
    info: ValidationInfo,
    kind: str,
    pattern: re.Pattern[str],
    example: str,
    used: str,
) -> list[str]:
    """A folder's list of targets of one kind: only for purpose "assistants" (a fine-tune file
    cannot be attached or searched), each id of the service's form, none twice."""
    if ids and info.data.get("purpose") == "fine-tune":
        raise ValueError(
            f"a fine-tune folder cannot have {kind}s (only files with purpose "
            f'"assistants" can be {used}); remove the list or use purpose = "assistants"'
        )
    for target_id in ids:
        if not pattern.fullmatch(target_id):
            raise ValueError(f'must be {kind} ids like "{example}", got {target_id!r}')
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{', '.join(duplicates)} listed more than once")
    return ids
