"""load_config: TOML plus SYNCD_* overrides; errors name the file, the key and the reason."""

from __future__ import annotations

import itertools
import logging
import os
import tomllib
from pathlib import Path

import pytest

from syncd.config import (
    DEFAULT_BASE_URL,
    ApiSettings,
    ConfigError,
    FolderConfig,
    SyncSettings,
    find_config,
    load_config,
)
from syncd.engine.model import FolderSpec

REPO = Path(__file__).resolve().parent.parent

FOLDER = """
[[folders]]
name = "docs"
path = "docs"
purpose = "assistants"
"""


def write_config(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    return load_config(write_config(tmp_path, text), env=env or {"HOME": str(tmp_path)})


def errors(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    prefix = f"{tmp_path / 'config.toml'}: "
    lines = str(caught.value).splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


# --- a good configuration -----------------------------------------------------------------------


def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, FOLDER, env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert config.source == tmp_path / "config.toml"
    assert config.api.base_url == DEFAULT_BASE_URL
    assert config.api.organization is None
    assert config.api.timeout_seconds == 60
    assert config.api.max_attempts == 8
    assert config.sync.state_dir == tmp_path / "xdg" / "syncd"
    assert config.sync.concurrency == 4
    assert config.sync.max_delete_fraction == 0.5
    [folder] = config.folders
    assert folder.path == tmp_path / "docs"  # relative to the file
    assert folder.include == [] and folder.exclude == [] and folder.recursive
    assert folder.on_delete == "delete"


def test_folder_spec(tmp_path: Path) -> None:
    folder = FolderConfig(
        name="kb", path=tmp_path, purpose="assistants", assistants=["asst_a", "asst_b"],
        on_delete="detach",
    )  # fmt: skip
    assert folder.spec() == FolderSpec("kb", "assistants", ("asst_a", "asst_b"), "detach")


def test_the_example_config_is_valid_and_documents_every_key(tmp_path: Path) -> None:
    example = REPO / "config.example.toml"
    config = load_config(example, env={"XDG_STATE_HOME": str(tmp_path)})
    assert [f.name for f in config.folders] == ["support-docs", "training-data"]

    data = tomllib.loads(example.read_text())
    assert set(data["api"]) == set(ApiSettings.model_fields)
    assert set(data["sync"]) == set(SyncSettings.model_fields)
    documented = {key for folder in data["folders"] for key in folder}
    assert documented == set(FolderConfig.model_fields)
    lines = example.read_text().splitlines()
    for before, line in itertools.pairwise(lines):
        if "=" in line and not line.startswith("#"):
            assert before.startswith("#"), f"no comment above: {line}"


def test_state_dir_defaults(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": "/var/lib/syncd:/var/lib/other", "XDG_STATE_HOME": "/x"}
    assert load(tmp_path, FOLDER, env).sync.state_dir == Path("/var/lib/syncd")
    blank = load(tmp_path, '[sync]\nstate_dir = ""\n' + FOLDER, {"XDG_STATE_HOME": "/x"})
    assert blank.sync.state_dir == Path("/x/syncd")
    blank_env = load(tmp_path, FOLDER, {"XDG_STATE_HOME": "/x", "SYNCD_SYNC__STATE_DIR": ""})
    assert blank_env.sync.state_dir == Path("/x/syncd")
    explicit = load(tmp_path, '[sync]\nstate_dir = "/srv/state"\n' + FOLDER, env)
    assert explicit.sync.state_dir == Path("/srv/state")


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = '[sync]\nstate_dir = "~/state"\n' + folder("a", "~/drop")
    config = load(tmp_path, text)
    assert config.sync.state_dir == tmp_path / "home" / "state"
    assert config.folders[0].path == tmp_path / "home" / "drop"


# --- environment --------------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    text = "[sync]\nconcurrency = 2\ndebounce_seconds = 5\n" + FOLDER
    env = {
        "SYNCD_SYNC__CONCURRENCY": "8",
        "syncd_api__max_attempts": "3",  # names are not case-sensitive
        "SYNCD_API__ALLOW_INSECURE_HTTP": "true",
        "SYNCD_API__BASE_URL": "http://files.internal:8080/v1/",
    }
    config = load(tmp_path, text, env)
    assert config.sync.concurrency == 8
    assert config.sync.debounce_seconds == 5  # untouched keys keep the file's value
    assert config.api.max_attempts == 3
    assert config.api.base_url == "http://files.internal:8080/v1"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    env = {"SYNCD_SYNC__CONCURRENCY": "lots", "SYNCD_SYNC__MAX_DELETE_FRACTION": "2"}
    assert errors(tmp_path, FOLDER, env) == [
        "sync.concurrency (from SYNCD_SYNC__CONCURRENCY): must be a whole number, got lots",
        "sync.max_delete_fraction (from SYNCD_SYNC__MAX_DELETE_FRACTION): must be between 0 and 1 "
        "(the share of a folder's files one pass may remove), got 2",
    ]


def test_misspelt_environment_key(tmp_path: Path) -> None:
    assert errors(tmp_path, FOLDER, {"SYNCD_SYNC__CONCURENCY": "8"}) == [
        'sync.concurency (from SYNCD_SYNC__CONCURENCY): unknown key (did you mean "concurrency"?)'
    ]


def test_folders_cannot_come_from_the_environment(tmp_path: Path) -> None:
    [line] = errors(tmp_path, FOLDER, {"SYNCD_FOLDERS": "[]"})
    assert line.startswith("folders: set in the file only")


def test_other_syncd_variables_are_not_settings(tmp_path: Path) -> None:
    env = {"SYNCD_SOURCE": "/elsewhere", "SYNCD_CONFIG": "/x.toml", "SYNCD_LOG_LEVEL": "debug"}
    assert load(tmp_path, FOLDER, env).source == tmp_path / "config.toml"


def test_openai_variables_fill_unset_keys(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:8765/v1", "OPENAI_ORG_ID": "org-1"}
    config = load(tmp_path, '[api]\nbase_url = ""\norganization = ""\n' + FOLDER, env)
    assert config.api.base_url == "http://127.0.0.1:8765/v1"
    assert config.api.organization == "org-1"

    from_file = load(tmp_path, '[api]\nbase_url = "https://proxy.example/v1"\n' + FOLDER, env)
    assert from_file.api.base_url == "https://proxy.example/v1"

    env["SYNCD_API__BASE_URL"] = "https://override.example/v1"
    assert load(tmp_path, FOLDER, env).api.base_url == "https://override.example/v1"


def test_bad_openai_base_url_names_its_variable(tmp_path: Path) -> None:
    [line] = errors(tmp_path, FOLDER, {"OPENAI_BASE_URL": "api.example.com"})
    assert line.startswith("api.base_url (from OPENAI_BASE_URL): must be an http(s) URL")


# --- errors -------------------------------------------------------------------------------------


def test_the_issue_example(tmp_path: Path) -> None:
    text = FOLDER + '[[folders]]\nname = "ft"\npath = "ft"\npurpose = "finetune"\n'
    assert errors(tmp_path, text) == [
        'folders[1].purpose: must be "assistants" or "fine-tune", got "finetune"'
    ]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = (
        "[sync]\nconcurrency = 0\nmax_delete_fraction = 1.5\ndebounce_seconds = -1\n"
        "[api]\nmax_attempts = 2.5\n"
        '[[folders]]\nname = "a"\npurpose = "assistants"\n'
        'on_delete = "trash"\nrecursive = "maybe"\n'
    )
    assert sorted(errors(tmp_path, text)) == sorted(
        [
            "api.max_attempts: must be a whole number, got 2.5",
            "sync.concurrency: must be between 1 and 64 (requests at once), got 0",
            "sync.debounce_seconds: must be between 0.05 and 3600 (how long a changed file "
            "must stay quiet before it is uploaded), got -1",
            "sync.max_delete_fraction: must be between 0 and 1 (the share of a folder's files "
            "one pass may remove), got 1.5",
            "folders[0].path: required",
            'folders[0].on_delete: must be "delete", "detach" or "keep", got "trash"',
            'folders[0].recursive: must be true or false, got "maybe"',
        ]
    )


def test_unknown_keys_suggest_the_right_one(tmp_path: Path) -> None:
    text = "[sync]\nconcurency = 3\n[apis]\n" + FOLDER + 'asistants = ["asst_1"]\n'
    assert sorted(errors(tmp_path, text)) == [
        'apis: unknown key (did you mean "api"?)',
        'folders[0].asistants: unknown key (did you mean "assistants"?)',
        'sync.concurency: unknown key (did you mean "concurrency"?)',
    ]


def test_section_of_the_wrong_type(tmp_path: Path) -> None:
    assert errors(tmp_path, "sync = 3\n" + FOLDER) == ["sync: must be a table, got 3"]


def test_no_folders(tmp_path: Path) -> None:
    assert errors(tmp_path, "[sync]\nconcurrency = 2\n") == ["folders: required"]
    assert errors(tmp_path, "folders = []\n") == [
        "folders: at least one [[folders]] table is required"
    ]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert errors(tmp_path, '[sync]\nconcurrency = 2\nstate_dir = "/x\n') == [
        "line 3, column 16: illegal character '\\n'"
    ]


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    path.write_bytes(b"[sync]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"config\.toml: not UTF-8 text \(byte 12\)"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match=r": cannot read: Is a directory"):
        load_config(tmp_path, env={})


@pytest.mark.parametrize(
    ("api", "reason"),
    [
        ('base_url = "ftp://files.example"',
         "api.base_url: must be an http(s) URL such as https://api.openai.com/v1, "
         "got 'ftp://files.example'"),
        ('base_url = "http://files.example/v1"',
         "api.base_url: http://files.example/v1 is plain http, which would send the API key "
         "unencrypted; use https, or set api.allow_insecure_http = true"),
        ("timeout_seconds = 0",
         "api.timeout_seconds: must be between 1 and 3600 (how long to wait for the service's "
         "answer before retrying), got 0"),
    ],
)  # fmt: skip
def test_api_checks(tmp_path: Path, api: str, reason: str) -> None:
    assert errors(tmp_path, f"[api]\n{api}\n" + FOLDER) == [reason]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_to_loopback_is_fine(tmp_path: Path, host: str) -> None:
    config = load(tmp_path, f'[api]\nbase_url = "http://{host}:9000/v1"\n' + FOLDER)
    assert config.api.base_url == f"http://{host}:9000/v1"


def test_metrics_address(tmp_path: Path) -> None:
    ok = load(tmp_path, '[sync]\nmetrics_address = "127.0.0.1:9464"\n' + FOLDER)
    assert ok.sync.metrics_address == "127.0.0.1:9464"
    [line] = errors(tmp_path, '[sync]\nmetrics_address = "9464"\n' + FOLDER)
    assert line.startswith('sync.metrics_address: must be "HOST:PORT"')


# --- folders ------------------------------------------------------------------------------------


def folder(name: str, path: str, purpose: str = "assistants", extra: str = "") -> str:
    return f'[[folders]]\nname = "{name}"\npath = "{path}"\npurpose = "{purpose}"\n{extra}\n'


def test_duplicate_names(tmp_path: Path) -> None:
    text = folder("docs", "a") + folder("docs", "b")
    assert errors(tmp_path, text) == ['folders[1].name: "docs" is already used by folders[0]']


def test_overlapping_folders(tmp_path: Path) -> None:
    text = folder("inner", "drop/docs") + folder("outer", "drop")
    inner, outer = tmp_path / "drop" / "docs", tmp_path / "drop"
    assert errors(tmp_path, text) == [
        f"folders[1].path: folders[0].path ({inner}) is inside folders[1].path ({outer}); "
        "folders must not overlap"
    ]


def test_same_folder_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    text = folder("a", "real") + folder("b", "alias")
    assert errors(tmp_path, text) == [
        f"folders[1].path: {tmp_path / 'real'} is the same directory as folders[0].path"
    ]


def test_sibling_folders_with_a_common_prefix_do_not_overlap(tmp_path: Path) -> None:
    config = load(tmp_path, folder("a", "docs") + folder("b", "docs-old"))
    assert len(config.folders) == 2


def test_fine_tune_folder_with_assistants(tmp_path: Path) -> None:
    text = folder("ft", "ft", "fine-tune", 'assistants = ["asst_abc"]')
    [line] = errors(tmp_path, text)
    assert line.startswith("folders[0].assistants: a fine-tune folder cannot have assistants")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('["file-abc"]', "must be assistant ids like \"asst_abc123\", got 'file-abc'"),
        ('["asst_a", "asst_a"]', "asst_a listed more than once"),
    ],
)
def test_assistant_ids(tmp_path: Path, value: str, reason: str) -> None:
    text = folder("a", "a", extra=f"assistants = {value}")
    assert errors(tmp_path, text) == [f"folders[0].assistants: {reason}"]


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ('name = "my docs"', "folders[0].name: must be 1-64 letters, digits"),
        ('path = ""', "folders[0].path: must name a directory"),
        ('exclude = ["../secret"]', "folders[0].exclude: pattern '../secret' points outside"),
        ('include = ["/"]', "folders[0].include: empty pattern '/'"),
    ],
)
def test_folder_fields(tmp_path: Path, field: str, reason: str) -> None:
    base = {"name": '"a"', "path": '"a"', "purpose": '"assistants"'}
    key, _, value = field.partition(" = ")
    base[key] = value
    text = "[[folders]]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())
    [line] = errors(tmp_path, text)
    assert line.startswith(reason)


def test_state_dir_inside_a_synced_folder(tmp_path: Path) -> None:
    text = '[sync]\nstate_dir = "drop/state"\n' + folder("a", "drop")
    [line] = errors(tmp_path, text)
    assert line.startswith(f"sync.state_dir: {tmp_path / 'drop' / 'state'} is inside folders[0]")
    # A hidden state directory is never scanned, so that is fine.
    config = load(tmp_path, '[sync]\nstate_dir = "drop/.syncd"\n' + folder("a", "drop"))
    assert config.sync.state_dir == tmp_path / "drop" / ".syncd"


# --- the API key --------------------------------------------------------------------------------

SECRET = "sk-test-0123456789abcdef"


def test_api_key_sources_in_order(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai-api-key").write_text("sk-from-credential\n")
    key_file = tmp_path / "key"
    key_file.write_text(f"{SECRET}\n")
    key_file.chmod(0o600)

    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert load(tmp_path, FOLDER, env).api.api_key() == "sk-from-credential"
    env["OPENAI_API_KEY"] = "sk-from-env"
    assert load(tmp_path, FOLDER, env).api.api_key() == "sk-from-env"
    config = load(tmp_path, '[api]\napi_key_file = "key"\n' + FOLDER, env)
    assert config.api.api_key_file == key_file
    assert config.api.api_key() == SECRET
    assert load(tmp_path, FOLDER, {}).api.api_key() is None


def test_api_key_never_in_repr_or_dump(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    key_file.chmod(0o600)
    env = {"OPENAI_API_KEY": SECRET}
    for text in (FOLDER, '[api]\napi_key_file = "key"\n' + FOLDER):
        config = load(tmp_path, text, env)
        assert config.api.api_key() == SECRET
        for shown in (repr(config), str(config), config.model_dump_json(), repr(config.api)):
            assert SECRET not in shown


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("missing", "cannot read {path}: No such file or directory"),
        ("directory", "cannot read {path}: Is a directory"),
        ("empty", "{path} is empty"),
    ],
)
def test_unusable_api_key_file(tmp_path: Path, setup: str, reason: str) -> None:
    path = tmp_path / "key"
    if setup == "directory":
        path.mkdir()
    elif setup == "empty":
        path.write_text(" \n")
    assert errors(tmp_path, '[api]\napi_key_file = "key"\n' + FOLDER) == [
        "api.api_key_file: " + reason.format(path=path)
    ]


def test_api_key_file_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="syncd.config"):
        load(tmp_path, '[api]\napi_key_file = "key"\n' + FOLDER)
    assert "can be read by other users (mode 644)" in caplog.text
    assert SECRET not in caplog.text


# --- finding the file ---------------------------------------------------------------------------


def test_find_config_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    xdg = tmp_path / "xdg"
    (xdg / "syncd").mkdir(parents=True)
    env = {"XDG_CONFIG_HOME": str(xdg)}
    with pytest.raises(ConfigError, match="no configuration file found") as caught:
        find_config(None, env)
    assert str(xdg / "syncd" / "config.toml") in str(caught.value)
    assert "/etc/syncd/config.toml" in str(caught.value)

    (xdg / "syncd" / "config.toml").write_text(FOLDER)
    assert find_config(None, env) == xdg / "syncd" / "config.toml"
    (tmp_path / "syncd.toml").write_text(FOLDER)
    assert find_config(None, env) == Path("syncd.toml")
    assert find_config(xdg / "syncd" / "config.toml", env) == xdg / "syncd" / "config.toml"


def test_explicit_config_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_load_config_searches_when_no_path_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "syncd.toml").write_text(FOLDER)
    config = load_config(env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config.source == tmp_path / "syncd.toml"
    assert config.folders[0].path == tmp_path / "docs"
    assert os.path.isabs(config.sync.state_dir)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            'vector_stores = ["asst_x"]',
            "folders[0].vector_stores: must be vector store ids like \"vs_abc123\", got 'asst_x'",
        ),
        (
            'vector_stores = ["vs_a", "vs_a"]',
            "folders[0].vector_stores: vs_a listed more than once",
        ),
        (
            'attributes = { syncd_path = "x" }',
            "folders[0].attributes: 'syncd_path': names starting with syncd_ are syncd's own",
        ),
        (
            "attributes = { " + ", ".join(f"k{i} = {i}" for i in range(12)) + " }",
            "folders[0].attributes: at most 11 keys (16 per file, 5 of them syncd's own), got 12",
        ),
        (
            f'attributes = {{ note = "{"x" * 513}" }}',
            "folders[0].attributes: 'note': a text value is at most 512 characters, got 513",
        ),
        (
            "attributes = { tags = [1, 2] }",
            "folders[0].attributes: 'tags': must be a string, a number or true/false",
        ),
        (
            'chunking_strategy = "fast"',
            'folders[0].chunking_strategy: must be "auto" or a table',
        ),
        (
            "chunking_strategy = { max_chunk_size_tokens = 800, chunk_overlap_tokens = 500 }",
            "folders[0].chunking_strategy: chunk_overlap_tokens must be between 0 and half",
        ),
        (
            "chunking_strategy = { size = 800 }",
            "folders[0].chunking_strategy: unknown key 'size'",
        ),
        (
            "ingestion_timeout_seconds = 0",
            "folders[0].ingestion_timeout_seconds: must be more than 0, got 0",
        ),
    ],
)
def test_vector_store_settings_are_checked_as_the_service_checks_them(
    tmp_path: Path, value: str, reason: str
) -> None:
    [line] = errors(tmp_path, folder("a", "a", extra=value))
    assert line.startswith(reason), line


def test_vector_store_settings_reach_the_planner_and_the_attach(tmp_path: Path) -> None:
    text = folder(
        "a",
        "a",
        extra='vector_stores = ["vs_1"]\nattributes = { team = "x", n = 2 }\n'
        "chunking_strategy = { max_chunk_size_tokens = 400, chunk_overlap_tokens = 100 }",
    )
    config = load(tmp_path, text)
    spec = config.folders[0].spec()
    assert spec.targets == ("vs_1",)
    assert spec.attributes == (("n", 2), ("team", "x"))
    chunking = config.folders[0].chunking()
    assert chunking.static is not None and chunking.static.max_chunk_size_tokens == 400


def test_a_fine_tune_folder_cannot_have_vector_stores(tmp_path: Path) -> None:
    [line] = errors(tmp_path, folder("ft", "ft", "fine-tune", 'vector_stores = ["vs_1"]'))
    assert line.startswith("folders[0].vector_stores: a fine-tune folder cannot have vector")


def test_a_bad_instance_id_is_named(tmp_path: Path) -> None:
    [line] = errors(tmp_path, '[sync]\ninstance_id = "has space"\n' + FOLDER)
    assert line.startswith("sync.instance_id: must be 1-64 letters")
