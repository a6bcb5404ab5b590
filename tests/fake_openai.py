"""A local OpenAI-compatible embeddings server on 127.0.0.1, for the real `openai` client in tests.

Embeddings are deterministic functions of (model, text); `dimensions=768` returns the renormalized
first 768 dims of the 1536 one, as the real API does (unless `break_matryoshka` is set). `failures` is
a queue of HTTP statuses to answer the next requests with (a 429 carries Retry-After: `retry_after` seconds;
5xx carry none, so the client backs off on its own). `width` makes a model of another width (e.g. 384,
a MiniLM-like one); `refuse_after` answers 400 once that many requests were answered; `poison` returns
one zero vector ("zero") or one with a NaN ("nan") in every answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def vector_for(model: str, text: str, width: int = 1536) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{model}|{text}".encode()).digest()[:8], "big")
    v = np.random.default_rng(seed).standard_normal(width)
    return v / np.linalg.norm(v)


class FakeOpenAI:
    def __init__(self) -> None:
        self.failures: list[int] = []
        self.requests: list[dict] = []
        self.break_matryoshka = False
        self.retry_after = "0.01"
        self.times: list[float] = []  # when each request arrived (time.monotonic)
        self.width = 1536
        self.refuse_after: int | None = None
        self.poison: str | None = None
        self.answered = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.times.append(time.monotonic())
                refused = server.refuse_after is not None and server.answered >= server.refuse_after
                if server.failures or refused:
                    status = server.failures.pop(0) if server.failures else 400
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", server.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(
                        json.dumps({"error": {"message": f"scripted {status}", "type": "test"}}).encode()
                    )
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                dims = body.get("dimensions")
                data = []
                for i, text in enumerate(inputs):
                    v = vector_for(body["model"], text, server.width)
                    if dims:
                        v = v[:dims] / np.linalg.norm(v[:dims])
                        if server.break_matryoshka:
                            v = np.roll(v, 1)
                    if server.poison and i == 0:
                        v = v * (0.0 if server.poison == "zero" else float("nan"))
                    data.append({"object": "embedding", "index": i, "embedding": v.tolist()})
                payload = {
                    "object": "list",
                    "data": data,
                    "model": body["model"],
                    "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                }
                server.answered += 1
                raw = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
