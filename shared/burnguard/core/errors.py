"""Errors that name what was wrong and where: the file, the row and the field."""

from __future__ import annotations


class BurnguardError(Exception):
    """Base of every error burnguard raises on purpose."""


class InputError(BurnguardError):
    """Bad input: a file, a row or a field that cannot be read.

    ``row`` is the 1-based number of the data record (the header is not counted); ``field`` is
    the column name as it stands in the file.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        self.reason = message
        self.file = file
        self.row = row
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "row": self.row, "field": self.field, "reason": self.reason}


class UnknownFormatError(InputError):
    """A file whose header matches no known billing export format."""


class MissingColumnError(InputError):
    """A known format whose file lacks a column the format cannot do without."""
