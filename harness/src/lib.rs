//! The `rehearse` harness: the scenario model, the driver that runs scenarios
//! on the reference runtime, golden snapshots, replay and the CLI's pieces.

pub mod atomic;
pub mod explore;
pub mod golden;
