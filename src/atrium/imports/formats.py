"""Reading import files: each format's records as Atrium's field names, with their line.

Formats (docs/import.md shows each, and how to export it from the source system):

- ``csv``: a header line, then one account per line; columns named as Atrium's fields
  (``email``, ``password_hash``, ``full_name``, ``username``, ``email_verified``,
  ``status``, ``locale``, ``created_at``, ``roles`` separated by ``;``, and the profile
  fields ``display_name``, ``bio``, ``location``, ``website``, ``pronouns``,
  ``timezone``). Unknown columns are an error; an empty cell is an absent field.
- ``json``: JSON Lines (one object per line) or one JSON array of objects, with the same
  field names (``roles`` a list, ``email_verified`` a boolean).
- ``auth0``: Auth0's user export/import objects (JSON Lines or array): ``email``,
  ``email_verified``, ``name`` (or ``given_name`` + ``family_name``), ``username``,
  ``nickname``, ``blocked``, ``created_at``, ``app_metadata.roles``, and the password hash
  as ``passwordHash`` (Auth0's hash export), ``password_hash`` or ``custom_password_hash``.
- ``keycloak``: a realm export (``{"users": [...]}``, from ``kc.sh export``): ``email``,
  ``emailVerified``, ``firstName``/``lastName``, ``username``, ``enabled``,
  ``createdTimestamp`` (ms), ``realmRoles``, ``attributes.locale`` and the ``password``
  credential (PBKDF2 or argon2, rebuilt by :func:`keycloak_credential_hash`).

Every reader yields :class:`RawRecord` in file order; a file that cannot be read at all
(not UTF-8, not JSON) yields one record carrying the error and stops.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

from atrium.core.legacy_hashes import UnsupportedHash, keycloak_credential_hash
from atrium.profiles.schemas import _username


class ImportFormat(StrEnum):
    csv = "csv"
    json = "json"
    auth0 = "auth0"
    keycloak = "keycloak"


FIELDS = frozenset(
    {
        "email",
        "password_hash",
        "full_name",
        "username",
        "email_verified",
        "status",
        "locale",
        "created_at",
        "roles",
        "display_name",
        "bio",
        "location",
        "website",
        "pronouns",
        "timezone",
    }
)
# Keycloak's built-in realm roles: every account holds them, Atrium has no equivalent.
KEYCLOAK_DEFAULT_ROLES = ("offline_access", "uma_authorization", "default-roles-")


@dataclass
class RawRecord:
    """One account as read: ``record`` its 1-based position, ``line`` the file line it
    starts on (None where the format does not say, e.g. a Keycloak realm document),
    ``fields`` by Atrium name, ``errors`` what the reader already refused
    (``(field, message)``)."""

    record: int
    line: int | None
    fields: dict[str, Any]
    errors: list[tuple[str | None, str]] = field(default_factory=list)


def read(stream: TextIO, fmt: ImportFormat) -> Iterator[RawRecord]:
    """The records of ``stream`` (text, UTF-8 decoded by the caller) in ``fmt``."""
    try:
        if fmt is ImportFormat.csv:
            yield from _read_csv(stream)
        elif fmt is ImportFormat.keycloak:
            yield from _read_keycloak(stream)
        else:
            convert = _from_auth0 if fmt is ImportFormat.auth0 else _from_json
            for record, line, obj in _json_objects(stream):
                raw = RawRecord(record, line, {})
                if not isinstance(obj, dict):
                    raw.errors.append((None, "each record must be a JSON object"))
                else:
                    convert(obj, raw)
                yield raw
    except UnicodeDecodeError:
        yield RawRecord(0, None, {}, [(None, "the file is not UTF-8 text")])


def _read_csv(stream: TextIO) -> Iterator[RawRecord]:
    reader = csv.reader(stream, strict=True)
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield RawRecord(0, 1, {}, [(None, f"malformed CSV header: {exc}")])
        return
    unknown = [h for h in header if h not in FIELDS]
    if unknown or "email" not in header or len(set(header)) != len(header):
        message = (
            f"unknown columns: {', '.join(unknown)}"
            if unknown
            else "the header needs an email column and no column twice"
        )
        yield RawRecord(0, 1, {}, [(None, message)])
        return
    record = 0
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            record += 1
            yield RawRecord(record, line, {}, [(None, f"malformed CSV: {exc}")])
            return
        if not row or row == [""]:
            line = reader.line_num + 1
            continue
        record += 1
        raw = RawRecord(record, line, {})
        if len(row) != len(header):
            raw.errors.append((None, f"{len(row)} columns where the header has {len(header)}"))
        else:
            for name, value in zip(header, row, strict=True):
                value = value.strip()
                if value == "":
                    continue
                raw.fields[name] = value.replace(";", " ").split() if name == "roles" else value
        yield raw
        line = reader.line_num + 1


def _json_objects(stream: TextIO) -> Iterator[tuple[int, int | None, Any]]:
    """(record, line, value) of a JSON array or of JSON Lines; a syntax error ends the
    file with one error record."""
    text = stream.read()
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    array = text.startswith("[", pos)
    if array:
        pos = _skip_ws(text, pos + 1)
    record = 0
    line = 1 + text.count("\n", 0, pos)
    last = pos
    while pos < len(text):
        if array and text.startswith("]", pos):
            if _skip_ws(text, pos + 1) != len(text):
                yield record + 1, line, _SyntaxError("unexpected content after the array")
            return
        line += text.count("\n", last, pos)
        last = pos
        record += 1
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield record, exc.lineno, _SyntaxError(f"invalid JSON: {exc.msg}")
            return
        yield record, line, obj
        pos = _skip_ws(text, end)
        if array:
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
            elif not text.startswith("]", pos):
                yield record + 1, None, _SyntaxError("invalid JSON: expected ',' or ']'")
                return
    if array:
        yield record + 1, None, _SyntaxError("invalid JSON: the array is not closed")


class _SyntaxError(dict[str, Any]):
    """A stand-in object for a syntax error, turned into a record error by the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(__syntax_error__=message)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _syntax(obj: dict[str, Any], raw: RawRecord) -> bool:
    if "__syntax_error__" in obj:
        raw.errors.append((None, str(obj["__syntax_error__"])))
        return True
    return False


def _from_json(obj: dict[str, Any], raw: RawRecord) -> None:
    if _syntax(obj, raw):
        return
    unknown = sorted(k for k in obj if k not in FIELDS)
    if unknown:
        raw.errors.append((None, f"unknown fields: {', '.join(unknown)[:200]}"))
    raw.fields.update({k: v for k, v in obj.items() if k in FIELDS and v is not None})


def _from_auth0(obj: dict[str, Any], raw: RawRecord) -> None:
    if _syntax(obj, raw):
        return
    f = raw.fields
    _copy(obj, f, email="email", email_verified="email_verified", username="username")
    name = obj.get("name")
    if not name and (obj.get("given_name") or obj.get("family_name")):
        name = " ".join(str(p) for p in (obj.get("given_name"), obj.get("family_name")) if p)
    if name:
        f["full_name"] = name
    if obj.get("nickname"):
        f["display_name"] = obj["nickname"]
    if obj.get("blocked") is True:
        f["status"] = "suspended"
    if obj.get("created_at"):
        f["created_at"] = obj["created_at"]
    metadata = obj.get("app_metadata")
    if isinstance(metadata, dict) and metadata.get("roles") is not None:
        f["roles"] = metadata["roles"]
    hashed = obj.get("passwordHash") or obj.get("password_hash")
    custom = obj.get("custom_password_hash")
    if hashed:
        f["password_hash"] = hashed
    elif isinstance(custom, dict):
        algorithm = custom.get("algorithm")
        value = (
            custom.get("hash", {}).get("value") if isinstance(custom.get("hash"), dict) else None
        )
        if algorithm in ("bcrypt", "argon2") and isinstance(value, str):
            f["password_hash"] = value
        else:
            raw.errors.append(("password_hash", f"unsupported custom_password_hash {algorithm!r}"))


def _read_keycloak(stream: TextIO) -> Iterator[RawRecord]:
    try:
        document = json.load(stream)
    except json.JSONDecodeError as exc:
        yield RawRecord(0, exc.lineno, {}, [(None, f"invalid JSON: {exc.msg}")])
        return
    users = document.get("users") if isinstance(document, dict) else document
    if not isinstance(users, list):
        yield RawRecord(0, None, {}, [(None, "a Keycloak realm export has a 'users' list")])
        return
    for index, obj in enumerate(users, start=1):
        raw = RawRecord(index, None, {})
        if isinstance(obj, dict):
            _from_keycloak(obj, raw)
        else:
            raw.errors.append((None, "each user must be a JSON object"))
        yield raw


def _from_keycloak(obj: dict[str, Any], raw: RawRecord) -> None:
    f = raw.fields
    _copy(obj, f, email="email", email_verified="emailVerified")
    username = obj.get("username")
    # Keycloak handles allow what Atrium's do not ('@', '-', the email as username): a
    # handle Atrium would refuse is left out (the account can choose one later).
    if isinstance(username, str) and _acceptable_username(username):
        f["username"] = username
    name = " ".join(str(p) for p in (obj.get("firstName"), obj.get("lastName")) if p)
    if name:
        f["full_name"] = name
    if obj.get("enabled") is False:
        f["status"] = "suspended"
    created = obj.get("createdTimestamp")
    if isinstance(created, int) and not isinstance(created, bool):
        f["created_at"] = datetime.fromtimestamp(created / 1000, UTC).isoformat()
    roles = obj.get("realmRoles")
    if isinstance(roles, list):
        f["roles"] = [r for r in roles if not str(r).startswith(KEYCLOAK_DEFAULT_ROLES)]
    attributes = obj.get("attributes")
    locales = attributes.get("locale") if isinstance(attributes, dict) else None
    if isinstance(locales, list) and locales:
        f["locale"] = locales[0]
    for credential in obj.get("credentials") or []:
        if isinstance(credential, dict) and credential.get("type") == "password":
            try:
                f["password_hash"] = keycloak_credential_hash(
                    credential.get("secretData", ""), credential.get("credentialData", "")
                )
            except UnsupportedHash as exc:
                raw.errors.append(("password_hash", str(exc)))


def _acceptable_username(value: str) -> bool:
    try:
        _username(value)
    except ValueError:
        return False
    return True


def _copy(source: dict[str, Any], target: dict[str, Any], **names: str) -> None:
    for ours, theirs in names.items():
        if source.get(theirs) is not None:
            target[ours] = source[theirs]


def open_text(data: bytes) -> TextIO:
    """``data`` as a text stream (UTF-8, a byte-order mark skipped, newlines kept for the
    CSV reader)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
