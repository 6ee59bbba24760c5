//! Requests: an Anthropic Messages request as an OpenAI chat request, and back.

use serde_json::{json, Map, Value};

use super::super::TranslateError;

type Result<T> = std::result::Result<T, TranslateError>;

fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T> {
    Err(TranslateError::new(field, message))
}

fn text_of(v: &Value, field: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => err(field, "must be a string"),
    }
}

/// The text of a `system` prompt or tool result given as a string or as text blocks.
fn joined_text(v: &Value, field: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                if b["type"] != "text" {
                    return err(
                        format!("{field}[{i}].type"),
                        "only text blocks can be translated here",
                    );
                }
                parts.push(text_of(&b["text"], &format!("{field}[{i}].text"))?);
            }
            Ok(parts.join("\n\n"))
        }
        _ => err(field, "must be a string or an array of text blocks"),
    }
}

/// Fields of an Anthropic request an OpenAI-protocol provider has no use for; everything
/// not listed here or translated below is refused.
const ANTHROPIC_IGNORED: [&str; 1] = ["cache_control"];

/// An Anthropic Messages request as an OpenAI chat completions request (for an
/// OpenAI-protocol provider). Streams ask for the usage chunk: the Anthropic answer needs it.
pub fn to_openai(req: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut messages = Vec::new();
    for (key, v) in req {
        match key.as_str() {
            // The router's own hints pass through to its parser.
            "model" | "temperature" | "top_p" | "route" | "provider" | "models" => {
                out.insert(key.clone(), v.clone());
            }
            "max_tokens" => {
                out.insert("max_tokens".into(), v.clone());
            }
            "stream" => {
                out.insert("stream".into(), v.clone());
                if v == true {
                    out.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
            "stop_sequences" => {
                out.insert("stop".into(), v.clone());
            }
            "system" => {
                let text = joined_text(v, "system")?;
                messages.insert(0, json!({"role": "system", "content": text}));
            }
            "messages" | "tools" | "tool_choice" => {}
            "metadata" => {
                if let Some(user) = v.get("user_id").filter(|u| !u.is_null()) {
                    out.insert("user".into(), user.clone());
                }
            }
            "thinking" if v["type"] == "disabled" => {}
            "thinking" => {
                return err(
                    "thinking",
                    "extended thinking cannot be sent to an OpenAI-protocol provider",
                )
            }
            k if ANTHROPIC_IGNORED.contains(&k) => {}
            other => {
                return err(
                    other,
                    "has no equivalent at an OpenAI-protocol provider (route to an Anthropic one)",
                )
            }
        }
    }
    let Some(Value::Array(turns)) = req.get("messages") else {
        return err("messages", "is required and must be an array");
    };
    for (i, turn) in turns.iter().enumerate() {
        messages.extend(turn_to_openai(turn, &format!("messages[{i}]"))?);
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = req.get("tools") {
        let Value::Array(tools) = tools else {
            return err("tools", "must be an array");
        };
        let mut fns = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("custom");
            if kind != "custom" {
                return err(
                    format!("tools[{i}].type"),
                    format!("`{kind}` is an Anthropic server tool; an OpenAI-protocol provider has none"),
                );
            }
            let mut f = Map::new();
            f.insert(
                "name".into(),
                json!(text_of(&t["name"], &format!("tools[{i}].name"))?),
            );
            if let Some(d) = t.get("description") {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or(json!({"type": "object"})),
            );
            fns.push(json!({"type": "function", "function": f}));
        }
        out.insert("tools".into(), Value::Array(fns));
    }
    if let Some(choice) = req.get("tool_choice") {
        let (openai, parallel) = tool_choice_to_openai(choice)?;
        out.insert("tool_choice".into(), openai);
        if parallel == Some(false) {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    Ok(out)
}

fn tool_choice_to_openai(choice: &Value) -> Result<(Value, Option<bool>)> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    let openai = match choice["type"].as_str() {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = text_of(&choice["name"], "tool_choice.name")?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return err("tool_choice.type", "must be auto, any, tool or none"),
    };
    Ok((openai, parallel))
}

/// One Anthropic turn as OpenAI messages: tool results become `tool` messages (first, as
/// OpenAI wants them right after the assistant's calls), the rest one user or assistant
/// message.
fn turn_to_openai(turn: &Value, field: &str) -> Result<Vec<Value>> {
    let role = match turn["role"].as_str() {
        Some(r @ ("user" | "assistant")) => r,
        _ => return err(format!("{field}.role"), "must be user or assistant"),
    };
    let blocks = match &turn["content"] {
        Value::String(s) => return Ok(vec![json!({"role": role, "content": s})]),
        Value::Array(blocks) => blocks,
        _ => {
            return err(
                format!("{field}.content"),
                "must be a string or an array of blocks",
            )
        }
    };
    let mut out = Vec::new();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{field}.content[{j}]");
        match (role, b["type"].as_str()) {
            ("user", Some("text")) => parts
                .push(json!({"type": "text", "text": text_of(&b["text"], &format!("{at}.text"))?})),
            ("user", Some("image")) => parts.push(image_to_openai(&b["source"], &at)?),
            ("user", Some("tool_result")) => {
                let id = text_of(&b["tool_use_id"], &format!("{at}.tool_use_id"))?;
                let content = match b.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(c) => joined_text(c, &format!("{at}.content"))?,
                };
                let content = if b["is_error"] == true {
                    format!("Error: {content}")
                } else {
                    content
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            ("assistant", Some("text")) => {
                text.push_str(&text_of(&b["text"], &format!("{at}.text"))?)
            }
            ("assistant", Some("tool_use")) => {
                let id = text_of(&b["id"], &format!("{at}.id"))?;
                let name = text_of(&b["name"], &format!("{at}.name"))?;
                let input = b.get("input").cloned().unwrap_or(json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            // The model's own earlier reasoning: an OpenAI-protocol model cannot take it back.
            ("assistant", Some("thinking" | "redacted_thinking")) => {}
            (_, kind) => {
                return err(
                    format!("{at}.type"),
                    format!(
                    "a `{}` block in a {role} turn cannot be sent to an OpenAI-protocol provider",
                    kind.unwrap_or("?")
                ),
                )
            }
        }
    }
    if role == "user" && !parts.is_empty() {
        // Text alone stays a plain string, which every OpenAI-compatible server takes.
        let content = if parts.iter().all(|p| p["type"] == "text") {
            let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
            json!(texts.join("\n\n"))
        } else {
            Value::Array(parts)
        };
        out.push(json!({"role": "user", "content": content}));
    }
    if role == "assistant" {
        let mut m = Map::new();
        m.insert("role".into(), json!("assistant"));
        m.insert(
            "content".into(),
            if text.is_empty() && !calls.is_empty() {
                Value::Null
            } else {
                json!(text)
            },
        );
        if !calls.is_empty() {
            m.insert("tool_calls".into(), Value::Array(calls));
        }
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn image_to_openai(source: &Value, at: &str) -> Result<Value> {
    let url = match source["type"].as_str() {
        Some("base64") => {
            let media = text_of(&source["media_type"], &format!("{at}.source.media_type"))?;
            let data = text_of(&source["data"], &format!("{at}.source.data"))?;
            format!("data:{media};base64,{data}")
        }
        Some("url") => text_of(&source["url"], &format!("{at}.source.url"))?,
        _ => return err(format!("{at}.source.type"), "must be base64 or url"),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Fields of an OpenAI request with no effect an Anthropic provider could honour, accepted
/// and not sent.
const OPENAI_IGNORED: [&str; 4] = ["stream_options", "store", "metadata", "service_tier"];

/// An OpenAI chat completions request as an Anthropic Messages request (for an
/// Anthropic-protocol provider). `max_tokens` is required there: `default_max_tokens` when
/// the client gave none.
pub fn from_openai(
    req: &Map<String, Value>,
    default_max_tokens: u32,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut max_tokens = None;
    for (key, v) in req {
        match key.as_str() {
            "model" | "top_p" | "stream" => {
                out.insert(key.clone(), v.clone());
            }
            "temperature" => {
                if v.as_f64().is_some_and(|t| t > 1.0) {
                    return err("temperature", "an Anthropic-protocol provider takes 0 to 1");
                }
                out.insert(key.clone(), v.clone());
            }
            "max_completion_tokens" => max_tokens = Some(v.clone()),
            "max_tokens" => {
                max_tokens.get_or_insert_with(|| v.clone());
            }
            "stop" => {
                let stops = match v {
                    Value::String(s) => json!([s]),
                    Value::Array(_) => v.clone(),
                    Value::Null => continue,
                    _ => return err("stop", "must be a string or an array of strings"),
                };
                out.insert("stop_sequences".into(), stops);
            }
            "user" => {
                out.insert("metadata".into(), json!({"user_id": v}));
            }
            "n" if v.as_u64().is_none_or(|n| n <= 1) => {}
            "n" => return err("n", "an Anthropic-protocol provider answers one choice"),
            "logprobs" | "top_logprobs" if !truthy(v) => {}
            "frequency_penalty" | "presence_penalty" | "seed" | "logit_bias" if !truthy(v) => {}
            "messages" | "tools" | "tool_choice" | "parallel_tool_calls" => {}
            k if OPENAI_IGNORED.contains(&k) => {}
            other => {
                return err(
                    other,
                    "has no equivalent at an Anthropic-protocol provider (route to an OpenAI one)",
                )
            }
        }
    }
    out.insert(
        "max_tokens".into(),
        max_tokens
            .filter(|m| !m.is_null())
            .unwrap_or(json!(default_max_tokens)),
    );
    let Some(Value::Array(messages)) = req.get("messages") else {
        return err("messages", "is required and must be an array");
    };
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let field = format!("messages[{i}]");
        let (role, blocks) = match m["role"].as_str() {
            Some("system" | "developer") => {
                system.push(joined_text(
                    &parts_as_blocks(&m["content"]),
                    &format!("{field}.content"),
                )?);
                continue;
            }
            Some("user") => ("user", user_blocks(&m["content"], &field)?),
            Some("assistant") => ("assistant", assistant_blocks(m, &field)?),
            Some("tool") => {
                let id = text_of(&m["tool_call_id"], &format!("{field}.tool_call_id"))?;
                let content =
                    joined_text(&parts_as_blocks(&m["content"]), &format!("{field}.content"))?;
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": content})],
                )
            }
            _ => {
                return err(
                    format!("{field}.role"),
                    "must be system, developer, user, assistant or tool",
                )
            }
        };
        match turns.last_mut() {
            // Anthropic alternates turns: consecutive ones of a role become one.
            Some((r, b)) if r == role => b.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    let turns: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    out.insert("messages".into(), Value::Array(turns));
    if let Some(tools) = req.get("tools") {
        let Value::Array(tools) = tools else {
            return err("tools", "must be an array");
        };
        let mut list = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" {
                return err(
                    format!("tools[{i}].type"),
                    "only function tools can be translated",
                );
            }
            let f = &t["function"];
            let mut tool = Map::new();
            tool.insert(
                "name".into(),
                json!(text_of(&f["name"], &format!("tools[{i}].function.name"))?),
            );
            if let Some(d) = f.get("description") {
                tool.insert("description".into(), d.clone());
            }
            tool.insert(
                "input_schema".into(),
                f.get("parameters")
                    .cloned()
                    .unwrap_or(json!({"type": "object", "properties": {}})),
            );
            list.push(Value::Object(tool));
        }
        out.insert("tools".into(), Value::Array(list));
    }
    let parallel = req.get("parallel_tool_calls").and_then(Value::as_bool);
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            _ => return err("tool_choice", "must be auto, required, none or a function"),
        }),
        Some(c) if c["type"] == "function" => {
            let name = text_of(&c["function"]["name"], "tool_choice.function.name")?;
            Some(json!({"type": "tool", "name": name}))
        }
        Some(_) => return err("tool_choice", "must be auto, required, none or a function"),
    };
    let choice = match (choice, parallel) {
        (c, Some(false)) if req.get("tools").is_some() => {
            let mut c = c.unwrap_or(json!({"type": "auto"}));
            if c["type"] != "none" {
                c["disable_parallel_tool_use"] = json!(true);
            }
            Some(c)
        }
        (c, _) => c,
    };
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    Ok(out)
}

/// Whether an optional OpenAI setting asks for something (not absent, null, false, 0 or {}).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// OpenAI content (a string or parts) in the shape [`joined_text`] reads.
fn parts_as_blocks(content: &Value) -> Value {
    match content {
        Value::Null => json!(""),
        other => other.clone(),
    }
}

fn user_blocks(content: &Value, field: &str) -> Result<Vec<Value>> {
    match content {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let at = format!("{field}.content[{j}]");
                match p["type"].as_str() {
                    Some("text") => Ok(json!({"type": "text", "text": text_of(&p["text"], &format!("{at}.text"))?})),
                    Some("image_url") => {
                        let url = text_of(&p["image_url"]["url"], &format!("{at}.image_url.url"))?;
                        image_from_url(&url, &at)
                    }
                    other => err(
                        format!("{at}.type"),
                        format!("a `{}` part cannot be sent to an Anthropic-protocol provider", other.unwrap_or("?")),
                    ),
                }
            })
            .collect(),
        _ => err(format!("{field}.content"), "must be a string or an array of parts"),
    }
}

fn image_from_url(url: &str, at: &str) -> Result<Value> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((media, data)) = rest.split_once(";base64,") else {
            return err(format!("{at}.image_url.url"), "a data URL must be base64");
        };
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        );
    }
    Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
}

fn assistant_blocks(m: &Value, field: &str) -> Result<Vec<Value>> {
    let mut blocks = Vec::new();
    let text = match &m["content"] {
        Value::Null => String::new(),
        c => joined_text(c, &format!("{field}.content"))?,
    };
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    if let Some(Value::Array(calls)) = m.get("tool_calls") {
        for (k, c) in calls.iter().enumerate() {
            let at = format!("{field}.tool_calls[{k}]");
            let id = text_of(&c["id"], &format!("{at}.id"))?;
            let name = text_of(&c["function"]["name"], &format!("{at}.function.name"))?;
            let args = c["function"]["arguments"].as_str().unwrap_or("{}");
            let input: Value = if args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(args).map_err(|_| {
                    TranslateError::new(format!("{at}.function.arguments"), "is not JSON")
                })?
            };
            blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests;
