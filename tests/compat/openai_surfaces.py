"""The official `openai` Python package, unmodified, on the router's other OpenAI surfaces.

Usage: openai_surfaces.py BASE_URL EXPECTED_TEXT
The router serves chat model `m` from a provider with the Responses API (answering
EXPECTED_TEXT) and embedding model `embed`.
"""
import sys

import openai

base, expected = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    checks += 1


# Responses API, plain and streamed.
r = client.responses.create(model="m", input="Hello from the Responses API")
check(r.output_text == expected, f"responses text {r.output_text!r}")
check(r.usage.input_tokens > 0 and r.usage.output_tokens > 0, f"responses usage {r.usage}")
events = list(client.responses.create(model="m", input="Hello", stream=True))
text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
check(text == expected, f"streamed responses text {text!r}")
check(events[-1].type == "response.completed", f"last event {events[-1].type}")
# Continuing a response goes where it lives; an unknown one is a 400.
follow = client.responses.create(model="m", input="And then?", previous_response_id=r.id)
check(follow.output_text == expected, "a continued response")
try:
    client.responses.create(model="m", input="Hi", previous_response_id="resp_nowhere")
    check(False, "an unknown previous response must fail")
except openai.BadRequestError as e:
    check(e.body.get("param") == "previous_response_id", f"400 names the field: {e.body}")

# Embeddings: single, batch, dimensions (the SDK asks for base64 and decodes it).
e = client.embeddings.create(model="embed", input="hello")
check(len(e.data) == 1 and len(e.data[0].embedding) == 8, f"one vector {e.data}")
check(all(-1.0 <= x <= 1.0 for x in e.data[0].embedding), "vector values")
e = client.embeddings.create(model="embed", input=["a", "b", "c"], dimensions=8)
check([d.index for d in e.data] == [0, 1, 2], "a batch")
check(e.usage.prompt_tokens > 0, f"embedding usage {e.usage}")
try:
    client.embeddings.create(model="m", input="hello")
    check(False, "a chat model must not embed")
except openai.UnprocessableEntityError as e:
    check(e.status_code == 422, "422 for a chat model")

# Legacy completions, plain and streamed.
c = client.completions.create(model="m", prompt="Say hi", max_tokens=50)
check(c.choices[0].text == expected, f"completion text {c.choices[0].text!r}")
stream = client.completions.create(model="m", prompt="Say hi", max_tokens=50, stream=True)
text = "".join(ch.choices[0].text for ch in stream if ch.choices)
check(text == expected, f"streamed completion {text!r}")
try:
    client.completions.create(model="no-such-model", prompt="x")
    check(False, "unknown model")
except openai.NotFoundError:
    check(True, "404")

print(f"openai {openai.__version__} surfaces: {checks} checks passed")
