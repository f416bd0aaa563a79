"""Arrow without pyarrow: a pure-Python IPC stream reader and writer (``ipc``), a small
table over its batches (``table``), and the mapping to Spark's types (``spark``).

PySpark uses this through ``pyspark.sql.connect.arrow_compat`` (patches/0008) when pyarrow
cannot be imported; with pyarrow, upstream's own path runs unchanged.
"""
