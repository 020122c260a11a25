//! The event vocabulary's machinery: one table per topic names each event
//! kind once and binds it to its payload type, and [`event_enum!`] turns the
//! table into the topic's enum with its kind names, its payload encoding,
//! its decoding from a stored event and the JSON Schema of every payload.
//!
//! The topics' tables are in `persona/events.rs` ([`crate::persona::PersonaEvent`]),
//! `pipeline.rs` ([`crate::pipeline::PipelineEvent`]) and
//! `process/events.rs` ([`crate::process::ProcessEvent`]); docs/EVENTS.md
//! describes every kind and [`vocabulary_schema`] publishes them.

use schemars::generate::SchemaSettings;
use schemars::Schema;
use serde_json::{json, Value};

/// Why a stored event of a known kind could not be read as its payload type.
#[derive(Debug, thiserror::Error)]
#[error("malformed `{kind}` payload: {source}")]
pub struct DecodeError {
    pub kind: String,
    #[source]
    pub source: serde_json::Error,
}

/// Reads `payload` as `T` from its text. A payload that does not read is
/// read again from its value, for the error: it names the field at fault
/// without a position in a text the reader never wrote.
pub(crate) fn decode_payload<T: serde::de::DeserializeOwned>(
    kind: &str,
    payload: &crate::log::Payload,
) -> Result<T, DecodeError> {
    payload.decode().or_else(|_| {
        <T as serde::Deserialize>::deserialize(payload.value()).map_err(|source| DecodeError {
            kind: kind.to_string(),
            source,
        })
    })
}

/// A payload type: how it writes its canonical JSON (`canonical.rs`).
/// Through serde by default; the payloads every trigger logs override
/// [`EncodePayload::write_payload`] with a hand-written writer
/// (`json_out.rs`), and the tests of `persona/events.rs` hold the two paths
/// to the same bytes.
pub trait EncodePayload: serde::Serialize {
    /// Appends the payload's canonical JSON to `out`.
    fn write_payload(&self, out: &mut Vec<u8>) {
        crate::canonical::write(self, out).expect("an event payload serialises to JSON");
    }

    /// The payload, serialised once.
    fn encode_payload(&self) -> crate::log::Payload {
        crate::log::Payload::written(|out| self.write_payload(out))
    }
}

/// Payload types written through serde: `serde_payloads!(A, B<C>, ...)`.
macro_rules! serde_payloads {
    ($($payload:ty),* $(,)?) => {
        $( impl $crate::event::EncodePayload for $payload {} )*
    };
}

pub(crate) use serde_payloads;

/// Defines a topic's event enum from its table: `Variant(Payload) = KIND,`.
/// `KIND` is written only here; everything else asks the enum.
macro_rules! event_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($payload:ty) = $kind:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant($payload), )*
        }

        impl $name {
            /// Every kind of the topic, in table order.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// The event's kind on the log.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $kind, )*
                }
            }

            /// The event's payload as it is logged: serialised once, to
            /// canonical JSON.
            pub fn payload(&self) -> $crate::log::Payload {
                match self {
                    $( Self::$variant(body) => $crate::event::EncodePayload::encode_payload(body), )*
                }
            }

            /// Appends [`Self::payload`]'s text to `out`.
            pub fn write_payload(&self, out: &mut Vec<u8>) {
                match self {
                    $( Self::$variant(body) => $crate::event::EncodePayload::write_payload(body, out), )*
                }
            }

            /// [`Self::payload`] through serde, whatever the payload type's
            /// own writer: what a hand-written writer must match.
            #[cfg(test)]
            pub fn payload_through_serde(&self) -> $crate::log::Payload {
                match self {
                    $( Self::$variant(body) => $crate::log::Payload::encode(body), )*
                }
            }

            /// Reads a payload of `kind`: `None` for a kind this table does
            /// not hold, an error for a payload of the wrong shape.
            pub fn decode(
                kind: &str,
                payload: &$crate::log::Payload,
            ) -> Option<Result<Self, $crate::event::DecodeError>> {
                $(
                    if kind == $kind {
                        return Some(
                            $crate::event::decode_payload::<$payload>(kind, payload)
                                .map(Self::$variant),
                        );
                    }
                )*
                None
            }

            /// The JSON Schema of each kind's payload, in table order.
            pub fn payload_schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, schemars::Schema)> {
                vec![$( ($kind, generator.subschema_for::<$payload>()), )*]
            }
        }
    };
}

pub(crate) use event_enum;

/// Every topic the runtime writes, with its kinds, in the order of
/// [`vocabulary_schema`].
pub fn vocabulary() -> [(&'static str, &'static [&'static str]); 3] {
    [
        (
            crate::persona::PERSONA_TOPIC,
            crate::persona::PersonaEvent::KINDS,
        ),
        (
            crate::pipeline::LIFECYCLE_AUDIT_TOPIC,
            crate::pipeline::PipelineEvent::KINDS,
        ),
        (
            crate::process::PROCESS_TOPIC,
            crate::process::ProcessEvent::KINDS,
        ),
    ]
}

/// The version of the event vocabulary [`vocabulary_schema`] describes.
pub const EVENTS_SCHEMA_ID: &str = "rehearse-events/2";

/// The JSON Schema (draft-07) of every event the runtime writes: one
/// alternative per kind, each fixing `topic` and `kind` and describing
/// `payload`. A line of `events.jsonl` validates against it.
pub fn vocabulary_schema() -> Schema {
    let mut generator = SchemaSettings::draft07().into_generator();
    let topics: [(&str, Vec<(&str, Schema)>); 3] = [
        (
            crate::persona::PERSONA_TOPIC,
            crate::persona::PersonaEvent::payload_schemas(&mut generator),
        ),
        (
            crate::pipeline::LIFECYCLE_AUDIT_TOPIC,
            crate::pipeline::PipelineEvent::payload_schemas(&mut generator),
        ),
        (
            crate::process::PROCESS_TOPIC,
            crate::process::ProcessEvent::payload_schemas(&mut generator),
        ),
    ];
    let alternatives: Vec<Value> = topics
        .iter()
        .flat_map(|(topic, kinds)| {
            kinds
                .iter()
                .map(move |(kind, payload)| (topic, kind, payload))
        })
        .map(|(topic, kind, payload)| {
            json!({
                "title": kind,
                "type": "object",
                "properties": {
                    "topic": { "const": topic },
                    "kind": { "const": kind },
                    "payload": payload,
                },
                "required": ["topic", "kind", "payload"],
            })
        })
        .collect();
    let definitions = generator.take_definitions(true);
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": EVENTS_SCHEMA_ID,
        "title": "rehearse runtime events, vocabulary version 2",
        "description": "One line of events.jsonl: an event of a known topic and kind with its payload. Every kind is listed in docs/EVENTS.md.",
        "type": "object",
        "properties": {
            "topic": { "type": "string" },
            "id": { "type": "integer", "minimum": 1 },
            "kind": { "type": "string" },
            "headers": { "type": "object", "additionalProperties": { "type": "string" } },
            "occurred_at_ms": { "type": "integer" },
        },
        "oneOf": alternatives,
        "definitions": definitions,
    });
    Schema::try_from(schema).expect("the vocabulary schema is an object")
}

/// The vocabulary schema as pretty JSON with a final newline.
pub fn vocabulary_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&vocabulary_schema()).expect("a JSON Schema serialises");
    text.push('\n');
    text
}

/// Reads a shared text (`#[serde(deserialize_with = "...")]` on an
/// `Arc<str>` field) as serde reads a `String`, with its errors, straight
/// into one allocation: serde's own `Arc<str>` reads a `Box<str>` and
/// copies it into a second.
pub(crate) fn shared_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::sync::Arc<str>, D::Error> {
    struct Text;

    impl serde::de::Visitor<'_> for Text {
        type Value = std::sync::Arc<str>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(text.into())
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            match std::str::from_utf8(bytes) {
                Ok(text) => Ok(text.into()),
                Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(bytes), &self)),
            }
        }
    }

    deserializer.deserialize_string(Text)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    /// A shared text reads what a `String` reads, and refuses what it
    /// refuses with the same message, from JSON, YAML and a `Value`.
    #[test]
    fn a_shared_text_reads_as_a_string_does() {
        fn same<'de, D: serde::Deserializer<'de>>(ours: D, theirs: D, text: &str)
        where
            D::Error: std::fmt::Display,
        {
            let ours = super::shared_text(ours).map(|t| t.to_string());
            let theirs = String::deserialize(theirs);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{text}: {:?} vs {:?}", ours.is_ok(), theirs.is_ok()),
            }
        }
        for text in [
            r#""x""#,
            r#""é\n\u0041""#,
            r#""""#,
            "5",
            "-1.5",
            "null",
            "true",
            "[1]",
            r#"{"a":1}"#,
        ] {
            let mut a = serde_json::Deserializer::from_str(text);
            let mut b = serde_json::Deserializer::from_str(text);
            same(&mut a, &mut b, text);
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            same(value.clone(), value, text);
            same(
                serde_yaml::Deserializer::from_str(text),
                serde_yaml::Deserializer::from_str(text),
                text,
            );
        }
    }
}
