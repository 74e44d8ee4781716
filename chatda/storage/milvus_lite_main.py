"""``python -m chatda.storage.milvus_lite_main``: milvus-lite's gRPC server with Milvus's
keepalive policy, the process ``MilvusLiteServer`` runs.

pymilvus pings every connection every 10 s, idle or not, as Milvus standalone permits. The
``milvus-lite server`` command builds its gRPC server with gRPC's default policy (no pings
without data more often than every 5 minutes, two strikes), so an idle client gets a
``too_many_pings`` GOAWAY after about 30 s and a call that races it fails with UNAVAILABLE.
This entry point serves the same ``MilvusServicer`` with the policy Milvus itself uses.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # as milvus-lite and Milvus standalone
MAX_WORKERS = 10  # milvus-lite's default
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
]


def serve(data_dir: str, host: str, port: int) -> None:
    """Block until SIGINT or SIGTERM, then drain for up to 5 s and close the data dir (its
    lock). The handlers are installed, not inherited: a shell's background job starts with
    SIGINT ignored, and Python would then never raise KeyboardInterrupt."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    db = MilvusLite(data_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS), options=OPTIONS)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    try:
        stop.wait()
    finally:
        server.stop(grace=5).wait()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.data_dir, args.host, args.port)


if __name__ == "__main__":
    main()
