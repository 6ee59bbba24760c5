"""Drives a running switchyard with the official `openai` Python package, unmodified.

Usage: openai_sdk.py BASE_URL EXPECTED_TEXT
The router must serve model `m` from two providers, the cheaper one failing with 500, so
every answer comes from the second after a fallback, and its text is EXPECTED_TEXT; and a
preset `backup-only` naming only the second.
"""
import sys

import openai

base, expected = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0)
messages = [{"role": "user", "content": "Hello from the OpenAI SDK"}]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


# Plain chat completion, parsed by the SDK's own types.
r = client.chat.completions.create(model="m", messages=messages, temperature=0.2)
check(r.choices[0].message.content == expected, f"chat content: {r.choices[0].message.content!r}")
check(r.usage is not None and r.usage.completion_tokens > 0, "chat usage")

# Raw response: the router's headers are there.
raw = client.chat.completions.with_raw_response.create(model="m", messages=messages)
check(raw.headers.get("x-switchyard-endpoint") == "backup/m", "endpoint header")
check(raw.headers.get("x-switchyard-attempts") == "2", "attempts header")
check(raw.headers.get("x-request-id", "").startswith("req_"), "request id header")
check(raw.parse().choices[0].message.content == expected, "raw parse")

# Streaming: the SDK's SSE parser reassembles the same text.
stream = client.chat.completions.create(model="m", messages=messages, stream=True)
chunks = list(stream)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check(text == expected, f"stream content: {text!r}")
check(all(c.usage is None for c in chunks), "no usage chunk unless asked")

# Streaming with usage asked for: the last chunk carries it.
stream = client.chat.completions.create(
    model="m", messages=messages, stream=True, stream_options={"include_usage": True}
)
chunks = list(stream)
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, "stream usage")

# Errors map to the SDK's exception types.
try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    check(False, "unknown model should fail")
except openai.NotFoundError as e:
    check(e.status_code == 404 and e.body.get("code") == "model_not_found", f"404 body {e.body}")
try:
    client.chat.completions.create(model="m", messages=[])
    check(False, "empty messages should fail")
except openai.BadRequestError as e:
    check(e.body.get("param") == "messages", f"400 names the field: {e.body}")

# A preset by name (`@preset/NAME`): its models, its hints; unknown presets are a 404.
raw = client.chat.completions.with_raw_response.create(model="@preset/backup-only", messages=messages)
check(raw.headers.get("x-switchyard-endpoint") == "backup/m", "preset endpoint")
check(raw.headers.get("x-switchyard-attempts") == "1", "the preset skips the failing provider")
check(raw.parse().choices[0].message.content == expected, "preset answer")
try:
    client.chat.completions.create(model="@preset/no-such-preset", messages=messages)
    check(False, "unknown preset should fail")
except openai.NotFoundError as e:
    check(e.body.get("code") == "model_not_found", f"unknown preset body {e.body}")

# The model list.
ids = {m.id for m in client.models.list()}
check({"cheap/m", "backup/m", "m", "auto", "@preset/backup-only"} <= ids, f"models: {ids}")

print(f"openai {openai.__version__}: {checks} checks passed")
