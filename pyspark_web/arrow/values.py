"""Value types that pyarrow's to_pylist() returns and Python lacks."""

from typing import NamedTuple


class MonthDayNano(NamedTuple):
    """An Arrow month_day_nano interval (pyarrow returns one of the same shape)."""

    months: int
    days: int
    nanoseconds: int
