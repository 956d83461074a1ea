"""Real mail servers for the email tests: Debian's postfix (SMTP) and dovecot (IMAP), started per test
module from temporary configurations, listening on free localhost ports, plain and TLS (a self-signed
certificate for localhost made per run; a test trusts it through SSL_CERT_FILE).

- dovecot serves IMAP (with IDLE) for the mailboxes in a passwd file, mail kept in temporary Maildirs;
  it also answers postfix's SASL questions, so SMTP needs a login too, as a real provider's does.
- postfix takes mail over SMTP (AUTH required) and delivers it into those Maildirs with its `virtual`
  agent; mail for `bounce.test` is accepted and then bounced by its `error` transport, so the sender
  gets a real delivery status notification (DSN) back in its mailbox.
- `CutProxy` sits between a client and dovecot and can cut the connection in the middle of a server
  answer (an IMAP FETCH), as a network failure would.

Both servers must run as root (postfix always does; dovecot drops to the mail user). `.ci/run`
installs the packages; on a machine without them the tests that need them are skipped, except in CI
(CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from imapclient import IMAPClient

T = TypeVar("T")
DOMAIN = "threadline.test"  # ours
LEAD_DOMAIN = "lead.test"
BOUNCE_DOMAIN = "bounce.test"  # accepted, then bounced: a DSN comes back
REFUSED = f"refused@{LEAD_DOMAIN}"  # refused while sending (550 at RCPT)
BUSY = f"busy@{LEAD_DOMAIN}"  # put off while sending (451 at RCPT)
MAIL_UID = 65534  # nobody: owns the Maildirs; dovecot and postfix's virtual agent write as it
USERS = {
    f"sales@{DOMAIN}": "sales-imap-password",
    f"jane@{LEAD_DOMAIN}": "jane-password",
    f"tom@{LEAD_DOMAIN}": "tom-password",
}
POSTFIX = Path(shutil.which("postfix") or "/usr/sbin/postfix")
DOVECOT = Path(shutil.which("dovecot") or "/usr/sbin/dovecot")


def need_mail_servers() -> None:
    """Skip where the servers cannot run; in CI that is a failure (DESIGN §6)."""
    import pytest

    problem = missing()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"mail servers needed in CI: {problem}")
    pytest.skip(problem)


def missing() -> str | None:
    """Why the servers cannot run here, or None."""
    if not POSTFIX.exists() or not DOVECOT.exists():
        return "postfix and dovecot-imapd are not installed (.ci/run installs them)"
    if shutil.which("openssl") is None:
        return "openssl (to make the servers' certificate) is not installed"
    if os.geteuid() != 0:
        return "postfix must be started as root"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, *, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)  # polling for readiness
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} did not listen on {port} within {timeout}s\n{detail}")


@dataclass
class MailServers:
    root: Path
    imap_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    auth_port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    smtps_port: int = field(default_factory=free_port)
    idle: bool = True  # False: dovecot does not offer IDLE (clients must poll)
    smtp: bool = True  # False: IMAP only (mail put in with APPEND)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # --- life ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # dovecot's auth process reads the passwd file as the dovecot user
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, MAIL_UID, MAIL_UID)
        self._make_certificate()
        self._start_dovecot()
        if self.smtp:
            self._start_postfix()

    def stop(self) -> None:
        conf = self.root / "postfix"
        if (conf / "main.cf").exists():  # `postfix start-fg` leaves its master running when it is signalled
            subprocess.run([str(POSTFIX), "-c", str(conf), "abort"], capture_output=True, check=False)
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()

    # --- faults: one server down, then back (only this instance's own processes) -------------------

    def stop_dovecot(self, *, crash: bool = False) -> None:
        """Stop dovecot (IMAP, and postfix's SASL logins with it); its mail stays in the Maildirs.
        `crash`: killed, so its clients' connections end without a word (no BYE)."""
        self._end(DOVECOT, signal.SIGKILL if crash else signal.SIGTERM)
        _wait_refused(self.imap_port, what="dovecot")

    def start_dovecot(self) -> None:
        """Start the stopped dovecot again, with the same configuration and ports."""
        conf = self.root / "dovecot" / "dovecot.conf"
        self._spawn([str(DOVECOT), "-F", "-c", str(conf)], self.root / "dovecot.out")
        wait_for_port(self.imap_port, what="dovecot", log=self.root / "dovecot.log")

    def stop_postfix(self) -> None:
        """Stop postfix: SMTP connections are refused; mail it queued is kept in its spool."""
        conf = self.root / "postfix"
        subprocess.run([str(POSTFIX), "-c", str(conf), "stop"], capture_output=True, check=False)
        self._end(POSTFIX)
        _wait_refused(self.smtp_port, what="postfix")

    def start_postfix(self) -> None:
        conf = self.root / "postfix"
        self._spawn([str(POSTFIX), "-c", str(conf), "start-fg"], self.root / "postfix.out")
        wait_for_port(self.smtp_port, what="postfix", log=self.root / "postfix.out")

    def _end(self, program: Path, how: signal.Signals = signal.SIGTERM) -> None:
        """Stop `program`'s master and every process it started (dovecot's imap processes outlive
        their master otherwise, keeping clients connected to a server that is gone)."""
        for process in [p for p in self._processes if p.args[0] == str(program)]:  # type: ignore[index]
            family = _descendants(process.pid)
            if process.poll() is None:
                process.send_signal(how)
                process.wait(timeout=15)
            for pid in family:
                with suppress(ProcessLookupError):
                    os.kill(pid, how)
            self._processes.remove(process)

    def _start_dovecot(self) -> None:
        conf = self.root / "dovecot"
        conf.mkdir()
        (conf / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in USERS.items())
        )
        run = self.root / "dovecot-run"
        (conf / "dovecot.conf").write_text(
            f"""
protocols = imap
listen = 127.0.0.1
base_dir = {run}
state_dir = {self.root / "dovecot-state"}
log_path = {self.root / "dovecot.log"}
ssl = yes
ssl_cert = <{self.certificate}
ssl_key = <{self.root / "key.pem"}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
# Dovecot may miss a mail delivered just as IDLE starts until its next check (30 s by default).
mailbox_idle_check_interval = 1 secs
first_valid_uid = 1
mail_location = maildir:{self.root}/mail/%d/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {conf / "passwd"}
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={self.root}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {self.auth_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
  {"" if self.idle else "imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE"}
}}
"""
        )
        self._spawn([str(DOVECOT), "-F", "-c", str(conf / "dovecot.conf")], self.root / "dovecot.out")
        wait_for_port(self.imap_port, what="dovecot", log=self.root / "dovecot.log")

    def _start_postfix(self) -> None:
        conf = self.root / "postfix"
        conf.mkdir()
        for directory in ("spool", "data"):
            (self.root / directory).mkdir()
        shutil.chown(self.root / "data", "postfix")
        boxes = "".join(f"{user} {user.split('@')[1]}/{user.split('@')[0]}/Maildir/\n" for user in USERS)
        (conf / "vmailbox").write_text(boxes)
        (conf / "refused").write_text(
            f"{REFUSED} REJECT 5.7.1 This recipient does not take mail\n{BUSY} 451 4.3.0 Try again later\n"
        )
        (conf / "transport").write_text(f"{BOUNCE_DOMAIN} error:5.1.1 No such mailbox here\n")
        (conf / "main.cf").write_text(
            f"""
compatibility_level = 3.6
queue_directory = {self.root / "spool"}
data_directory = {self.root / "data"}
maillog_file = {self.root / "postfix.log"}
maillog_file_prefixes = {self.root}
mail_owner = postfix
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
recipient_delimiter = +
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks =
smtputf8_enable = no
biff = no
virtual_mailbox_domains = {DOMAIN} {LEAD_DOMAIN}
virtual_mailbox_base = {self.root / "mail"}
virtual_mailbox_maps = texthash:{conf / "vmailbox"}
virtual_uid_maps = static:{MAIL_UID}
virtual_gid_maps = static:{MAIL_UID}
relay_domains = {BOUNCE_DOMAIN}
transport_maps = texthash:{conf / "transport"}
# bounce.test is refused after queueing (error transport), so the sender gets a DSN
smtpd_reject_unlisted_recipient = no
smtpd_sasl_auth_enable = yes
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.certificate}
smtpd_tls_key_file = {self.root / "key.pem"}
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{self.auth_port}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access texthash:{conf / "refused"}, permit_sasl_authenticated, reject
queue_run_delay = 1s
smtpd_error_sleep_time = 0s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
"""
        )
        shutil.copy("/usr/share/postfix/master.cf.dist", conf / "master.cf")
        master = (
            (conf / "master.cf")
            .read_text()
            .replace("\nsmtp      inet", f"\n127.0.0.1:{self.smtp_port}      inet", 1)
        )
        master = master.replace("\n#postlog", "\npostlog")  # logging to maillog_file
        master += f"127.0.0.1:{self.smtps_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n"
        master = "\n".join(_unchrooted(line) for line in master.splitlines()) + "\n"
        (conf / "master.cf").write_text(master)
        subprocess.run([str(POSTFIX), "-c", str(conf), "check"], check=True, capture_output=True)
        self._spawn([str(POSTFIX), "-c", str(conf), "start-fg"], self.root / "postfix.out")
        wait_for_port(self.smtp_port, what="postfix", log=self.root / "postfix.out")

    def _spawn(self, command: list[str], output: Path) -> None:
        with output.open("ab") as out:
            self._processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))

    # --- URLs and clients ------------------------------------------------------------------------------

    def imap_url(
        self, user: str = f"sales@{DOMAIN}", *, port: int | None = None, scheme: str = "imap"
    ) -> str:
        port = port or (self.imaps_port if scheme == "imaps" else self.imap_port)
        host = "127.0.0.1" if scheme == "imap" else "localhost"  # TLS: the name the certificate bears
        return f"{scheme}://{user.replace('@', '%40')}:{USERS[user]}@{host}:{port}/INBOX"

    def smtp_url(self, user: str = f"sales@{DOMAIN}", *, scheme: str = "smtp") -> str:
        port = self.smtps_port if scheme == "smtps" else self.smtp_port
        host = "127.0.0.1" if scheme == "smtp" else "localhost"
        return f"{scheme}://{user.replace('@', '%40')}:{USERS[user]}@{host}:{port}"

    @property
    def certificate(self) -> Path:
        """The servers' self-signed certificate (for localhost): point SSL_CERT_FILE at it to trust it."""
        return self.root / "cert.pem"

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-keyout",
                str(self.root / "key.pem"),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )
        (self.root / "key.pem").chmod(0o644)  # a test key: postfix's smtpd reads it as the postfix user

    @contextmanager
    def mailbox(self, user: str) -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", port=self.imap_port, ssl=False, timeout=10)
        client.login(user, USERS[user])
        client.select_folder("INBOX")
        try:
            yield client
        finally:
            with suppress(Exception):
                client.logout()

    def messages(self, user: str) -> list[bytes]:
        """Every mail in the user's INBOX, raw, oldest first (read without marking it seen)."""
        with self.mailbox(user) as client:
            uids = sorted(client.search("ALL"))
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [fetched[uid][b"BODY[]"] for uid in uids]

    def clear(self) -> None:
        """Empty every mailbox (between tests sharing the servers)."""
        for user in USERS:
            with self.mailbox(user) as client:
                uids = client.search("ALL")
                if uids:
                    client.delete_messages(uids)
                    client.expunge()

    def append(self, mail: EmailMessage, *, user: str) -> None:
        """Put a mail straight into the user's INBOX (IMAP APPEND), unseen."""
        with self.mailbox(user) as client:
            client.append("INBOX", mail.as_bytes())

    def send(self, mail: EmailMessage, *, user: str) -> None:
        """Submit a mail over SMTP as `user` (logged in), as a mail client does."""
        import smtplib

        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            smtp.login(user, USERS[user])
            smtp.send_message(mail)

    def wait_for_mail(self, user: str, count: int, timeout: float = 20.0) -> list[bytes]:
        return wait_for(
            lambda: m if len(m := self.messages(user)) >= count else None,
            timeout,
            what=f"{count} mails for {user}",
        )

    def logs(self) -> str:
        parts = [(self.root / name) for name in ("postfix.log", "dovecot.log")]
        return "\n".join(path.read_text(errors="replace")[-4000:] for path in parts if path.exists())


def _descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (from /proc), deepest first."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            for child in (task / "children").read_text().split():
                found = [*_descendants(int(child)), int(child), *found]
    return found


def _wait_refused(port: int, *, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return
        time.sleep(0.05)  # polling for the port to close
    raise AssertionError(f"{what} still listens on {port} after {timeout}s")


def _unchrooted(line: str) -> str:
    """A master.cf service line with its chroot column set to n (a chroot would need /etc copied in)."""
    columns = line.split()
    if len(columns) >= 8 and not line.startswith((" ", "\t", "#")):
        columns[4] = "n"
        return " ".join(columns)
    return line


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, *, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition


@contextmanager
def running_mail_servers(*, idle: bool = True, smtp: bool = True) -> Iterator[MailServers]:
    """Both servers in a fresh folder, removed afterwards. Not under pytest's tmp_path: that is
    private to root (0700), and postfix and dovecot drop to their own users."""
    root = Path(tempfile.mkdtemp(prefix="threadline-mail-"))
    servers = MailServers(root, idle=idle, smtp=smtp)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


class CutProxy:
    """A TCP proxy to `target` that can cut a connection mid-answer.

    `cut_when(marker)`: the next time the server's bytes toward the client contain `marker`, the
    client gets only the bytes before it and the connection is closed on both sides (once).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._marker: bytes | None = None
        self.cuts = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def cut_when(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def close(self) -> None:
        self._server.close()
        for sock in list(self._open):
            with suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the server is down: the client finds the connection closed at once
                client.close()
                continue
            self.connections += 1
            self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_server:
                    with self._lock:
                        marker = self._marker
                        at = data.find(marker) if marker else -1
                        if at >= 0:
                            self._marker = None
                            self.cuts += 1
                    if at >= 0:
                        sink.sendall(data[:at])
                        break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()


__all__ = ["CutProxy", "MailServers", "missing", "need_mail_servers", "running_mail_servers", "wait_for"]
