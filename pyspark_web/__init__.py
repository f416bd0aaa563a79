"""pyspark-web: the PySpark Spark Connect client for Pyodide and the browser.

The distribution installs upstream ``pyspark`` (from pyspark-client, with the patchset in
``patches/``) next to this package, which holds what upstream does not have: the grpc-web
transport and the glue for Pyodide. See the project README.
"""

# The distribution version: upstream's version, then our own release number.
# meta.yaml's package.version must be the same (tests/unit/test_packaging.py checks).
__version__ = "4.2.0.post1"


__all__ = ["GrpcWebChannelBuilder", "ServerUnreachableError", "__version__"]


def __getattr__(name: str):
    # Lazy, so that "import pyspark_web" stays cheap and does not import pyspark itself.
    if name == "GrpcWebChannelBuilder":
        from pyspark_web.builder import GrpcWebChannelBuilder

        return GrpcWebChannelBuilder
    if name == "ServerUnreachableError":
        from pyspark_web.channel import ServerUnreachableError

        return ServerUnreachableError
    raise AttributeError(f"module 'pyspark_web' has no attribute {name!r}")
