"""The real directories for the fault tests, defined once here so every module shares one slapd and one Samba DC.

(Imported into each module instead, a session fixture is a separate definition per module: the second
module would start a second Samba DC, which cannot bind the AD ports the first one holds.)
"""

from __future__ import annotations

from ..connectors.conftest_ldap import directory, samba_dc, slapd_server  # noqa: F401  (fixtures)
