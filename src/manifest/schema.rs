//! `fleetpin schema`: the JSON Schema (draft-07, what yaml-language-server and most editors speak)
//! generated from the manifest types themselves, so it cannot disagree with the parser about
//! which fields exist. A short pass then states what derive cannot: which fields are optional
//! (the model stores defaults, not `Option`s), the name patterns of map keys, and that scalars the
//! parser reads as text may be written as numbers or booleans.

use crate::manifest::Manifest;
use serde_json::{Value, json};

/// Fields that must be written; every other field has a default.
const REQUIRED: &[&str] = &[
    "platform",
    "services",
    "environments",
    "image",
    "versions",
    "endpoint",
    "driver",
    "test",
    "ca",
    "cert",
    "key",
    "webhook",
    "sops",
    "signed",
    "allow",
    "deny",
    "duration",
    "repository",
];

const SERVICE_NAME: &str = "^[a-z][a-z0-9-]{0,30}$";
const ENVIRONMENT_NAME: &str = "^[a-z][a-z0-9]{0,15}$";

pub fn schema_value() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut v = serde_json::to_value(&schema).expect("a schema always serialises");
    adjust(&mut v);
    v
}

pub fn schema_json() -> String {
    serde_json::to_string_pretty(&schema_value()).expect("a schema always serialises")
}

fn scalar() -> Value {
    json!({"type": ["string", "number", "boolean"]})
}

fn adjust(v: &mut Value) {
    // Optional fields.
    walk(v, &mut |o| {
        if let Some(Value::Array(req)) = o.get_mut("required") {
            req.retain(|r| r.as_str().is_some_and(|r| REQUIRED.contains(&r)));
        }
    });
    let defs = v.get_mut("definitions").and_then(Value::as_object_mut);
    let Some(defs) = defs else { return };
    // Maps keyed by names carry the name rules, and are not empty.
    if let Some(props) = defs
        .get_mut("Environment")
        .and_then(|e| e.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        for key in ["versions", "overrides"] {
            if let Some(p) = props.get_mut(key).and_then(Value::as_object_mut) {
                p.insert("propertyNames".into(), json!({"pattern": SERVICE_NAME}));
            }
        }
        if let Some(p) = props.get_mut("hosts").and_then(Value::as_object_mut) {
            p.insert("minProperties".into(), json!(1));
        }
        // A pin may be written as a number (`15`); `latest` is refused.
        if let Some(p) = props.get_mut("versions").and_then(Value::as_object_mut) {
            p.insert(
                "additionalProperties".into(),
                json!({"anyOf": [
                    {"type": "string", "pattern": "^(?!latest(@|$))[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64})?$"},
                    {"type": "number"}
                ]}),
            );
        }
    }
    // Values read as text may be numbers or booleans in YAML.
    // Plain hosts or one Swarm cluster: exactly one of the two.
    if let Some(env) = defs.get_mut("Environment").and_then(Value::as_object_mut) {
        env.insert(
            "oneOf".into(),
            json!([{"required": ["hosts"]}, {"required": ["swarm"]}]),
        );
    }
    // An env value may also be one value of a SOPS file.
    let env_value = json!({"anyOf": [scalar(), {"$ref": "#/definitions/SopsValue"}]});
    for (def, field, value) in [
        ("Service", "env", &env_value),
        ("Service", "labels", &scalar()),
        ("Override", "env", &env_value),
        ("Logging", "options", &scalar()),
    ] {
        if let Some(p) = defs
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            p.insert("additionalProperties".into(), value.clone());
        }
    }
    defs.remove("EnvValue");
    // A healthcheck test may be one shell command string.
    if let Some(p) = defs
        .get_mut("Healthcheck")
        .and_then(|d| d.get_mut("properties"))
        .and_then(|p| p.get_mut("test"))
    {
        let list = p.clone();
        *p = json!({"anyOf": [{"type": "string", "minLength": 1}, list]});
    }
    if let Some(root) = v.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(p) = root.get_mut("services").and_then(Value::as_object_mut) {
            p.insert("propertyNames".into(), json!({"pattern": SERVICE_NAME}));
            p.insert("minProperties".into(), json!(1));
        }
        if let Some(p) = root.get_mut("environments").and_then(Value::as_object_mut) {
            p.insert("propertyNames".into(), json!({"pattern": ENVIRONMENT_NAME}));
            p.insert("minProperties".into(), json!(1));
        }
    }
}

fn walk(v: &mut Value, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            for (_, child) in o.iter_mut() {
                walk(child, f);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| walk(c, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_is_draft07_closed_and_only_requires_what_must_be_written() {
        let s = super::schema_value();
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
        let service_required = s["definitions"]["Service"]["required"].as_array().unwrap();
        assert_eq!(service_required, &vec![serde_json::json!("image")]);
        assert!(s["definitions"]["Healthcheck"]["properties"]["test"]["anyOf"].is_array());
    }

    #[test]
    fn windows_are_one_of_allow_or_deny_and_trust_requires_signed() {
        let s = super::schema_value();
        let d = &s["definitions"];
        assert_eq!(d["Trust"]["required"], serde_json::json!(["signed"]));
        assert_eq!(
            d["DenyWindow"]["required"],
            serde_json::json!(["deny", "duration"])
        );
        assert_eq!(
            d["AllowWindow"]["required"],
            serde_json::json!(["allow", "duration"])
        );
        assert_eq!(d["DenyWindow"]["additionalProperties"], false);
        let env = &d["Environment"]["properties"];
        assert_eq!(env["windows"]["items"]["$ref"], "#/definitions/Window");
        assert!(env["timezone"].is_object());
        assert!(env["trust"].is_object());
    }
}
