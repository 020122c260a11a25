//! The `rehearse` harness: the scenario model, the driver that runs scenarios
//! on the reference runtime, golden snapshots, the conformance suite, replay
//! and the CLI's pieces.

pub mod atomic;
pub mod audit;
pub mod certify;
pub mod check;
pub mod cli;
pub mod driver;
pub mod exit;
pub mod expect;
pub mod explain;
pub mod explore;
pub mod golden;
pub mod html;
pub mod junit;
pub mod lint;
pub mod out;
pub mod outputs;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod root;
pub mod scenario;
pub mod serve;
pub mod starter;
pub mod storage;
pub mod style;
pub mod suite;
pub mod walk;
