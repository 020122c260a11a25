//! Steps that stand for many external events: `advance` fires the personas'
//! cron schedules over a stretch of time, `repeat` runs one trigger or tick
//! many times. Each expands, when the step runs, into ticks and triggers at
//! their own times, each its own supervisor episode.

use std::collections::BTreeMap;
use std::fmt;

use rehearse_runtime::op::{
    is_completed, is_zero_cost, is_zero_millis, Cost, Op, Outcome, TickOp, TriggerOp,
};
use rehearse_runtime::schedule::Schedule;
use rehearse_runtime::{Millis, PersonaSpec};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most external events one `advance` or `repeat` step may expand into.
pub const MAX_EXPANSION: u64 = 1_000_000;

/// An `advance` or a `repeat` step.
#[derive(Clone, Debug, PartialEq)]
pub enum Sequence {
    Advance(AdvanceStep),
    Repeat(RepeatStep),
}

/// The step kinds that expand into many events.
pub const SEQUENCE_KINDS: [&str; 2] = ["advance", "repeat"];

/// `advance: {cost?, outcome?, duration?}`: every schedule occurrence of
/// every persona after the previous step's time and at or before this
/// step's, each a tick at its own time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an advance such as `{cost: {usd: 0.01}}` or `{}`"
)]
pub struct AdvanceStep {
    /// What each tick spends; default zero.
    #[serde(default, skip_serializing_if = "is_zero_cost")]
    pub cost: Cost,
    /// How each tick's run ends; default `completed`.
    #[serde(default, skip_serializing_if = "is_completed")]
    pub outcome: Outcome,
    /// How long each tick's attempt runs; default `0s`.
    #[serde(default, skip_serializing_if = "is_zero_millis")]
    pub duration: Millis,
}

/// What a `repeat` step runs each time.
#[derive(Clone, Debug, PartialEq)]
pub enum Repeated {
    Trigger(TriggerOp),
    Tick(TickOp),
}

/// `repeat: {times, every, trigger | tick}`.
#[derive(Clone, Debug, PartialEq)]
pub struct RepeatStep {
    /// How many repetitions, at least 1.
    pub times: u64,
    /// The time between two repetitions.
    pub every: Millis,
    pub body: Repeated,
}

impl Sequence {
    /// The step-kind name: `advance` or `repeat`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Advance(_) => "advance",
            Self::Repeat(_) => "repeat",
        }
    }

    /// When the step's last event happens, for a step at `at_ms`: the last
    /// repetition of a `repeat`; `at_ms` itself for an `advance`.
    pub fn end_ms(&self, at_ms: i64) -> i64 {
        match self {
            Self::Advance(_) => at_ms,
            Self::Repeat(repeat) => {
                let span = i64::try_from(repeat.times.saturating_sub(1))
                    .unwrap_or(i64::MAX)
                    .saturating_mul(repeat.every.as_i64());
                at_ms.saturating_add(span)
            }
        }
    }

    /// The persona a `repeat` names.
    pub fn persona(&self) -> Option<&str> {
        match self {
            Self::Advance(_) => None,
            Self::Repeat(repeat) => Some(match &repeat.body {
                Repeated::Trigger(trigger) => &trigger.persona,
                Repeated::Tick(tick) => &tick.persona,
            }),
        }
    }

    /// The events the step stands for, in order, each with its time: for
    /// `advance`, the schedule occurrences in `(after_ms, at_ms]`, in time
    /// order and then by persona name (one tick per persona and instant,
    /// however many of its schedules fall on it); for `repeat`, the
    /// repetitions, made one at a time as they are run. An error when there
    /// would be more than [`MAX_EXPANSION`].
    pub fn expand<'s>(
        &'s self,
        personas: &BTreeMap<String, PersonaSpec>,
        after_ms: i64,
        at_ms: i64,
    ) -> Result<Box<dyn Iterator<Item = (i64, Op)> + 's>, TooManyOccurrences> {
        Ok(match self {
            Self::Advance(advance) => {
                Box::new(advance_ticks(advance, personas, after_ms, at_ms)?.into_iter())
            }
            Self::Repeat(repeat) => Box::new(repetitions(repeat, at_ms)),
        })
    }
}

/// An `advance` over more schedule occurrences than a step may expand to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`advance` would fire more than {MAX_EXPANSION} schedule occurrences, expected a shorter stretch of time")]
pub struct TooManyOccurrences;

fn advance_ticks(
    advance: &AdvanceStep,
    personas: &BTreeMap<String, PersonaSpec>,
    after_ms: i64,
    at_ms: i64,
) -> Result<Vec<(i64, Op)>, TooManyOccurrences> {
    let mut due: Vec<(i64, &str)> = Vec::new();
    for (name, spec) in personas {
        for expression in &spec.schedules {
            let Ok(schedule) = Schedule::parse(expression) else {
                continue;
            };
            let mut cursor = after_ms;
            while let Some(next) = schedule.next_after(cursor).filter(|next| *next <= at_ms) {
                if due.len() as u64 >= MAX_EXPANSION {
                    return Err(TooManyOccurrences);
                }
                due.push((next, name.as_str()));
                cursor = next;
            }
        }
    }
    due.sort_unstable();
    due.dedup();
    Ok(due
        .into_iter()
        .map(|(at, persona)| {
            let tick = TickOp {
                persona: persona.to_owned(),
                cost: advance.cost.clone(),
                outcome: advance.outcome.clone(),
                duration: advance.duration,
            };
            (at, Op::Tick(tick))
        })
        .collect())
}

fn repetitions(repeat: &RepeatStep, at_ms: i64) -> impl Iterator<Item = (i64, Op)> + '_ {
    (1..=repeat.times).map(move |i| {
        let offset = i64::try_from(i - 1)
            .unwrap_or(i64::MAX)
            .saturating_mul(repeat.every.as_i64());
        let op = match &repeat.body {
            Repeated::Trigger(trigger) => {
                let mut trigger = trigger.clone();
                for value in std::sync::Arc::make_mut(&mut trigger.metadata).values_mut() {
                    *value = number(value, i);
                }
                number_cost(&mut trigger.cost, i);
                Op::Trigger(trigger)
            }
            Repeated::Tick(tick) => {
                let mut tick = tick.clone();
                number_cost(&mut tick.cost, i);
                Op::Tick(tick)
            }
        };
        (at_ms.saturating_add(offset), op)
    })
}

/// `{i}` in a metadata string replaced by the repetition number.
fn number(text: &str, i: u64) -> String {
    if text.contains("{i}") {
        text.replace("{i}", &i.to_string())
    } else {
        text.to_owned()
    }
}

fn number_cost(cost: &mut Cost, i: u64) {
    for value in cost.metadata.values_mut() {
        number_json(value, i);
    }
}

fn number_json(value: &mut serde_json::Value, i: u64) {
    match value {
        serde_json::Value::String(text) => *text = number(text, i),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| number_json(v, i)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| number_json(v, i)),
        _ => {}
    }
}

impl Serialize for RepeatStep {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("times", &self.times)?;
        map.serialize_entry("every", &self.every)?;
        match &self.body {
            Repeated::Trigger(trigger) => map.serialize_entry("trigger", trigger)?,
            Repeated::Tick(tick) => map.serialize_entry("tick", tick)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RepeatStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RepeatVisitor)
    }
}

struct RepeatVisitor;

/// For an error of `repeat`'s own (which serde places at the start of the
/// `repeat` map), the keys it is about and whether it is about their value:
/// `times` out of range (its value), both `trigger` and `tick` (the later
/// key), an unknown field (that key).
pub(crate) fn repeat_error_keys(message: &str) -> Option<(Vec<&str>, bool)> {
    if message.starts_with("`times` of ") {
        return Some((vec!["times"], true));
    }
    if message.starts_with(BOTH_BODIES) {
        return Some((vec!["trigger", "tick"], false));
    }
    let field = message.strip_prefix("unknown field `")?;
    let (field, rest) = field.split_once('`')?;
    rest.starts_with(" in `repeat`")
        .then(|| (vec![field], false))
}

const BOTH_BODIES: &str = "both `trigger` and `tick` in `repeat`";

const REPEAT_FIELDS: &str = "`times`, `every`, `trigger` or `tick`";

impl<'de> Visitor<'de> for RepeatVisitor {
    type Value = RepeatStep;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a repeat such as `{times: 10, every: 1m, trigger: {...}}`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RepeatStep, A::Error> {
        use serde::de::Error;
        let mut times = None;
        let mut every = None;
        let mut body: Option<Repeated> = None;
        while let Some(key) = map.next_key::<String>()? {
            let duplicate = || A::Error::custom(format!("duplicate field `{key}` in `repeat`"));
            match key.as_str() {
                "times" if times.is_some() => return Err(duplicate()),
                "times" => {
                    let value: u64 = map.next_value()?;
                    if value == 0 || value > MAX_EXPANSION {
                        return Err(A::Error::custom(format!(
                            "`times` of {value}, expected from 1 to {MAX_EXPANSION}"
                        )));
                    }
                    times = Some(value);
                }
                "every" if every.is_some() => return Err(duplicate()),
                "every" => every = Some(map.next_value::<Millis>()?),
                "trigger" | "tick" if body.is_some() => {
                    return Err(A::Error::custom(format!(
                        "{BOTH_BODIES}, expected exactly one"
                    )))
                }
                "trigger" => body = Some(Repeated::Trigger(map.next_value()?)),
                "tick" => body = Some(Repeated::Tick(map.next_value()?)),
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown field `{other}` in `repeat`, expected {REPEAT_FIELDS}"
                    )))
                }
            }
        }
        let missing = |field: &str, example: &str| {
            A::Error::custom(format!(
                "missing field `{field}` in `repeat`, expected {example}"
            ))
        };
        Ok(RepeatStep {
            times: times.ok_or_else(|| missing("times", "a count such as `times: 10`"))?,
            every: every.ok_or_else(|| missing("every", "a duration such as `every: 1m`"))?,
            body: body.ok_or_else(|| {
                A::Error::custom("`repeat` without `trigger` or `tick`, expected exactly one")
            })?,
        })
    }
}

impl JsonSchema for RepeatStep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RepeatStep".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let every = generator.subschema_for::<Millis>();
        let trigger = generator.subschema_for::<TriggerOp>();
        let tick = generator.subschema_for::<TickOp>();
        json_schema!({
            "description": "Runs one trigger or tick `times` times, the first at the step's `at`, then `every` apart; `{i}` in metadata strings is the repetition number (from 1).",
            "type": "object",
            "properties": {
                "times": { "type": "integer", "minimum": 1, "maximum": MAX_EXPANSION },
                "every": every,
                "trigger": trigger,
                "tick": tick,
            },
            "required": ["times", "every"],
            "additionalProperties": false,
            "oneOf": [
                { "required": ["trigger"] },
                { "required": ["tick"] },
            ],
        })
    }
}

/// A `Sequence`'s body alone, for writing it beside `at` and `expect`.
pub(crate) struct SequenceBody<'a>(pub &'a Sequence);

impl Serialize for SequenceBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Sequence::Advance(advance) => advance.serialize(serializer),
            Sequence::Repeat(repeat) => repeat.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_numbers_metadata_and_spaces_times() {
        let repeat = RepeatStep {
            times: 3,
            every: Millis(1000),
            body: Repeated::Trigger(TriggerOp {
                persona: "p".into(),
                provider: "webhook".into(),
                kind: "push".into(),
                metadata: BTreeMap::from([("dedupe_key".to_owned(), "k-{i}".to_owned())]).into(),
                cost: Cost::default(),
                outcome: Outcome::Completed,
                duration: Millis(0),
            }),
        };
        let events: Vec<(i64, Op)> = repetitions(&repeat, 10).collect();
        let times: Vec<i64> = events.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [10, 1010, 2010]);
        let Op::Trigger(third) = &events[2].1 else {
            panic!("a trigger")
        };
        assert_eq!(third.metadata["dedupe_key"], "k-3");
        assert_eq!(Sequence::Repeat(repeat).end_ms(10), 2010);
    }
}
