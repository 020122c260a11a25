//! The process registry's state, folded from its events, and its operations,
//! which check a [`ProcessOp`] against that state and return the events to
//! append without changing anything.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::ProcessError;
use super::events::{
    AbandonRequested, Claimed, Ended, LeaseExpired, ProcessEvent, Renewed, Signalled, Started,
    Waiting,
};
use super::filter::ProcessListFilter;
use super::op::{
    AbandonOp, CancelOp, ClaimOp, CompleteOp, FailOp, HeartbeatOp, LeaseTokenRef, ProcessOp,
    SignalOp, StartOp, WaitOp,
};
use super::record::{
    AbandonRequest, ProcessEnd, ProcessIdentity, ProcessLease, ProcessOriginator,
    ProcessProvenance, ProcessRecord, ProcessRegistration, ProcessStarted, ProcessStatus,
    WaitState,
};
use crate::ids::IdGen;
use crate::log::{LogEvent, StoredEvent};

/// Who cancels or abandons when an operation does not say.
const DEFAULT_REQUESTER: &str = "host";

/// What an operation produced: the events to append to
/// `process.registry.events`, the step's receipt, and a result for callers.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessOutcome {
    pub events: Vec<LogEvent>,
    /// `ok`; for `list` the number of processes listed; for `abandon` (and
    /// a heartbeat that settles a pending abandon request) `abandoned` or
    /// `abandon_requested`.
    pub receipt: String,
    /// The claim's or heartbeat's lease, the started process's hashes, the
    /// listed records.
    pub result: Option<serde_json::Value>,
}

/// A lease token the registry issued.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IssuedToken {
    owner: String,
    fencing_token: u64,
}

/// One process with the bookkeeping its record does not show.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    record: ProcessRecord,
    /// Every lease token issued for the process, so that a stale token is
    /// told apart from one that was never issued.
    issued: BTreeMap<String, IssuedToken>,
    /// The latest token issued to each owner, for `lease_token: {of: OWNER}`.
    latest_by_owner: BTreeMap<String, String>,
}

impl Entry {
    /// Folds `process.lease.claimed`: the lease, its token and the fencing
    /// token, and the first start.
    fn claimed(&mut self, lease: ProcessLease) {
        let record = &mut self.record;
        record.fencing_token = record.fencing_token.max(lease.fencing_token);
        record.first_started.get_or_insert_with(|| ProcessStarted {
            owner: lease.owner.clone(),
            started_at_ms: lease.claimed_at_ms,
        });
        self.issued.insert(
            lease.lease_token.clone(),
            IssuedToken {
                owner: lease.owner.clone(),
                fencing_token: lease.fencing_token,
            },
        );
        self.latest_by_owner
            .insert(lease.owner.clone(), lease.lease_token.clone());
        record.lease = Some(lease);
    }
}

/// Every process the registry knows, by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessRegistry {
    entries: BTreeMap<String, Entry>,
}

impl ProcessRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry folded from `events` (events of other topics are skipped).
    pub fn rebuild<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> Self {
        let mut registry = Self::new();
        for event in events {
            registry.apply(event);
        }
        registry
    }

    /// The record of process `id`.
    pub fn get(&self, id: &str) -> Option<&ProcessRecord> {
        self.entries.get(id).map(|entry| &entry.record)
    }

    /// Every record, ordered by id.
    pub fn records(&self) -> impl Iterator<Item = &ProcessRecord> {
        self.entries.values().map(|entry| &entry.record)
    }

    /// Every record as JSON, keyed and ordered by process id: the final
    /// state a scenario report shows.
    pub fn snapshot(&self) -> serde_json::Value {
        let map = self
            .entries
            .iter()
            .map(|(id, entry)| (id.clone(), record_json(&entry.record)))
            .collect::<serde_json::Map<_, _>>();
        serde_json::Value::Object(map)
    }

    /// Folds one stored event into the state. Events of other topics, and
    /// events this registry never writes, are ignored.
    pub fn apply(&mut self, event: &StoredEvent) {
        let Some(process_event) = ProcessEvent::from_stored(event) else {
            return;
        };
        let at_ms = event.occurred_at_ms;
        if let ProcessEvent::Started(started) = process_event {
            self.register(started, at_ms);
            return;
        }
        let Some(entry) = self.entries.get_mut(process_event.process_id()) else {
            return;
        };
        let record = &mut entry.record;
        record.updated_at_ms = at_ms;
        match process_event {
            ProcessEvent::Started(_) | ProcessEvent::LeaseExpired(_) => {}
            ProcessEvent::Claimed(Claimed { lease, .. }) => entry.claimed(lease),
            ProcessEvent::Renewed(renewed) => {
                if let Some(lease) = record
                    .lease
                    .as_mut()
                    .filter(|lease| lease.lease_token == renewed.lease_token)
                {
                    lease.ttl_ms = renewed.ttl_ms;
                    lease.expires_at_ms = renewed.expires_at_ms;
                }
            }
            ProcessEvent::Waiting(waiting) => {
                record.wait = Some(WaitState {
                    signal: waiting.signal,
                    since_ms: at_ms,
                });
            }
            ProcessEvent::Signalled(_) => record.wait = None,
            ProcessEvent::AbandonRequested(request) => {
                record.abandon_request = Some(AbandonRequest {
                    requested_by: request.requested_by,
                    requested_at_ms: at_ms,
                    reason: request.reason,
                });
            }
            ProcessEvent::Completed(ended) => end(record, ProcessStatus::Completed, ended, at_ms),
            ProcessEvent::Failed(ended) => end(record, ProcessStatus::Failed, ended, at_ms),
            ProcessEvent::Cancelled(ended) => end(record, ProcessStatus::Cancelled, ended, at_ms),
            ProcessEvent::Abandoned(ended) => end(record, ProcessStatus::Abandoned, ended, at_ms),
        }
    }

    /// Folds `process.started`. A second registration of the same id cannot
    /// come from `execute`; keeping the first makes a damaged log fold the
    /// same way every time.
    fn register(&mut self, started: Started, at_ms: i64) {
        self.entries
            .entry(started.process_id.clone())
            .or_insert_with(|| Entry {
                record: ProcessRecord::new(started.registration, started.registration_hash, at_ms),
                issued: BTreeMap::new(),
                latest_by_owner: BTreeMap::new(),
            });
    }

    /// Checks `op` against the state at `now_ms` and returns what to append.
    /// Ids (a start without an id, lease tokens) are drawn from `ids`.
    pub fn execute(
        &self,
        op: &ProcessOp,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> Result<ProcessOutcome, ProcessError> {
        match op {
            ProcessOp::Start(op) => self.start(op, now_ms, ids),
            ProcessOp::Claim(op) => self.claim(op, now_ms, ids),
            ProcessOp::Heartbeat(op) => self.heartbeat(op, now_ms),
            ProcessOp::Wait(op) => self.wait(op, now_ms),
            ProcessOp::Signal(op) => self.signal(op, now_ms),
            ProcessOp::Complete(op) => self.complete(op, now_ms),
            ProcessOp::Fail(op) => self.fail(op, now_ms),
            ProcessOp::Cancel(op) => self.cancel(op, now_ms),
            ProcessOp::Abandon(op) => self.abandon(op, now_ms),
            ProcessOp::List(filter) => self.list(filter),
        }
    }

    fn start(
        &self,
        op: &StartOp,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> Result<ProcessOutcome, ProcessError> {
        let id = match &op.id {
            Some(id) => id.clone(),
            None => ids.prefixed("process_", now_ms).to_string(),
        };
        if id.is_empty() {
            return Err(ProcessError::EmptyId);
        }
        if self.entries.contains_key(&id) {
            return Err(ProcessError::Duplicate(id));
        }
        let encode = |error: serde_json::Error| ProcessError::Encode {
            id: id.clone(),
            message: error.to_string(),
        };
        let env_ref = op
            .env
            .as_ref()
            .map(|env| env.stable_ref())
            .transpose()
            .map_err(encode)?;
        let mut identity = ProcessIdentity::from_input(&op.input);
        identity.definition.clone_from(&op.definition);
        let originator = match &op.session {
            Some(session_id) => ProcessOriginator::Session {
                session_id: session_id.clone(),
            },
            None => ProcessOriginator::Host,
        };
        let registration = ProcessRegistration {
            id: id.clone(),
            input: op.input.clone(),
            disposition: op.recovery,
            identity,
            provenance: ProcessProvenance { originator },
            env_ref: env_ref.clone(),
        };
        let registration_hash = registration.hash().map_err(encode)?;
        let result = to_json(&StartResult {
            process_id: &id,
            registration_hash: &registration_hash,
            env_ref: env_ref.as_deref(),
        });
        let event = ProcessEvent::Started(Started {
            process_id: id.clone(),
            registration_hash,
            registration,
        });
        outcome(vec![event], now_ms, "ok", Some(result))
    }

    fn claim(
        &self,
        op: &ClaimOp,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> Result<ProcessOutcome, ProcessError> {
        let record = self.running(&op.id)?;
        if op.owner.is_empty() {
            return Err(ProcessError::EmptyOwner);
        }
        if op.ttl.0 == 0 {
            return Err(ProcessError::ZeroTtl);
        }
        if let Some(lease) = record.live_lease(now_ms) {
            return Err(ProcessError::Busy {
                id: op.id.clone(),
                owner: lease.owner.clone(),
                fencing_token: lease.fencing_token,
                expires_at_ms: lease.expires_at_ms,
            });
        }
        if let Some(request) = &record.abandon_request {
            return Err(ProcessError::AbandonPending {
                id: op.id.clone(),
                requested_by: request.requested_by.clone(),
            });
        }
        if record.disposition == super::RecoveryDisposition::OwnerBound {
            if let Some(first) = record
                .first_started
                .as_ref()
                .filter(|first| first.owner != op.owner)
            {
                return Err(ProcessError::OwnerBound {
                    id: op.id.clone(),
                    bound_to: first.owner.clone(),
                    owner: op.owner.clone(),
                });
            }
        }
        let mut events = Vec::new();
        if let Some(old) = &record.lease {
            events.push(ProcessEvent::LeaseExpired(LeaseExpired {
                process_id: op.id.clone(),
                owner: old.owner.clone(),
                lease_token: old.lease_token.clone(),
                fencing_token: old.fencing_token,
                expired_at_ms: old.expires_at_ms,
            }));
        }
        let lease = ProcessLease {
            owner: op.owner.clone(),
            lease_token: ids.prefixed("process_lease_", now_ms).to_string(),
            fencing_token: record.fencing_token + 1,
            claimed_at_ms: now_ms,
            ttl_ms: op.ttl.0,
            expires_at_ms: now_ms.saturating_add(op.ttl.as_i64()),
        };
        let result = lease_json(&lease);
        events.push(ProcessEvent::Claimed(Claimed {
            process_id: op.id.clone(),
            lease,
        }));
        outcome(events, now_ms, "ok", Some(result))
    }

    fn heartbeat(&self, op: &HeartbeatOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let (record, lease) = self.holder(&op.id, &op.lease_token, now_ms)?;
        if let Some(request) = &record.abandon_request {
            // The holder learns of the request at its next heartbeat, and
            // that is when the process is abandoned and the lease let go.
            let event = ProcessEvent::Abandoned(Ended {
                process_id: op.id.clone(),
                by: request.requested_by.clone(),
                lease_token: Some(lease.lease_token.clone()),
                fencing_token: Some(lease.fencing_token),
                output: None,
                error: None,
                reason: request.reason.clone(),
            });
            let result = to_json(&AbandonedResult {
                abandoned: true,
                requested_by: &request.requested_by,
            });
            return outcome(vec![event], now_ms, "abandoned", Some(result));
        }
        let ttl_ms = op.ttl.map_or(lease.ttl_ms, |ttl| ttl.0);
        if ttl_ms == 0 {
            return Err(ProcessError::ZeroTtl);
        }
        let renewed = ProcessLease {
            ttl_ms,
            expires_at_ms: now_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            ..lease.clone()
        };
        let result = lease_json(&renewed);
        let event = ProcessEvent::Renewed(Renewed {
            process_id: op.id.clone(),
            lease_token: renewed.lease_token,
            fencing_token: renewed.fencing_token,
            ttl_ms: renewed.ttl_ms,
            expires_at_ms: renewed.expires_at_ms,
        });
        outcome(vec![event], now_ms, "ok", Some(result))
    }

    fn wait(&self, op: &WaitOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let (_, lease) = self.holder(&op.id, &op.lease_token, now_ms)?;
        let event = ProcessEvent::Waiting(Waiting {
            process_id: op.id.clone(),
            lease_token: lease.lease_token.clone(),
            fencing_token: lease.fencing_token,
            signal: op.signal.clone(),
        });
        outcome(vec![event], now_ms, "ok", None)
    }

    fn signal(&self, op: &SignalOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let record = self.running(&op.id)?;
        if record
            .wait
            .as_ref()
            .is_none_or(|wait| wait.signal != op.name)
        {
            return Err(ProcessError::NotWaiting {
                id: op.id.clone(),
                signal: op.name.clone(),
            });
        }
        let event = ProcessEvent::Signalled(Signalled {
            process_id: op.id.clone(),
            signal: op.name.clone(),
        });
        outcome(vec![event], now_ms, "ok", None)
    }

    fn complete(&self, op: &CompleteOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let (_, lease) = self.holder(&op.id, &op.lease_token, now_ms)?;
        let event = ProcessEvent::Completed(Ended {
            output: op.output.clone(),
            ..holder_end(&op.id, lease)
        });
        outcome(vec![event], now_ms, "ok", None)
    }

    fn fail(&self, op: &FailOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let (_, lease) = self.holder(&op.id, &op.lease_token, now_ms)?;
        let event = ProcessEvent::Failed(Ended {
            error: Some(op.error.clone()),
            ..holder_end(&op.id, lease)
        });
        outcome(vec![event], now_ms, "ok", None)
    }

    fn cancel(&self, op: &CancelOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let record = self.running(&op.id)?;
        let event = ProcessEvent::Cancelled(Ended {
            process_id: op.id.clone(),
            by: op.by.as_deref().unwrap_or(DEFAULT_REQUESTER).to_string(),
            lease_token: None,
            fencing_token: record.lease.as_ref().map(|lease| lease.fencing_token),
            output: None,
            error: None,
            reason: op.reason.clone(),
        });
        outcome(vec![event], now_ms, "ok", None)
    }

    fn abandon(&self, op: &AbandonOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        let record = self.running(&op.id)?;
        let by = op.by.as_deref().unwrap_or(DEFAULT_REQUESTER).to_string();
        if record.live_lease(now_ms).is_some() {
            // A live holder may still be doing the work: the request waits
            // for its next heartbeat, or for the lease to lapse.
            let event = ProcessEvent::AbandonRequested(AbandonRequested {
                process_id: op.id.clone(),
                requested_by: by,
                reason: op.reason.clone(),
            });
            return outcome(vec![event], now_ms, "abandon_requested", None);
        }
        let event = ProcessEvent::Abandoned(Ended {
            process_id: op.id.clone(),
            by,
            lease_token: None,
            fencing_token: record.lease.as_ref().map(|lease| lease.fencing_token),
            output: None,
            error: None,
            reason: op.reason.clone(),
        });
        outcome(vec![event], now_ms, "abandoned", None)
    }

    fn list(&self, filter: &serde_json::Value) -> Result<ProcessOutcome, ProcessError> {
        let filter = ProcessListFilter::decode(filter).map_err(ProcessError::ListFilter)?;
        let listed: Vec<_> = self
            .records()
            .filter(|record| filter.matches(record))
            .map(record_json)
            .collect();
        Ok(ProcessOutcome {
            events: Vec::new(),
            receipt: listed.len().to_string(),
            result: Some(serde_json::Value::Array(listed)),
        })
    }

    /// The record of `id`, which must exist and still be running.
    fn running(&self, id: &str) -> Result<&ProcessRecord, ProcessError> {
        let record = self
            .get(id)
            .ok_or_else(|| ProcessError::Unknown(id.to_string()))?;
        if record.status.is_terminal() {
            return Err(ProcessError::Final {
                id: id.to_string(),
                status: record.status,
            });
        }
        Ok(record)
    }

    /// The running record of `id` and its lease, when `token` names the
    /// current, live lease; otherwise why not.
    fn holder(
        &self,
        id: &str,
        token: &LeaseTokenRef,
        now_ms: i64,
    ) -> Result<(&ProcessRecord, &ProcessLease), ProcessError> {
        let record = self.running(id)?;
        let entry = &self.entries[id];
        let token = match token {
            LeaseTokenRef::Token(token) => token,
            LeaseTokenRef::Of(owner) => {
                entry
                    .latest_by_owner
                    .get(owner)
                    .ok_or_else(|| ProcessError::NoLease {
                        id: id.to_string(),
                        owner: owner.clone(),
                    })?
            }
        };
        let issued = entry
            .issued
            .get(token)
            .ok_or_else(|| ProcessError::UnknownToken {
                id: id.to_string(),
                token: token.clone(),
            })?;
        let lease = record
            .lease
            .as_ref()
            .filter(|lease| lease.lease_token == *token)
            .ok_or_else(|| ProcessError::StaleToken {
                id: id.to_string(),
                token: token.clone(),
                fencing_token: issued.fencing_token,
                current_fencing_token: record.fencing_token,
            })?;
        if !lease.is_live(now_ms) {
            return Err(ProcessError::Expired {
                id: id.to_string(),
                token: token.clone(),
                expired_at_ms: lease.expires_at_ms,
            });
        }
        debug_assert_eq!(issued.owner, lease.owner);
        Ok((record, lease))
    }
}

/// Moves `record` to terminal `status`: the end is recorded, the lease let
/// go, any wait dropped.
fn end(record: &mut ProcessRecord, status: ProcessStatus, ended: Ended, at_ms: i64) {
    record.status = status;
    record.lease = None;
    record.wait = None;
    record.end = Some(ProcessEnd {
        at_ms,
        by: ended.by,
        fencing_token: ended.fencing_token,
        output: ended.output,
        error: ended.error,
        reason: ended.reason,
    });
}

/// The common part of a holder's `completed` or `failed` event.
fn holder_end(id: &str, lease: &ProcessLease) -> Ended {
    Ended {
        process_id: id.to_string(),
        by: lease.owner.clone(),
        lease_token: Some(lease.lease_token.clone()),
        fencing_token: Some(lease.fencing_token),
        output: None,
        error: None,
        reason: None,
    }
}

/// The result of `start`: the process's id, its registration hash and,
/// when it has an execution environment, that environment's reference.
#[derive(Serialize)]
struct StartResult<'a> {
    process_id: &'a str,
    registration_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_ref: Option<&'a str>,
}

/// The result of a heartbeat that found an abandon request: the process is
/// abandoned, at the request of `requested_by`.
#[derive(Serialize)]
struct AbandonedResult<'a> {
    abandoned: bool,
    requested_by: &'a str,
}

/// The result of a claim or a renewing heartbeat: the lease as its holder
/// sees it.
#[derive(Serialize)]
struct LeaseResult<'a> {
    owner: &'a str,
    lease_token: &'a str,
    fencing_token: u64,
    expires_at_ms: i64,
}

fn lease_json(lease: &ProcessLease) -> serde_json::Value {
    to_json(&LeaseResult {
        owner: &lease.owner,
        lease_token: &lease.lease_token,
        fencing_token: lease.fencing_token,
        expires_at_ms: lease.expires_at_ms,
    })
}

fn record_json(record: &ProcessRecord) -> serde_json::Value {
    to_json(record)
}

/// An operation's result as JSON. Results and records hold only strings,
/// numbers, JSON values and string-keyed maps, none of which can fail to
/// serialise.
fn to_json<T: Serialize>(result: &T) -> serde_json::Value {
    serde_json::to_value(result).expect("a process result always serialises")
}

fn outcome(
    events: Vec<ProcessEvent>,
    now_ms: i64,
    receipt: &str,
    result: Option<serde_json::Value>,
) -> Result<ProcessOutcome, ProcessError> {
    let events = events
        .iter()
        .map(|event| event.to_log_event(now_ms))
        .collect();
    Ok(ProcessOutcome {
        events,
        receipt: receipt.to_string(),
        result,
    })
}
