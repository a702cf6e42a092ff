//! Registry credentials come only from the operator's docker config (`$DOCKER_CONFIG/config.json`
//! or `~/.docker/config.json`, its `auths`), as `docker login` writes them; never from the
//! manifest, which is committed. Credential helpers are not run.

use crate::engine::Credentials;
use base64::Engine as _;
use std::path::PathBuf;

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The registry host of an image reference (`docker.io` when none is written).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

fn normalise(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Credentials for the registry `image` lives in, if the operator logged in to it.
pub fn for_image(image: &str) -> Option<Credentials> {
    let text = std::fs::read_to_string(config_path()?).ok()?;
    lookup(&text, image)
}

pub fn lookup(config_json: &str, image: &str) -> Option<Credentials> {
    let doc: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let registry = registry_of(image);
    let auths = doc.get("auths")?.as_object()?;
    let (key, entry) = auths.iter().find(|(k, _)| normalise(k) == registry)?;
    let mut c = Credentials {
        server: key.clone(),
        ..Default::default()
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (u, p) = decoded.split_once(':')?;
        c.username = Some(u.to_string());
        c.password = Some(p.to_string());
    }
    if let Some(t) = entry.get("identitytoken").and_then(|a| a.as_str()) {
        c.identity_token = Some(t.to_string());
    }
    (c.username.is_some() || c.identity_token.is_some()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_registry_of_an_image() {
        assert_eq!(
            registry_of("registry.acme.internal:5000/acme/billing"),
            "registry.acme.internal:5000"
        );
        assert_eq!(registry_of("nginx"), "docker.io");
        assert_eq!(registry_of("traefik/whoami"), "docker.io");
        let cfg =
            r#"{"auths":{"https://registry.acme.internal:5000/v2/":{"auth":"dXNlcjpwYXNz"}}}"#;
        let c = lookup(cfg, "registry.acme.internal:5000/acme/billing").unwrap();
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("pass"));
        assert!(!format!("{c:?}").contains("pass"));
        assert!(lookup(cfg, "nginx").is_none());
    }
}
