"""``syncd check``: exit 0 only when a pass could run; one line per problem; 2 for the
configuration's problems, 3 for the service's."""

from __future__ import annotations

import json
import time

from syncd.api import Client
from syncd.emulator import EmulatorServer

from .conftest import Workspace


def names_and_results(report: dict) -> list[tuple[str, bool]]:
    return [(c["name"], c["ok"]) for c in report["checks"]]


def test_everything_in_place(workspace: Workspace, client: Client) -> None:
    assistant = client.create_assistant(name="Support bot")
    workspace.assistants = [assistant.id]
    workspace.write_config()
    result = workspace.run("check", "--json")
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert names_and_results(report) == [
        ("config", True),
        ("state dir", True),
        ("folder docs", True),
        ("folder train", True),
        ("api key", True),
        ("service", True),
        ("authentication", True),
        (f"assistant {assistant.id}", True),
    ]
    assert set(report["checks"][0]) == {"name", "ok", "detail"}
    assert report["checks"][-1]["detail"] == '"Support bot", 0 of 20 files attached'
    assert workspace.state_dir.is_dir()  # created as a pass would


def test_plain_text_is_one_line_per_check(workspace: Workspace) -> None:
    result = workspace.run("check")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["result", "check", "detail"]
    assert [line.split()[0] for line in lines[1:-1]] == ["ok"] * 7
    assert lines[-1] == "everything a pass needs is in place"


def test_an_invalid_configuration_is_one_line_per_problem_and_exit_2(
    workspace: Workspace,
) -> None:
    workspace.config.write_text(
        '[sync]\nconcurrency = 0\n[[folders]]\nname = "docs"\npath = "./docs"\n'
        'purpose = "finetune"\n',
        encoding="utf-8",
    )
    result = workspace.run("check")
    assert result.exit_code == 2
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(None, 2)[1:] for line in fails] == [
        ["config", f"{workspace.config}: sync.concurrency: must be at least 1, got 0"],
        [
            "config",
            f'{workspace.config}: folders[0].purpose: must be "assistants" or "fine-tune", '
            'got "finetune"',
        ],
    ]
    assert result.stdout.splitlines()[-1] == "2 problem(s): a pass would not run as configured"


def test_a_missing_folder_and_an_unwritable_state_dir_exit_2(workspace: Workspace) -> None:
    workspace.train.rmdir()
    (workspace.root / "blocker").write_text("a file where a directory should be")
    text = workspace.config.read_text().replace('"./state"', '"./blocker/state"')
    workspace.config.write_text(text)
    report = workspace.json("check")
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert failed == {
        "state dir": f"{workspace.root / 'blocker' / 'state'}: cannot write there: Not a directory",
        "folder train": f"{workspace.train} does not exist",
    }
    assert workspace.run("check").exit_code == 2


def test_no_api_key_exits_2_and_skips_the_service(workspace: Workspace) -> None:
    result = workspace.run("check", "--json", key=None)
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["checks"][-1] == {
        "name": "api key",
        "ok": False,
        "detail": "no API key: pass one in the configuration or set OPENAI_API_KEY",
    }


def test_a_wrong_key_exits_3(workspace: Workspace) -> None:
    result = workspace.run("check", key="sk-not-the-right-one")
    assert result.exit_code == 3
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1
    assert fails[0].split()[1] == "authentication"
    assert "the API key was not accepted: 401 Incorrect API key provided" in fails[0]
    assert "(request req_" in fails[0]


def test_an_unreachable_service_exits_3_within_seconds(
    workspace: Workspace, closed_port_url: str
) -> None:
    workspace.write_config(base_url=closed_port_url)
    started = time.monotonic()
    result = workspace.run("check", "--json")
    assert time.monotonic() - started < 5
    assert result.exit_code == 3
    checks = json.loads(result.stdout)["checks"]
    assert checks[-1]["name"] == "service"
    assert checks[-1]["detail"].startswith(f"{closed_port_url}: cannot reach the service: Connect")


def test_a_service_answering_5xx_exits_3(workspace: Workspace, emulator: EmulatorServer) -> None:
    emulator.set_faults(fail_rate=1.0)
    result = workspace.run("check")
    assert result.exit_code == 3
    assert "FAIL    service" in result.stdout


def test_an_unknown_assistant_exits_3_and_names_it(workspace: Workspace, client: Client) -> None:
    real = client.create_assistant()
    workspace.assistants = [real.id, "asst_gone"]
    workspace.write_config()
    report = workspace.json("check")
    assert report["ok"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["assistant asst_gone"]
    assert failed[0]["detail"].startswith(
        "not found (used by docs): 404 No assistant found with id 'asst_gone'"
    )
    assert workspace.run("check").exit_code == 3


def test_configuration_problems_win_over_service_problems(
    workspace: Workspace, closed_port_url: str
) -> None:
    workspace.write_config(base_url=closed_port_url)
    workspace.docs.rmdir()
    result = workspace.run("check")
    assert result.exit_code == 2
    assert [line.split()[1] for line in result.stdout.splitlines() if line.startswith("FAIL")] == [
        "folder",
        "service",
    ]


def test_check_warns_about_two_instances_on_one_organisation(workspace: Workspace) -> None:
    # Until store files carry an instance attribute (#13), two syncd instances on one
    # organisation can adopt and then delete each other's lost uploads: say so.
    result = workspace.run("check")
    assert "warning: two syncd instances" in result.stderr
    assert "organisation" in result.stderr
    report = json.loads(workspace.run("check", "--json").stdout)
    assert any("two syncd instances" in w for w in report["warnings"])
