//! `rehearse review`: accept or reject the pending outputs `check` saved
//! beside the goldens (`*.new`), one diff at a time.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit::Exit;
use crate::golden;
use crate::style::Style;

/// Review pending golden changes: show each diff and accept or reject it.
/// Without a terminal, lists them; `--accept` or `--reject` decides all.
#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// Accept every pending change.
    #[arg(long, conflicts_with = "reject")]
    pub accept: bool,
    /// Reject (delete) every pending change.
    #[arg(long)]
    pub reject: bool,
    /// Where the goldens live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
}

pub fn run(args: &ReviewArgs) -> Exit {
    if golden::in_ci() && args.accept {
        eprintln!("refusing to accept goldens while `CI` is set");
        return Exit::Usage;
    }
    let pending = match golden::pending_files(&args.snapshots) {
        Ok(pending) => pending,
        Err(error) => {
            eprintln!("failed to read `{}`: {error}", args.snapshots.display());
            return Exit::Usage;
        }
    };
    if pending.is_empty() {
        println!("review: nothing pending");
        return Exit::Pass;
    }
    let style = Style::stdout();
    let interactive = !args.accept && !args.reject && std::io::stdin().is_terminal();
    let mut left = 0usize;
    for new in &pending {
        let target = golden_of(new);
        let contents = match std::fs::read_to_string(new) {
            Ok(contents) => contents,
            Err(error) => {
                eprintln!("failed to read `{}`: {error}", new.display());
                return Exit::Usage;
            }
        };
        let old = std::fs::read_to_string(&target).unwrap_or_default();
        print!(
            "{}",
            style.diff(&golden::unified_diff(
                &old,
                &contents,
                &target.display().to_string()
            ))
        );
        let choice = if args.accept {
            'a'
        } else if args.reject {
            'r'
        } else if interactive {
            ask(&target)
        } else {
            's'
        };
        let result = match choice {
            'a' => golden::bless(&target, &contents)
                .map(|()| println!("accepted {}", target.display())),
            'r' => std::fs::remove_file(new).map(|()| println!("rejected {}", target.display())),
            _ => {
                left += 1;
                Ok(())
            }
        };
        if let Err(error) = result {
            eprintln!("failed to update `{}`: {error}", target.display());
            return Exit::Usage;
        }
    }
    if left > 0 {
        println!("review: {left} pending; accept with `rehearse review --accept` or reject with `--reject`");
        return Exit::Mismatch;
    }
    Exit::Pass
}

fn golden_of(pending: &Path) -> PathBuf {
    let name = pending.file_name().unwrap_or_default().to_string_lossy();
    pending.with_file_name(name.strip_suffix(golden::PENDING_SUFFIX).unwrap_or(&name))
}

fn ask(target: &Path) -> char {
    let stdin = std::io::stdin();
    loop {
        print!("{}: [a]ccept, [r]eject, [s]kip? ", target.display());
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return 's';
        }
        match line.trim() {
            "a" | "accept" => return 'a',
            "r" | "reject" => return 'r',
            "s" | "skip" | "" => return 's',
            _ => continue,
        }
    }
}
