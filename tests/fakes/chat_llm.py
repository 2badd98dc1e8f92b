"""A fake OpenAI-compatible chat LLM on loopback that calls our image tool.

It speaks the chat-completions wire format, streamed (SSE chunks ending in `data: [DONE]`) and
not streamed, the way AstrBot's `openai_chat_completion` provider reads it. Its policy:

- the request offers tools and the last message is the user's: call `gemini-pic-gen` with the
  user's text as `image_description` (finish_reason "tool_calls");
- the last message is a tool result: answer with plain text;
- anything else (e.g. the title request for a new WebChat session, which has no tools): plain text.

Every request is recorded in `requests`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

TOOL_NAME = "gemini-pic-gen"
MODEL = "fake-model"
AFTER_TOOL_TEXT = "图片已经发给你啦。"
PLAIN_TEXT = "好的。"
# AstrBot appends context such as the current time to the user's message in these tags.
_SYSTEM_REMINDER = re.compile(r"<system_reminder>.*?</system_reminder>", re.DOTALL)


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t.get("function", {}).get("name", "") for t in body.get("tools") or []]


@dataclass
class ChatRequest:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def last(self) -> dict[str, Any]:
        return self.body["messages"][-1]

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def offers_tool(self) -> bool:
        return TOOL_NAME in tool_names(self.body)


@dataclass
class Answer:
    """What the fake model says: either text or one call of our tool."""

    text: str = ""
    tool_arguments: dict[str, Any] | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_arguments is not None else "stop"


def image_description_for(user_text: str) -> str:
    """The tool argument a model would derive from the user's words: the request itself,
    without the context AstrBot added to it."""
    return " ".join(_SYSTEM_REMINDER.sub(" ", user_text).split())


def decide(request: ChatRequest) -> Answer:
    last = request.last
    if request.offers_tool and last.get("role") == "user":
        description = image_description_for(message_text(last))
        return Answer(
            tool_arguments={"image_description": description, "use_reference_images": False}
        )
    if last.get("role") == "tool":
        return Answer(text=AFTER_TOOL_TEXT)
    return Answer(text=PLAIN_TEXT)


class FakeChatLLM(LoopbackServer):
    client_max_size = 32 * 1024 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ChatRequest] = []
        self.tool_calls: list[dict[str, Any]] = []
        self._calls = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.requests.clear()
        self.tool_calls.clear()

    def tool_results(self) -> list[str]:
        """Texts the agent handed back to the model as results of our tool."""
        return [message_text(r.last) for r in self.requests if r.last.get("role") == "tool"]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = ChatRequest(await request.json(), dict(request.headers))
        self.requests.append(recorded)
        answer = decide(recorded)
        call_id = None
        if answer.tool_arguments is not None:
            self._calls += 1
            call_id = f"call_{self._calls}"
            self.tool_calls.append(answer.tool_arguments)
        if recorded.streamed:
            return await self._stream(request, answer, call_id)
        return web.json_response(self._completion(answer, call_id))

    # --- wire format -----------------------------------------------------------------------------

    @staticmethod
    def _tool_call(answer: Answer, call_id: str | None) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {
                "name": TOOL_NAME,
                "arguments": json.dumps(answer.tool_arguments, ensure_ascii=False),
            },
        }

    @staticmethod
    def _usage() -> dict[str, int]:
        return {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}

    def _completion(self, answer: Answer, call_id: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
        if answer.tool_arguments is not None:
            message["tool_calls"] = [self._tool_call(answer, call_id)]
        return {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
            "usage": self._usage(),
        }

    async def _stream(
        self, request: web.Request, answer: Answer, call_id: str | None
    ) -> web.StreamResponse:
        chunk_id = f"chatcmpl-{time.time_ns()}"

        def chunk(
            delta: dict[str, Any] | None, finish: str | None = None, usage: bool = False
        ) -> bytes:
            body: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": MODEL,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                body["usage"] = self._usage()
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": ""}))
        if answer.tool_arguments is not None:
            call = self._tool_call(answer, call_id)
            arguments = call["function"]["arguments"]
            # Like real models: the call's head first, then its arguments in pieces.
            head = {**call, "function": {"name": TOOL_NAME, "arguments": ""}}
            await response.write(chunk({"tool_calls": [{"index": 0, **head}]}))
            middle = len(arguments) // 2
            for piece in (arguments[:middle], arguments[middle:]):
                await response.write(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            for piece in (answer.text[:1], answer.text[1:]):
                await response.write(chunk({"content": piece}))
        await response.write(chunk({}, finish=answer.finish_reason))
        await response.write(chunk(None, usage=True))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
