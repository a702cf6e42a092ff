//! Manifest problems, located in the file, and how they are shown.
//!
//! Every problem carries a span so an operator can jump to it: the one-line form
//! `file:line:column: message` is for scripts, editors and grep; the miette rendering adds the
//! source snippet for people. Both come from the same `Problem`.

use crate::manifest::yaml::Span;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(span: Span, message: String) -> Problem {
        Problem {
            span,
            message: defang(&message),
            help: None,
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(defang(&help.into()));
        self
    }
}

/// Control characters copied from a manifest into a message must not reach the reader's terminal
/// raw (a value could clear the screen or retitle the window): they are shown escaped.
pub fn defang(s: &str) -> String {
    if !s.chars().any(|c| c.is_control()) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The source shown in snippets, with control characters replaced byte for byte by `?` so that
/// spans still point at the same places.
fn displayable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let bad = c.is_control() && !matches!(c, '\t' | '\n' | '\r');
            let n = if bad { c.len_utf8() } else { 1 };
            std::iter::repeat_n(if bad { '?' } else { c }, n)
        })
        .collect()
}

/// A manifest that could not be used: where it is, its text, and every problem found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    pub file: String,
    pub text: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {} problem{} found",
            self.file,
            n,
            if n == 1 { "" } else { "s" }
        )
    }
}

#[derive(Debug, Serialize)]
pub struct ProblemJson<'a> {
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<&'a str>,
}

impl ManifestError {
    pub fn new(file: &str, text: String, problems: Vec<Problem>) -> ManifestError {
        ManifestError {
            file: file.to_string(),
            text,
            problems,
        }
    }

    pub fn single(file: &str, text: String, problem: Problem) -> ManifestError {
        ManifestError::new(file, text, vec![problem])
    }

    pub fn io(file: &str, e: &std::io::Error) -> ManifestError {
        let help = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "run fleetpin in the directory holding platform.yaml, or name the file with -f/--file or FLEETPIN_FILE"
            }
            _ => "check the path and its permissions",
        };
        ManifestError::single(
            file,
            String::new(),
            Problem::new(
                Span {
                    line: 0,
                    column: 0,
                    offset: 0,
                    len: 0,
                },
                format!("cannot read the manifest: {e}"),
            )
            .with_help(help),
        )
    }

    /// `file:line:column: message` — the form editors and scripts understand.
    pub fn location(&self, p: &Problem) -> String {
        if p.span.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, p.span.line, p.span.column)
        }
    }

    pub fn to_json(&self) -> Vec<ProblemJson<'_>> {
        self.problems
            .iter()
            .map(|p| ProblemJson {
                file: &self.file,
                line: p.span.line,
                column: p.span.column,
                message: &p.message,
                help: p.help.as_deref(),
            })
            .collect()
    }

    /// One miette diagnostic per problem (at most `limit`), each pointing into the source. The
    /// source is shared, not copied per problem: thousands of problems cost one copy.
    pub fn diagnostics(&self, limit: usize) -> Vec<ProblemDiagnostic> {
        let shown = std::sync::Arc::new(displayable(&self.text));
        self.problems
            .iter()
            .take(limit)
            .map(|p| ProblemDiagnostic {
                title: format!("{}: {}", self.location(p), p.message),
                label: None,
                help: p.help.clone(),
                src: NamedSource::new(defang(&self.file), shown.clone()),
                span: (p.span.line > 0 && !self.text.is_empty()).then(|| {
                    let offset = p.span.offset.min(self.text.len());
                    SourceSpan::new(offset.into(), p.span.len.min(self.text.len() - offset))
                }),
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{title}")]
pub struct ProblemDiagnostic {
    title: String,
    label: Option<String>,
    help: Option<String>,
    src: NamedSource<std::sync::Arc<String>>,
    span: Option<SourceSpan>,
}

impl Diagnostic for ProblemDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span.map(|_| &self.src as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.span.map(|s| {
            Box::new(std::iter::once(LabeledSpan::new_with_span(
                self.label.clone(),
                s,
            ))) as Box<dyn Iterator<Item = LabeledSpan>>
        })
    }
}
