//! Trigger envelopes and work-key normalisation per provider, so the same
//! external event always maps to the same unit of work.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::format_ms;
use crate::ids::concat_shared;

/// A normalised trigger, as the modelled runtime's `PersonaTriggerEnvelope`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Envelope {
    pub provider: String,
    pub kind: String,
    /// The work key.
    // Shared by the events and receipts that name it.
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub subject_key: Arc<str>,
    pub source_event_id: Option<String>,
    pub received_at_ms: i64,
    // Shared with `raw`, which holds the same map for a provider event.
    #[serde(default)]
    pub metadata: Arc<BTreeMap<String, String>>,
    #[serde(default)]
    pub raw: RawTrigger,
}

impl Envelope {
    /// Appends the envelope's canonical JSON (`json_out.rs`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // A provider event's `raw` holds the very map of `metadata`: its
        // text, once written, is copied rather than written again.
        let written = std::cell::Cell::new(0..0);
        crate::json_out::object!(out;
            "kind" => string(&self.kind),
            "metadata" => nested(|out| {
                let start = out.len();
                crate::json_out::string_map(out, &self.metadata);
                written.set(start..out.len());
            }),
            "provider" => string(&self.provider),
            "raw" => nested(|out| match &self.raw.metadata {
                Some(metadata) if Arc::ptr_eq(metadata, &self.metadata) => {
                    out.extend_from_slice(b"{\"metadata\":");
                    out.extend_from_within(written.take());
                    out.push(b'}');
                }
                Some(metadata) => crate::json_out::object!(out; "metadata" => string_map(metadata)),
                None => out.extend_from_slice(b"{}"),
            }),
            "received_at_ms" => ms(self.received_at_ms),
            "source_event_id" => opt_string(self.source_event_id.as_deref()),
            "subject_key" => string(&self.subject_key),
        );
    }
}

/// The trigger as received: a provider event carries its metadata, a
/// schedule tick nothing (`{}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Arc<BTreeMap<String, String>>>,
}

/// The first present metadata value among `keys`.
fn first<'a>(metadata: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| metadata.get(*key))
        .map(String::as_str)
}

/// Builds the envelope of a provider event. `generated` supplies an id when
/// the provider's rule needs one and the metadata has no dedupe key.
pub fn normalize(
    provider: &str,
    kind: &str,
    metadata: Arc<BTreeMap<String, String>>,
    now_ms: i64,
    generated: impl FnOnce() -> Arc<str>,
) -> Envelope {
    let provider = provider.to_ascii_lowercase();
    let source_event_id = first(&metadata, &["event_id", "id"]).map(str::to_string);
    let subject_key = match provider.as_str() {
        "github" => {
            let repo =
                first(&metadata, &["repository", "repository.full_name"]).unwrap_or("unknown");
            if let Some(number) = first(&metadata, &["pr", "pull_request.number", "number"]) {
                concat_shared(&["github:", repo, ":pr:", number])
            } else if let Some(check) = first(&metadata, &["check_run.name", "check_name"]) {
                concat_shared(&["github:", repo, ":check:", check])
            } else {
                concat_shared(&["github:", repo, ":", kind])
            }
        }
        "linear" => {
            let issue = first(
                &metadata,
                &["issue_key", "issue.identifier", "issue_id", "id"],
            )
            .unwrap_or("unknown");
            concat_shared(&["linear:issue:", issue])
        }
        "slack" => {
            let channel = first(&metadata, &["channel", "channel_id"]).unwrap_or("unknown");
            let ts = first(&metadata, &["ts", "event_ts"]).unwrap_or("unknown");
            concat_shared(&["slack:", channel, ":", ts])
        }
        "webhook" => match first(&metadata, &["dedupe_key", "event_id"]) {
            Some(key) => concat_shared(&["webhook:", key]),
            None => concat_shared(&["webhook:", kind, ":", &generated()]),
        },
        _ => match first(&metadata, &["dedupe_key", "event_id"]) {
            Some(key) => concat_shared(&[&provider, ":", kind, ":", key]),
            None => concat_shared(&[&provider, ":", kind, ":", &generated()]),
        },
    };
    let raw = RawTrigger {
        metadata: Some(Arc::clone(&metadata)),
    };
    Envelope {
        provider,
        kind: kind.to_string(),
        subject_key,
        source_event_id,
        received_at_ms: now_ms,
        metadata,
        raw,
    }
}

/// The envelope of a schedule tick of `persona` at `now_ms`.
pub fn schedule_envelope(persona: &str, schedule: &str, now_ms: i64) -> Envelope {
    let fired_at = format_ms(now_ms);
    let metadata = Arc::new(BTreeMap::from([
        ("fired_at".to_string(), fired_at.clone()),
        ("persona".to_string(), persona.to_string()),
        ("schedule".to_string(), schedule.to_string()),
    ]));
    Envelope {
        provider: "schedule".to_string(),
        kind: "cron.tick".to_string(),
        subject_key: format!("schedule:{persona}:{schedule}:{fired_at}").into(),
        source_event_id: None,
        received_at_ms: now_ms,
        metadata,
        raw: RawTrigger::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(provider: &str, kind: &str, pairs: &[(&str, &str)]) -> String {
        let metadata: BTreeMap<_, _> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        normalize(provider, kind, metadata.into(), 0, || "GEN".into())
            .subject_key
            .to_string()
    }

    #[test]
    fn github_prefers_pr_then_check_then_kind() {
        assert_eq!(
            key(
                "GitHub",
                "pull_request",
                &[("repository", "o/r"), ("number", "462")]
            ),
            "github:o/r:pr:462"
        );
        assert_eq!(
            key(
                "github",
                "x",
                &[
                    ("repository.full_name", "o/r"),
                    ("pr", "1"),
                    ("number", "2")
                ]
            ),
            "github:o/r:pr:1"
        );
        assert_eq!(
            key("github", "check_run", &[("check_name", "ci")]),
            "github:unknown:check:ci"
        );
        assert_eq!(
            key("github", "push", &[("repository", "o/r")]),
            "github:o/r:push"
        );
    }

    #[test]
    fn linear_slack_webhook_and_others() {
        assert_eq!(
            key(
                "linear",
                "issue",
                &[("issue.identifier", "ENG-1"), ("id", "9")]
            ),
            "linear:issue:ENG-1"
        );
        assert_eq!(key("linear", "issue", &[]), "linear:issue:unknown");
        assert_eq!(
            key(
                "slack",
                "message",
                &[("channel_id", "C1"), ("event_ts", "1.2")]
            ),
            "slack:C1:1.2"
        );
        assert_eq!(key("slack", "message", &[]), "slack:unknown:unknown");
        assert_eq!(
            key("webhook", "deploy", &[("event_id", "e1")]),
            "webhook:e1"
        );
        assert_eq!(key("webhook", "deploy", &[]), "webhook:deploy:GEN");
        assert_eq!(
            key("Jira", "created", &[("dedupe_key", "d")]),
            "jira:created:d"
        );
        assert_eq!(key("jira", "created", &[]), "jira:created:GEN");
    }

    #[test]
    fn source_event_id_comes_from_event_id_or_id() {
        let metadata = BTreeMap::from([("id".to_string(), "7".to_string())]);
        let envelope = normalize("x", "y", metadata.into(), 5, || "G".into());
        assert_eq!(envelope.source_event_id.as_deref(), Some("7"));
        assert_eq!(envelope.subject_key, "x:y:G".into());
        assert_eq!(envelope.received_at_ms, 5);
    }
}
