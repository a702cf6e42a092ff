//! What `fleetpin serve token …` shows: the secret once, the tokens as a table or JSON (never a
//! secret or a hash: `TokenInfo` holds neither).

use super::show::Look;
use super::term;
use crate::cli::Format;
use crate::serve::tokens::{TokenInfo, TokenSecret};
use std::time::SystemTime;

/// The new token's secret on stdout (alone, for `$(…)`), the warning on stderr. With JSON, one
/// document holding the token and its secret.
pub fn token_created(look: Look, info: &TokenInfo, secret: &TokenSecret) {
    if look.format == Format::Json {
        #[derive(serde::Serialize)]
        struct Created<'a> {
            #[serde(flatten)]
            token: &'a TokenInfo,
            secret: &'a str,
        }
        term::json(&Created {
            token: info,
            secret: secret.expose(),
        });
    } else {
        term::out(&format!("{}\n", secret.expose()));
    }
    term::err(&format!(
        "{} token `{}` ({}, {}): this is its only showing; store it now, it cannot be shown again",
        look.err.yellow("note:"),
        info.name,
        info.role,
        environments(info)
    ));
}

/// `token list`: a table, or a JSON array of the tokens.
pub fn tokens(look: Look, tokens: &[TokenInfo], now: SystemTime) {
    if look.format == Format::Json {
        term::json(&tokens);
    } else if tokens.is_empty() {
        term::out(
            "No API token. Create one with `fleetpin serve token create --name NAME --role ROLE`.\n",
        );
    } else {
        term::out(&table(tokens, now));
    }
}

/// `token revoke`: what was revoked, on stderr (stdout stays empty).
pub fn token_revoked(look: Look, info: &TokenInfo) {
    if !look.quiet {
        term::err(&format!(
            "revoked token `{}`: it is refused from now on",
            info.name
        ));
    }
}

fn environments(info: &TokenInfo) -> String {
    match &info.envs {
        None => "all environments".into(),
        Some(envs) => envs.join(", "),
    }
}

fn table(tokens: &[TokenInfo], now: SystemTime) -> String {
    let time = |t: SystemTime| crate::clock::rfc3339(t).replace('T', " ").replace('Z', "");
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "name",
        "id",
        "role",
        "environments",
        "created",
        "expires",
        "last used",
    ]);
    for t in tokens {
        let expires = match t.expires_at {
            None => "never".to_string(),
            Some(at) if t.is_expired(now) => format!("{} (expired)", time(at)),
            Some(at) => time(at),
        };
        b.push_record([
            t.name.clone(),
            t.id.clone(),
            t.role.to_string(),
            environments(t),
            time(t.created_at),
            expires,
            t.last_used.map(time).unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut table = b.build();
    table.with(tabled::settings::Style::sharp());
    format!("{table}\n")
}
