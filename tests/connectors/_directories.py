"""Real directory servers for the ldap connector's tests: slapd with ppolicy and a Samba AD DC.

Each runs from a temporary directory with its own test CA; nothing is cached between runs.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["CertificateAuthority", "Slapd", "SambaDC", "DirectoryUnavailable", "free_port"]


class DirectoryUnavailable(RuntimeError):
    """A test directory server could not be installed, provisioned or started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def wait_for_port(host: str, port: int, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Wait until ``host:port`` accepts connections; fail with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DirectoryUnavailable(f"{process.args[0]} exited with {process.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DirectoryUnavailable(
        f"{process.args[0]} did not listen on {host}:{port} within {timeout:.0f}s:\n{_tail(log)}"
    )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(args: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    except FileNotFoundError as exc:
        raise DirectoryUnavailable(f"{what}: {exc.filename} is not installed (scripts/test installs it)") from None
    if done.returncode != 0:
        raise DirectoryUnavailable(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def _stop(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


# -- certificates -------------------------------------------------------------


class CertificateAuthority:
    """A throwaway CA that issues server certificates for loopback names."""

    def __init__(self, directory: Path, name: str):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / "ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, names: list[str], ips: list[str]) -> tuple[Path, Path]:
        """Write ``stem.pem`` and ``stem.key`` for a server known by ``names`` and ``ips``."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


# -- OpenLDAP -----------------------------------------------------------------

_SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}

database mdb
maxsize 67108864
suffix "{suffix}"
rootdn "{rootdn}"
rootpw "{rootpw}"
directory {dir}/data
index objectClass,uid,mail,member,uniqueMember,memberUid,entryUUID eq
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{suffix}"
ppolicy_use_lockout

# The offboard service account: the least it needs (docs/connectors/ldap.md).
access to dn.subtree="ou=people,{suffix}" attrs=userPassword
    by dn.exact="{writer}" =w
    by anonymous auth
    by * none
access to dn.subtree="ou=people,{suffix}" attrs=pwdAccountLockedTime
    by dn.exact="{writer}" manage
    by users read
access to dn.subtree="ou=groups,{suffix}" attrs=member,uniqueMember,memberUid
    by dn.exact="{writer}" write
    by users read
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


class Slapd:
    """slapd with the ppolicy overlay on free loopback ports, from a temporary directory."""

    suffix = "dc=offboard,dc=test"
    host = "127.0.0.1"

    def __init__(self, directory: Path):
        self.directory = directory
        self.rootdn = f"cn=admin,{self.suffix}"
        self.rootpw = secrets.token_urlsafe(12)
        self.writer_dn = f"cn=offboard,ou=services,{self.suffix}"
        self.writer_pw = "W-" + secrets.token_urlsafe(12)
        self.reader_dn = f"cn=reader,ou=services,{self.suffix}"
        self.reader_pw = "R-" + secrets.token_urlsafe(12)
        self.port = self.tls_port = 0
        self.process: subprocess.Popen | None = None
        self.ca: CertificateAuthority | None = None

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.tls_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    def start(self) -> Slapd:
        binary = shutil.which("slapd") or "/usr/sbin/slapd"
        if not os.path.exists(binary):
            raise DirectoryUnavailable("slapd is not installed: run scripts/test (it apt-installs slapd)")
        (self.directory / "data").mkdir(parents=True)
        self.ca = CertificateAuthority(self.directory / "tls", "offboard test CA (slapd)")
        cert, key = self.ca.issue("server", ["localhost"], [self.host])
        conf = self.directory / "slapd.conf"
        conf.write_text(
            _SLAPD_CONF.format(
                dir=self.directory,
                ca=self.ca.path,
                cert=cert,
                key=key,
                suffix=self.suffix,
                rootdn=self.rootdn,
                rootpw=self.rootpw,
                writer=self.writer_dn,
            )
        )
        self._seed(conf)
        self.port, self.tls_port = free_port(), free_port()
        log = self.directory / "slapd.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [binary, "-d", "0", "-f", str(conf), "-h", f"{self.ldap_url}/ {self.ldaps_url}/"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for_port(self.host, self.tls_port, self.process, log)
        wait_for_port(self.host, self.port, self.process, log)
        return self

    def _seed(self, conf: Path) -> None:
        s = self.suffix
        ldif = f"""\
dn: {s}
objectClass: dcObject
objectClass: organization
dc: offboard
o: offboard test

dn: ou=people,{s}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{s}
objectClass: organizationalUnit
ou: groups

dn: ou=services,{s}
objectClass: organizationalUnit
ou: services

dn: ou=policies,{s}
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,{s}
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3

dn: {self.writer_dn}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: offboard
userPassword: {self.writer_pw}

dn: {self.reader_dn}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: reader
userPassword: {self.reader_pw}
"""
        path = self.directory / "seed.ldif"
        path.write_text(ldif)
        _run(["slapadd", "-f", str(conf), "-l", str(path)], "slapadd (seeding the test directory)")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        _stop(self.process)


# -- Samba AD DC --------------------------------------------------------------

# Run by Samba's own Python: OUs, the two service accounts and the offboard account's
# delegated rights (the same ACEs docs/connectors/ldap.md tells AD admins to grant).
_SAMBA_SETUP = r"""
import json, sys
import ldb
from samba.auth import system_session
from samba.dcerpc import misc
from samba.ndr import ndr_unpack
from samba.param import LoadParm
from samba.samdb import SamDB
from samba.sd_utils import SDUtils

spec = json.loads(sys.stdin.read())
lp = LoadParm()
lp.load(spec["conf"])
samdb = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
base = str(samdb.domain_dn())
for ou in ("Staff", "Groups", "Disabled Users", "Service Accounts"):
    samdb.create_ou(f"OU={ou},{base}")
for name, password in (("offboard-svc", spec["writer_pw"]), ("offboard-reader", spec["reader_pw"])):
    samdb.newuser(name, password, userou="OU=Service Accounts", setpassword=True)

def guid(name):
    res = samdb.search(base=samdb.get_schema_basedn(), scope=ldb.SCOPE_ONELEVEL,
                       expression=f"(lDAPDisplayName={name})", attrs=["schemaIDGUID"])
    return str(ndr_unpack(misc.GUID, res[0]["schemaIDGUID"][0]))

res = samdb.search(base=base, expression="(sAMAccountName=offboard-svc)", attrs=["objectSid"])
sid = samdb.schema_format_value("objectSid", res[0]["objectSid"][0]).decode()
user, group = guid("user"), guid("group")
# The rightsGuid of the User-Force-Change-Password extended right (MS-ADTS 5.1.3.2.1): a schema constant, not a secret.
force_change_password_right = "00299570-246d-11d0-a768-00aa006e0529"
sd = SDUtils(samdb)
for ou in ("Staff", "Disabled Users"):
    dn = f"OU={ou},{base}"
    for attr in ("userAccountControl", "accountExpires", "description"):
        sd.dacl_add_ace(dn, f"(OA;CIIO;WP;{guid(attr)};{user};{sid})")
    for attr in ("name", "cn"):  # moving an account writes its RDN attribute and name
        sd.dacl_add_ace(dn, f"(OA;CIIO;WP;{guid(attr)};{user};{sid})")
    sd.dacl_add_ace(dn, f"(OA;CIIO;CR;{force_change_password_right};{user};{sid})")
    sd.dacl_add_ace(dn, f"(OA;;CCDC;{user};;{sid})")
sd.dacl_add_ace(f"OU=Groups,{base}", f"(OA;CIIO;WP;{guid('member')};{group};{sid})")
print(json.dumps({"base": base, "guids": {n: guid(n) for n in ("userAccountControl", "accountExpires", "description", "name", "cn", "member", "user", "group")}}))
"""

AD_PORTS = (389, 636, 3268, 3269)


class SambaDC:
    """A Samba AD DC provisioned into a temporary directory, serving LDAPS.

    It runs in a private network namespace reached over a veth pair when this process
    may create one (root, ``ip`` present), so the fixed AD ports never collide with
    anything on the machine; otherwise on 127.0.0.1 when 389/636/3268/3269 are free.
    ``OFFBOARD_TEST_AD_NETWORK=netns|loopback`` forces one.
    """

    realm = "OFFBOARD.TEST"
    domain = "OFFBOARD"
    base = "DC=offboard,DC=test"

    def __init__(self, directory: Path):
        self.directory = directory
        self.admin_pw = "Adm1n-" + secrets.token_urlsafe(12)
        self.writer_pw = "Svc1-" + secrets.token_urlsafe(12)
        self.reader_pw = "Rdr1-" + secrets.token_urlsafe(12)
        self.admin_dn = f"CN=Administrator,CN=Users,{self.base}"
        self.writer_dn = f"CN=offboard-svc,OU=Service Accounts,{self.base}"
        self.reader_dn = f"CN=offboard-reader,OU=Service Accounts,{self.base}"
        self.host = "127.0.0.1"
        self.netns: str | None = None
        self.process: subprocess.Popen | None = None
        self.ca: CertificateAuthority | None = None
        self.guids: dict[str, str] = {}

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:636"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:389"

    def start(self) -> SambaDC:
        samba, tool = shutil.which("samba") or "/usr/sbin/samba", shutil.which("samba-tool")
        if not tool or not os.path.exists(samba):
            raise DirectoryUnavailable("samba is not installed: run scripts/test (it apt-installs samba)")
        if not Path("/usr/share/samba/setup").is_dir():
            raise DirectoryUnavailable("samba-ad-provision is not installed: run scripts/test")
        self._network()
        dc = self.directory / "dc"
        _run(
            [
                tool,
                "domain",
                "provision",
                f"--targetdir={dc}",
                f"--realm={self.realm}",
                f"--domain={self.domain}",
                "--server-role=dc",
                "--dns-backend=NONE",
                f"--adminpass={self.admin_pw}",
                "--use-rfc2307",
                "--host-name=dc1",
            ],
            "samba-tool domain provision",
        )
        self.ca = CertificateAuthority(self.directory / "tls", "offboard test CA (samba)")
        cert, key = self.ca.issue("server", ["dc1.offboard.test", "localhost"], [self.host])
        conf = dc / "etc" / "smb.conf"
        self._configure(conf, cert, key)
        python = _shebang(tool)
        setup = subprocess.run(
            [python, "-c", _SAMBA_SETUP],
            input=f'{{"conf": "{conf}", "writer_pw": "{self.writer_pw}", "reader_pw": "{self.reader_pw}"}}',
            capture_output=True,
            text=True,
            timeout=120,
        )
        if setup.returncode != 0:
            raise DirectoryUnavailable(f"setting up the test domain failed:\n{setup.stderr[-3000:]}")
        self.guids = __import__("json").loads(setup.stdout.strip().splitlines()[-1])["guids"]
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        log = self.directory / "samba.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*prefix, samba, "-s", str(conf), "-i", "-M", "single", "--debuglevel=1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for_port(self.host, 636, self.process, log, timeout=60)
        return self

    def _configure(self, conf: Path, cert: Path, key: Path) -> None:
        dc = conf.parent.parent
        (dc / "run").mkdir(exist_ok=True)
        (dc / "ncalrpc").mkdir(exist_ok=True)
        (dc / "log").mkdir(exist_ok=True)
        interfaces = f"{self.host}/30" if self.netns else "lo"
        wanted = {
            "interfaces": interfaces,
            "bind interfaces only": "yes",
            "server services": "ldap",
            "pid directory": str(dc / "run"),
            "ncalrpc dir": str(dc / "ncalrpc"),
            "log file": str(dc / "log" / "log.%m"),
            "tls enabled": "yes",
            "tls keyfile": str(key),
            "tls certfile": str(cert),
            "tls cafile": str(self.ca.path),
            # Samba (like AD for NTLM) accepts the previous password for 60 minutes after a
            # reset; 0 lets the tests see a scrambled password stop working at once.
            "old password allowed period": "0",
        }
        lines, out = conf.read_text().splitlines(), []
        for line in lines:
            name = line.split("=", 1)[0].strip().lower()
            if "=" in line and name in wanted:
                continue
            out.append(line)
            if line.strip().lower() == "[global]":
                out += [f"\t{k} = {v}" for k, v in wanted.items()]
        conf.write_text("\n".join(out) + "\n")

    def _network(self) -> None:
        mode = os.environ.get("OFFBOARD_TEST_AD_NETWORK", "")
        if mode not in ("", "netns", "loopback"):
            raise DirectoryUnavailable(f"OFFBOARD_TEST_AD_NETWORK must be netns or loopback, not {mode!r}")
        why = "" if os.geteuid() == 0 and shutil.which("ip") else "it needs root and iproute2"
        if mode != "loopback" and not why:
            try:
                return self._netns()
            except DirectoryUnavailable as exc:
                if mode == "netns":
                    raise
                self.stop()
                self.netns, self.host, why = None, "127.0.0.1", str(exc)
        taken = [p for p in AD_PORTS if port_taken("127.0.0.1", p)]
        if taken:
            raise DirectoryUnavailable(
                f"the AD ports {taken} on 127.0.0.1 are taken and no private network namespace could be made: {why}"
            )

    def _netns(self) -> None:
        used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        tag = f"{os.getpid() % 100000}"
        self.netns, host_if, ns_if = f"offboard-ad-{tag}", f"ob{tag}h", f"ob{tag}n"
        for _ in range(20):
            a, b = secrets.randbelow(250) + 1, secrets.randbelow(63) * 4
            if f"198.18.{a}.{b + 1}/" not in used and f"198.18.{a}.{b + 2}/" not in used:
                break
        host_ip, self.host = f"198.18.{a}.{b + 1}", f"198.18.{a}.{b + 2}"
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)  # a leftover of a killed run
        for cmd in (
            ["ip", "netns", "add", self.netns],
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", self.netns],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "-n", self.netns, "addr", "add", f"{self.host}/30", "dev", ns_if],
            ["ip", "-n", self.netns, "link", "set", ns_if, "up"],
            ["ip", "-n", self.netns, "link", "set", "lo", "up"],
        ):
            _run(cmd, "making the test DC's network namespace")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        try:
            _stop(self.process)
        finally:
            if self.netns:
                subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)


def _shebang(script: str) -> str:
    """The interpreter a script runs with: Samba's Python modules belong to it."""
    with open(script, "rb") as f:
        first = f.readline().decode().strip()
    return first[2:].strip().split()[0] if first.startswith("#!") else "/usr/bin/python3"
