//! What the timeline draws, recorded while the scenario runs: after every
//! step, each persona's lifecycle, live lease, queue and spend windows, and
//! the supervisor's in-flight episodes and rate window, read from the
//! runtime and the supervisor themselves.

use rehearse_runtime::capture::Session;
use rehearse_runtime::op::Op;
use rehearse_runtime::persona::{LeaseExpired, LeaseReleased, Lifecycle, PersonaEvent};
use rehearse_runtime::supervisor::Handled;

use crate::driver::StepObserver;
use crate::explain::Explainer;

/// One persona after one step.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct PersonaFrame {
    pub lifecycle: Lifecycle,
    /// The live lease: (acquired at, expires at).
    pub lease: Option<(i64, i64)>,
    pub queued: usize,
    pub today_usd: f64,
    pub hour_usd: f64,
}

/// Everything after one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Frame {
    /// By persona, in name order.
    pub personas: Vec<PersonaFrame>,
    /// (episode, finishes at).
    pub in_flight: Vec<(u64, i64)>,
    /// Invocation times inside the rate window.
    pub window: Vec<i64>,
}

/// A persona lease, from the events that acquired and ended it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct LeaseBar {
    pub persona: usize,
    pub id: String,
    pub step: usize,
    pub acquired_ms: i64,
    pub expires_ms: i64,
    /// The step and time it was released or expired; `None` while held.
    pub ended: Option<(usize, i64)>,
}

/// Records a frame after every step and explains every step.
#[derive(Debug)]
pub(super) struct Recorder<'a> {
    pub explainer: Explainer<'a>,
    /// By step index; `None` for a step that only checks.
    pub frames: Vec<Option<Frame>>,
    /// By step index: each receipt a run attempt or drained item got, with
    /// its persona (index in name order).
    pub receipts: Vec<Vec<(usize, String)>>,
    pub leases: Vec<LeaseBar>,
    names: Vec<String>,
}

impl<'a> Recorder<'a> {
    pub fn new(explainer: Explainer<'a>, steps: usize, names: Vec<String>) -> Self {
        Self {
            explainer,
            frames: vec![None; steps],
            receipts: vec![Vec::new(); steps],
            leases: Vec::new(),
            names,
        }
    }

    /// Reads the receipts and lease changes among a step's events.
    fn scan(&mut self, index: usize, events: &[rehearse_runtime::log::StoredEvent]) {
        for event in events {
            let Some(persona) = event
                .header("persona")
                .and_then(|name| self.names.iter().position(|n| n == name))
            else {
                continue;
            };
            let Some(Ok((_, typed))) = PersonaEvent::from_stored(event) else {
                continue;
            };
            match typed {
                PersonaEvent::SupervisionReceipt(receipt) => {
                    let status = receipt.update.receipt.status.as_str().to_string();
                    self.receipts[index].push((persona, status));
                }
                PersonaEvent::LeaseAcquired(lease) => self.leases.push(LeaseBar {
                    persona,
                    id: lease.id.to_string(),
                    step: index,
                    acquired_ms: lease.acquired_at_ms,
                    expires_ms: lease.expires_at_ms,
                    ended: None,
                }),
                PersonaEvent::LeaseReleased(LeaseReleased { id, .. })
                | PersonaEvent::LeaseExpired(LeaseExpired { id, .. }) => {
                    if let Some(lease) = self
                        .leases
                        .iter_mut()
                        .rev()
                        .find(|l| l.ended.is_none() && *l.id == *id)
                    {
                        lease.ended = Some((index, event.occurred_at_ms));
                    }
                }
                _ => {}
            }
        }
    }
}

fn frame(session: &Session, now_ms: i64) -> Frame {
    let runtime = session.runtime();
    let personas = runtime
        .personas()
        .values()
        .map(|p| PersonaFrame {
            lifecycle: p.lifecycle_at(now_ms),
            lease: p
                .state
                .live_lease(now_ms)
                .map(|l| (l.acquired_at_ms, l.expires_at_ms)),
            queued: p.state.queued.len(),
            today_usd: p.state.spend.today_usd(now_ms),
            hour_usd: p.state.spend.this_hour_usd(now_ms),
        })
        .collect();
    let supervisor = session.supervisor();
    Frame {
        personas,
        in_flight: supervisor.in_flight_at(now_ms).collect(),
        window: supervisor.window_at(now_ms).collect(),
    }
}

impl StepObserver for Recorder<'_> {
    fn before(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session) {
        self.explainer.before(index, op, at_ms, session);
    }

    fn after(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session, handled: &Handled) {
        self.explainer.after(index, op, at_ms, session, handled);
        self.frames[index] = Some(frame(session, at_ms));
        let log = session.runtime().log().all();
        self.scan(index, &log[handled.events.clone()]);
    }
}
