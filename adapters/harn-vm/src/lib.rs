//! What the adapter binaries share: rehearse's configuration and operation
//! JSON turned into the upstream's arguments (`PersonaRuntimeBinding`,
//! `PersonaRunCost`), and event logs moved between the two shapes (a line of
//! rehearse's `events.jsonl` and the upstream's `LogEvent`).
//!
//! The formats are rehearse's: `docs/FORMATS.md` (`capture.json`'s `config`,
//! `events.jsonl`) and `docs/SCENARIOS.md` (the operations).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

use harn_vm::event_log::{AnyEventLog, EventLog, LogEvent, MemoryEventLog, Topic};
use harn_vm::{
    format_persona_ms, parse_persona_ms, PersonaBudgetPolicy, PersonaRunCost, PersonaRuntimeBinding,
};
pub use rehearse_adapter_common::{duration_ms, read_line, MAX_LINE_BYTES};
use serde_json::{json, Value};

/// The persona topic, the only one the upstream's persona runtime writes.
pub const PERSONA_TOPIC: &str = "persona.runtime.events";

/// The upstream's lease TTL, fixed: its public API takes no other.
pub const UPSTREAM_LEASE_TTL_MS: u64 = 5 * 60 * 1000;

/// Refuses a configuration the upstream's public API cannot drive: a
/// persona whose lease TTL is not the upstream's fixed 5 minutes. (A log
/// with other TTLs still folds: the TTL is in each lease's `expires_at_ms`.)
pub fn drivable(config: &Value) -> Result<(), String> {
    let personas = config.get("personas").and_then(Value::as_object);
    for (name, spec) in personas.into_iter().flatten() {
        if let Some(ttl) = spec.get("lease_ttl").filter(|ttl| !ttl.is_null()) {
            let ms = duration_ms(ttl)?;
            if ms != UPSTREAM_LEASE_TTL_MS {
                return Err(format!(
                    "persona `{name}` has a lease TTL of {ms} ms; the upstream's public API has only its fixed 5 minutes"
                ));
            }
        }
    }
    Ok(())
}

/// The upstream binding of persona `name` from its rehearse spec (a value of
/// `capture.json`'s `config.personas`).
pub fn binding(name: &str, spec: &Value) -> Result<PersonaRuntimeBinding, String> {
    let text = |key: &str| spec.get(key).and_then(Value::as_str).map(str::to_string);
    let budget = spec.get("budget").cloned().unwrap_or(Value::Null);
    let usd = |key: &str| budget.get(key).and_then(Value::as_f64);
    Ok(PersonaRuntimeBinding {
        name: name.to_string(),
        template_ref: text("template_ref"),
        entry_workflow: text("entry_workflow").unwrap_or_default(),
        schedules: spec
            .get("schedules")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        triggers: Vec::new(),
        budget: PersonaBudgetPolicy {
            daily_usd: usd("daily_usd"),
            hourly_usd: usd("hourly_usd"),
            run_usd: usd("run_usd"),
            max_tokens: budget.get("max_tokens").and_then(Value::as_u64),
        },
        stages: Vec::new(),
    })
}

/// The binding `harn-fixture` drives the upstream with (committed beside
/// its log as `harness/tests/data/audit/upstream/*.bindings.yaml`).
pub fn fixture_binding() -> PersonaRuntimeBinding {
    PersonaRuntimeBinding {
        name: "merge_captain".to_string(),
        template_ref: Some("software_factory@v0".to_string()),
        entry_workflow: "workflows/merge.harn#run".to_string(),
        schedules: vec!["*/30 * * * *".to_string()],
        triggers: vec![],
        budget: PersonaBudgetPolicy {
            daily_usd: Some(0.05),
            hourly_usd: None,
            run_usd: Some(0.02),
            max_tokens: Some(100),
        },
        stages: Vec::new(),
    }
}

/// Every persona of a rehearse configuration, by name.
pub fn bindings(config: &Value) -> Result<BTreeMap<String, PersonaRuntimeBinding>, String> {
    let personas = config
        .get("personas")
        .and_then(Value::as_object)
        .ok_or("the configuration has no `personas` map")?;
    personas
        .iter()
        .map(|(name, spec)| Ok((name.clone(), binding(name, spec)?)))
        .collect()
}

/// The upstream's run cost of a rehearse `cost` (absent is zero).
pub fn cost(value: Option<&Value>) -> PersonaRunCost {
    let value = value.cloned().unwrap_or(Value::Null);
    let number = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let count = |key: &str| value.get(key).and_then(Value::as_i64).unwrap_or(0);
    PersonaRunCost {
        cost_usd: number("usd"),
        tokens: value.get("tokens").and_then(Value::as_u64).unwrap_or(0),
        avoided_cost_usd: number("avoided_usd"),
        deterministic_steps: count("deterministic_steps"),
        llm_steps: count("llm_steps"),
        frontier_escalations: count("frontier_escalations"),
        metadata: value.get("metadata").cloned().unwrap_or(Value::Null),
    }
}

/// A fresh in-memory upstream log.
pub fn memory_log() -> Arc<AnyEventLog> {
    Arc::new(AnyEventLog::Memory(MemoryEventLog::new(64)))
}

/// A topic name as the upstream checks it.
pub fn topic(name: &str) -> Result<Topic, String> {
    Topic::new(name).map_err(|error| format!("topic `{name}`: {error}"))
}

/// An upstream event as a line of rehearse's `events.jsonl` (without `id`,
/// which the protocol ignores): `occurred_at` as RFC 3339.
pub fn to_rehearse(topic: &str, event: &LogEvent) -> Value {
    json!({
        "topic": topic,
        "kind": event.kind,
        "occurred_at": format_persona_ms(event.occurred_at_ms),
        "headers": event.headers,
        "payload": event.payload,
    })
}

/// A line of rehearse's `events.jsonl` as the upstream's event and its topic.
pub fn from_rehearse(line: &str) -> Result<(String, LogEvent), String> {
    let value: Value = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let field = |key: &str| value.get(key).ok_or(format!("missing field `{key}`"));
    let topic = field("topic")?.as_str().ok_or("`topic` is not a string")?;
    let kind = field("kind")?.as_str().ok_or("`kind` is not a string")?;
    let at = field("occurred_at")?
        .as_str()
        .ok_or("`occurred_at` is not an RFC 3339 string")?;
    let headers = match value.get("headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(headers) => serde_json::from_value(headers.clone())
            .map_err(|error| format!("`headers`: {error}"))?,
    };
    let event = LogEvent {
        kind: kind.to_string(),
        payload: field("payload")?.clone(),
        headers,
        occurred_at_ms: parse_persona_ms(at)?,
    };
    Ok((topic.to_string(), event))
}

/// Appends every line of a rehearse `events.jsonl` to `log`, each on its
/// topic; the error names the line.
pub async fn load_rehearse_log(
    log: &Arc<AnyEventLog>,
    input: impl BufRead,
) -> Result<usize, String> {
    let mut input = input;
    let mut count = 0;
    while let Some(line) = read_line(&mut input)? {
        count += 1;
        if line.trim().is_empty() {
            continue;
        }
        let (name, event) =
            from_rehearse(&line).map_err(|error| format!("line {count}: {error}"))?;
        log.append(&topic(&name)?, event)
            .await
            .map_err(|error| format!("line {count}: {error}"))?;
    }
    Ok(count)
}

/// Every event of `topic` after `from`, with its id.
pub async fn events_after(
    log: &Arc<AnyEventLog>,
    name: &str,
    from: Option<u64>,
) -> Result<Vec<(u64, LogEvent)>, String> {
    log.read_range(&topic(name)?, from, usize::MAX)
        .await
        .map_err(|error| error.to_string())
}

/// The paths at which two JSON values differ (numbers by value, to within
/// 1e-9), each with both sides; an absent member reads as `null`.
pub fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let (l, r) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{key}"), l, r, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}.{i}"), l, r, out);
            }
        }
        (Value::Number(x), Value::Number(y))
            if (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() <= 1e-9 => {}
        (l, r) if l == r => {}
        (l, r) => out.push((path.to_string(), l.clone(), r.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_ttl_other_than_five_minutes_is_not_drivable() {
        let config = json!({"personas": {"p": {"entry_workflow": "w", "lease_ttl": "1m"}}});
        assert!(drivable(&config).unwrap_err().contains("lease TTL"));
        let spec = json!({"entry_workflow": "w", "lease_ttl": "5m", "budget": {"daily_usd": 0.5}});
        assert_eq!(drivable(&json!({"personas": {"p": spec.clone()}})), Ok(()));
        assert_eq!(binding("p", &spec).unwrap().budget.daily_usd, Some(0.5));
    }

    #[test]
    fn event_lines_round_trip() {
        let line = r#"{"topic":"persona.runtime.events","id":1,"kind":"persona.control.paused","occurred_at":"2026-04-24T12:00:00.25Z","headers":{"persona":"p"},"payload":{"paused_at_ms":1}}"#;
        let (topic, event) = from_rehearse(line).unwrap();
        assert_eq!(topic, PERSONA_TOPIC);
        let back = to_rehearse(&topic, &event);
        assert_eq!(back["occurred_at"], "2026-04-24T12:00:00.25Z");
        assert_eq!(back["payload"]["paused_at_ms"], 1);
        for bad in [
            "",
            "{}",
            "[1]",
            r#"{"topic":"t","kind":"k","occurred_at":7,"payload":{}}"#,
        ] {
            assert!(from_rehearse(bad).is_err(), "{bad}");
        }
    }
}

/// The upstream bug the manifest lists: `persona.lease.expired` is never
/// written. A holder that died leaves `persona.lease.acquired` without a
/// release; the next run after the lease's expiry takes a new lease, and
/// the upstream's acquire path (which asks `persona_status` for the active
/// lease, and status has already dropped an expired one) never reaches the
/// branch that writes `persona.lease.expired`. The reference writes it
/// (docs/SCENARIOS.md, "Receipts, events and order": a crashed lease).
#[cfg(test)]
mod lease_expired {
    use super::*;
    use harn_vm::fire_persona_trigger;

    #[test]
    fn the_upstream_never_writes_lease_expired() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let log = memory_log();
            let binding = binding("bot", &json!({"entry_workflow": "w"})).unwrap();
            let start = parse_persona_ms("2026-04-24T12:00:00Z").unwrap();
            // What a holder that died after acquiring leaves in the log.
            let lease = json!({"id": "persona_lease_dead", "holder": "persona-runtime",
                "work_key": "github:acme/widgets:pr:1", "acquired_at_ms": start,
                "expires_at_ms": start + 300_000});
            let mut acquired = LogEvent::new("persona.lease.acquired", lease);
            acquired.headers.insert("persona".to_string(), "bot".to_string());
            acquired.occurred_at_ms = start;
            log.append(&topic(PERSONA_TOPIC).unwrap(), acquired).await.unwrap();
            let metadata = BTreeMap::from([("number".to_string(), "2".to_string())]);
            let after = start + 600_000;
            let receipt = fire_persona_trigger(&log, &binding, "github", "pull_request", metadata, PersonaRunCost::default(), after)
                .await
                .unwrap();
            assert_eq!(receipt.status, "completed", "the expired lease does not block");
            let kinds: Vec<String> = events_after(&log, PERSONA_TOPIC, Some(1))
                .await
                .unwrap()
                .into_iter()
                .map(|(_, event)| event.kind)
                .collect();
            assert!(kinds.contains(&"persona.lease.acquired".to_string()), "{kinds:?}");
            assert!(
                !kinds.contains(&"persona.lease.expired".to_string()),
                "harn-vm 0.10.185 writes persona.lease.expired now: remove the manifest's upstream-bug entry ({kinds:?})"
            );
        });
    }
}
