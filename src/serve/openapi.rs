//! The API's OpenAPI 3 description, served at `/api/v1/openapi.json`. Written by hand beside the
//! handlers (src/serve/api.rs) and checked against the server by schemathesis in the tests.

pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// Every error answer of every operation is the `Error` document (so schemathesis checks
    /// error bodies too), every success answers a described document, and every `$ref` resolves.
    #[test]
    fn every_answer_has_a_schema_and_every_error_is_the_error_document() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).unwrap();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for (method, op) in methods.as_object().unwrap() {
                for (code, answer) in op["responses"].as_object().unwrap() {
                    let what = format!("{method} {path} {code}");
                    if code.starts_with('4') || code.starts_with('5') {
                        assert_eq!(answer["$ref"], "#/components/responses/Error", "{what}");
                    } else {
                        let content = answer["content"].as_object().expect(&what);
                        assert!(content.values().all(|c| c["schema"].is_object()), "{what}");
                    }
                }
                if path != "/healthz" {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
            }
        }
        let error = &doc["components"]["responses"]["Error"]["content"]["application/json"];
        assert_eq!(error["schema"]["$ref"], "#/components/schemas/Error");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let target = doc.pointer(r.trim_start_matches('#'));
            assert!(target.is_some_and(|t| t.is_object()), "{r} resolves");
        }
    }
}
