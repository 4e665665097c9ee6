"""A private, throw-away Postfix instance on loopback, relaying to smtp-sink.

Why: tests and the sample-log generator need the logs a *real* Postfix writes
(smtpd, cleanup, qmgr, smtp, and a silent extra envelope recipient), not lines
we imagine. The instance lives entirely in one directory, listens on
127.0.0.1:<port>, relays every message to smtp-sink on another loopback port,
and writes its log with Postfix's own `maillog_file` (postlogd), so no syslog
daemon is needed. Nothing leaves the machine.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> str | None:
    """None when Postfix and smtp-sink are installed, else why not."""
    for tool in (POSTFIX, SMTP_SINK):
        if not os.path.exists(tool):
            return f"{tool} not installed (run scripts/setup.sh, which installs Debian's postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root"
    return None


class PostfixLab:
    """Start with `with PostfixLab(workdir) as lab:`; send to `lab.smtp_port`."""

    def __init__(self, workdir: Path, myhostname: str = "mx1.lab.example", log_name: str = "mail.log",
                 virtual_aliases: dict[str, list[str]] | None = None):
        self.workdir = Path(workdir).resolve()
        self.myhostname = myhostname
        self.conf = self.workdir / "conf"
        self.queue = self.workdir / "queue"
        self.data = self.workdir / "data"
        self.log_path = self.workdir / log_name
        self.smtp_port = free_port()
        self.sink_port = free_port()
        self._sink: subprocess.Popen | None = None
        # alias -> members: Postfix expands them and logs orig_to=<alias>.
        self.virtual_aliases = virtual_aliases or {}

    def _write_config(self) -> None:
        # Postfix daemons run as the postfix user: they must reach the workdir
        # (mkdtemp makes it 0700).
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for d in (self.conf, self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.smtp_port}"))
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.myhostname,
            "mydomain": "lab.example",
            "myorigin": "$mydomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.workdir),
            "smtp_dns_support_level": "disabled",
            "disable_dns_lookups": "yes",
            "smtpd_peername_lookup": "no",
            "qmgr_message_active_limit": "1000",
            "shlib_directory": "/usr/lib/postfix",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "command_directory": "/usr/sbin",
            "meta_directory": "/etc/postfix",
            "sendmail_path": "/usr/sbin/sendmail",
            "newaliases_path": "/usr/bin/newaliases",
            "mailq_path": "/usr/bin/mailq",
            "manpage_directory": "/usr/share/man",
            "html_directory": "no",
            "readme_directory": "no",
            "biff": "no",
        }
        if self.virtual_aliases:
            vfile = self.conf / "virtual"
            vfile.write_text("".join(f"{a} {', '.join(m)}\n" for a, m in self.virtual_aliases.items()))
            main["virtual_alias_domains"] = " ".join(sorted({a.split("@")[1] for a in self.virtual_aliases}))
            main["virtual_alias_maps"] = f"texthash:{vfile}"
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))

    def _postfix(self, *args: str) -> None:
        r = subprocess.run([POSTFIX, "-c", str(self.conf), *args], capture_output=True, text=True)
        if r.returncode != 0:
            tail = self.log_path.read_text(errors="replace").splitlines()[-5:] if self.log_path.exists() else []
            raise RuntimeError(f"postfix {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()} {' | '.join(tail)}")

    def __enter__(self) -> "PostfixLab":
        why = available()
        if why:
            raise RuntimeError(why)
        self._write_config()
        self._sink = subprocess.Popen(
            [SMTP_SINK, "-u", "postfix", f"127.0.0.1:{self.sink_port}", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._postfix("set-permissions")
        self._postfix("start")
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"Postfix did not open 127.0.0.1:{self.smtp_port}; see {self.log_path}")

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until the queue is empty, so every delivery line is in the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            busy = any(p.is_file() for sub in ("incoming", "active", "deferred", "maildrop")
                       for p in (self.queue / sub).rglob("*"))
            if not busy:
                time.sleep(0.5)  # let postlogd flush the last lines
                return
            time.sleep(0.2)
        raise RuntimeError(f"Postfix queue in {self.queue} did not drain in {timeout}s")

    def __exit__(self, *exc) -> None:
        try:
            self._postfix("stop")
        except RuntimeError:
            pass
        if self._sink:
            self._sink.terminate()
            self._sink.wait(timeout=10)
