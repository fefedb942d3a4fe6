"""The welcome email: once per person and list, through the ledger, sent by the scheduler."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.audience.actions import confirm
from digest.audience.signup import request_subscription
from digest.cli import app as cli
from digest.errors import ConfigError
from digest.lifecycle.welcome import send_welcomes, split_heading
from digest.store import editions, ledger
from tests.conftest import NOW

WELCOME = """
[[lists]]
slug = "members"
name = "Members"
kind = "digest"
welcome = "welcome.md"
"""
FIRST = "# Glad you are here\n\nThe first text of the welcome.\n"


KEY = "welcome-test-key-" + "x" * 40


@pytest.fixture(autouse=True)
def secret_key(make_project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)


@pytest.fixture
def project(make_project, tmp_path: Path):
    (tmp_path / "welcome.md").write_text(FIRST, encoding="utf-8")
    return make_project(WELCOME)


def outbox(project, list_slug: str = "members") -> dict[str, list[Path]]:
    """The welcome .eml files written so far, by address."""
    folder = project.folder / "var" / "outbox" / f"welcome-{list_slug}"
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        found.setdefault(message(path)["To"].addresses[0].addr_spec, []).append(path)
    return found


def message(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def sign_up_and_confirm(project, address: str, lists=("members",)) -> str:
    """A web sign-up and its confirmation; the confirm token (to use again)."""
    app = project.app(NOW)
    asked = request_subscription(
        app, email=address, name="", lists=list(lists), fmt="html", profile=None, now=NOW
    )
    token = app.keys.make("confirm", asked.subscriber_id, lists[0], now=NOW, ref=asked.request_id)
    confirm(app.engine, app.keys, token, now=NOW)
    return token


def import_csv_file(project, tmp_path: Path, rows: str, list_slug: str = "members"):
    path = tmp_path / "people.csv"
    path.write_text("email,name\n" + rows, encoding="utf-8")
    args = ["subscribers", "import", str(path), "--list", list_slug]
    result = CliRunner().invoke(cli, [*args, "--config", str(project.config)])
    assert result.exit_code == 0, result.output


def test_confirming_twice_sends_the_welcome_once(project) -> None:
    token = sign_up_and_confirm(project, "ana@example.org")
    assert outbox(project) == {}  # nothing from the request itself: the scheduler sends
    assert send_welcomes(project.app(NOW)) == 1
    app = project.app(NOW)
    confirm(app.engine, app.keys, token, now=NOW)
    assert send_welcomes(app) == 0
    assert {k: len(v) for k, v in outbox(project).items()} == {"ana@example.org": 1}


def test_a_reimport_does_not_send_the_welcome_again(project, tmp_path: Path) -> None:
    import_csv_file(project, tmp_path, "ben@example.org,Ben\ncy@example.org,Cy\n")
    assert send_welcomes(project.app(NOW)) == 2
    import_csv_file(project, tmp_path, "ben@example.org,Ben\ncy@example.org,Cy\n")
    assert send_welcomes(project.app(NOW)) == 0
    sent = outbox(project)
    assert sorted(sent) == ["ben@example.org", "cy@example.org"]
    assert all(len(files) == 1 for files in sent.values())


def test_the_welcome_has_the_digest_footer_links_and_headers(project) -> None:
    sign_up_and_confirm(project, "ana@example.org")
    send_welcomes(project.app(NOW))
    [path] = outbox(project)["ana@example.org"]
    msg = message(path)
    assert msg["Subject"] == "Glad you are here"
    assert "/u/" in msg["List-Unsubscribe"] and "mailto:" in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    for part in (html_part.get_content(), text_part.get_content()):
        assert "PO Box 1, Testville, NY 10001" in part
        assert "https://digest.coalition.example.org/u/" in part  # the unsubscribe link
        assert "https://digest.coalition.example.org/p/" in part  # the preferences link
        assert "The first text of the welcome." in part
        assert "-unsubscribe_url-" not in part
    assert "Welcome to Members" in text_part.get_content()


def test_a_list_without_welcome_sends_none(project, tmp_path: Path) -> None:
    import_csv_file(project, tmp_path, "dee@example.org,Dee\n", list_slug="weekly")
    assert send_welcomes(project.app(NOW)) == 0
    assert not (project.folder / "var" / "outbox" / "welcome-weekly").exists()
    with project.engine().connect() as conn:
        assert editions.state_of(conn, "welcome-weekly") is None


def test_a_missing_welcome_file_is_one_config_error(make_project) -> None:
    project = make_project(WELCOME)  # welcome.md never written
    with pytest.raises(ConfigError) as caught:
        project.settings()
    text = str(caught.value)
    assert "\n" not in text and "'members'" in text and "welcome.md" in text


def test_people_joining_after_a_change_get_the_new_text_only(project, tmp_path: Path) -> None:
    sign_up_and_confirm(project, "ana@example.org")
    send_welcomes(project.app(NOW))
    (tmp_path / "welcome.md").write_text("# New welcome\n\nThe second text.\n", encoding="utf-8")
    assert send_welcomes(project.app(NOW)) == 0  # nobody new: Ana gets nothing more
    sign_up_and_confirm(project, "ben@example.org")
    assert send_welcomes(project.app(NOW)) == 1
    sent = outbox(project)
    assert len(sent["ana@example.org"]) == 1 and len(sent["ben@example.org"]) == 1
    ben = message(sent["ben@example.org"][0])
    assert ben["Subject"] == "New welcome"
    body = ben.get_body(("plain",))
    assert body is not None and "The second text." in body.get_content()
    ana = message(sent["ana@example.org"][0]).get_body(("plain",))
    assert ana is not None and "The first text" in ana.get_content()


def test_people_on_the_list_before_the_welcome_was_set_up_are_skipped(
    make_project, tmp_path: Path
) -> None:
    plain = make_project(WELCOME.replace('welcome = "welcome.md"\n', ""))
    import_csv_file(plain, tmp_path, "old@example.org,Old\n")
    (tmp_path / "welcome.md").write_text(FIRST, encoding="utf-8")
    project = make_project(WELCOME)
    assert send_welcomes(project.app(NOW)) == 0  # set up: the member already there skipped
    sign_up_and_confirm(project, "new@example.org")
    assert send_welcomes(project.app(NOW)) == 1
    assert sorted(outbox(project)) == ["new@example.org"]
    with project.engine().connect() as conn:
        assert ledger.summary(conn, "welcome-members")["recipients"]["accepted"] == 1
        assert editions.state_of(conn, "welcome-members") == "sent"


def test_the_subject_is_the_first_heading_else_the_list_name() -> None:
    assert split_heading("Intro\n\n## Hello *there*\n\nBody\n") == (
        "Hello there",
        "Intro\n\n\nBody\n",
    )
    assert split_heading("No heading at all\n") == ("", "No heading at all\n")


def test_a_welcome_held_by_its_checks_is_reported_once(make_project, tmp_path, caplog) -> None:
    held = "# Hi\n\n![](https://coalition.example.org/a.png)\n\n[here](https://coalition.example.org)\n"
    (tmp_path / "welcome.md").write_text(held, encoding="utf-8")
    project = make_project(
        WELCOME + '\n[checks]\nlinks = "off"\nspam = "off"\naccessibility = "block"\n'
    )
    sign_up_and_confirm(project, "ana@example.org")
    with caplog.at_level("ERROR"):
        for _ in range(3):
            assert send_welcomes(project.app(NOW)) == 0
    assert outbox(project) == {}
    assert sum("held by its checks" in r.getMessage() for r in caplog.records) == 1
    with project.engine().connect() as conn:
        assert editions.state_of(conn, "welcome-members") == "failed"


def test_someone_staff_add_first_is_welcomed(project) -> None:
    # The first member of all, added by staff before anything set the welcome up.
    args = ["subscribers", "add", "dee@example.org", "--list", "members"]
    result = CliRunner().invoke(cli, [*args, "--config", str(project.config)])
    assert result.exit_code == 0, result.output
    assert send_welcomes(project.app(NOW)) == 1
    assert sorted(outbox(project)) == ["dee@example.org"]


def test_a_welcome_goes_to_its_own_list_only(project, tmp_path: Path) -> None:
    import_csv_file(project, tmp_path, "ben@example.org,Ben\n")
    assert send_welcomes(project.app(NOW)) == 1
    args = ["send", "--edition", "welcome-members", "--list", "weekly", "--yes"]
    result = CliRunner().invoke(cli, [*args, "--config", str(project.config)])
    assert result.exit_code == 1
    assert "welcome-members is the welcome of list 'members': it goes to that list only" in (
        result.output
    )
