"""The loopback OpenAI-compatible server that answered promptfoo when results.json was made (see README.md).

Standard library only: `python fixture_server.py PORT`. Replies depend on the model and the question, so the
two providers pass and fail different tests; "upstream failure" questions get a 400 from gpt-4.1-nano.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {  # question keyword -> (gpt-4o-mini, gpt-4.1-nano)
    "capital of France": ("Paris", "The capital of France is Paris."),
    "2+2": ("4", "2+2 equals 4."),
    "primary color": ("Blue", "Sorry, I cannot choose one."),
    "backwards": ("tac", "tac!"),
    "upstream failure": ("OK", None),
}


def answer(model: str, text: str) -> str | None:
    polite = "helpful assistant" in text
    for key, (mini, nano) in ANSWERS.items():
        if key in text:
            reply = mini if model == "gpt-4o-mini" else nano
            if reply is not None and polite and model == "gpt-4o-mini" and key == "2+2":
                return "Certainly! The answer is 4."
            return reply
    return "I do not know."


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        model = str(body.get("model", ""))
        content = answer(model, text)
        if content is None:
            status, out = 400, {"error": {"message": "upstream failure (fixture)", "type": "invalid_request_error"}}
        else:
            status = 200
            out = {
                "id": "fixture",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {
                    "prompt_tokens": len(text.split()),
                    "completion_tokens": len(content.split()),
                    "total_tokens": len(text.split()) + len(content.split()),
                },
            }
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
