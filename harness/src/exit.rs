//! The exit codes of `rehearse`: 0 pass, 1 behaviour mismatch, 2 usage or input error.

use std::process::ExitCode;

/// How a `rehearse` command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed.
    Pass,
    /// Behaviour differed from what was expected (goldens, expectations).
    Mismatch,
    /// The command line or an input file was wrong; clap uses 2 as well.
    Usage,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Mismatch => 1,
            Self::Usage => 2,
        }
    }

    /// The worse of two outcomes: an input error outranks a mismatch.
    pub fn worst(self, other: Self) -> Self {
        if other.code() > self.code() {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}
