"""A real IMAP server for tests: Debian's Dovecot, started in the foreground on a loopback port with a
configuration and mail store of its own (installed by deploy/local/services.sh)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.runtime import free_port

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {run}
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
first_valid_gid = 1
{users_line}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
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
"""


@dataclass(frozen=True)
class Imap:
    host: str
    port: int
    user: str
    password: str


@contextmanager
def dovecot(root: Path) -> Iterator[Imap]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise AssertionError("Dovecot is needed for the IMAP test: deploy/local/services.sh installs it")
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "mail"):
        (root / sub).mkdir(exist_ok=True)
    # its sockets' paths must fit in 108 bytes (sun_path): a short folder of their own, not one under the
    # test's (pytest-xdist's worker folders make those longer)
    run = Path(tempfile.mkdtemp(prefix="dovecot-"))
    port = free_port()
    user, password = "support", "imap-test-password"
    (root / "users").write_text(f"{user}:{{PLAIN}}{password}\n")
    if os.geteuid() == 0:
        # dovecot drops privileges to its own users; the mail store belongs to "dovecot" too
        owner = pwd.getpwnam("dovecot")
        uid, gid = owner.pw_uid, owner.pw_gid
        for path in [root, *root.rglob("*"), run]:
            os.chown(path, uid, gid)
        p = root
        while p != p.parent:
            p = p.parent
            os.chmod(p, os.stat(p).st_mode | 0o011)
        users_line = ""
    else:
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        users_line = f"default_internal_user = {me}\ndefault_login_user = {me}\ndefault_internal_group = {me}"
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(root=root, run=run, port=port, uid=uid, gid=gid, users_line=users_line))
    proc = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                    out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                    raise AssertionError(f"dovecot did not start: {out}\n{log}") from None
                time.sleep(0.1)
        yield Imap("127.0.0.1", port, user, password)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(run, ignore_errors=True)
