"""People from Google Workspace: the users' end date, type and time zone from a custom schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from offboard import PeopleSource, Person
from offboard.errors import ConfigError, ConnectorError, OffboardError
from offboard.people import end_date, person_type

__all__ = ["GoogleCustomSchema"]


class GoogleCustomSchema(PeopleSource):
    """People from Google Workspace users, the end date from a custom schema field (e.g. Offboarding.endDate)."""

    name = "google_custom_schema"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        connector: dict[str, Any] = Field(
            description="the google_workspace connector's settings (service_account, subject, ...)"
        )
        schema_name: str = Field("Offboarding", alias="schema")
        end_date_field: str = "endDate"
        type_field: str | None = "personType"
        timezone_field: str | None = "timeZone"
        contractor_values: list[str] = Field(default_factory=lambda: ["contractor", "external", "consultant"])
        timezone: str = "UTC"

    settings: Settings

    def people(self) -> Iterator[Person]:
        from .google_workspace import USER, GoogleWorkspaceConnector  # that module registers this one

        connector = GoogleWorkspaceConnector("people:google_workspace", self.settings.connector)
        token = None
        try:
            while True:
                params: dict[str, Any] = {
                    "customer": connector.settings.customer,
                    "maxResults": 500,
                    "projection": "custom",
                    "customFieldMask": self.settings.schema_name,
                }
                if token:
                    params["pageToken"] = token
                body = connector._run(connector._directory("users").list(**params), "list users for people", USER) or {}
                for user in body.get("users") or []:
                    yield self._person(user)
                token = body.get("nextPageToken")
                if not token:
                    break
        except ConnectorError as exc:
            raise OffboardError(f"people source {self.name}: {type(exc).__name__}: {exc}") from None
        finally:
            connector.close()

    def _person(self, user: dict[str, Any]) -> Person:
        s = self.settings
        fields = (user.get("customSchemas") or {}).get(s.schema_name) or {}
        email = user.get("primaryEmail")
        tz = (fields.get(s.timezone_field) if s.timezone_field else None) or s.timezone
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"unknown time zone {tz!r}", where=f"{email}: {s.schema_name}.{s.timezone_field}"
            ) from None
        manager = next((r.get("value") for r in user.get("relations") or [] if r.get("type") == "manager"), None)
        employee_id = next(
            (e.get("value") for e in user.get("externalIds") or [] if e.get("type") == "organization"), None
        )
        return Person(
            id=email or user["id"],
            email=email,
            aliases=tuple(user.get("aliases") or ()),
            employee_id=employee_id,
            name=(user.get("name") or {}).get("fullName"),
            type=person_type(fields.get(s.type_field) if s.type_field else None, s.contractor_values),
            manager=manager,
            end_date=end_date(fields.get(s.end_date_field), zone, where=f"{email}: {s.schema_name}.{s.end_date_field}"),
            timezone=tz,
            active=not user.get("suspended"),
        )
