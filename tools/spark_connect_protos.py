"""The Spark Connect protos as a FileDescriptorSet, for Envoy's grpc_field_extraction filter.

    PYTHON tools/spark_connect_protos.py OUT     write the descriptor set to OUT
    PYTHON tools/spark_connect_protos.py --methods

PYTHON must have pyspark with its Connect protos. ``./build.sh up --prod`` and the tests run
this with the stack venv's Python, so that the set describes the server the stack runs
(deploy/requirements.txt), not whichever client happens to be installed. ``--methods``
prints the full name of every SparkConnectService method, one a line: the list that
deploy/envoy.prod.yaml must extract ``user_context.user_id`` from.
"""

import sys

from google.protobuf import descriptor_pb2
from pyspark.sql.connect.proto import base_pb2

SERVICE = "SparkConnectService"


def descriptor_set() -> bytes:
    """base.proto and everything it imports (google/protobuf/*.proto too), dependencies
    first, each file once: what Envoy needs to resolve every request message."""
    files, seen = [], set()

    def add(file):
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        files.append(descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb))

    add(base_pb2.DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString()


def methods() -> list[str]:
    return [m.full_name for m in base_pb2.DESCRIPTOR.services_by_name[SERVICE].methods]


def main(argv: list[str]) -> int:
    if argv == ["--methods"]:
        print("\n".join(methods()))
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "wb") as out:
        out.write(descriptor_set())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
