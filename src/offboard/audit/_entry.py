"""Audit entries: canonical JSON lines, the common fields and the per-type schema."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ..errors import EntryError
from ..models import ActionStatus

__all__ = [
    "EntryError",
    "FORMAT_VERSION",
    "RESERVED",
    "RESULTS",
    "FINAL_RESULTS",
    "canonical",
    "parse_entry",
    "strict_parse",
    "fast_parse_many",
    "fast_parse_batch",
    "fast_parse_span",
    "ScanEntry",
    "TypedEntry",
    "PersonRef",
    "AccountRef",
    "PlanItem",
    "ABSENT",
    "NATIVE",
    "common_ok",
    "checked_entry",
    "check_common",
    "check_fields",
    "known_type",
    "valid_date",
    "times_match",
    "format_time",
    "parse_time",
    "now",
]

FORMAT_VERSION = 1
RESERVED = frozenset({"v", "log", "seq", "time", "type", "person_prev"})
#: An action entry's ``result``: a final action status, or ``waiting`` (finishing asynchronously).
FINAL_RESULTS = frozenset(status.value for status in ActionStatus.FINAL)
RESULTS = FINAL_RESULTS | {ActionStatus.WAITING.value}
MAX_INT = 2**53 - 1
TIME_RE = re.compile(r"\d{4}-[01]\d-[0-3]\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z\Z")
TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_TIME_MATCH = TIME_RE.match
#: ``TIME_RE`` repeated, LF between: many times in one match.
_TIMES_MATCH = re.compile(rf"(?:{TIME_RE.pattern[:-2]}\n)*{TIME_RE.pattern}").match
_TIME_LENGTH = {24}


def times_match(times: Any) -> bool:
    """Whether every item of ``times`` is a string that ``TIME_RE`` matches, in one regular expression.

    Each time has 24 characters, none of them LF, so the match over the times joined by LF splits at
    the joins (a string of another length, which might hold an LF, is refused first)."""
    return (
        bool(times)
        and set(map(type, times)) <= {str}
        and set(map(len, times)) == _TIME_LENGTH
        and _TIMES_MATCH("\n".join(times)) is not None
    )


#: A run of 16 digits is the only way a line can hold an integer outside +-(2**53-1); then every
#: value is checked. Digits all read as '0', so one substring search finds such a run.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SIXTEEN = b"0" * 16


def _long_number(line: bytes) -> bool:
    return _SIXTEEN in line.translate(_DIGITS_AS_ZERO)


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _no_float(text: str) -> Any:
    raise EntryError(f"floats are not allowed (found {text})")


def _no_constant(text: str) -> Any:
    raise EntryError(f"{text} is not allowed")


_decode = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant).decode

_orjson: Any
try:  # a second accelerator, used only where msgspec is missing (both must agree with the stdlib)
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

_native: Any
try:  # the C extension (hatch_build.py builds it when a compiler is at hand): proves lines canonical
    from . import _native  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - depends on the build
    _native = None

_msgspec: Any
try:  # the accelerator; the stdlib encoder above stays the definition of "canonical"
    import msgspec as _msgspec
except ImportError:  # pragma: no cover - depends on the environment
    _msgspec = None

#: Whether batches are proven by the C extension (and decoded by msgspec).
NATIVE = _native is not None and _msgspec is not None


def _float_literal(text: str) -> Any:
    raise ValueError("a float")  # msgspec reports it as a ValidationError: the line is the strict parser's


if _msgspec is not None:
    # msgspec decodes strictly in C: UTF-8 is validated, lone surrogate escapes, NaN, trailing
    # commas, whitespace-only garbage and trailing data are errors, and with ``float_hook`` any
    # float literal (``1.0``, ``1e5``, ``-0.0``) makes the decode fail. Its encoder with
    # ``order="sorted"`` writes the stdlib's canonical spelling (sorted keys, no whitespace, only
    # ``\" \\ \b \f \n \r \t \u00XX`` escaped): tests/audit/test_audit_entry.py checks every code point.
    # https://jcristharif.com/msgspec/api.html#msgspec.json.Decoder (float_hook),
    # https://jcristharif.com/msgspec/api.html#msgspec.json.Encoder (order)
    _ms_decode = _msgspec.json.Decoder(float_hook=_float_literal).decode
    _ms_encode = _msgspec.json.Encoder(order="sorted").encode
    _MS_ERRORS: tuple[type[BaseException], ...] = (_msgspec.MsgspecError, ValueError, RecursionError)
    _UNSET = _msgspec.UNSET

    class ScanEntry(_msgspec.Struct, gc=False):  # type: ignore[call-arg]
        """The fields of an entry that a verify reads, decoded from a proven line; it reads as a dict of them.

        Every other field of the line is proven canonical (``_native``) and skipped, not built into
        objects: a million entries decode in a third of the time. A field absent from the line is
        ``UNSET`` here and absent to ``get``/``in``; a name that is not a field raises AttributeError,
        so a reader asking for more than is decoded fails loudly instead of finding nothing."""

        seq: Any = _UNSET
        v: Any = _UNSET
        log: Any = _UNSET
        type: Any = _UNSET
        time: Any = _UNSET
        person: Any = _UNSET
        person_prev: Any = _UNSET
        case: Any = _UNSET  # the case types' fields, as ``_cases.CaseBook.add`` reads them
        system: Any = _UNSET
        account: Any = _UNSET
        kind: Any = _UNSET
        result: Any = _UNSET
        responded_at: Any = _UNSET
        approver: Any = _UNSET
        actor: Any = _UNSET
        failed: Any = _UNSET
        plan: Any = _UNSET
        status: Any = _UNSET
        counts: Any = _UNSET
        termination_at: Any = _UNSET
        elapsed_ms: Any = _UNSET
        new: Any = _UNSET  # key_rotation

        def get(self, key: str, default: Any = None) -> Any:
            value = getattr(self, key)
            return default if value is _UNSET else value

        def __getitem__(self, key: str) -> Any:
            value = getattr(self, key)
            if value is _UNSET:
                raise KeyError(key)
            return value

        def __contains__(self, key: str) -> bool:
            return getattr(self, key) is not _UNSET

    class PersonRef(_msgspec.Struct, gc=False):  # type: ignore[call-arg]
        """An entry's ``person`` as ``TypedEntry`` decodes it: only its ``id``, which it must have."""

        id: Any

    class AccountRef(_msgspec.Struct, gc=False):  # type: ignore[call-arg]
        """An ``account`` object as ``TypedEntry`` decodes it: the ``id`` and ``name`` an item's key reads."""

        id: Any = _UNSET
        name: Any = _UNSET

        def as_dict(self) -> dict[str, Any]:
            """The fields it has, as the dict of the whole object reads them (for ``item_key``)."""
            return {k: v for k in ("id", "name") if (v := getattr(self, k)) is not _UNSET}

    class PlanItem(_msgspec.Struct, gc=False):  # type: ignore[call-arg]
        """One item of a ``case_opened`` plan as ``TypedEntry`` decodes it."""

        system: Any = _UNSET
        account: AccountRef | str | None = _UNSET
        kind: Any = _UNSET

    class TypedEntry(ScanEntry):
        """``ScanEntry`` with the nested objects a verify reads decoded as small structs, not dicts: a
        million entries decode in about 40% less time (the plans' items were most of it). A batch that
        does not fit these types (a ``person`` that is not an object with an ``id``, a plan that is not
        a list of objects) is decoded as ``ScanEntry`` instead, and is checked the same way."""

        person: PersonRef = _UNSET
        account: AccountRef | str | None = _UNSET
        plan: list[PlanItem] = _UNSET

    _ms_decode_typed = _msgspec.json.Decoder(list[TypedEntry], float_hook=_float_literal).decode
    _ms_decode_entries = _msgspec.json.Decoder(list[ScanEntry], float_hook=_float_literal).decode
    #: A field the entry does not have, in ``ScanEntry`` and in the scan's columns.
    ABSENT: Any = _UNSET
else:  # pragma: no cover - depends on the environment
    ScanEntry = TypedEntry = PersonRef = AccountRef = PlanItem = None  # type: ignore[misc,assignment]
    ABSENT = object()


# A JSON float outside strings is ``-?D+(.D+)?([eE][-+]?D+)?`` between a ':', ',' or '[' and a
# ',', ']' or '}' (a canonical line has no whitespace). With digits deleted, '-', '.', '+' and 'E'
# read as 'e', and ':[]}' read as ',', it leaves a run of one to five 'e' between two commas:
# ``,e,`` or ``ee,``. Strings may raise false alarms (the strict parser then decides); nothing
# hides a float, and ``true,``/``false,`` leave ``ue,``/``se,``. (The orjson path's screen: orjson
# has no hook for float literals.)
_FLOAT_TABLE = bytes.maketrans(b"-.+E:[]}", b"eeee,,,,")
_DIGITS = b"0123456789"


def _maybe_float(line: bytes) -> bool:
    """Whether ``line``, if it is orjson's canonical output, may hold a float."""
    t = line.translate(_FLOAT_TABLE, _DIGITS)
    return b",e," in t or b"ee," in t


def fast_parse(line: bytes) -> dict[str, Any] | None:
    """The entry if msgspec (or orjson) proves it canonical and float-free; None means "ask the strict parser"."""
    if _msgspec is not None:
        try:
            obj = _ms_decode(line)
            if type(obj) is dict and _ms_encode(obj) == line:
                return obj
        except _MS_ERRORS:
            pass
        return None
    if _orjson is None or _maybe_float(line):
        return None
    try:
        obj = _orjson.loads(line)
    except ValueError:
        return None
    if type(obj) is dict and _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS) == line:
        return obj
    return None


#: Lines parsed and proven canonical together by ``fast_parse_many``: one decode and one encode per batch.
BATCH = 512


def fast_parse_many(lines: list[bytes]) -> list[dict[str, Any] | None]:
    """``parse_entry`` for many lines at once, where msgspec (or orjson) can prove them canonical as a batch.

    ``fast_parse_batch`` for each ``BATCH`` lines; a batch it cannot prove gives None for each of its
    lines: the caller parses those one by one (``checked_entry``)."""
    out: list[dict[str, Any] | None] = [None] * len(lines)
    for start in range(0, len(lines), BATCH):
        objs = fast_parse_batch(lines[start : start + BATCH])
        if objs is not None:
            out[start : start + len(objs)] = objs
    return out


def fast_parse_batch(chunk: list[bytes]) -> list[Any] | None:
    """The entries of ``chunk`` if every line is proven canonical at once, else None.

    With the C extension, ``canonical_array`` proves each line on its own bytes (one object, the
    writer's encoding, no floats, integers in range) and joins them as one array, which msgspec
    decodes: each line being one whole value, the array's items are the lines' values, in order.
    Without it, msgspec (or orjson) decodes each line on its own (so that no value spans two lines)
    and the batch re-encoded (sorted keys) must equal the lines joined with commas: a canonical
    encoding is never longer than any other spelling of its value, so the joined strings are equal
    only if every line is its own value's canonical encoding. A batch that may hold a float or a long
    integer, or fails either test, gives None: its lines go one by one through the strict parser."""
    if NATIVE:
        return _proven(_native.canonical_array(chunk), len(chunk))
    if _msgspec is not None:
        loads, dumps, errors = _ms_decode, _ms_encode, _MS_ERRORS
    elif _orjson is not None:
        loads, errors = _orjson.loads, (ValueError,)
        dumps = partial(_orjson.dumps, option=_orjson.OPT_SORT_KEYS)
    else:
        return None
    joined = b"[" + b",".join(chunk) + b"]"
    if _SIXTEEN in joined.translate(_DIGITS_AS_ZERO):
        return None
    if _msgspec is None:
        t = joined.translate(_FLOAT_TABLE, _DIGITS)
        if b",e," in t or b"ee," in t:
            return None
    try:
        objs = list(map(loads, chunk))
    except errors:
        return None
    if dumps(objs) != joined:
        return None
    return objs


def fast_parse_span(data: bytes, starts: Any, start: int, stop: int) -> list[Any] | None:
    """``fast_parse_batch`` for lines ``start``..``stop - 1`` of a stretch read whole (``NATIVE`` only):
    ``data`` holds whole lines, ``starts`` each line's file offset and one past the last (``_stretch``).
    The entries are ``TypedEntry``, or ``ScanEntry`` where a nested object does not fit its types (the
    fields a verify reads); a line whose value is not an object fails the batch, as a line the C
    extension could not prove does."""
    joined = _native.span_canonical_array(data, starts, start, stop)
    return _proven(joined, stop - start, _ms_decode_typed) or _proven(joined, stop - start, _ms_decode_entries)


def _proven(joined: bytes | int, count: int, decode: Any = None) -> list[Any] | None:
    """The values of ``count`` lines the C extension proved and joined as one array (an int: it could not)."""
    if type(joined) is not bytes:  # the index of a line it could not prove
        return None
    try:
        objs = (decode or _ms_decode)(joined)
    except _MS_ERRORS:  # a proven line always decodes, but may hold no object (ScanEntry)
        return None
    return objs if type(objs) is list and len(objs) == count else None


def common_ok(obj: Any, index: int, origin: str) -> bool:
    """Whether a parsed entry's common fields are right (``check_common`` names what is wrong when not)."""
    if type(obj) is not dict:
        return False
    seq, kind, ts, prev = obj.get("seq"), obj.get("type"), obj.get("time"), obj.get("person_prev")
    return (
        type(seq) is int
        and seq == index
        and type(obj.get("v")) is int
        and obj.get("v") == FORMAT_VERSION
        and (prev is None or type(prev) is int)
        and ("person" not in obj or _person_ok(obj["person"]))
        and obj.get("log") == origin
        and type(kind) is str
        and (kind in _TYPES_SEEN or _new_type(kind))
        and type(ts) is str
        and _TIME_MATCH(ts) is not None
        and valid_date(ts)
    )


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise EntryError(f"{where}: integer {value} is outside +-(2**53-1)")
        return
    if isinstance(value, float):
        raise EntryError(f"{where}: floats are not allowed; use an integer or a string")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntryError(f"{where}: key {key!r} is not a string")
            _check_value(item, f"{where}.{key}")
        return
    raise EntryError(f"{where}: {type(value).__name__} is not a JSON value (str, int, bool, None, list, dict)")


def canonical(entry: dict[str, Any]) -> bytes:
    """The canonical line (without LF): sorted keys, no whitespace, UTF-8, no floats."""
    _check_value(entry, "entry")
    return _utf8(_encode(entry))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryError(
            f"a string holds a lone surrogate ({exc.object[exc.start : exc.end]!r}), which UTF-8 cannot encode"
        ) from None


def parse_entry(line: bytes) -> dict[str, Any]:
    """Parse one line strictly: UTF-8, no BOM, no duplicate keys, no floats, byte-for-byte canonical."""
    obj = fast_parse(line)
    if obj is None:
        obj = strict_parse(line)
    if _long_number(line):
        _check_value(obj, "entry")
    return obj


def strict_parse(line: bytes) -> dict[str, Any]:
    """``parse_entry`` with the standard library only: the definition of a canonical line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryError(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        obj = _decode(text)
    except EntryError:
        raise
    except ValueError as exc:
        raise EntryError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise EntryError("nested too deeply to parse") from None
    if not isinstance(obj, dict):
        raise EntryError("not a JSON object")
    if _encode(obj) != text:
        raise EntryError("not canonical JSON (whitespace, key order, duplicate keys, escapes or CR)")
    return obj


def checked_entry(line: bytes, index: int, origin: str, *, accelerated: bool = True) -> dict[str, Any]:
    """``parse_entry`` then ``check_common``: the entry at ``index`` of the log ``origin``.

    ``accelerated=False`` parses with the standard library only (``strict_parse``): the reference."""
    obj = fast_parse(line) if accelerated else None
    if obj is None:
        obj = strict_parse(line)
    if _long_number(line):
        _check_value(obj, "entry")
    if not common_ok(obj, index, origin):  # the common case in one call; check_common names whatever is wrong
        check_common(obj, index, origin)
    return obj


_TYPES_SEEN: set[str] = set()


def known_type(kind: Any) -> bool:
    """Whether ``kind`` is a well-formed entry type (``TYPE_RE``), remembering the ones seen."""
    return type(kind) is str and (kind in _TYPES_SEEN or _new_type(kind))


def _new_type(kind: str) -> bool:
    if TYPE_RE.match(kind) is None:
        return False
    if len(_TYPES_SEEN) < 10_000:
        _TYPES_SEEN.add(kind)
    return True


def _person_ok(person: Any) -> bool:
    return type(person) is dict and type(person.get("id")) is str and person["id"] != ""


def check_common(obj: dict[str, Any], index: int, origin: str) -> None:
    """The common fields: ``v``, ``log`` = origin, ``seq`` = index, ``type``, ``time``, ``person``, ``person_prev``."""
    v = obj.get("v")
    if type(v) is not int or v != FORMAT_VERSION:
        raise EntryError(f"'v' must be the integer {FORMAT_VERSION}, not {v!r}")
    prev = obj.get("person_prev")
    if prev is not None and type(prev) is not int:
        raise EntryError(f"'person_prev' must be an integer or null, not {prev!r}")
    if "person" in obj and not _person_ok(obj["person"]):
        raise EntryError("'person' must be an object whose 'id' is a non-empty string")
    if obj.get("log") != origin:
        raise EntryError(f"'log' is {obj.get('log')!r}, not this log's origin {origin!r}")
    seq = obj.get("seq")
    if seq != index or type(seq) is not int:
        raise EntryError(f"'seq' is {seq!r} but the entry is at index {index}")
    t = obj.get("type")
    if not isinstance(t, str) or not TYPE_RE.match(t):
        raise EntryError(f"'type' {t!r} is missing or malformed")
    ts = obj.get("time")
    if not isinstance(ts, str) or not TIME_RE.match(ts) or not valid_date(ts):
        raise EntryError(f"'time' {ts!r} is not UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)")


_DATES: dict[str, bool] = {}


def valid_date(ts: str) -> bool:
    """Whether the ``YYYY-MM-DD`` that ``ts`` (matched by ``TIME_RE``) starts with is a real date."""
    day = ts[:10]
    ok = _DATES.get(day)
    if ok is None:
        try:
            datetime.fromisoformat(day)
            ok = True
        except ValueError:
            ok = False
        if len(_DATES) < 100_000:
            _DATES[day] = ok
    return ok


def _need(fields: dict[str, Any], key: str, kinds: type | tuple[type, ...], entry_type: str) -> Any:
    value = fields.get(key)
    if not isinstance(value, kinds):
        raise EntryError(f"{entry_type} entry: '{key}' is missing or has the wrong type")
    return value


def _person(fields: dict[str, Any], entry_type: str) -> None:
    person = _need(fields, "person", dict, entry_type)
    if not isinstance(person.get("id"), str) or not person["id"]:
        raise EntryError(f"{entry_type} entry: 'person.id' must be a non-empty string")


def check_fields(entry_type: str, fields: dict[str, Any]) -> None:
    """What a writer must supply for each known entry type (unknown types are free-form)."""
    if not isinstance(entry_type, str) or not TYPE_RE.match(entry_type):
        raise EntryError(f"entry type {entry_type!r} must be lowercase letters, digits and '_'")
    if not isinstance(fields, dict):
        raise EntryError("entry fields must be a dict")
    clash = RESERVED.intersection(fields)
    if clash:
        raise EntryError(f"{entry_type} entry: {sorted(clash)} are set by the log, not the caller")
    if "person" in fields:
        _person(fields, entry_type)
    if entry_type == "case_opened":
        _need(fields, "case", str, entry_type)
        _person(fields, entry_type)
        plan = _need(fields, "plan", list, entry_type)
        for i, item in enumerate(plan):
            if not (
                isinstance(item, dict)
                and isinstance(item.get("system"), str)
                and isinstance(item.get("account"), dict)
                and isinstance(item.get("kind"), str)
            ):
                raise EntryError(f"case_opened entry: plan[{i}] needs system, account and kind")
    elif entry_type == "action":
        for key in ("case", "system", "kind"):
            _need(fields, key, str, entry_type)
        _person(fields, entry_type)
        _need(fields, "account", dict, entry_type)
        if fields.get("result") not in RESULTS:
            raise EntryError(f"action entry: 'result' must be one of {sorted(RESULTS)}")
    elif entry_type == "case_closed":
        _need(fields, "case", str, entry_type)
        _person(fields, entry_type)
        _need(fields, "status", str, entry_type)
    elif entry_type == "approval":
        if "approver" not in fields:
            raise EntryError("approval entry: 'approver' is required")
    _check_value(fields, entry_type)
    _utf8(_encode(fields))


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: Any) -> datetime | None:
    """Parse an RFC 3339 time (any offset); None when missing or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now() -> str:
    """The current UTC time, formatted for an entry."""
    return format_time(datetime.now(UTC))
