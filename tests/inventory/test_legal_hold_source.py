"""A people source's ``legal_hold`` field puts the person (and so their cases) under that hold."""

from __future__ import annotations

from offboard.inventory._people import HRExport


def test_the_hr_exports_legal_hold_column_is_read(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,manager,hold\nana@corp.example,Ana,rui@corp.example,Matter 2026-17\nrui@corp.example,Rui,,\n"
    )
    source = HRExport({"path": str(path), "columns": {"legal_hold": "hold"}})
    people = {p.id: p for p in source.people()}
    assert people["ana@corp.example"].legal_hold == "Matter 2026-17"
    assert people["rui@corp.example"].legal_hold is None
