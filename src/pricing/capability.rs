//! What a model can do, as its sheet lists it (`supports = ["tools", "vision", ...]`), and
//! what a request needs of it: the same names, kept as a small bit set so checking a
//! candidate is one AND.
//!
//! A sheet without `supports` says nothing: whether such a model counts as capable is the
//! `[routing] unknown_capabilities` setting (default: capable, as before sheets listed any).

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// One thing a model can do that a request may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Function calling: a request with `tools`.
    Tools,
    /// A forced tool choice (`tool_choice` other than `auto`).
    ToolChoice,
    /// `parallel_tool_calls`.
    ParallelToolCalls,
    /// `response_format: {"type": "json_object"}`.
    JsonObject,
    /// `response_format: {"type": "json_schema"}` (structured outputs).
    JsonSchema,
    /// Image parts in the prompt.
    Vision,
    /// PDF (file) parts in the prompt.
    Pdf,
    /// Reasoning options (`reasoning_effort`, `reasoning`, Anthropic's `thinking`).
    Reasoning,
    /// Prompt caching (cache prices apply).
    PromptCaching,
    /// OpenAI's Responses API.
    Responses,
}

impl Capability {
    pub const ALL: [Capability; 10] = [
        Capability::Tools,
        Capability::ToolChoice,
        Capability::ParallelToolCalls,
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Vision,
        Capability::Pdf,
        Capability::Reasoning,
        Capability::PromptCaching,
        Capability::Responses,
    ];

    /// The name sheets, errors and decision records use.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::ToolChoice => "tool_choice",
            Capability::ParallelToolCalls => "parallel_tool_calls",
            Capability::JsonObject => "json_object",
            Capability::JsonSchema => "json_schema",
            Capability::Vision => "vision",
            Capability::Pdf => "pdf",
            Capability::Reasoning => "reasoning",
            Capability::PromptCaching => "prompt_caching",
            Capability::Responses => "responses",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u16 {
        1 << Capability::ALL
            .iter()
            .position(|c| *c == self)
            .expect("every capability is in ALL")
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);

    pub fn with(self, c: Capability) -> Capabilities {
        Capabilities(self.0 | c.bit())
    }

    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    pub fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// What `self` has that `other` lacks, in [`Capability::ALL`]'s order.
    pub fn missing_from(self, other: Capabilities) -> impl Iterator<Item = Capability> {
        let lacking = self.0 & !other.0;
        Capability::ALL
            .into_iter()
            .filter(move |c| lacking & c.bit() != 0)
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Capabilities::NONE, Capabilities::with)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Capability::name).collect();
        f.write_str(&names.join(", "))
    }
}

/// Written as a list of names, in [`Capability::ALL`]'s order.
impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for c in self.iter() {
            seq.serialize_element(c.name())?;
        }
        seq.end()
    }
}

/// Read from a list of names; an unknown name is an error that lists the known ones.
impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = Capabilities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of capability names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capabilities, A::Error> {
                let mut set = Capabilities::NONE;
                while let Some(name) = seq.next_element::<String>()? {
                    let c = Capability::from_name(&name).ok_or_else(|| {
                        let known: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
                        de::Error::custom(format!(
                            "unknown capability `{name}` in `supports` (known: {})",
                            known.join(", ")
                        ))
                    })?;
                    set = set.with(c);
                }
                Ok(set)
            }
        }
        d.deserialize_seq(Names)
    }
}

/// LiteLLM's `supports_*` flags of one table entry (and `supported_endpoints` for the
/// Responses API); `None` when the entry has none (nothing known). A flag the entry lacks
/// counts as unsupported once it has any, as LiteLLM lists only what a model does.
/// `supports_response_schema` gives both JSON modes (the table has no flag for plain JSON
/// mode); `supports_native_streaming` names no need and is not read.
pub fn from_litellm(entry: &serde_json::Value) -> Option<Capabilities> {
    const FLAGS: [(&str, Capability); 9] = [
        ("supports_function_calling", Capability::Tools),
        ("supports_tool_choice", Capability::ToolChoice),
        (
            "supports_parallel_function_calling",
            Capability::ParallelToolCalls,
        ),
        ("supports_response_schema", Capability::JsonSchema),
        ("supports_response_schema", Capability::JsonObject),
        ("supports_vision", Capability::Vision),
        ("supports_pdf_input", Capability::Pdf),
        ("supports_reasoning", Capability::Reasoning),
        ("supports_prompt_caching", Capability::PromptCaching),
    ];
    let listed = FLAGS.iter().any(|(flag, _)| entry.get(flag).is_some());
    let mut set: Capabilities = FLAGS
        .iter()
        .filter(|(flag, _)| entry[flag].as_bool() == Some(true))
        .map(|(_, c)| *c)
        .collect();
    let endpoints = entry["supported_endpoints"].as_array();
    if endpoints.is_some_and(|e| e.iter().any(|v| v == "/v1/responses")) {
        set = set.with(Capability::Responses);
    }
    (listed || endpoints.is_some()).then_some(set)
}

/// OpenRouter's `supported_parameters` (and input modalities, cache prices) of one model;
/// `None` without `supported_parameters`.
pub fn from_openrouter(entry: &serde_json::Value) -> Option<Capabilities> {
    const PARAMETERS: [(&str, Capability); 7] = [
        ("tools", Capability::Tools),
        ("tool_choice", Capability::ToolChoice),
        ("parallel_tool_calls", Capability::ParallelToolCalls),
        ("response_format", Capability::JsonObject),
        ("structured_outputs", Capability::JsonSchema),
        ("reasoning", Capability::Reasoning),
        ("include_reasoning", Capability::Reasoning),
    ];
    let params = entry["supported_parameters"].as_array()?;
    let has = |name: &str| params.iter().any(|p| p == name);
    let mut set: Capabilities = PARAMETERS
        .iter()
        .filter(|(p, _)| has(p))
        .map(|(_, c)| *c)
        .collect();
    let inputs = entry["architecture"]["input_modalities"].as_array();
    let takes = |m: &str| inputs.is_some_and(|i| i.iter().any(|v| v == m));
    if takes("image") {
        set = set.with(Capability::Vision);
    }
    if takes("file") {
        set = set.with(Capability::Pdf);
    }
    if entry["pricing"]["input_cache_read"].is_string() {
        set = set.with(Capability::PromptCaching);
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        let set: Capabilities = [Capability::Vision, Capability::Tools]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&set).expect("serializes");
        assert_eq!(json, r#"["tools","vision"]"#);
        assert_eq!(serde_json::from_str::<Capabilities>(&json).ok(), Some(set));
        let err = serde_json::from_str::<Capabilities>(r#"["tools","telepathy"]"#).unwrap_err();
        assert!(err.to_string().contains("telepathy"), "{err}");
        let needs = set.with(Capability::Pdf);
        let lacking: Vec<_> = needs.missing_from(set).collect();
        assert_eq!(lacking, [Capability::Pdf]);
        assert_eq!(needs.to_string(), "tools, vision, pdf");
    }
}
