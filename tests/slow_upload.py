"""A client that declares a body and sends it a byte at a time: how a slow or hostile
link looks to the server."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse


class Trickle(threading.Thread):
    """An upload that declares its body and then sends it a byte every `pause` seconds."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes, pause: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.address, self.headers, self.body, self.pause = urlparse(url), headers, body, pause
        self.sent_headers = threading.Event()
        self.status: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection((self.address.hostname, self.address.port)) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            sock.sendall(
                f"POST /v1/epochs:ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\n{head}\r\n".encode()
            )
            self.sent_headers.set()
            sock.settimeout(self.pause)
            for i in range(len(self.body)):
                if self.stop.is_set():
                    return
                try:
                    answer = sock.recv(4096)  # the server answered before the body was complete
                    if answer:
                        self.status = int(answer.split()[1])
                        return
                except TimeoutError:
                    pass
                sock.sendall(self.body[i : i + 1])
