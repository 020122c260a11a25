//! Reading a scenario file's YAML into raw values: strict about field
//! names, types and step shapes, with every error raised while serde_yaml
//! still knows where in the file it is.

use std::collections::BTreeMap;
use std::fmt;

use rehearse_runtime::op::{Op, OP_KINDS};
use rehearse_runtime::{Constraints, PersonaSpec};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer};

use super::at::{parse_utc, At, EXAMPLE_TIME, UTC_PATTERN};
use super::model::{Expect, FORMAT_VERSION};
use super::sequence::{AdvanceStep, RepeatStep, Sequence, SEQUENCE_KINDS};

/// Every step kind: the runtime's operations, then `advance` and `repeat`.
fn step_kinds() -> impl Iterator<Item = &'static str> {
    OP_KINDS.iter().chain(SEQUENCE_KINDS.iter()).copied()
}

/// The step kinds as a list for error messages: "`trigger`, `tick`, ...".
pub(crate) fn all_kinds() -> String {
    step_kinds()
        .map(|kind| format!("`{kind}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most steps one scenario may have: generous enough for a
/// million-step load scenario.
pub const MAX_STEPS: usize = 5_000_000;

/// A scenario file as written, before names are defaulted and times resolved.
///
/// This is the type the file deserializes into, and the JSON Schema is
/// generated from it, so the two cannot disagree.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a scenario: a map with `version`, `start` and `steps`"
)]
#[schemars(
    rename = "Scenario",
    description = "A rehearse scenario: persona bindings, supervisor constraints and timed steps driven through the reference runtime."
)]
pub(crate) struct RawScenario {
    /// The format version; must be 1.
    pub version: Version,
    /// The scenario's name, `[a-z0-9_-]+`; default: the file stem.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z0-9_-]+$"), length(max = 128))]
    pub name: Option<String>,
    /// What the scenario shows, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// The scenario clock's origin, RFC 3339 UTC.
    pub start: Start,
    /// The source of every generated id; default 0.
    #[serde(default)]
    pub seed: u64,
    /// Persona bindings by name.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": "\\S" }))]
    pub personas: BTreeMap<String, PersonaSpec>,
    /// The supervisor's constraints; absent means no limits and no retries.
    #[serde(default)]
    pub supervisor: Option<Constraints>,
    /// The timed steps, in order; `at` never decreases.
    #[serde(default)]
    pub steps: Steps,
}

/// The `version` field: only [`FORMAT_VERSION`] is accepted.
#[derive(Debug)]
pub(crate) struct Version(pub u32);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "the format version `{FORMAT_VERSION}`")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Version, E> {
                if value == u64::from(FORMAT_VERSION) {
                    Ok(Version(FORMAT_VERSION))
                } else {
                    Err(E::custom(format!(
                        "unsupported scenario version `{value}`, expected `{FORMAT_VERSION}`"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Version, E> {
                Err(E::custom(format!(
                    "unsupported scenario version `{value}`, expected `{FORMAT_VERSION}`"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({ "const": FORMAT_VERSION })
    }
}

/// The `start` field: an RFC 3339 UTC timestamp, in milliseconds.
#[derive(Debug)]
pub(crate) struct Start(pub i64);

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Start;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an RFC 3339 UTC timestamp such as `{EXAMPLE_TIME}`")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Start, E> {
                parse_utc(value.trim()).map(Start).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Start {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Start".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An RFC 3339 UTC timestamp such as `2026-04-24T12:00:00Z`.",
            "type": "string",
            "format": "date-time",
            "pattern": UTC_PATTERN,
        })
    }
}

/// The `steps` list, refused once it grows past [`MAX_STEPS`].
#[derive(Debug, Default)]
pub(crate) struct Steps(pub Vec<RawStep>);

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Steps;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of steps such as `- {at: 0s, pause: NAME}`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Steps, A::Error> {
                // The hint comes from the file, so it only sizes a first allocation.
                let mut steps = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(step) = seq.next_element::<RawStep>()? {
                    if steps.len() == MAX_STEPS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_STEPS} steps, expected at most {MAX_STEPS} in one scenario"
                        )));
                    }
                    steps.push(step);
                }
                Ok(Steps(steps))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

impl JsonSchema for Steps {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Steps".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let step = generator.subschema_for::<RawStep>();
        json_schema!({
            "description": "The timed steps, in order; `at` never decreases.",
            "type": "array",
            "items": step,
            "maxItems": MAX_STEPS,
        })
    }
}

/// One step as written: `at`, at most one step kind, and an optional `expect`.
#[derive(Debug)]
pub(crate) struct RawStep {
    pub at: At,
    pub op: Option<Op>,
    pub sequence: Option<Sequence>,
    pub expect: Option<Expect>,
}

/// A key of a step map.
enum StepKey {
    At,
    Expect,
    Kind(&'static str),
}

/// Reads a step key knowing which keys the step already has, so that an
/// unknown kind, a second kind or a repeated key is reported at the key itself.
struct StepKeySeed {
    kind: Option<&'static str>,
    has_at: bool,
    has_expect: bool,
}

impl<'de> DeserializeSeed<'de> for StepKeySeed {
    type Value = StepKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<StepKey, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for StepKeySeed {
    type Value = StepKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`at`, `expect` or a step kind")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<StepKey, E> {
        let duplicate = || E::custom(format!("duplicate field `{key}` in one step"));
        match key {
            "at" if self.has_at => Err(duplicate()),
            "at" => Ok(StepKey::At),
            "expect" if self.has_expect => Err(duplicate()),
            "expect" => Ok(StepKey::Expect),
            _ => {
                let Some(kind) = step_kinds().find(|kind| *kind == key) else {
                    return Err(E::custom(format!(
                        "unknown step kind `{key}`, expected `at`, `expect` or one of {}",
                        all_kinds()
                    )));
                };
                match self.kind {
                    Some(first) if first == kind => Err(duplicate()),
                    Some(first) => Err(E::custom(format!(
                        "two step kinds `{first}` and `{kind}` in one step, expected exactly one"
                    ))),
                    None => Ok(StepKey::Kind(kind)),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawStep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step: a map with `at`, one step kind and an optional `expect`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
                let mut at = None;
                let mut op: Option<Op> = None;
                let mut sequence: Option<Sequence> = None;
                let mut expect = None;
                loop {
                    let seed = StepKeySeed {
                        kind: op
                            .as_ref()
                            .map(Op::kind)
                            .or(sequence.as_ref().map(Sequence::kind)),
                        has_at: at.is_some(),
                        has_expect: expect.is_some(),
                    };
                    let Some(key) = map.next_key_seed(seed)? else {
                        break;
                    };
                    match key {
                        StepKey::At => at = Some(map.next_value::<At>()?),
                        StepKey::Expect => expect = Some(map.next_value::<Expect>()?),
                        StepKey::Kind("advance") => {
                            sequence = Some(Sequence::Advance(map.next_value()?));
                        }
                        StepKey::Kind("repeat") => {
                            sequence = Some(Sequence::Repeat(map.next_value()?));
                        }
                        StepKey::Kind(kind) => op = Some(Op::next_body(kind, &mut map)?),
                    }
                }
                let Some(at) = at else {
                    return Err(serde::de::Error::custom(
                        "missing field `at`, expected when the step happens such as `at: 10s`",
                    ));
                };
                if op.is_none() && sequence.is_none() && expect.is_none() {
                    return Err(serde::de::Error::custom(format!(
                        "step has only `at`, expected one of {} or `expect`",
                        all_kinds()
                    )));
                }
                Ok(RawStep {
                    at,
                    op,
                    sequence,
                    expect,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl JsonSchema for RawStep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }

    /// Every step kind is a property; `oneOf` says exactly one of them (or
    /// `expect` alone) is present, so editors complete the kinds and flag a
    /// second one.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let at = generator.subschema_for::<At>();
        let expect = generator.subschema_for::<Expect>();
        let mut bodies = Op::body_schemas(generator);
        bodies.push(("advance", generator.subschema_for::<AdvanceStep>()));
        bodies.push(("repeat", generator.subschema_for::<RepeatStep>()));
        let mut properties = serde_json::Map::new();
        properties.insert("at".to_owned(), at.into());
        for (kind, body) in &bodies {
            properties.insert((*kind).to_owned(), body.clone().into());
        }
        properties.insert("expect".to_owned(), expect.into());
        let any_kind: Vec<serde_json::Value> = bodies
            .iter()
            .map(|(kind, _)| serde_json::json!({ "required": [kind] }))
            .collect();
        let mut one_of = any_kind.clone();
        one_of.push(serde_json::json!({
            "required": ["expect"],
            "not": { "anyOf": any_kind },
        }));
        json_schema!({
            "description": "One timed step: `at`, exactly one step kind (or none, with `expect`), and an optional `expect`.",
            "type": "object",
            "properties": properties,
            "required": ["at"],
            "additionalProperties": false,
            "oneOf": one_of,
        })
    }
}
