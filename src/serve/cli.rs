//! `fleetpin serve token create|list|revoke`: the API tokens of a console, managed from its
//! machine (where serve.yaml and its state directory are). Parses, calls the token store,
//! renders; the secret is shown once, here.

use super::config::ServeConfig;
use super::rights::Role;
use super::tokens::TokenStore;
use crate::cli::TokenCommand;
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use std::time::SystemTime;

pub fn token(config: &Config, file: &std::path::Path, command: &TokenCommand) -> Result<Exit> {
    crate::cmd::table_or_json(config)?;
    let look = crate::cmd::look(config);
    let msg = |e: &dyn std::fmt::Display| Error::msg(e.to_string());
    // A wrong role is said before anything is read.
    let role = match command {
        TokenCommand::Create { role, .. } => Some(role.parse::<Role>().map_err(|e| msg(&e))?),
        _ => None,
    };
    let serve = ServeConfig::load(file).map_err(|e| msg(&e))?;
    let store = TokenStore::for_config(&serve);
    let now = SystemTime::now();
    match command {
        TokenCommand::Create {
            name,
            envs,
            expires,
            ..
        } => {
            let role = role.expect("parsed above");
            let (info, secret) = store
                .create(name, role, envs, *expires, now)
                .map_err(|e| msg(&e))?;
            crate::render::serve::token_created(look, &info, &secret);
        }
        TokenCommand::List => {
            let tokens = store.list().map_err(|e| msg(&e))?;
            crate::render::serve::tokens(look, &tokens, now);
        }
        TokenCommand::Revoke { name } => {
            let info = store.revoke(name).map_err(|e| msg(&e))?;
            crate::render::serve::token_revoked(look, &info);
        }
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use crate::cli::parse_expiry;
    use std::time::Duration;

    #[test]
    fn expiries_read_days_and_refuse_bare_numbers() {
        assert_eq!(parse_expiry("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_expiry("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_expiry("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_expiry("90").is_err());
        assert!(parse_expiry("").is_err());
        assert!(parse_expiry("soon").is_err());
        assert!(parse_expiry("0s").is_err());
        assert!(parse_expiry("500ms").is_err());
    }
}
