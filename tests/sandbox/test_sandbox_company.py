"""The seeded company: deterministic, with the requested shape."""

from datetime import UTC, date, datetime

import pytest

from offboard.sandbox import SYSTEMS, make_company


def test_same_seed_same_company():
    a = make_company(40, seed=3, today=date(2025, 6, 1))
    b = make_company(40, seed=3, today=date(2025, 6, 1))
    assert a.people == b.people
    assert [i.github_login for i in a.identities] == [i.github_login for i in b.identities]
    c = make_company(40, seed=4, today=date(2025, 6, 1))
    assert [p.email for p in a.people] != [p.email for p in c.people]


def test_shape_and_parameters():
    today = date(2025, 6, 1)
    co = make_company(100, seed=1, contractors=0.2, contractors_past_end=7, orphans=4, admins=2, today=today)
    assert len(co.people) == 100
    assert len({p.email for p in co.people}) == 100
    contractors = [p for p in co.people if p.type == "contractor"]
    assert len(contractors) == 20 and all(p.end_date for p in contractors)
    assert len(co.contractors_past_end) == 7
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert all(p.end_date < now for p in co.contractors_past_end)
    assert all(p.end_date is None for p in co.people if p.type == "employee")
    assert len(co.orphans) == 4 and all(o.person is None for o in co.orphans)
    admins = [i for i in co.identities if i.kind == "admin"]
    assert len(admins) == 2 and all(a.protected and a.admin for a in admins)
    assert "breakglass@corp.example" in co.protected
    emails = {p.email for p in co.people}
    assert all(p.manager in emails for p in co.people[1:])
    assert len({p.timezone for p in co.people}) > 3
    assert all(p.employee_id for p in co.people)
    for ident in co.identities:
        assert set(ident.systems) <= set(SYSTEMS)
    assert any(i.oauth_apps for i in co.identities) and any(i.app_passwords for i in co.identities)
    assert any("github" in i.systems for i in co.identities)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="contractors_past_end"):
        make_company(10, contractors=0.1, contractors_past_end=5)
    with pytest.raises(ValueError, match="negative"):
        make_company(-1)
