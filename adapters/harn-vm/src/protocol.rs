//! The upstream persona runtime (`harn-vm`) behind rehearse's certification
//! protocol (`rehearse-protocol/1`, docs/PROTOCOL.md): JSON Lines requests
//! on standard input, one answer line each on standard output.
//!
//! It declares only what the upstream's public API can drive: the persona
//! steps `trigger`, `tick`, `pause`, `resume`, `disable`, `spend`,
//! `repair_worker` and `restore_checkpoint`, the outcome `completed` (the
//! API runs every admitted run to completion; crash, fail, scripted attempts
//! and durations are not reachable), and the answers `receipts`, `events`
//! and `status`. It has no supervisor, run records, processes or pipeline.
//! Each operation is one call on an in-memory `AnyEventLog`, with the
//! scenario time passed in as `now_ms`; the events answered are those the
//! call appended.
//!
//! Usage: `harn-protocol` (no arguments).

use std::collections::BTreeMap;
use std::sync::Arc;

use harn_vm::event_log::AnyEventLog;
use harn_vm::{
    disable_persona, fire_persona_schedule, fire_persona_trigger, pause_persona, persona_status,
    record_persona_spend, report_repair_worker_status, restore_persona_checkpoint, resume_persona,
    PersonaCheckpointRestoreRequest, PersonaRepairWorkerStatusUpdate, PersonaRunReceipt,
    PersonaRuntimeBinding,
};
use rehearse_adapter_common::Request;
use rehearse_adapter_harn_vm::{
    bindings, cost, drivable, events_after, memory_log, to_rehearse, PERSONA_TOPIC,
};
use serde_json::{json, Value};

/// What one operation answered, before its events are added.
#[derive(Default)]
struct Outcome {
    receipt: String,
    receipts: Vec<String>,
    error: Option<String>,
    run: Option<Value>,
    detail: Option<Value>,
}

impl Outcome {
    fn receipt(receipt: &str) -> Self {
        Self {
            receipt: receipt.to_string(),
            ..Self::default()
        }
    }

    fn error(message: String) -> Self {
        Self {
            receipt: "error".to_string(),
            error: Some(message),
            ..Self::default()
        }
    }

    fn run(result: Result<PersonaRunReceipt, String>) -> Self {
        match result {
            Ok(receipt) => Self {
                receipt: receipt.status.clone(),
                error: receipt.error.clone(),
                run: serde_json::to_value(&receipt).ok(),
                ..Self::default()
            },
            Err(message) => Self::error(message),
        }
    }

    fn unit<T>(result: Result<T, String>, ok: impl FnOnce(T) -> &'static str) -> Self {
        match result {
            Ok(value) => Self::receipt(ok(value)),
            Err(message) => Self::error(message),
        }
    }
}

/// One scenario's upstream runtime.
struct Adapter {
    log: Arc<AnyEventLog>,
    bindings: BTreeMap<String, PersonaRuntimeBinding>,
    /// The id of the last persona event already answered.
    seen: Option<u64>,
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Adapter {
    fn binding(&self, name: &str) -> Result<&PersonaRuntimeBinding, String> {
        self.bindings
            .get(name)
            .ok_or_else(|| format!("unknown persona `{name}`"))
    }

    /// Plays one operation; `Err` is an operation this adapter cannot send
    /// to the upstream (answered `unsupported`).
    async fn play(&self, kind: &str, body: &Value, now_ms: i64) -> Result<Outcome, String> {
        let persona = match body {
            Value::String(name) => name.clone(),
            _ => text(body, "persona").unwrap_or_default(),
        };
        let binding = match self.binding(&persona) {
            Ok(binding) => binding,
            Err(message) => return Ok(Outcome::error(message)),
        };
        let log = &self.log;
        Ok(match kind {
            "trigger" => Outcome::run(trigger(log, binding, body, now_ms).await),
            "tick" => Outcome::run(
                fire_persona_schedule(log, binding, cost(body.get("cost")), now_ms).await,
            ),
            "pause" => Outcome::unit(pause_persona(log, binding, now_ms).await, |_| "ok"),
            "disable" => Outcome::unit(disable_persona(log, binding, now_ms).await, |_| "ok"),
            "resume" => Outcome::unit(resume_persona(log, binding, now_ms).await, |_| "ok"),
            "spend" => {
                let spend = json!({"usd": body.get("usd"), "tokens": body.get("tokens")});
                Outcome::unit(
                    record_persona_spend(log, binding, cost(Some(&spend)), now_ms).await,
                    |_| "ok",
                )
            }
            "repair_worker" => {
                let update = repair_update(body)?;
                let result = report_repair_worker_status(log, binding, update, now_ms).await;
                Outcome::unit(result, |new| if new { "recorded" } else { "unchanged" })
            }
            "restore_checkpoint" => {
                let request = PersonaCheckpointRestoreRequest {
                    checkpoint_id: text(body, "checkpoint_id").unwrap_or_default(),
                    work_key: text(body, "work_key"),
                    resumed_from: None,
                };
                match restore_persona_checkpoint(log, binding, request, now_ms).await {
                    // A repeat's detail is the earlier ack, as the reference's.
                    Ok(done) => Outcome {
                        detail: (!done.acked)
                            .then(|| serde_json::to_value(&done.update).ok())
                            .flatten(),
                        ..Outcome::receipt(if done.acked { "acked" } else { "already_acked" })
                    },
                    Err(message) => Outcome::error(message),
                }
            }
            other => {
                return Err(format!(
                    "the upstream's public API has no `{other}` operation"
                ))
            }
        })
    }

    /// The persona events appended since the last answer, as rehearse lines.
    async fn new_events(&mut self) -> Result<Vec<Value>, String> {
        let events = events_after(&self.log, PERSONA_TOPIC, self.seen).await?;
        if let Some((id, _)) = events.last() {
            self.seen = Some(*id);
        }
        Ok(events
            .iter()
            .map(|(_, event)| to_rehearse(PERSONA_TOPIC, event))
            .collect())
    }
}

/// Fires a `trigger` operation's body on the upstream.
async fn trigger(
    log: &Arc<AnyEventLog>,
    binding: &PersonaRuntimeBinding,
    body: &Value,
    now_ms: i64,
) -> Result<PersonaRunReceipt, String> {
    // Metadata values are strings in the upstream's API; a scalar that is
    // not one is passed as its JSON text.
    let metadata: BTreeMap<String, String> = body
        .get("metadata")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            (key.clone(), text)
        })
        .collect();
    let provider = text(body, "provider").unwrap_or_default();
    let kind = text(body, "kind").unwrap_or_default();
    let run_cost = cost(body.get("cost"));
    fire_persona_trigger(log, binding, &provider, &kind, metadata, run_cost, now_ms).await
}

fn repair_update(body: &Value) -> Result<PersonaRepairWorkerStatusUpdate, String> {
    let lifecycle = serde_json::from_value(body.get("lifecycle").cloned().unwrap_or(Value::Null))
        .map_err(|error| format!("`lifecycle`: {error}"))?;
    Ok(PersonaRepairWorkerStatusUpdate {
        persona_id: String::new(),
        template_ref: None,
        repair_worker_id: text(body, "id").unwrap_or_default(),
        lifecycle,
        work_key: text(body, "work_key"),
        lease_id: text(body, "lease_id"),
        scratchpad_url: text(body, "scratchpad_url"),
        last_heartbeat_ms: 0,
        occurred_at_ms: 0,
    })
}

/// The drained items' receipts of a resume: the statuses of the
/// `persona.supervision.receipt` events it appended, in order.
fn drained(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["kind"] == "persona.supervision.receipt")
        .filter_map(|event| {
            event
                .pointer("/payload/receipt/status")
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .collect()
}

fn hello() -> Value {
    rehearse_adapter_common::hello(
        "harn-vm",
        "0.10.185",
        json!({
            "steps": ["trigger", "tick", "pause", "resume", "disable", "spend", "repair_worker", "restore_checkpoint"],
            "outcomes": ["completed"],
            "answers": ["receipts", "events", "status"],
        }),
    )
}

async fn answer_op(adapter: &mut Adapter, request: &Value) -> Result<Value, String> {
    let now_ms = request
        .get("at_ms")
        .and_then(Value::as_i64)
        .ok_or("`op` without `at_ms`")?;
    let op = request
        .get("op")
        .and_then(Value::as_object)
        .ok_or("`op` is not a map")?;
    let (kind, body) = op
        .iter()
        .next()
        .filter(|_| op.len() == 1)
        .ok_or("`op` has not exactly one step kind")?;
    let mut outcome = match adapter.play(kind, body, now_ms).await {
        Ok(outcome) => outcome,
        Err(message) => return Ok(json!({"type": "unsupported", "message": message})),
    };
    let events = adapter.new_events().await?;
    if kind == "resume" {
        outcome.receipts = drained(&events);
    }
    Ok(json!({
        "type": "result",
        "receipt": outcome.receipt,
        "receipts": outcome.receipts,
        "error": outcome.error,
        "run": outcome.run,
        "detail": outcome.detail,
        "decision": null,
        "events": events,
    }))
}

async fn answer_query(adapter: &Adapter, request: &Value) -> Result<Value, String> {
    match request.get("query").and_then(Value::as_str) {
        Some("status") => {
            let name = text(request, "persona").unwrap_or_default();
            let now_ms = request
                .get("at_ms")
                .and_then(Value::as_i64)
                .ok_or("`query` without `at_ms`")?;
            let value = match adapter.bindings.get(&name) {
                Some(binding) => {
                    serde_json::to_value(persona_status(&adapter.log, binding, now_ms).await?)
                        .map_err(|error| error.to_string())?
                }
                None => Value::Null,
            };
            Ok(json!({"type": "answer", "value": value}))
        }
        other => Err(format!("query {other:?} is not declared")),
    }
}

/// The answer to one request; `None` after `end`.
async fn answer(adapter: &mut Option<Adapter>, request: &Value) -> Result<Option<Value>, String> {
    let answer = match (Request::of(request)?, adapter.as_mut()) {
        (Request::Hello, _) => hello(),
        (Request::Configure(config), _) => match drivable(config).and_then(|()| bindings(config)) {
            Ok(bindings) => {
                *adapter = Some(Adapter {
                    log: memory_log(),
                    bindings,
                    seen: None,
                });
                json!({"type": "configured"})
            }
            Err(message) => json!({"type": "unsupported", "message": message}),
        },
        (Request::Op, Some(adapter)) => answer_op(adapter, request).await?,
        (Request::Query, Some(adapter)) => answer_query(adapter, request).await?,
        (Request::End, _) => return Ok(None),
        (other, _) => return Err(other.unexpected()),
    };
    Ok(Some(answer))
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let served = runtime
        .map_err(|error| error.to_string())
        .and_then(|runtime| {
            let mut adapter = None;
            rehearse_adapter_common::serve_stdio(|request| {
                runtime.block_on(answer(&mut adapter, request))
            })
        });
    rehearse_adapter_common::exit("harn-protocol", served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_answers_the_drained_receipts_in_order() {
        let events = vec![
            json!({"kind": "persona.control.resumed", "payload": {}}),
            json!({"kind": "persona.supervision.receipt", "payload": {"receipt": {"status": "completed"}}}),
            json!({"kind": "persona.supervision.receipt", "payload": {"receipt": {"status": "duplicate"}}}),
        ];
        assert_eq!(drained(&events), vec!["completed", "duplicate"]);
    }
}
