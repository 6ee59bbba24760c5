//! A chat-completions request body, read without re-serialising it.
//!
//! The top level is parsed into an ordered list of `(key, raw JSON value)` pairs that borrow
//! from the request bytes; only the fields the router needs (`model`, `messages`, `stream`,
//! `stream_options`, `max_tokens`, `max_completion_tokens`) are decoded and checked. The body
//! sent upstream is written by splicing the raw values back together with `model` replaced by
//! the endpoint's upstream name, so `messages` (the bulk of the bytes) is copied once and
//! never parsed into a tree. Every refusal names the offending field.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a body was refused; the gateway answers 400 with `param` set to `field`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("`{field}`: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

impl BodyError {
    /// The request field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            BodyError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A parsed body: the raw top-level fields plus the decoded ones the router uses.
#[derive(Debug)]
pub struct ChatBody<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The `model` the client asked for.
    pub model: Cow<'a, str>,
    /// `stream: true`.
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u32>,
    /// Size of the raw `messages` array in bytes, the basis of the prompt-size estimate, with
    /// each inline image (a `data:image/...` URI) counted as [`IMAGE_TEXT_BYTES`] instead of
    /// its base64 length, plus the tool definitions and output schema (`tools`,
    /// `functions`, `response_format`, the Responses API's `text`).
    pub messages_bytes: usize,
    /// Streams ask the provider for a usage chunk (`stream_options.include_usage`).
    ask_usage: bool,
}

/// The shape of a generating request: where its prompt is and how it caps the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Chat completions: `messages`, `max_completion_tokens` / `max_tokens`.
    Chat,
    /// Legacy completions: `prompt` (a string or an array), `max_tokens`.
    Completions,
    /// The Responses API: `input` (a string or an array of items), `max_output_tokens`; its
    /// streams always end with their usage, so nothing is added for it.
    Responses,
}

impl<'a> ChatBody<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<ChatBody<'a>, BodyError> {
        ChatBody::parse_as(bytes, Shape::Chat)
    }

    /// Parses a request of `shape`.
    pub fn parse_as(bytes: &'a [u8], shape: Shape) -> Result<ChatBody<'a>, BodyError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some() && first != Some(&b'{') {
            return Err(BodyError::NotAnObject);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let Fields(fields) = Fields::deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(json_error)?;

        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let model = match get("model") {
            // OpenRouter's form: no `model`, the first of `models` instead.
            None => match get("models")
                .map(|raw| serde_json::from_str::<Vec<Cow<'a, str>>>(raw.get()))
            {
                Some(Ok(models)) if !models.is_empty() => {
                    models.into_iter().next().expect("non-empty")
                }
                _ => return Err(field("model", "is required")),
            },
            Some(raw) => match <Cow<'a, str>>::deserialize(BorrowStr(raw)) {
                Ok(m) if !m.trim().is_empty() => m,
                Ok(_) => return Err(field("model", "must not be empty")),
                Err(_) => return Err(field("model", "must be a string")),
            },
        };
        let (prompt_field, strings_ok) = match shape {
            Shape::Chat => ("messages", false),
            Shape::Completions => ("prompt", true),
            Shape::Responses => ("input", true),
        };
        let messages = get(prompt_field).ok_or_else(|| field(prompt_field, "is required"))?;
        let text = messages.get().trim();
        let is_string = text.starts_with('"');
        if !(text.starts_with('[') || strings_ok && is_string) {
            return Err(field(
                prompt_field,
                if strings_ok {
                    "must be a string or an array"
                } else {
                    "must be an array of messages"
                },
            ));
        }
        if text.len() <= 2 || (!is_string && text[1..].trim_start().starts_with(']')) {
            return Err(field(prompt_field, "must not be empty"));
        }
        let stream =
            decode::<bool>(get("stream"), "stream", "must be true or false")?.unwrap_or(false);
        let options = decode::<StreamOptions>(
            get("stream_options"),
            "stream_options",
            "must be an object like {\"include_usage\": true}",
        )?;
        let max_tokens = decode::<u32>(
            get("max_tokens"),
            "max_tokens",
            "must be a non-negative integer",
        )?;
        let max_completion = decode::<u32>(
            get("max_completion_tokens"),
            "max_completion_tokens",
            "must be a non-negative integer",
        )?;
        let max_output = decode::<u32>(
            get("max_output_tokens"),
            "max_output_tokens",
            "must be a non-negative integer",
        )?;
        let max_output_tokens = match shape {
            Shape::Chat => max_completion.or(max_tokens),
            Shape::Completions => max_tokens,
            Shape::Responses => max_output,
        };
        Ok(ChatBody {
            model,
            stream,
            client_wants_usage: shape == Shape::Responses
                || options.and_then(|o| o.include_usage).unwrap_or(false),
            max_output_tokens,
            // Tool definitions and output schemas are prompt tokens too.
            messages_bytes: prompt_bytes(messages.get())
                + ["tools", "functions", "response_format", "text"]
                    .iter()
                    .filter_map(|f| get(f))
                    .map(|v| v.get().len())
                    .sum::<usize>(),
            fields,
            ask_usage: shape != Shape::Responses,
        })
    }

    /// A top-level field's raw JSON.
    pub fn field(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The body to send to an endpoint: the router's own fields (`route`, `provider`,
    /// `models`) are removed, `model` becomes `upstream_model`; for streams,
    /// `stream_options.include_usage` is switched on so the router can account the request
    /// (the relay removes the extra chunk when the client did not ask for it).
    pub(crate) fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        let usage = self.stream && self.ask_usage;
        upstream_fields(&self.fields, upstream_model, usage)
    }
}

/// What an inline image counts as in the prompt-size estimate: the bytes of text of about a
/// thousand tokens (at four bytes a token). Providers charge an image by its pixels, about
/// 765 tokens for a 1024×1024 image at OpenAI's high detail and 1,600 at most at Anthropic,
/// whatever its encoded size; counted by its base64 length, a 1 MB photo would read as
/// 250,000 tokens and the context-window filter would remove every model.
pub const IMAGE_TEXT_BYTES: usize = 4_000;

/// The prompt's size for the estimate: its raw length, each inline image counted as
/// [`IMAGE_TEXT_BYTES`]. An inline image is a JSON string starting `data:image/`; the search
/// needs no parse, since such a string's opening quote cannot appear escaped.
fn prompt_bytes(raw: &str) -> usize {
    const START: &[u8] = b"\"data:image/";
    let bytes = raw.as_bytes();
    let mut size = bytes.len();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&bytes[at..], START) {
        let start = at + found + 1;
        // Base64 and a media type hold no quote or backslash: the string ends at the next quote.
        let Some(len) = memchr::memchr(b'"', &bytes[start..]) else {
            break;
        };
        size = size - len + IMAGE_TEXT_BYTES.min(len);
        at = start + len;
    }
    size
}

/// A JSON object's top-level fields, in order, values left raw (borrowed from `bytes`).
pub(crate) fn top_level(bytes: &[u8]) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Fields(fields) = Fields::deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

/// Fields that tell the router how to route; providers never see them.
pub(crate) const ROUTER_FIELDS: [&str; 3] = ["route", "provider", "models"];

/// A request body of another dialect as it goes upstream: the router's own fields removed,
/// `model` set to `upstream_model`, every other field's bytes as they came.
pub(crate) fn without_router_fields(bytes: &[u8], upstream_model: &str) -> Option<Vec<u8>> {
    Some(upstream_fields(
        &top_level(bytes).ok()?,
        upstream_model,
        false,
    ))
}

/// Writes `fields` as a JSON object without the router's own fields, `model` set to
/// `upstream_model`, every other value's bytes as they came; with `ask_usage`,
/// `stream_options.include_usage` is switched on (added when absent).
fn upstream_fields(
    fields: &[(Cow<'_, str>, &RawValue)],
    upstream_model: &str,
    ask_usage: bool,
) -> Vec<u8> {
    let size: usize = fields
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum();
    let mut out = Vec::with_capacity(size + upstream_model.len() + 48);
    out.push(b'{');
    let mut wrote_options = false;
    let mut first = true;
    for (key, raw) in fields {
        if ROUTER_FIELDS.contains(&key.as_ref()) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(&mut out, key);
        out.push(b':');
        match key.as_ref() {
            "model" => write_json_str(&mut out, upstream_model),
            "stream_options" if ask_usage => {
                out.extend_from_slice(with_usage(raw).as_bytes());
                wrote_options = true;
            }
            _ => out.extend_from_slice(raw.get().as_bytes()),
        }
    }
    if ask_usage && !wrote_options {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
    }
    out.push(b'}');
    out
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// `stream_options` with `include_usage: true`, other options kept as they were.
fn with_usage(raw: &RawValue) -> String {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw.get()).unwrap_or_default();
    map.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::Value::Object(map).to_string()
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing a str into a Vec cannot fail");
}

fn field(field: &'static str, message: &str) -> BodyError {
    BodyError::Field {
        field,
        message: message.to_owned(),
    }
}

fn json_error(e: serde_json::Error) -> BodyError {
    BodyError::Json(e.to_string())
}

/// Decodes an optional field; JSON `null` counts as absent.
fn decode<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    name: &'static str,
    message: &str,
) -> Result<Option<T>, BodyError> {
    match raw {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<T>>(raw.get()).map_err(|_| field(name, message)),
    }
}

/// Deserializes a raw JSON string value, borrowing when it has no escapes.
struct BorrowStr<'a>(&'a RawValue);

impl<'de> Deserializer<'de> for BorrowStr<'de> {
    type Error = serde_json::Error;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        de.deserialize_str(visitor)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The top-level object as ordered `(key, raw value)` pairs borrowed from the input.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate field `{key}` in the request body"
                )));
            }
            fields.push((key, map.next_value()?));
        }
        Ok(Fields(fields))
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests;
