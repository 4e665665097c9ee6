"""A private, throw-away Exim instance on loopback, relaying to smtp-sink.

Why: the Exim parser must be tested on the main log a *real* Exim writes
(`<=` with `for` lists, `=>`/`->` deliveries with `R=`/`T=`/`H=`/`C=`, alias
parents, `==` deferrals, `**` failures and their bounces, `Completed`), not on
lines we imagine. It mirrors postfix_lab.py: everything lives in one directory
(configuration, spool, `log/mainlog`, `log/rejectlog`, `log/paniclog`, pid
file), the daemon listens on 127.0.0.1:<port> and relays every message to
smtp-sink (from Postfix) on another loopback port. Exim writes its own log
files (`log_file_path`), so no syslog daemon is needed. Nothing leaves the
machine: every router sends to 127.0.0.1 and no DNS lookup is configured.

Exim is Debian's exim4-daemon-light, unpacked (never installed: it conflicts
with postfix) by scripts/install_exim.sh into $MCPF_EXIM_DIR
(~/.cache/mcp-forensics/exim). Two things make it run there:

- Debian compiles in the Exim user "Debian-exim" and looks it up before any
  configuration is read; the lab gives Exim a private passwd/group through
  nss_wrapper (LD_PRELOAD) instead of adding a user to /etc/passwd. The
  binary's setuid bit is removed by the install script, so Exim's own
  re-executions (delivery after reception, queue runs) keep LD_LIBRARY_PATH
  (libidn12 is unpacked too) and LD_PRELOAD; `keep_environment` lets them
  through Exim's environment purge. Those re-executions run as the Exim user,
  so the lab runs a copy of the binary and libraries from its own directory
  (the install directory may sit in root's 0700 home).
- The runtime configuration is passed with -C. Running as root that is allowed,
  but the delivery processes Exim re-executes run as the Exim user, and for
  them a -C file is trusted only if it is listed in the compiled-in
  TRUSTED_CONFIG_LIST, /etc/exim4/trusted_configs; otherwise each of them
  logs "exim user lost privilege for using -C option" to mainlog and paniclog
  (harmless: remote smtp deliveries need no privilege, but real servers do not
  write that line). With trust_config=True (the default) the lab adds its
  configuration's path to that file while it runs and takes it out again on
  exit (creating, and then removing, the file and /etc/exim4 if they were not
  there). That is the only thing written outside the lab directory.
"""
from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

EXIM_DIR = Path(os.environ.get("MCPF_EXIM_DIR") or Path.home() / ".cache" / "mcp-forensics" / "exim")
EXIM = EXIM_DIR / "root" / "usr" / "sbin" / "exim4"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
EXIM_USER = "Debian-exim"  # compiled into Debian's exim4 (EXIM_USER)
TRUSTED_CONFIGS = Path("/etc/exim4/trusted_configs")  # compiled in (TRUSTED_CONFIG_LIST)

# A forensic set on top of Exim 4.96's defaults (which already log msg_id
# `id=`, queue runs, retry deferrals, rejections): who the message was for
# (`for ...`), the envelope sender on deliveries (`F=<...>`, `P=<...>`), sizes
# and times, ports, every alias parent, subjects, SMTP sessions.
DEFAULT_LOG_SELECTOR = " ".join([
    "+received_recipients", "+received_sender", "+sender_on_delivery", "+return_path_on_delivery",
    "+delivery_size", "+queue_time", "+queue_time_overall", "+deliver_time", "+subject", "+msg_id",
    "+msg_id_created", "+all_parents", "+incoming_port", "+outgoing_port", "+smtp_connection",
    "+smtp_no_mail", "+smtp_incomplete_transaction", "+smtp_protocol_error", "+smtp_syntax_error",
    "+connection_reject", "+8bitmime",
])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nss_wrapper() -> Path | None:
    found = sorted((EXIM_DIR / "root" / "usr" / "lib").glob("*/libnss_wrapper.so"))
    return found[0] if found else None


def available() -> str | None:
    """None when the unpacked Exim and smtp-sink are there, else why not."""
    if not os.access(EXIM, os.X_OK) or _nss_wrapper() is None:
        return f"Exim not found in {EXIM_DIR} (run scripts/setup.sh (scripts/install_exim.sh))"
    if not os.path.exists(SMTP_SINK):
        return f"{SMTP_SINK} not installed (run scripts/setup.sh, which installs Debian's postfix)"
    if os.geteuid() != 0:
        return "a private Exim instance must be started as root"
    return None


def _exim_ids() -> tuple[int, int]:
    """The uid/gid Exim runs as: the real Debian-exim's if the machine has one,
    else an id no user or group of this machine has."""
    try:
        p = pwd.getpwnam(EXIM_USER)
        return p.pw_uid, p.pw_gid
    except KeyError:
        pass
    for i in range(60999, 59999, -1):
        try:
            pwd.getpwuid(i)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(i)
            continue
        except KeyError:
            return i, i
    raise RuntimeError("no free uid/gid in 60000-60999 for the Exim user")


class EximLab:
    """Start with `with EximLab(workdir) as lab:`; send to `lab.smtp_port`.

    virtual_aliases: alias -> members, expanded by a redirect router from a
        private lsearch file (deliveries log `=> member <alias>`).
    failed_recipients: address -> text, `:fail:` aliases (`** address ... R=aliases:
        text`, then a bounce `<= <> R=<id>` delivered to the sender).
    deferred_domains: domains routed to a closed loopback port (`H=... Connection
        refused`, `== address ... defer (111)`); their retry rule `defer_retry`
        gives up after a few seconds (`** address: retry timeout exceeded`, bounce).
    rejected_recipients: address -> text, refused at RCPT time by the ACL
        (`rejected RCPT <address>: text` in mainlog and rejectlog).
    extra_recipients: addresses Exim silently adds to every message (an `unseen`
        redirect router, an MTA-side always-Bcc): they never appear in a `<=`
        line's `for` list, only as `=>`/`->` with an original recipient as parent.
    """

    def __init__(self, workdir: Path, myhostname: str = "mx1.lab.example",
                 virtual_aliases: dict[str, list[str]] | None = None,
                 extra_recipients: list[str] | None = None,
                 failed_recipients: dict[str, str] | None = None,
                 rejected_recipients: dict[str, str] | None = None,
                 deferred_domains: list[str] | tuple[str, ...] = (),
                 queue_interval: str = "3s", defer_retry: str = "F,6s,3s",
                 log_selector: str = DEFAULT_LOG_SELECTOR, trust_config: bool = True):
        self.workdir = Path(workdir).resolve()
        self.myhostname = myhostname
        self.conf_path = self.workdir / "exim.conf"
        self.spool = self.workdir / "spool"
        self.log_dir = self.workdir / "log"
        self.log_path = self.log_dir / "mainlog"
        self.reject_log_path = self.log_dir / "rejectlog"
        self.panic_log_path = self.log_dir / "paniclog"
        self.pid_path = self.workdir / "exim.pid"
        self.nss_dir = self.workdir / "nss"
        self.exim_bin = self.workdir / "bin" / "exim4"
        self.lib_dir = self.workdir / "lib"
        ports: list[int] = []
        while len(ports) < 3:  # the listener, the sink, and a closed port for deferrals
            if (p := free_port()) not in ports:
                ports.append(p)
        self.smtp_port, self.sink_port, self.closed_port = ports
        self.virtual_aliases = virtual_aliases or {}
        self.extra_recipients = list(extra_recipients or [])
        self.failed_recipients = failed_recipients or {}
        self.rejected_recipients = rejected_recipients or {}
        self.deferred_domains = list(deferred_domains)
        self.queue_interval = queue_interval
        self.defer_retry = defer_retry
        self.log_selector = log_selector
        self.trust_config = trust_config
        self._trusted: tuple[bool, bool] | None = None  # (created dir, created file)
        self._sink: subprocess.Popen | None = None
        self._daemon: subprocess.Popen | None = None

    # -- configuration -------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_LIBRARY_PATH": str(self.lib_dir),
            "LD_PRELOAD": str(self.lib_dir / "libnss_wrapper.so"),
            "NSS_WRAPPER_PASSWD": str(self.nss_dir / "passwd"),
            "NSS_WRAPPER_GROUP": str(self.nss_dir / "group"),
        }
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env

    def _write_config(self) -> None:
        uid, gid = _exim_ids()
        # Exim's processes run as the Exim user: they must reach the workdir
        # (mkdtemp makes it 0700) and own the spool and log directories.
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for d in (self.spool, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, uid, gid)
            os.chmod(d, 0o750)
        # Exim re-executes itself as the Exim user, who may not reach the
        # install directory (under root's 0700 home): a copy of the binary and
        # of the unpacked libraries (libidn12, nss_wrapper) lives in the lab.
        nss = _nss_wrapper()
        assert nss is not None
        self.exim_bin.parent.mkdir(exist_ok=True)
        shutil.copy(EXIM, self.exim_bin)
        os.chmod(self.exim_bin, 0o755)
        self.lib_dir.mkdir(exist_ok=True)
        for lib in nss.parent.iterdir():
            if lib.is_file():  # libidn.so.12 (a symlink: copied as a file), libnss_wrapper.so
                shutil.copy(lib, self.lib_dir / lib.name)
                os.chmod(self.lib_dir / lib.name, 0o755)
        self.nss_dir.mkdir(exist_ok=True)
        (self.nss_dir / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\n{EXIM_USER}:x:{uid}:{gid}:Exim:/nonexistent:/usr/sbin/nologin\n")
        (self.nss_dir / "group").write_text(f"root:x:0:\n{EXIM_USER}:x:{gid}:\n")

        aliases = self.workdir / "aliases"
        aliases.write_text(
            "".join(f"{a}: {', '.join(m)}\n" for a, m in self.virtual_aliases.items())
            + "".join(f"{a}: :fail: {why}\n" for a, why in self.failed_recipients.items()))

        rejects = self.workdir / "rejects"
        rejects.write_text("".join(f"{a}: {why}\n" for a, why in self.rejected_recipients.items()))
        lookup_reject = f"${{lookup{{$local_part@$domain}}lsearch{{{rejects}}}}}"
        reject_acl = (f"  deny   condition = ${{if eq{{{lookup_reject}}}{{}}{{no}}{{yes}}}}\n"
                      f"         message = {lookup_reject}\n") if self.rejected_recipients else ""

        routers = []
        if self.extra_recipients:
            routers.append(
                "always_bcc:\n  driver = redirect\n  unseen\n"
                f"  data = {', '.join(self.extra_recipients)}\n"
                "  redirect_router = sink\n")
        routers.append(
            "aliases:\n  driver = redirect\n"
            f"  data = ${{lookup{{$local_part@$domain}}lsearch{{{aliases}}}}}\n"
            "  allow_fail\n  allow_defer\n")
        if self.deferred_domains:
            routers.append(
                "deferred:\n  driver = manualroute\n"
                f"  domains = {' : '.join(self.deferred_domains)}\n"
                "  route_list = * 127.0.0.1\n  transport = closed_smtp\n  self = send\n")
        routers.append(
            "sink:\n  driver = manualroute\n  route_list = * 127.0.0.1\n"
            "  transport = sink_smtp\n  self = send\n")
        retry = "".join(f"{d} * {self.defer_retry}\n" for d in self.deferred_domains) + "* * F,1h,1m\n"

        conf = f"""\
# Private Exim lab (tests/harness/exim_lab.py); passed with -C.
primary_hostname = {self.myhostname}
qualify_domain = lab.example
exim_path = {self.exim_bin}
spool_directory = {self.spool}
log_file_path = {self.log_dir}/%slog
pid_file_path = {self.pid_path}
keep_environment = LD_LIBRARY_PATH : LD_PRELOAD : NSS_WRAPPER_PASSWD : NSS_WRAPPER_GROUP
daemon_smtp_ports = {self.smtp_port}
local_interfaces = <; 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
log_selector = {self.log_selector}
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_rcpt:
{reject_acl}  accept hosts = 127.0.0.1
  deny   message = relay not permitted

begin routers

{chr(10).join(routers)}
begin transports

sink_smtp:
  driver = smtp
  port = {self.sink_port}
  allow_localhost
  hosts_avoid_tls = *

closed_smtp:
  driver = smtp
  port = {self.closed_port}
  allow_localhost
  hosts_avoid_tls = *

begin retry

{retry}"""
        # Exim refuses a configuration that is not owned by root (or the Exim
        # user) or that group/others may write.
        self.conf_path.write_text(conf)
        os.chmod(self.conf_path, 0o644)
        for f in (aliases, rejects, self.nss_dir / "passwd", self.nss_dir / "group"):
            os.chmod(f, 0o644)

    def _trust(self) -> None:
        created_dir = not TRUSTED_CONFIGS.parent.exists()
        TRUSTED_CONFIGS.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        created_file = not TRUSTED_CONFIGS.exists()
        with open(TRUSTED_CONFIGS, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            if str(self.conf_path) not in f.read().splitlines():
                f.write(f"{self.conf_path}\n")
        os.chmod(TRUSTED_CONFIGS, 0o644)  # Exim ignores it if group/others may write
        self._trusted = (created_dir, created_file)

    def _untrust(self) -> None:
        if self._trusted is None:
            return
        created_dir, created_file = self._trusted
        self._trusted = None
        try:
            with open(TRUSTED_CONFIGS, "r+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                lines = [line for line in f.read().splitlines() if line != str(self.conf_path)]
                f.seek(0)
                f.truncate()
                f.write("".join(f"{line}\n" for line in lines))
            if created_file and not lines:
                TRUSTED_CONFIGS.unlink()
                if created_dir:
                    TRUSTED_CONFIGS.parent.rmdir()
        except OSError:
            pass

    # -- running ---------------------------------------------------------------

    def exim(self, *args: str) -> subprocess.CompletedProcess:
        """Run this lab's exim4 with its configuration (e.g. "-bpc", "-bp")."""
        return subprocess.run([str(self.exim_bin), "-C", str(self.conf_path), *args], env=self._env(),
                              capture_output=True, text=True, timeout=60)

    def _log_tail(self, path: Path, n: int = 5) -> str:
        return " | ".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def __enter__(self) -> "EximLab":
        why = available()
        if why:
            raise RuntimeError(why)
        self._write_config()
        self._sink = subprocess.Popen(
            [SMTP_SINK, "-u", "postfix", f"127.0.0.1:{self.sink_port}", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self._start_daemon()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start_daemon(self) -> None:
        # The sink first: a delivery that finds it closed would wait for a retry.
        deadline = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.sink_port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"smtp-sink did not open 127.0.0.1:{self.sink_port}")
                time.sleep(0.05)
        check = self.exim("-bV")
        if check.returncode != 0:
            raise RuntimeError(f"exim4 -bV failed ({check.returncode}): {check.stderr.strip()}")
        if self.trust_config:
            try:
                self._trust()
            except OSError:
                self._trusted = None  # still works; deliveries log "lost privilege"
        stderr = open(self.workdir / "exim.stderr", "w")
        # -bdf: the daemon stays our child (no zombie left for init), in its own
        # process group; -qN: a queue runner every N, for deferred messages.
        self._daemon = subprocess.Popen(
            [str(self.exim_bin), "-C", str(self.conf_path), "-bdf", f"-q{self.queue_interval}"],
            env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        # The daemon logs "daemon started" after it listens: no probe connection
        # (which would log an SMTP connection without MAIL).
        started = f"daemon started: pid={self._daemon.pid},"
        deadline = time.time() + 20
        while time.time() < deadline:
            if self._daemon.poll() is not None:
                break
            if self.log_path.exists() and started in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        err = (self.workdir / "exim.stderr").read_text(errors="replace").strip()
        raise RuntimeError(f"Exim did not start on 127.0.0.1:{self.smtp_port}: {err} "
                           f"{self._log_tail(self.panic_log_path)} {self._log_tail(self.log_path)}")

    def queue_count(self) -> int:
        r = self.exim("-bpc")
        if r.returncode != 0:
            raise RuntimeError(f"exim -bpc failed ({r.returncode}): {r.stderr.strip()}")
        return int(r.stdout.strip() or 0)

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until the queue is empty, so every delivery line is in the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.queue_count() == 0:
                time.sleep(0.3)  # let the last delivery process finish its lines
                return
            time.sleep(0.2)
        raise RuntimeError(f"Exim queue in {self.spool} did not drain in {timeout}s: {self.exim('-bp').stdout}")

    def __exit__(self, *exc) -> None:
        if self._daemon and self._daemon.poll() is None:
            try:
                os.killpg(self._daemon.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self._daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._daemon.pid, signal.SIGKILL)
                self._daemon.wait(timeout=10)
        self._untrust()
        if self._sink:
            self._sink.terminate()
            self._sink.wait(timeout=10)
