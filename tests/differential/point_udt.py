"""A user-defined type in pure Python, importable by name on every client (the differential
runners put this folder on sys.path), for the UDT cases of arrow_cases.py.

Pure Python on purpose: upstream's own UDT examples (pyspark.ml.linalg's VectorUDT) need
numpy, which the light client does not have."""

from pyspark.sql.types import ArrayType, DoubleType, UserDefinedType


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return f"Point({self.x!r}, {self.y!r})"

    def __str__(self):
        return f"({self.x}, {self.y})"


class PointUDT(UserDefinedType):
    @classmethod
    def sqlType(cls):
        return ArrayType(DoubleType(), False)

    @classmethod
    def module(cls):
        return "point_udt"

    def serialize(self, point):
        return [point.x, point.y]

    def deserialize(self, datum):
        return Point(datum[0], datum[1])


Point.__UDT__ = PointUDT()
