"""The seeded company: people, and the accounts they (or nobody) hold in each system."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from ..models import Person

__all__ = ["Company", "Identity", "make_company", "SYSTEMS"]

#: The systems whose membership is drawn from the seeded random stream (their order fixes every company).
_DRAWN = ("entra", "google_workspace", "slack", "github", "scim")
#: Systems added later take their members from a hash of the identity's key, so the seeded companies
#: (names, groups, contractors) stay what they were.
_HASHED = ("okta", "aws")
SYSTEMS = _DRAWN + _HASHED

_GIVEN = (
    "Ada Alan Alice Amara Arjun Bea Ben Bruno Carla Chen Chloe Dara Diego Elif Emil Emma Eva Farah Felix Gita Hana "
    "Hugo Ines Ivan Jade Jonas Kai Kenji Lara Leo Lina Luca Maya Mei Mila Nadia Nils Noor Olga Omar Pablo Priya Rafa "
    "Rosa Sami Sara Sven Tara Theo Uma Vera Wen Yara Yusuf Zoe"
).split()
_FAMILY = (
    "Abebe Adams Alvarez Andersen Bauer Becker Chen Costa Dubois Duarte Eriksen Fischer Garcia Gomez Haddad Hansen "
    "Ito Jansen Kim Kowalski Kumar Larsen Lee Lopez Martin Meyer Moreau Mueller Nakamura Nguyen Novak Okafor Olsen "
    "Patel Perez Petrov Rossi Santos Schmidt Silva Singh Sato Tanaka Torres Wagner Wang Weber Yilmaz Zhang"
).split()
_ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "UTC",
)
_DEPTS = {
    "Engineering": ("Software Engineer", "Senior Engineer", "SRE", "Engineering Manager"),
    "Sales": ("Account Executive", "Sales Engineer", "Sales Manager"),
    "Finance": ("Accountant", "Controller"),
    "People": ("Recruiter", "HR Partner"),
    "Support": ("Support Engineer", "Support Lead"),
    "Design": ("Product Designer", "Design Lead"),
}
_OAUTH_APPS = (
    ("123456789012-calendarsync.apps.googleusercontent.com", "Calendar Sync"),
    ("234567890123-crm.apps.googleusercontent.com", "CRM for Gmail"),
    ("345678901234-signing.apps.googleusercontent.com", "E-Signature"),
    ("456789012345-notes.apps.googleusercontent.com", "Meeting Notes"),
)
_SKUS = ("SPE_E3", "EMS", "POWER_BI_PRO", "VISIOCLIENT")


@dataclass
class Identity:
    """One human (or not) behind accounts: a person, an orphan, or a protected admin."""

    key: str  # stable: p0001, orphan01, admin01
    email: str
    given_name: str
    family_name: str
    kind: str = "person"  # person | orphan | admin
    person: Person | None = None
    department: str = ""
    title: str = ""
    employee_id: str | None = None
    admin: bool = False
    protected: bool = False
    systems: tuple[str, ...] = SYSTEMS
    groups: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    licenses_from_group: tuple[str, ...] = ()
    oauth_apps: tuple[tuple[str, str], ...] = ()
    app_passwords: int = 0
    github_login: str = ""
    github_credentials: int = 0
    outside_collaborator: bool = False
    timezone: str = "UTC"
    # set-ups a leaver may leave running (Google Workspace): forwarding filters to these addresses,
    # mailbox delegates, managed mobile devices (models)
    mail_forward_to: tuple[str, ...] = ()
    mail_delegates: tuple[str, ...] = ()
    mobile_devices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def local(self) -> str:
        return self.email.split("@", 1)[0]


@dataclass
class Company:
    """A deterministic company: ``people`` for the engine, ``identities`` for the simulators."""

    seed: int
    domain: str
    org: str
    enterprise: str
    tenant_id: str
    people: tuple[Person, ...]
    identities: tuple[Identity, ...]
    groups: dict[str, str] = field(default_factory=dict)  # group name -> description
    today: date = field(default_factory=date.today)

    def identity(self, ref: str) -> Identity | None:
        """The identity with this email, key, employee id or GitHub login (case-insensitive)."""
        key = ref.lower()
        for ident in self.identities:
            if key in (ident.email.lower(), ident.key, (ident.employee_id or "").lower(), ident.github_login.lower()):
                return ident
        return None

    def in_system(self, system: str) -> Iterable[Identity]:
        return (i for i in self.identities if system in i.systems)

    @property
    def protected(self) -> list[str]:
        """Account names a config should list under ``protected:`` (break-glass and admins)."""
        out: list[str] = []
        for ident in self.identities:
            if ident.protected:
                out.append(ident.email)
                if ident.github_login:
                    out.append(ident.github_login)
        return out

    @property
    def contractors_past_end(self) -> list[Person]:
        now = datetime.combine(self.today, time(0), tzinfo=UTC)
        return [p for p in self.people if p.type == "contractor" and p.end_date is not None and p.end_date < now]

    @property
    def orphans(self) -> list[Identity]:
        return [i for i in self.identities if i.kind == "orphan"]

    @property
    def leaver(self) -> Identity | None:
        """The employee set up for a handover demo: a forwarding filter to a personal address, a delegated
        mailbox, a managed phone, OAuth grants and a licence (the one ``offboard demo`` picks)."""
        return next((i for i in self.identities if i.mail_forward_to), None)


def _hashed_systems(key: str) -> tuple[str, ...]:
    """Systems of ``_HASHED`` an identity holds an account in: about four in five, fixed by its key."""
    return tuple(s for s in _HASHED if zlib.crc32(f"{s}:{key}".encode()) % 5 != 0)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def make_company(
    people: int = 50,
    *,
    seed: int = 0,
    contractors: float = 0.2,
    contractors_past_end: int | None = None,
    orphans: int = 3,
    admins: int = 1,
    domain: str = "corp.example",
    today: date | None = None,
) -> Company:
    """Generate a company of ``people`` people; the same arguments give the same company.

    ``contractors`` is the share of contractors; ``contractors_past_end`` how many of them are
    past their end date (default: about a quarter of them); ``orphans`` accounts with no owner;
    ``admins`` protected break-glass admin accounts.
    """
    if people < 0 or orphans < 0 or admins < 0:
        raise ValueError("people, orphans and admins must not be negative")
    if not 0 <= contractors <= 1:
        raise ValueError("contractors is a share between 0 and 1")
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    org = "corp-example"
    n_contractors = round(people * contractors)
    if contractors_past_end is None:
        contractors_past_end = (n_contractors + 3) // 4
    if contractors_past_end > n_contractors:
        raise ValueError(f"contractors_past_end={contractors_past_end} exceeds the {n_contractors} contractors")
    n_managers = max(1, people // 8) if people else 0
    groups = {
        "all-staff": "Everyone",
        "engineering": "Engineers",
        "sales": "Sales team",
        "finance": "Finance",
        "people": "People team",
        "support": "Support",
        "design": "Design",
        "managers": "People managers",
        "contractors": "External contractors",
        "oncall": "On-call rota",
        "vpn-users": "VPN access",
    }
    seen: set[str] = set()
    seen_aliases: set[str] = set()
    identities: list[Identity] = []
    persons: list[Person] = []
    contractor_slots = (
        set(rng.sample(range(n_managers, people), n_contractors))
        if people - n_managers >= n_contractors
        else set(range(people - n_contractors, people))
    )
    past_slots = set(sorted(contractor_slots)[:contractors_past_end])
    managers: list[str] = []
    for n in range(people):
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        local = f"{given}.{family}".lower()
        base, k = local, 2
        while local in seen:
            local, k = f"{base}{k}", k + 1
        seen.add(local)
        email = f"{local}@{domain}"
        contractor = n in contractor_slots
        dept = rng.choice(list(_DEPTS))
        title = (
            "Contractor"
            if contractor
            else (_DEPTS[dept][-1] if n < n_managers else rng.choice(_DEPTS[dept][:-1] or _DEPTS[dept]))
        )
        tz = rng.choice(_ZONES)
        end = None
        if contractor:
            days = -rng.randint(1, 90) if n in past_slots else rng.randint(7, 365)
            end = datetime.combine(today + timedelta(days=days), time(17, 0), tzinfo=UTC)
        emp_id = f"{'C' if contractor else 'E'}{n + 1:05d}"
        manager = (
            managers[rng.randrange(len(managers))]
            if managers and n >= n_managers
            else (managers[0] if managers and n else None)
        )
        alias = f"{given[0]}{family}@{domain}".lower()
        aliased = rng.random() < 0.3 and alias not in seen_aliases and alias.split("@")[0] not in seen
        seen_aliases.add(alias)  # an alias belongs to one person only, as in a real directory
        person = Person(
            id=email,
            email=email,
            aliases=(alias,) if aliased else (),
            employee_id=emp_id,
            name=f"{given} {family}",
            type="contractor" if contractor else "employee",
            manager=manager,
            end_date=end,
            timezone=tz,
        )
        if n < n_managers:
            managers.append(email)
        persons.append(person)
        engineer = dept == "Engineering"
        systems = ["entra", "google_workspace", "slack"]
        if engineer or rng.random() < 0.1:
            systems.append("github")
        if rng.random() < 0.7:
            systems.append("scim")
        systems += _hashed_systems(f"p{n + 1:04d}")
        grp = ["all-staff", dept.lower()]
        grp += ["managers"] if n < n_managers else []
        grp += ["contractors"] if contractor else []
        grp += [g for g in ("oncall", "vpn-users") if rng.random() < 0.3]
        lic = ("SPE_E3",) + tuple(s for s in _SKUS[2:] if rng.random() < 0.25)
        identities.append(
            Identity(
                key=f"p{n + 1:04d}",
                email=email,
                given_name=given,
                family_name=family,
                person=person,
                department=dept,
                title=title,
                employee_id=emp_id,
                systems=tuple(systems),
                groups=tuple(grp),
                licenses=lic,
                licenses_from_group=("EMS",) if rng.random() < 0.3 else (),
                oauth_apps=tuple(rng.sample(_OAUTH_APPS, rng.randint(0, 3))),
                app_passwords=rng.choice((0, 0, 1, 2)),
                github_login=(f"{given}{family[:2]}-{rng.randint(10, 99)}".lower() if "github" in systems else ""),
                github_credentials=rng.randint(1, 3) if "github" in systems else 0,
                outside_collaborator=contractor and "github" in systems and rng.random() < 0.5,
                timezone=tz,
            )
        )
    for n in range(orphans):
        given, family = "svc" if n % 2 == 0 else "old", rng.choice(_FAMILY).lower()
        email = f"{given}-{family}{n + 1}@{domain}"
        identities.append(
            Identity(
                key=f"orphan{n + 1:02d}",
                email=email,
                given_name=given.title(),
                family_name=family.title(),
                kind="orphan",
                systems=(tuple(s for s in _DRAWN if rng.random() < 0.7) or ("entra",))
                + _hashed_systems(f"orphan{n + 1:02d}"),
                groups=("all-staff",),
                licenses=("SPE_E3",),
                github_login=f"{given}-{family}{n + 1}",
                app_passwords=1,
            )
        )
    for n in range(admins):
        email = f"breakglass{'' if n == 0 else n + 1}@{domain}"
        identities.append(
            Identity(
                key=f"admin{n + 1:02d}",
                email=email,
                given_name="Break",
                family_name=f"Glass{n + 1}",
                kind="admin",
                admin=True,
                protected=True,
                groups=("all-staff",),
                licenses=("SPE_E3",),
                github_login=f"breakglass-admin{n + 1}",
                title="Emergency access",
            )
        )
    _set_up_leaver(identities, domain)
    return Company(
        seed=seed,
        domain=domain,
        org=org,
        enterprise="corp-example-enterprise",
        tenant_id=_uuid(rng),
        people=tuple(persons),
        identities=tuple(identities),
        groups=groups,
        today=today,
    )


def _set_up_leaver(identities: list[Identity], domain: str) -> None:
    """Give one employee (with a manager, in every system when one is) the set-ups a handover deals with,
    and every fourth person a managed phone. No random draws: the rest of the company stays as it was."""
    people = [i for i in identities if i.person is not None]
    for n, ident in enumerate(people):
        if n % 4 == 3:
            identities[identities.index(ident)] = replace(ident, mobile_devices=("Pixel 8",))
    candidates = [
        i
        for i in identities
        if i.person and i.person.type == "employee" and i.person.manager and "google_workspace" in i.systems
    ]
    everywhere = [i for i in candidates if set(i.systems) >= set(SYSTEMS)]
    if not candidates:
        return
    chosen = (everywhere or candidates)[0]
    manager = chosen.person.manager if chosen.person else None
    colleague = next((i.email for i in people if i is not chosen and i.email != manager), None)
    oauth = chosen.oauth_apps or (_OAUTH_APPS[1],)
    identities[identities.index(chosen)] = replace(
        chosen,
        mail_forward_to=(f"{chosen.local}.private@personal-mail.example",),
        mail_delegates=(colleague,) if colleague else (),
        mobile_devices=("Pixel 8", "iPhone 15"),
        oauth_apps=oauth,
        app_passwords=max(chosen.app_passwords, 1),
    )
