//! Arbitrary UTF-8 through the manifest parser: the spanned YAML tree (`fleetpin::manifest::yaml::parse`),
//! the whole pipeline (`fleetpin::manifest::parse_str`: yaml, decode, checks), and the human
//! rendering of the problems. None may panic; every problem must be located inside the text.
#![no_main]

use fleetpin::manifest::diagnostics::ManifestError;
use fleetpin::render::{Style, manifest_error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // YAML counts `\r\n`, a lone `\r` and `\n` as line breaks.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() as u32 + 1;
    if let Err(e) = fleetpin::manifest::yaml::parse(text) {
        assert!(e.span.line >= 1, "unlocated YAML error: {}", e.message);
        assert!(
            e.span.line <= lines,
            "YAML error past the end: {}",
            e.message
        );
    }
    if let Err(problems) = fleetpin::manifest::parse_str(text) {
        assert!(!problems.is_empty(), "an Err without a problem");
        for p in &problems {
            assert!(
                p.span.line >= 1 && p.span.column >= 1,
                "unlocated: {}",
                p.message
            );
            assert!(p.span.line <= lines, "past the end: {}", p.message);
        }
        let err = ManifestError::new("fuzz.yaml", text.to_string(), problems);
        let _ = manifest_error(&err, Style { color: false });
        let _ = err.to_json();
    }
});
