"""People sources: a directory attribute (real slapd), Entra's employeeLeaveDateTime and a Google custom schema (sandbox)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import ldap3
import pytest

from offboard import Secret
from offboard.errors import OffboardError
from offboard.inventory._people import DirectoryAttribute, directory_date
from offboard.sandbox import Sandbox
from offboard_connectors.entra import EntraLeaveDate
from offboard_connectors.google_workspace import GoogleCustomSchema
from tests.connectors._directories import Slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("people-slapd")).start()
    s = server.suffix
    conn = ldap3.Connection(server.ldap_url, server.rootdn, server.rootpw, auto_bind=True)
    end = date.today() - timedelta(days=2)
    days = (end - date(1970, 1, 1)).days
    entries = [
        ("boss", {"employeeType": "employee", "employeeNumber": "E1"}),
        (
            "cara",
            {
                "employeeType": "Contractor",
                "employeeNumber": "C7",
                "shadowExpire": str(days),
                "manager": f"uid=boss,ou=people,{s}",
            },
        ),
        ("dev", {"employeeType": "employee", "employeeNumber": "E2", "shadowExpire": str(days + 400)}),
    ]
    for uid, extra in entries:
        conn.add(
            f"uid={uid},ou=people,{s}",
            ["inetOrgPerson", "shadowAccount"],
            {"cn": uid, "sn": uid, "displayName": uid.title(), "mail": f"{uid}@corp.example", **extra},
        )
        assert conn.result["result"] == 0, conn.result
    conn.unbind()
    server.end = end
    yield server
    server.stop()


def test_directory_attribute_reads_people_and_end_dates_from_slapd(slapd):
    source = DirectoryAttribute(
        {
            "url": slapd.ldap_url,
            "bind_dn": slapd.reader_dn,
            "password": Secret(slapd.reader_pw),
            "base_dn": f"ou=people,{slapd.suffix}",
            "end_date_attribute": "shadowExpire",
            "end_date_format": "shadow_days",
            "timezone": "Europe/Berlin",
        }
    )
    people = {p.id: p for p in source.people()}
    assert sorted(people) == ["boss@corp.example", "cara@corp.example", "dev@corp.example"]
    cara = people["cara@corp.example"]
    assert (cara.type, cara.employee_id, cara.name, cara.manager) == ("contractor", "C7", "Cara", "boss@corp.example")
    assert cara.end_date == datetime.combine(slapd.end, datetime.min.time(), tzinfo=ZoneInfo("Europe/Berlin"))
    assert people["boss@corp.example"].end_date is None and people["dev@corp.example"].type == "employee"


def test_directory_attribute_errors_are_clear_and_hide_the_password(slapd):
    source = DirectoryAttribute(
        {
            "url": slapd.ldap_url,
            "bind_dn": slapd.reader_dn,
            "password": Secret("wrong-password-123"),
            "base_dn": slapd.suffix,
        }
    )
    with pytest.raises(
        OffboardError, match=r"cannot bind to ldap://127\.0\.0\.1:\d+: LDAPInvalidCredentialsResult"
    ) as err:
        list(source.people())
    assert "wrong-password-123" not in str(err.value)


def test_directory_date_formats():
    utc, berlin = UTC, ZoneInfo("Europe/Berlin")
    assert directory_date("133801632000000000", "ad_filetime", utc) == datetime(
        2025, 1, 1, tzinfo=utc
    )  # AD accountExpires
    assert (
        directory_date("0", "ad_filetime", utc) is None
        and directory_date("9223372036854775807", "ad_filetime", utc) is None
    )
    assert directory_date("20250131170000Z", "generalized_time", berlin) == datetime(2025, 1, 31, 17, tzinfo=utc)
    assert directory_date("20250131170000.0+0100", "generalized_time", utc) == datetime(2025, 1, 31, 16, tzinfo=utc)
    assert directory_date("20250131170000", "generalized_time", berlin) == datetime(2025, 1, 31, 17, tzinfo=berlin)
    assert directory_date("2025-01-31", "iso", berlin) == datetime(2025, 1, 31, 23, 59, 59, tzinfo=berlin)
    with pytest.raises(ValueError):
        directory_date("yesterday", "generalized_time", utc)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=40, seed=5, systems=("entra", "google_workspace")) as sb:
        yield sb


def test_entra_leave_date_lists_the_tenants_people(sandbox):
    settings = sandbox.config()["connectors"]["entra"]["settings"]
    people = list(EntraLeaveDate({"connector": settings}).people())
    expected = {i.email for i in sandbox.company.in_system("entra")}
    assert {p.email for p in people} == expected
    by_email = {i.email: i for i in sandbox.company.identities}
    assert all(p.employee_id == by_email[p.email].employee_id for p in people)
    # The fields Graph returns with $select=employeeLeaveDateTime,employeeType and $expand=manager:
    user = {
        "id": "u1",
        "userPrincipalName": "c@corp.example",
        "mail": "c@corp.example",
        "employeeType": "Contractor",
        "employeeLeaveDateTime": "2030-03-31T16:00:00Z",
        "manager": {"mail": "m@corp.example"},
        "accountEnabled": True,
    }
    person = EntraLeaveDate({"connector": settings})._person(user)
    assert (person.type, person.manager, person.end_date) == (
        "contractor",
        "m@corp.example",
        datetime(2030, 3, 31, 16, tzinfo=UTC),
    )


def test_google_custom_schema_lists_the_domains_people(sandbox):
    settings = sandbox.config()["connectors"]["google_workspace"]["settings"]
    source = GoogleCustomSchema({"connector": settings, "schema": "Offboarding"})
    people = list(source.people())
    assert {p.email for p in people} == {i.email for i in sandbox.company.in_system("google_workspace")}
    user = {
        "id": "1",
        "primaryEmail": "c@corp.example",
        "relations": [{"type": "manager", "value": "m@corp.example"}],
        "customSchemas": {
            "Offboarding": {"endDate": "2030-03-31", "personType": "contractor", "timeZone": "Asia/Tokyo"}
        },
    }
    person = source._person(user)
    assert (person.type, person.manager, person.timezone) == ("contractor", "m@corp.example", "Asia/Tokyo")
    assert person.end_date == datetime(2030, 3, 31, 23, 59, 59, tzinfo=ZoneInfo("Asia/Tokyo"))
