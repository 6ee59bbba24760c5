"""Drives a running switchyard with the official `anthropic` Python package, unmodified.

Usage: anthropic_sdk.py BASE_URL EXPECTED_NATIVE EXPECTED_TRANSLATED
The router serves `an/m` from an Anthropic-protocol provider (answers EXPECTED_NATIVE) and
`oa/m` from an OpenAI-protocol one (answers EXPECTED_TRANSLATED).
"""
import base64
import sys

import anthropic

base, native, translated = sys.argv[1], sys.argv[2], sys.argv[3]
client = anthropic.Anthropic(base_url=base, api_key="not-needed", max_retries=0)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


hello = [{"role": "user", "content": "Hello from the Anthropic SDK"}]
for model, expected in [("an/m", native), ("oa/m", translated)]:
    # messages.create, parsed by the SDK's own types.
    m = client.messages.create(model=model, max_tokens=100, messages=hello)
    check(m.type == "message" and m.role == "assistant", f"{model}: a message: {m}")
    check(m.content[0].type == "text" and m.content[0].text == expected, f"{model}: text {m.content!r}")
    check(m.stop_reason == "end_turn", f"{model}: stop_reason {m.stop_reason}")
    check(m.usage.input_tokens > 0 and m.usage.output_tokens > 0, f"{model}: usage {m.usage}")

    # messages.stream: the SDK's own event accumulation.
    with client.messages.stream(model=model, max_tokens=100, messages=hello) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    check(text == expected, f"{model}: streamed text {text!r}")
    check(final.stop_reason == "end_turn" and final.usage.output_tokens > 0, f"{model}: final {final}")

    # A system prompt and an image.
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    m = client.messages.create(
        model=model,
        max_tokens=50,
        system=[{"type": "text", "text": "Describe briefly."}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        ]}],
    )
    check(m.content[0].text == expected, f"{model}: with an image {m.content!r}")

    # Tools: the model calls one, the result goes back.
    tools = [{"name": "get_weather", "description": "Weather of a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    m = client.messages.create(model=model, max_tokens=100, tools=tools,
                               tool_choice={"type": "any"}, messages=hello)
    call = next(b for b in m.content if b.type == "tool_use")
    check(m.stop_reason == "tool_use" and call.name == "get_weather", f"{model}: tool_use {m.content!r}")
    check(call.input == {"city": "Oslo"}, f"{model}: tool input {call.input!r}")
    m = client.messages.create(model=model, max_tokens=100, tools=tools, messages=hello + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "-3 C"}]},
    ])
    check(m.content[0].text == expected, f"{model}: after the tool result {m.content!r}")

    # Raw response: the router's headers.
    raw = client.messages.with_raw_response.create(model=model, max_tokens=10, messages=hello)
    check(raw.headers.get("x-switchyard-endpoint") == model, f"endpoint header {raw.headers}")
    check(raw.headers.get("x-request-id", "").startswith("req_"), "request id header")

# count_tokens.
n = client.messages.count_tokens(model="an/m", messages=hello)
check(n.input_tokens > 0, f"count_tokens {n}")

# Errors come as the SDK's own exceptions.
try:
    client.messages.create(model="no-such-model", max_tokens=10, messages=hello)
    check(False, "an unknown model must fail")
except anthropic.NotFoundError as e:
    check(e.status_code == 404, "404")
try:
    client.messages.create(model="oa/m", max_tokens=10, messages=hello, extra_body={"top_k": 5})
    check(False, "top_k to an OpenAI-protocol provider must fail")
except anthropic.BadRequestError as e:
    check("top_k" in str(e), f"400 names the field: {e}")
try:
    client.messages.create(model="m", max_tokens=10, messages=hello,
                           extra_body={"route": {"max_cost_usd": 1e-12}})
    check(False, "an impossible budget must fail")
except anthropic.UnprocessableEntityError as e:
    check(e.status_code == 422, "422")

print(f"{checks} checks passed")
