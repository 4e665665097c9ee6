"""A private, throw-away Sendmail instance on loopback, relaying to smtp-sink.

Why: the Sendmail parser must be tested on the lines a *real* Sendmail writes
(`from=` arrivals, `to=` deliveries with `mailer=`/`relay=`/`dsn=`/`stat=`,
alias expansions, `Deferred: Connection refused`, DSN bounces under a child
queue id, `ruleset=check_rcpt ... reject=`, `User unknown`, and the MSP's
hand-off `stat=Sent (NEWQID Message accepted for delivery)`), not on lines we
imagine. It mirrors exim_lab.py: everything lives in one directory
(sendmail.cf and submit.cf built with m4 from the sendmail-cf macros, queue
directories, aliases and maps, pid and status files, `maillog`), the daemon
listens on 127.0.0.1:<port> and relays every message to smtp-sink (from
Postfix) on another loopback port.

Sendmail is Debian's sendmail-bin 8.17, unpacked (never installed: it
conflicts with postfix) with m4, sendmail-cf and libwrap0 by
scripts/install_sendmail.sh into $MCPF_SENDMAIL_DIR
(~/.cache/mcp-forensics/sendmail); its setgid bit is removed there, so
LD_LIBRARY_PATH finds libwrap0.

Sendmail logs only through syslog(3), to /dev/log. The lab receives those
datagrams itself (a thread on a UNIX datagram socket) and writes each as
rsyslog's default file template does: `Mon DD HH:MM:SS HOST TAG[PID]: MSG`
(mail facility only, as a `mail.*` rule). If /dev/log does not exist (no
syslog daemon), the lab creates its socket there for its lifetime and removes
it on exit; if it exists, it is left alone: the socket lives in the lab and is
bind-mounted over /dev/log in Sendmail's private mount namespace only.

No DNS: every Sendmail process (daemon, queue runs, the MSP command line)
runs under `unshare -m -u`: a private hostname (myhostname), and private
/etc/hosts, /etc/nsswitch.conf (hosts: files) and /etc/resolv.conf
(nameserver 127.0.0.1, where nothing answers) bind-mounted from the lab;
Sendmail's own service switch says `hosts files`, FEATURE(nocanonify), and
every route is an IP literal ([127.0.0.1]). Nothing leaves the machine.
The only thing written outside the lab directory is /dev/log when absent.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

SENDMAIL_DIR = Path(os.environ.get("MCPF_SENDMAIL_DIR") or Path.home() / ".cache" / "mcp-forensics" / "sendmail")
ROOT = SENDMAIL_DIR / "root"
SENDMAIL = ROOT / "usr" / "libexec" / "sendmail" / "sendmail"
MAKEMAP = ROOT / "usr" / "libexec" / "sendmail" / "makemap"
M4 = ROOT / "usr" / "bin" / "m4"
CF_DIR = ROOT / "usr" / "share" / "sendmail" / "cf"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
DEV_LOG = Path("/dev/log")
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LOG_MAIL = 2  # syslog facility


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lib_dir() -> Path | None:
    found = sorted((ROOT / "usr" / "lib").glob("*/libwrap.so.0"))
    return found[0].parent if found else None


def _msp_ids() -> tuple[int, int]:
    """The MSP's user: Debian's smmsp if the machine has one, else daemon."""
    for name in ("smmsp", "daemon"):
        try:
            p = pwd.getpwnam(name)
            return p.pw_uid, p.pw_gid
        except KeyError:
            continue
    return 1, 1


def available() -> str | None:
    """None when the unpacked Sendmail (with m4 and its macros) and smtp-sink are there, else why not."""
    for f in (SENDMAIL, MAKEMAP, M4):
        if not os.access(f, os.X_OK):
            return f"Sendmail not found in {SENDMAIL_DIR} (no {f.relative_to(ROOT)}; run scripts/setup.sh (scripts/install_sendmail.sh))"
    if not (CF_DIR / "m4" / "cf.m4").exists() or _lib_dir() is None:
        return f"sendmail-cf or libwrap0 not unpacked in {SENDMAIL_DIR} (run scripts/install_sendmail.sh)"
    if not os.path.exists(SMTP_SINK):
        return f"{SMTP_SINK} not installed (run scripts/setup.sh, which installs Debian's postfix)"
    if not os.path.exists(UNSHARE):
        return f"{UNSHARE} not found (util-linux), needed for Sendmail's private hostname and resolver files"
    if os.geteuid() != 0:
        return "a private Sendmail instance must be started as root"
    return None


def syslog_line(datagram: bytes, host: str, now: float | None = None) -> tuple[int, str] | None:
    """A glibc syslog(3) datagram (`<PRI>Mon DD HH:MM:SS TAG[PID]: MSG`) as
    rsyslog's traditional file line `Mon DD HH:MM:SS HOST TAG[PID]: MSG`
    (stamped at reception, as rsyslog's imuxsock does), with its facility."""
    text = datagram.decode("utf-8", errors="replace").rstrip("\n\x00")
    if not text.startswith("<") or ">" not in text[:5]:
        return None
    pri_s, rest = text[1:].split(">", 1)
    if not pri_s.isdigit():
        return None
    # glibc puts its own stamp (15 characters) before the tag.
    if len(rest) > 16 and rest[:3] in MONTHS and rest[15] == " ":
        rest = rest[16:]
    t = time.localtime(now if now is not None else time.time())
    stamp = f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return int(pri_s) >> 3, f"{stamp} {host} {rest}"


class _SyslogReceiver:
    """A UNIX datagram socket; writes each mail-facility message to a file."""

    def __init__(self, path: Path, out: Path, host: str):
        self.path, self.out, self.host = path, out, host
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)
        self.sock.settimeout(0.1)
        self.count = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._file = open(out, "a", encoding="utf-8")
        self._thread = threading.Thread(target=self._run, name="sendmail-lab-syslog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            parsed = syslog_line(data, self.host)
            with self._lock:
                self.count += 1
                if parsed and parsed[0] == LOG_MAIL:
                    self._file.write(parsed[1] + "\n")
                    self._file.flush()

    def drain(self, quiet: float = 0.3, timeout: float = 5) -> None:
        """Wait until no datagram arrived for `quiet` seconds."""
        deadline = time.time() + timeout
        last = -1
        while time.time() < deadline:
            with self._lock:
                n = self.count
            if n == last:
                return
            last = n
            time.sleep(quiet)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        self._file.close()


class SendmailLab:
    """Start with `with SendmailLab(workdir) as lab:`; send to `lab.smtp_port`.

    virtual_aliases: alias -> members. The address maps (virtusertable, its
        domain a VIRTUSER_DOMAIN, so the domain's other addresses still go
        out) to a local alias of the lab's aliases file, which Sendmail
        expands: `to=member1,member2, ... mailer=esmtp` (at LogLevel 9 the
        alias itself is in no line).
    failed_recipients: address -> text (the text is not used: Sendmail
        reports the sysexits code). Accepted at RCPT time, then fail in
        delivery: the address maps to a local alias that is a program exiting
        EX_NOUSER (`to="|exit 67", ctladdr=<address> ... mailer=prog,
        dsn=5.1.1, stat=User unknown`), then `QID: CHILD: DSN: User unknown`
        and the bounce's delivery to the sender.
    deferred_domains: domains routed (mailertable, mailer smtp) to a closed
        loopback port (`dsn=4.4.1, stat=Deferred: Connection refused by
        [127.0.0.1]`), retried by the queue runs (queue_interval);
        Timeout.queuereturn (queue_return) gives up after a few seconds:
        `QID: CHILD: DSN: Cannot send message for 8 seconds`, then the bounce.
    rejected_recipients: address -> text, refused at RCPT time by the access
        db (`To:` ERROR entries, FEATURE(blocklist_recipients)):
        `ruleset=check_rcpt, arg1=<address>, relay=..., reject=550 5.7.1 ...`.
    Recipients in the lab's own domain (myhostname) that are no user are
    refused at RCPT: `QID: <nobody@mx1.lab.example>... User unknown`. Sendmail
    logs a message's `from=` line after its refused recipients (at DATA).
    log_level: Sendmail's LogLevel. 11 (the default here, a forensic level
        as exim_lab.py's log_selector) adds `QID: alias <A> => m1, m2`,
        `QID: done; delay=..., ntries=N`, `NOQUEUE: connect from ...` and
        `AUTH=client` lines; 9 is Sendmail's own default (the level most
        real maillogs have: no line names an alias).
    submit(): the MSP path (the `sendmail` command line with submit.cf), which
    hands the message to the daemon over SMTP (`mailer=relay`,
    `stat=Sent (NEWQID Message accepted for delivery)`).
    Unlike EximLab there is no extra_recipients (an MTA-side always-Bcc would
    need a milter or custom rulesets in Sendmail).
    """

    def __init__(self, workdir: Path, myhostname: str = "mx1.lab.example",
                 virtual_aliases: dict[str, list[str]] | None = None,
                 failed_recipients: dict[str, str] | None = None,
                 rejected_recipients: dict[str, str] | None = None,
                 deferred_domains: list[str] | tuple[str, ...] = (),
                 queue_interval: str = "3s", queue_return: str = "8s",
                 log_level: int = 11, log_name: str = "maillog"):
        self.workdir = Path(workdir).resolve()
        self.myhostname = myhostname
        self.log_host = myhostname.split(".")[0]
        self.cf_path = self.workdir / "sendmail.cf"
        self.submit_cf_path = self.workdir / "submit.cf"
        self.queue = self.workdir / "mqueue"
        self.client_queue = self.workdir / "clientmqueue"
        self.log_path = self.workdir / log_name
        self.pid_path = self.workdir / "sendmail.pid"
        self.etc = self.workdir / "etc"
        ports: list[int] = []
        while len(ports) < 3:  # the listener, the sink, and a closed port for deferrals
            if (p := free_port()) not in ports:
                ports.append(p)
        self.smtp_port, self.sink_port, self.closed_port = ports
        self.virtual_aliases = virtual_aliases or {}
        self.failed_recipients = failed_recipients or {}
        self.rejected_recipients = rejected_recipients or {}
        self.deferred_domains = list(deferred_domains)
        self.queue_interval = queue_interval
        self.queue_return = queue_return
        self.log_level = log_level
        self._sink: subprocess.Popen | None = None
        self._daemon: subprocess.Popen | None = None
        self._syslog: _SyslogReceiver | None = None
        self._created_dev_log = False
        self._socket_path: Path | None = None

    # -- configuration -------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH": str(_lib_dir())}
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env

    def _wrap(self, argv: list[str]) -> list[str]:
        """argv under a private mount and UTS namespace: our hostname and
        resolver files, and /dev/log bound to the lab's socket when the
        system has its own."""
        binds = [(self.etc / "hosts", "/etc/hosts"), (self.etc / "nsswitch.conf", "/etc/nsswitch.conf"),
                 (self.etc / "resolv.conf", "/etc/resolv.conf")]
        if not self._created_dev_log and self._socket_path is not None:
            binds.append((self._socket_path, str(DEV_LOG)))
        script = f"hostname {self.myhostname} && " + " && ".join(f"mount --bind '{a}' '{b}'" for a, b in binds) + ' && exec "$@"'
        return [UNSHARE, "--mount", "--uts", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    def _local_parts(self) -> dict[str, str]:
        """Every alias address (virtual and failing) -> its local alias name."""
        out: dict[str, str] = {}
        for addr in [*self.virtual_aliases, *self.failed_recipients]:
            local = addr.split("@")[0].lower()
            if local in out and out[local] != addr:
                raise ValueError(f"{addr} and {out[local]} share a local part; the lab's aliases are one namespace")
            out[local] = addr
        return out

    def _makemap(self, path: Path) -> None:
        # makemap reads the configuration (TrustedUser): -C ours.
        r = subprocess.run([str(MAKEMAP), "-C", str(self.cf_path), "hash", str(path)], input=path.read_text(), env=self._env(),
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"makemap hash {path} failed ({r.returncode}): {r.stderr.strip()}")

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for d in (self.queue, self.client_queue, self.etc):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700 if d != self.etc else 0o755)
        (self.etc / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n127.0.0.1\t{self.myhostname} {self.log_host}\n::1\tlocalhost ip6-localhost\n")
        (self.etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        switch = self.workdir / "service.switch"
        switch.write_text("hosts files\naliases files\n")

        locals_ = self._local_parts()
        aliases = self.workdir / "aliases"
        lines = ["postmaster: root", "MAILER-DAEMON: postmaster", "root: postmaster@corp.example"]
        for addr, members in self.virtual_aliases.items():
            lines.append(f"{addr.split('@')[0].lower()}: {', '.join(members)}")
        for addr in self.failed_recipients:
            # EX_NOUSER from a program: sendmail reports "User unknown" (5.1.1).
            lines.append(f'{addr.split("@")[0].lower()}: "|exit 67"')
        aliases.write_text("\n".join(lines) + "\n")
        # The alias addresses map (virtusertable) to local aliases; their
        # domains are virtual (VirtHost), so the domains' other addresses
        # still go out through the smart host.
        virtusers = self.workdir / "virtusertable"
        virtusers.write_text("".join(f"{addr}\t{local}\n" for local, addr in locals_.items()))
        access = self.workdir / "access"
        access.write_text("".join(
            ["Connect:127.0.0.1\tRELAY\n", "Connect:localhost\tRELAY\n"]
            + [f"To:{a}\tERROR:5.7.1:550 {why}\n" for a, why in self.rejected_recipients.items()]))
        mailertable = self.workdir / "mailertable"
        mailertable.write_text("".join(f"{d}\tsmtp:[127.0.0.1]\n" for d in self.deferred_domains))
        virtual_domains = sorted({a.split("@")[1].lower() for a in locals_.values()})
        w = str(self.workdir)

        common = f"""\
include(`{CF_DIR}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{self.myhostname}')dnl
define(`confSERVICE_SWITCH_FILE', `{switch}')dnl
define(`confHOSTS_FILE', `{self.etc}/hosts')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`confTO_IDENT', `0s')dnl
define(`confQUEUE_LA', `999')dnl
define(`confREFUSE_LA', `999')dnl
define(`confLOG_LEVEL', `{self.log_level}')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confHELP_FILE', `{w}/helpfile')dnl
define(`confDEAD_LETTER_DROP', `{w}/dead.letter')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
FEATURE(`nocanonify')dnl
"""
        mta = common + f"""\
define(`confPID_FILE', `{self.pid_path}')dnl
define(`STATUS_FILE', `{w}/sendmail.st')dnl
define(`QUEUE_DIR', `{self.queue}')dnl
define(`ALIAS_FILE', `{aliases}')dnl
define(`confTO_QUEUERETURN', `{self.queue_return}')dnl
define(`confTO_QUEUEWARN', `1h')dnl
define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {self.sink_port}')dnl
define(`SMTP_MAILER_ARGS', `TCP $h {self.closed_port}')dnl
define(`LOCAL_MAILER_PATH', `/bin/false')dnl
define(`LOCAL_SHELL_PATH', `/bin/sh')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`access_db', `hash -T<TMPF> {access}')dnl
FEATURE(`blocklist_recipients')dnl
FEATURE(`mailertable', `hash {mailertable}')dnl
DAEMON_OPTIONS(`Port={self.smtp_port}, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(`virtusertable', `hash {virtusers}')dnl
{''.join(f"VIRTUSER_DOMAIN(`{d}')dnl{chr(10)}" for d in virtual_domains)}MAILER(`local')dnl
MAILER(`smtp')dnl
"""
        # The MSP refuses to run as root: it runs as "daemon" (smmsp on Debian),
        # which owns the client queue.
        uid, gid = _msp_ids()
        os.chown(self.client_queue, uid, gid)
        os.chmod(self.client_queue, 0o770)
        submit = common + f"""\
define(`confRUN_AS_USER', `{uid}:{gid}')dnl
define(`confPID_FILE', `{self.client_queue}/sm-client.pid')dnl
define(`MSP_QUEUE_DIR', `{self.client_queue}')dnl
define(`STATUS_FILE', `{self.client_queue}/sm-client.st')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {self.smtp_port}')dnl
FEATURE(`msp', `[127.0.0.1]')dnl
"""
        for mc, cf in ((mta, self.cf_path), (submit, self.submit_cf_path)):
            mc_path = cf.with_suffix(".mc")
            mc_path.write_text(mc)
            r = subprocess.run([str(M4), str(mc_path)], capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or not r.stdout:
                raise RuntimeError(f"m4 {mc_path} failed ({r.returncode}): {r.stderr.strip()}")
            cf.write_text(r.stdout)
            os.chmod(cf, 0o644)
        for m in (access, mailertable, virtusers):
            self._makemap(m)
        r = self.sendmail("-bi")  # newaliases: aliases.db
        if r.returncode != 0:
            raise RuntimeError(f"sendmail -bi (newaliases) failed ({r.returncode}): {r.stdout.strip()} {r.stderr.strip()}")

    # -- running ---------------------------------------------------------------

    def sendmail(self, *args: str, cf: Path | None = None, input: str | bytes | None = None,
                 label: str | None = None) -> subprocess.CompletedProcess:
        """Run this lab's sendmail with a configuration (the MTA's by default)."""
        argv = [str(SENDMAIL), "-C", str(cf or self.cf_path)] + ([f"-L{label}"] if label else []) + list(args)
        return subprocess.run(self._wrap(argv), env=self._env(), input=input, capture_output=True,
                              text=not isinstance(input, bytes), timeout=120)

    def submit(self, message: str | bytes, sender: str, *recipients: str) -> subprocess.CompletedProcess:
        """The MSP path: `sendmail -f SENDER RCPT...` (or `-t` without
        recipients) with submit.cf, as a local program sends mail; the MSP
        relays it over SMTP to the daemon."""
        args = ["-f", sender, "-i"] + (["--", *recipients] if recipients else ["-t"])
        r = self.sendmail(*args, cf=self.submit_cf_path, input=message)
        if r.returncode != 0:
            raise RuntimeError(f"sendmail (MSP) exited {r.returncode}: {r.stdout} {r.stderr}")
        return r

    def _log_tail(self, n: int = 8) -> str:
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-n:]) if self.log_path.exists() else ""

    def _start_syslog(self) -> None:
        self.log_path.touch()
        if not DEV_LOG.exists() and not DEV_LOG.is_symlink():
            try:
                self._syslog = _SyslogReceiver(DEV_LOG, self.log_path, self.log_host)
                self._created_dev_log = True
                self._socket_path = DEV_LOG
                return
            except OSError:
                pass  # e.g. a read-only /dev: use the private bind mount instead
        self._socket_path = self.workdir / "log.sock"
        self._syslog = _SyslogReceiver(self._socket_path, self.log_path, self.log_host)

    def __enter__(self) -> "SendmailLab":
        why = available()
        if why:
            raise RuntimeError(why)
        try:
            # The receiver first: newaliases (in _write_config) logs too.
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._start_syslog()
            self._write_config()
            self._sink = subprocess.Popen(
                [SMTP_SINK, "-u", "postfix", f"127.0.0.1:{self.sink_port}", "64"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
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
        stderr = open(self.workdir / "sendmail.stderr", "w")
        # -bD: the daemon in the foreground (our child, its own process group),
        # -qN: a queue run every N (deferred messages), -L: Debian's syslog tag.
        self._daemon = subprocess.Popen(
            self._wrap([str(SENDMAIL), "-C", str(self.cf_path), "-Lsm-mta", "-bD", f"-q{self.queue_interval}"]),
            env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        # Sendmail logs "starting daemon" before it listens: wait for the port.
        deadline = time.time() + 30
        while time.time() < deadline:
            if self._daemon.poll() is not None:
                break
            # No probe connection (Sendmail would log "did not issue
            # MAIL/EXPN/VRFY/ETRN"): the kernel's table of listening sockets.
            if self._listening():
                return
            time.sleep(0.1)
        err = (self.workdir / "sendmail.stderr").read_text(errors="replace").strip()
        raise RuntimeError(f"Sendmail did not start on 127.0.0.1:{self.smtp_port}: {err} {self._log_tail()}")

    def _listening(self) -> bool:
        want = f"0100007F:{self.smtp_port:04X}"  # 127.0.0.1:port, state 0A = LISTEN
        try:
            rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            # No /proc table: fall back to a probe connection.
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                    return True
            except OSError:
                return False
        return any(len(p) > 3 and p[1] == want and p[3] == "0A" for p in (r.split() for r in rows))

    def queue_files(self) -> list[str]:
        """The control files (qf*) of both queues (the daemon's and the MSP's)."""
        return sorted(p.name for d in (self.queue, self.client_queue) if d.exists()
                      for p in d.iterdir() if p.name.startswith(("qf", "Qf", "hf")))

    def queue_count(self) -> int:
        return len(self.queue_files())

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until both queues are empty, so every delivery line is in the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.queue_count() == 0:
                time.sleep(0.3)  # let the last delivery process log its lines
                if self._syslog:
                    self._syslog.drain()
                if self.queue_count() == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Sendmail queues in {self.workdir} did not drain in {timeout}s: {self.queue_files()}")

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
        # Children of the daemon (deliveries, queue runs) share its group.
        if self._daemon:
            try:
                os.killpg(self._daemon.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._sink:
            if self._sink.poll() is None:
                self._sink.terminate()
            self._sink.wait(timeout=10)
        if self._syslog:
            self._syslog.drain(quiet=0.2, timeout=2)
            self._syslog.close()
            self._syslog = None
        if self._created_dev_log:
            try:
                DEV_LOG.unlink()
            except FileNotFoundError:
                pass
            self._created_dev_log = False
