"""`digest send` as a real process: killed mid-send, run twice at once, cut off by SendGrid.

Each test builds the edition in-process, then drives the sending `digest` commands (send,
alert, serve: the ones killed, raced or cut off) in subprocesses against a FakeSendGrid served
from this process. The commands that only read or set up the ledger (status, editions,
subscribers import) run in this process through the same CLI: each `digest` process costs
seconds of start-up, and they are not what is being killed. Every wait has a deadline, so a
hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from digest.cli import app
from digest.store.tables import batches, send_recipients
from tests.conftest import Project
from tests.fake_sendgrid import FakeSendGrid, Faults
from tests.sendgrid_setup import prepare
from tests.waiting import wait_until

RUN_TIMEOUT = 60.0  # seconds any one `digest` process may take before the test fails
POLL = 0.002


@dataclass(frozen=True)
class Ran:
    """What an in-process `digest` command did, shaped like a CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class Sender:
    """A built project and how to run `digest` on it in a subprocess."""

    project: Project
    folder: Path
    env: dict[str, str]
    started: list[tuple[subprocess.Popen[bytes], list[IO[bytes]]]]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "digest", *args, "--config", str(self.project.config)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    def cli(self, *args: str) -> Ran:
        """A `digest` command that sends nothing (status, editions, subscribers import), run
        in this process through the same CLI: the ledger is the same database either way."""
        result = CliRunner().invoke(app, [*args, "--config", str(self.project.config)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A `digest` process in the background, its output going to NAME.out and NAME.err."""
        out = (self.folder / f"{name}.out").open("wb")
        err = (self.folder / f"{name}.err").open("wb")
        proc = subprocess.Popen(
            self.argv(*args), env=self.env, cwd=self.folder, stdout=out, stderr=err
        )
        self.started.append((proc, [out, err]))
        return proc

    def output(self, name: str) -> str:
        return "".join(
            (self.folder / f"{name}.{ext}").read_text(errors="replace") for ext in ("out", "err")
        )

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        return dict(json.loads(result.stdout))

    def ledger(self) -> dict[int, tuple[str, set[str]]]:
        """Every batch of the edition: seq -> (state, the addresses in it), read from the DB."""
        engine = self.project.engine()
        try:
            with engine.connect() as conn:
                states = dict(conn.execute(sa.select(batches.c.seq, batches.c.state)).all())
                rows = conn.execute(
                    sa.select(batches.c.seq, send_recipients.c.email).select_from(
                        send_recipients.join(batches, batches.c.id == send_recipients.c.batch_id)
                    )
                ).all()
        finally:
            engine.dispose()
        emails: dict[int, set[str]] = collections.defaultdict(set)
        for seq, email in rows:
            emails[seq].add(email.lower())
        return {seq: (state, emails[seq]) for seq, state in states.items()}


@pytest.fixture
def sender_factory(
    make_project: Callable[[str], Project],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeSendGrid,
) -> Iterator[Callable[..., Sender]]:
    """sender_factory(people, batch=..., timeout=...): the edition built, ``people`` subscribed."""
    started: list[tuple[subprocess.Popen[bytes], list[IO[bytes]]]] = []

    def make(people: int, *, batch: int, timeout: float = 1.0, concurrency: int = 2) -> Sender:
        project, _, _ = prepare(
            make_project,
            tmp_path,
            monkeypatch,
            fake.url,
            people,
            batch=batch,
            timeout=timeout,
            concurrency=concurrency,
        )
        return Sender(project, tmp_path, dict(os.environ), started)

    yield make
    for proc, files in started:  # only the processes this test started, by handle
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        for fh in files:
            fh.close()


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    wait_until(what, ready, timeout=RUN_TIMEOUT, proc=proc)


def _accepted_seqs(fake: FakeSendGrid) -> collections.Counter[int]:
    """How many requests of each batch seq the fake accepted (custom_args.digest_batch)."""
    requests = {p["_request"] for p in list(fake.accepted)}
    return collections.Counter(
        int(fake.requests[n - 1]["custom_args"]["digest_batch"]) for n in requests
    )


def _seqs_of(bodies: list[dict[str, Any]]) -> set[int]:
    return {int(b["custom_args"]["digest_batch"]) for b in bodies}


def _in_state(ledger: dict[int, tuple[str, set[str]]], state: str) -> set[int]:
    return {seq for seq, (s, _) in ledger.items() if s == state}


def test_killed_mid_send_resumes_and_never_sends_a_batch_twice(sender_factory, fake) -> None:
    people = 3000
    sender = sender_factory(people, batch=100)
    fake.faults.latency = 0.2
    proc = sender.start("first", "send", "--yes")
    # 2,571 html + 429 text, 100 a batch: 26 + 5 batches. Kill when the 11th request has
    # just reached SendGrid: it, at least, is in flight, and SendGrid will accept it.
    _wait_for("a third of the batches", lambda: len(fake.requests) >= 11, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until("the fake to finish (accept) what was in flight", fake.idle)
    sent_before = len(fake.requests)
    accepted_before = len(fake.accepted)
    assert 600 <= accepted_before <= 1300  # about a third

    crashed = sender.status()
    assert sum(crashed["batches"].values()) == 31
    assert 1 <= crashed["batches"]["in_flight"] <= 2  # at most one per worker
    assert crashed["batches"]["uncertain"] == 0

    fake.faults.latency = 0.01
    again = sender.run("send", "--yes")
    assert again.returncode == 1, again.stdout + again.stderr  # uncertain batches are left
    # (The plan it prints comes before the abandoned batches are marked, so it does not warn
    # about them; its closing line counts them, and `digest status` says what to do.)
    assert f"{crashed['recipients']['in_flight']} uncertain" in again.stdout
    hint = sender.cli("status")
    assert "--resend-uncertain" in hint.stdout, hint.stdout + hint.stderr

    state = sender.status()
    ledger = sender.ledger()
    uncertain = _in_state(ledger, "uncertain")
    accepted = _in_state(ledger, "accepted")
    assert state["batches"]["pending"] == state["batches"]["in_flight"] == 0
    assert state["batches"]["uncertain"] == crashed["batches"]["in_flight"] == len(uncertain)
    assert state["batches"]["accepted"] + len(uncertain) == 31
    assert state["recipients"]["accepted"] + state["recipients"]["uncertain"] == people
    assert {f["batch"] for f in state["failures"]} == {str(s) for s in uncertain}
    assert all(f["reason"].startswith("uncertain:") for f in state["failures"])

    # SendGrid took each batch at most once; each recipient exactly once.
    by_seq = _accepted_seqs(fake)
    assert set(by_seq.values()) == {1}
    counts = fake.accepted_counts()
    assert set(counts.values()) == {1}
    # What SendGrid accepted but the killed process never recorded is uncertain, not resent.
    unrecorded = set(by_seq) - accepted
    assert unrecorded, "the request in flight at the kill was accepted by the fake"
    assert unrecorded <= uncertain
    assert accepted <= set(by_seq)
    assert not _seqs_of(fake.requests[sent_before:]) & uncertain
    # Everyone is accepted once, or sits in an uncertain batch.
    in_uncertain = set().union(*(ledger[s][1] for s in uncertain))
    everyone = {f"person{i}@example.org" for i in range(people)}
    assert set(counts) | in_uncertain == everyone
    assert everyone - in_uncertain <= set(counts)


def test_killed_while_a_request_is_in_flight_is_uncertain_until_staff_resend(
    sender_factory, fake
) -> None:
    people = 250  # 214 html + 36 text: batches #1 text (36), #2-#4 html (100, 100, 14)
    sender = sender_factory(people, batch=100, timeout=3.0)
    cut_off = fake.faults
    cut_off.latency = 2.0
    proc = sender.start("first", "send", "--yes")
    _wait_for("both workers in flight", lambda: len(fake.requests) >= 2, proc)
    # SendGrid never takes these two: when their latency ends they answer 500.
    cut_off.status_override = 500
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    fake.faults = Faults(reset_in=0)
    in_flight = _seqs_of(fake.requests)
    assert len(in_flight) == 2 and len(fake.requests) == 2

    crashed = sender.status()
    assert crashed["batches"]["in_flight"] == 2 and crashed["batches"]["uncertain"] == 0

    again = sender.run("send", "--yes")
    assert again.returncode == 1, again.stdout + again.stderr
    state = sender.status()
    assert state["batches"]["uncertain"] == 2
    assert state["batches"]["accepted"] == 2
    assert {int(f["batch"]) for f in state["failures"]} == in_flight
    assert not _seqs_of(fake.requests[2:]) & in_flight  # not resent automatically
    text = sender.cli("status")
    assert text.returncode == 0
    assert "2 uncertain" in text.stdout and "--resend-uncertain" in text.stdout

    forced = sender.run("send", "--resend-uncertain", "--yes")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    wait_until("the fake to finish what the killed sender left in flight", fake.idle)
    counts = fake.accepted_counts()
    assert len(counts) == people and set(counts.values()) == {1}
    final = sender.status()
    assert final["recipients"]["accepted"] == people and final["batches"]["accepted"] == 4
    assert final["failures"] == []


def test_two_senders_at_once_never_send_a_batch_twice(sender_factory, fake) -> None:
    people = 2000  # 1,714 html + 286 text, 100 a batch: 18 + 3 batches
    sender = sender_factory(people, batch=100)
    fake.faults.latency = 0.02
    procs = {name: sender.start(name, "send", "--yes") for name in ("a", "b")}
    for proc in procs.values():
        proc.wait(timeout=RUN_TIMEOUT)
    outputs = {name: sender.output(name) for name in procs}
    for name, proc in procs.items():
        assert proc.returncode == 0, outputs[name]

    counts = fake.accepted_counts()
    assert len(counts) == people and set(counts.values()) == {1}
    by_seq = _accepted_seqs(fake)
    assert set(by_seq.values()) == {1} and len(by_seq) == 21
    state = sender.status()
    assert state["batches"]["accepted"] == 21 and state["recipients"]["accepted"] == people
    # One of them planned the batches; the other found them planned. Together they sent each
    # batch once.
    planned = sorted("new recipients: 2000 " in out for out in outputs.values())
    assert planned == [False, True], outputs
    logged = {name: out.count("recipients): accepted") for name, out in outputs.items()}
    assert sum(logged.values()) == 21, logged


def test_dropped_connections_are_uncertain_in_a_real_process(sender_factory, fake) -> None:
    people = 2000  # 1,714 html + 286 text, 50 a batch: 35 + 6 batches
    sender = sender_factory(people, batch=50)
    fake.faults = Faults(drop_after_accept=0.3, reset_in=0)
    result = sender.run("send", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr

    counts = fake.accepted_counts()
    assert len(counts) == people and set(counts.values()) == {1}
    by_seq = _accepted_seqs(fake)
    assert set(by_seq.values()) == {1} and len(by_seq) == 41
    state = sender.status()
    ledger = sender.ledger()
    dropped = set(by_seq) - _in_state(ledger, "accepted")
    assert dropped, "the fake dropped some connections"
    assert state["batches"]["uncertain"] == len(by_seq) - state["batches"]["accepted"]
    assert _in_state(ledger, "uncertain") == dropped
    assert {int(f["batch"]) for f in state["failures"]} == dropped
    assert state["batches"]["pending"] == state["batches"]["failed"] == 0

    fake.faults = Faults(reset_in=0)
    sent = len(fake.requests)
    again = sender.run("send", "--yes")
    assert again.returncode == 1 and "--resend-uncertain" in again.stderr
    assert len(fake.requests) == sent  # nothing resent without staff saying so
    assert set(fake.accepted_counts().values()) == {1}


def test_sigterm_finishes_the_batches_in_flight_and_leaves_nothing_uncertain(
    sender_factory, fake
) -> None:
    people = 1000  # 857 html + 143 text, 100 a batch: 9 + 2 batches
    sender = sender_factory(people, batch=100)
    fake.faults.latency = 0.3
    proc = sender.start("first", "send", "--yes")
    _wait_for("a few batches", lambda: len(fake.requests) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=RUN_TIMEOUT) == 1
    out = sender.output("first")
    assert "SIGTERM" in out and "interrupted" in out
    state = sender.status()
    assert state["batches"]["in_flight"] == state["batches"]["uncertain"] == 0
    assert state["batches"]["accepted"] == len(_accepted_seqs(fake)) < 11
    fake.faults.latency = 0.0
    again = sender.run("send", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    counts = fake.accepted_counts()
    assert len(counts) == people and set(counts.values()) == {1}


def test_a_sender_outliving_a_killed_one_does_not_call_it_done(sender_factory, fake) -> None:
    """A is killed mid-request while B sends the rest: B must not report the edition done."""
    people = 600  # batch #1 text (86), #2-#7 html (100 x5, 14)
    sender = sender_factory(people, batch=100, timeout=10.0, concurrency=1)
    stuck = fake.faults
    stuck.latency, stuck.status_override = 30.0, 500  # never answers A in time; never accepts
    first = sender.start("first", "send", "--yes")
    _wait_for("the first sender's request", lambda: len(fake.requests) >= 1, first)
    fake.faults = Faults(latency=0.05, reset_in=0)
    second = sender.start("second", "send", "--yes")
    _wait_for("the second sender's request", lambda: len(fake.requests) >= 2, second)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second.wait(timeout=RUN_TIMEOUT)
    out = sender.output("second")
    counts = fake.accepted_counts()
    assert len(counts) == people - 86 and set(counts.values()) == {1}
    assert _seqs_of(fake.requests[1:]) == {2, 3, 4, 5, 6, 7}  # A's batch #1 was not resent
    state = sender.status()
    assert state["recipients"]["in_flight"] + state["recipients"]["uncertain"] == 86
    # B's closing line must account for all 600, and its exit status must not say "done".
    assert f"{people - 86} accepted" in out
    assert second.returncode == 1, out


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_alert_killed_mid_send_is_resumed_by_the_next_serve(sender_factory, fake) -> None:
    people = 1500
    sender = sender_factory(people, batch=100, concurrency=1)
    config = sender.project.config
    config.write_text(
        config.read_text() + '\n[[lists]]\nslug = "alerts"\nname = "Alerts"\nkind = "alerts"\n'
    )
    everyone = sender.folder / "people.csv"
    imported = sender.cli("subscribers", "import", str(everyone), "--list", "alerts")
    assert imported.returncode == 0, imported.stderr
    body = sender.folder / "alert.md"
    body.write_text("Vigil at six.")
    fake.faults.latency = 0.2
    alert = sender.start("alert", "alert", "--subject", "Vigil", "--body", str(body), "--yes")
    _wait_for("a few of the alert's batches", lambda: len(fake.requests) >= 4, alert)
    alert.send_signal(signal.SIGKILL)
    alert.wait(timeout=10)
    wait_until("the fake to finish (accept) what was in flight", fake.idle)
    before = len(fake.accepted_counts())
    assert 0 < before < people
    listed = json.loads(sender.cli("editions", "--json").stdout)
    [ident] = [e["edition"] for e in listed if e["kind"] == "alert"]
    assert [e["state"] for e in listed if e["edition"] == ident] == ["sending"]

    fake.faults.latency = 0.01
    serve = sender.start("serve", "serve", "--port", str(_free_port()))

    def settled() -> bool:
        batches = sender.ledger()
        return all(state not in ("pending", "in_flight") for state, _ in batches.values())

    _wait_for("serve to resume the alert", settled, serve)
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=RUN_TIMEOUT)
    counts = fake.accepted_counts()
    assert set(counts.values()) == {1}  # nobody got it twice
    state = sender.cli("status", ident, "--json")
    recipients = json.loads(state.stdout)["recipients"]
    assert recipients["accepted"] + recipients["uncertain"] == people
    # Everyone got it once: serve sent the rest, and the batch in flight at the kill (which
    # the fake took) is held as uncertain, not sent again.
    assert len(counts) == people and recipients["accepted"] > before
    assert "resumed the unfinished send of " + ident in sender.output("serve")


def test_a_killed_send_takes_its_worker_processes_with_it(sender_factory, fake) -> None:
    """kill -9 of a `digest send` running worker processes: they die with it (nothing goes
    on sending behind it), what they held is uncertain, and a resume sends the rest once."""
    people = 1200
    sender = sender_factory(people, batch=20)  # 60 batches: worker processes
    sender.env["DIGEST_DELIVERY__PROCESSES"] = "2"
    fake.faults.latency = 0.05
    proc = sender.start("send", "send", "--yes")
    _wait_for("a few batches", lambda: len(fake.requests) >= 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until("the workers to be gone", fake.idle, timeout=RUN_TIMEOUT)
    time.sleep(0.5)
    seen = len(fake.requests)
    time.sleep(1.0)
    assert len(fake.requests) == seen, "a worker went on sending after its parent was killed"
    again = sender.run("send", "--yes")
    assert again.returncode in (0, 1), again.stdout + again.stderr
    counts = fake.accepted_counts()
    assert max(counts.values()) == 1  # nobody twice
    state = sender.status()
    assert state["recipients"]["accepted"] + state["recipients"]["uncertain"] == people
    # Everyone is accepted once, or sits in a batch a killed worker held (uncertain: it may
    # have been claimed and never sent, or sent and never recorded), and nothing else is.
    ledger = sender.ledger()
    in_uncertain = set().union(*(ledger[s][1] for s in _in_state(ledger, "uncertain")))
    everyone = {f"person{i}@example.org" for i in range(people)}
    assert set(counts) | in_uncertain == everyone
    assert len(in_uncertain) <= 2 * 2 * 20  # at most a batch per thread of the two workers
