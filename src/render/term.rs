//! The terminal itself: what the command line writes on stdout and stderr, and the one
//! confirmation prompt. Commands hand their output here; nothing below the faces prints.

use std::io::{IsTerminal, Write};

/// Writes `text` on stdout as it is.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        stdout_failed(&e);
    }
}

/// What a failed write on stdout means. A reader that went away (`fleetpin history | head`)
/// is the end of the output, as for any Unix tool: exit quietly, with success as ripgrep does.
/// Anything else (a full disk under a redirection) is said on stderr.
pub fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    std::process::exit(1);
}

/// Writes one line on stderr.
pub fn err(line: &str) {
    eprintln!("{line}");
}

/// One JSON document on stdout, pretty.
pub fn json(v: &impl serde::Serialize) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("a report serialises")
    ));
}

/// Why nothing was done at the prompt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotConfirmed {
    #[error("stdin is not a terminal, so nobody can confirm: pass --yes to {0} without asking")]
    NoTerminal(String),
    #[error("nothing done: not confirmed (pass --yes to {0} without asking)")]
    Declined(String),
}

/// Asks `question` unless `yes`; refuses when nobody can answer (stdin not a terminal).
/// `verb` completes "pass --yes to … without asking".
pub fn confirm(yes: bool, question: &str, verb: &str) -> Result<(), NotConfirmed> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(NotConfirmed::NoTerminal(verb.into()));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(NotConfirmed::Declined(verb.into()))
    }
}
