//! Arbitrary UTF-8 through the manifest parser: the spanned YAML tree (`fleetpin::yaml::parse`),
//! the whole pipeline (`fleetpin::manifest::parse_str`: yaml, decode, checks), and the human
//! rendering of the problems. None may panic; every problem must be located inside the text.
#![no_main]

use fleetpin::diagnostics::ManifestError;
use fleetpin::render::{Style, manifest_error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count() as u32;
    if let Err(e) = fleetpin::yaml::parse(text) {
        assert!(e.span.line >= 1, "unlocated YAML error: {}", e.message);
        assert!(e.span.line <= lines + 1, "YAML error past the end: {}", e.message);
    }
    if let Err(problems) = fleetpin::manifest::parse_str(text) {
        assert!(!problems.is_empty(), "an Err without a problem");
        for p in &problems {
            assert!(p.span.line >= 1 && p.span.column >= 1, "unlocated: {}", p.message);
            assert!(p.span.line <= lines + 1, "past the end: {}", p.message);
        }
        let err = ManifestError::new("fuzz.yaml", text.to_string(), problems);
        let _ = manifest_error(&err, Style { color: false });
        let _ = err.to_json();
    }
});
