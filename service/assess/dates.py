"""FHIR date/dateTime strings -> aware datetimes (partial dates fall on their first instant)."""

from __future__ import annotations

from datetime import UTC, date, datetime

# Instants accepted in requests: far enough from years 1 and 9999 that arithmetic on them
# (UTC offsets, ages, durations) cannot overflow, and wide enough for any patient record.
EARLIEST = datetime(1800, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
YEARS = f"{EARLIEST.year}–{LATEST.year - 1}"  # as error messages name the range


def parse_instant(value: str) -> datetime:
    """'2024', '2024-05', '2024-05-02', or a full dateTime; naive times are taken as UTC."""
    text = value.strip()
    if len(text) == 4:
        parsed = datetime(int(text), 1, 1)
    elif len(text) == 7:
        parsed = datetime(int(text[:4]), int(text[5:7]), 1)
    else:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def within_range(value: datetime) -> bool:
    """Between EARLIEST and LATEST (a UTC offset at year 1 or 9999 overflows when applied)."""
    try:
        return EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:
        return False


def parse_date(value: str) -> date:
    return parse_instant(value).date()


def format_instant(value: datetime) -> str:
    """The canonical form used in output: seconds precision, UTC, 'Z'."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def age_in_years(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
