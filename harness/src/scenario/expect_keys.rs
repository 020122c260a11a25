//! The value types of the expectation keys added to format v1: event
//! matchers (`events`, `events_include`) and the process selector
//! (`process: {id, <path>: value}`).

use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One expected event: its kind alone, or `{kind, topic?, headers?,
/// payload?}` where `headers` and `payload` match as subsets.
#[derive(Clone, Debug, PartialEq)]
pub enum EventMatch {
    Kind(String),
    Full(EventPattern),
}

/// The map form of an expected event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an event such as `{kind: persona.run.completed, payload: {status: completed}}`"
)]
pub struct EventPattern {
    /// The event kind, such as `persona.run.completed`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// The topic, such as `persona.runtime.events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Headers the event must have (others may be present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Value>>,
    /// A subset of the payload: nested maps as subsets, lists element by element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl EventMatch {
    /// The kind this item expects.
    pub fn kind(&self) -> &str {
        match self {
            Self::Kind(kind) => kind,
            Self::Full(pattern) => &pattern.kind,
        }
    }

    /// The item as JSON, for reports.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an event matcher serialises")
    }
}

impl Serialize for EventMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Kind(kind) => serializer.serialize_str(kind),
            Self::Full(pattern) => pattern.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EventMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = EventMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event kind such as `persona.run.completed` or a map `{kind, topic?, headers?, payload?}`")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<EventMatch, E> {
                if value.trim().is_empty() {
                    return Err(E::custom(
                        "empty event kind, expected a kind such as `persona.run.completed`",
                    ));
                }
                Ok(EventMatch::Kind(value.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EventMatch, A::Error> {
                let pattern =
                    EventPattern::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if pattern.kind.trim().is_empty() {
                    return Err(serde::de::Error::custom(
                        "empty event kind, expected a kind such as `persona.run.completed`",
                    ));
                }
                Ok(EventMatch::Full(pattern))
            }
        }
        deserializer.deserialize_any(EventVisitor)
    }
}

impl JsonSchema for EventMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventMatch".into()
    }

    /// Kinds and topics are those of the runtime's typed vocabulary
    /// (`rehearse_runtime::event::vocabulary`), as lint checks them; with
    /// `topic`, the kind is one of that topic's.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let pattern = generator.subschema_for::<EventPattern>();
        let vocabulary = rehearse_runtime::event::vocabulary();
        let all: Vec<&str> = vocabulary
            .iter()
            .flat_map(|(_, kinds)| kinds.iter().copied())
            .collect();
        let mut forms: Vec<Value> = vec![serde_json::json!({
            "properties": { "kind": { "enum": all } },
            "not": { "required": ["topic"] },
        })];
        forms.extend(vocabulary.iter().map(|(topic, kinds)| {
            serde_json::json!({
                "properties": { "topic": { "const": topic }, "kind": { "enum": kinds } },
                "required": ["topic"],
            })
        }));
        json_schema!({
            "description": "An expected event: its kind, or `{kind, topic?, headers?, payload?}` with `headers` and `payload` matched as subsets.",
            "oneOf": [
                { "type": "string", "enum": all },
                { "allOf": [pattern, { "anyOf": forms }] },
            ],
        })
    }
}

/// `process: {id: ID, <path>: value}`: one process record and dotted paths
/// into it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessExpect {
    pub id: String,
    pub paths: BTreeMap<String, Value>,
}

impl Serialize for ProcessExpect {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.paths.len() + 1))?;
        map.serialize_entry("id", &self.id)?;
        for (path, value) in &self.paths {
            map.serialize_entry(path, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ProcessExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProcessVisitor;
        impl<'de> Visitor<'de> for ProcessVisitor {
            type Value = ProcessExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map such as `{id: proc-1, status: completed}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProcessExpect, A::Error> {
                let mut id = None;
                let mut paths = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "id" {
                        let value: String = map.next_value()?;
                        if value.trim().is_empty() {
                            return Err(serde::de::Error::custom(
                                "empty process `id`, expected the id of a registered process",
                            ));
                        }
                        id = Some(value);
                    } else {
                        let value: Value = map.next_value()?;
                        paths.insert(key, value);
                    }
                }
                let Some(id) = id else {
                    return Err(serde::de::Error::custom(
                        "missing field `id`, expected the process to compare such as `{id: proc-1, status: completed}`",
                    ));
                };
                Ok(ProcessExpect { id, paths })
            }
        }
        deserializer.deserialize_map(ProcessVisitor)
    }
}

impl JsonSchema for ProcessExpect {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProcessExpect".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`{id: ID, <path>: value}`: dotted paths into the process record with this id.",
            "type": "object",
            "properties": { "id": { "type": "string", "minLength": 1 } },
            "required": ["id"],
            "additionalProperties": true,
        })
    }
}
