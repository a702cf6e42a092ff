//! `fleetpin schema`: the JSON Schema (draft-07, what yaml-language-server and most editors speak)
//! generated from the manifest types themselves, so it cannot disagree with the parser.

use crate::manifest::Manifest;

pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    serde_json::to_string_pretty(&schema).expect("a schema always serialises")
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_draft07_and_closed() {
        let s: serde_json::Value = serde_json::from_str(&super::schema_json()).unwrap();
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(s["additionalProperties"], false);
        assert!(s["properties"]["environments"].is_object());
        assert!(
            s["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "platform")
        );
    }
}
