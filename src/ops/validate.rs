//! `validate` beyond the manifest's own checks (which `manifest::load` already ran): what the
//! files it names say. A plain env_file missing from the working tree, or a SOPS file no
//! identity at hand opens, is a warning (a command that needs the values says it again, as an
//! error); a SOPS file that does not parse, was tampered with (its MAC), lacks a key the manifest
//! names, or a plain env_file in git where agents follow, is an error. Every line is located at
//! the manifest's reference to the file; none holds a value.

use crate::manifest::Loaded;
use crate::manifest::yaml::Span;
use crate::ops::context::Ctx;
use crate::ops::error::{OpError, OpResult};
use crate::ops::secrets::{PlainInGit, SecretError, SecretFiles, plain_committed, policy};
use std::collections::BTreeSet;

/// The warnings, in manifest order; the errors, if any, as one `OpError::Invalid`.
pub fn validate(ctx: &Ctx, loaded: &Loaded) -> OpResult<Vec<String>> {
    let m = &loaded.manifest;
    let at = |span: Span, msg: String| {
        format!(
            "{}:{}:{}: {msg}",
            loaded.path.display(),
            span.line,
            span.column
        )
    };
    let mut warnings = BTreeSet::new();
    let mut errors = BTreeSet::new();
    for (env_name, env) in &m.environments {
        let files = SecretFiles::new(loaded, &ctx.keys, policy(loaded, env_name));
        let mut sort = |span: Span, what: String, r: Result<(), SecretError>| match r {
            Ok(()) => {}
            Err(SecretError::Unreadable(e)) => {
                warnings.insert(at(
                    span,
                    format!("{what} is not in the working tree ({e}); plan and apply will need it"),
                ));
            }
            Err(SecretError::NoIdentity(e)) => {
                warnings.insert(at(
                    span,
                    format!("{what}: {e}; plan and apply in {env_name} will need an identity that opens it"),
                ));
            }
            Err(SecretError::Invalid(e)) => {
                errors.insert(at(span, format!("{what}: {e}")));
            }
        };
        for service in env.versions.keys() {
            let s = &m.services[service];
            if let Some(f) = &s.env_file {
                let r = files.env_file_checked(&f.value).map(drop);
                sort(
                    f.span,
                    format!("env_file `{}` of service `{service}`", f.value),
                    r,
                );
            }
            let refs = s.secret_env.iter().chain(
                env.overrides
                    .get(service)
                    .into_iter()
                    .flat_map(|o| o.secret_env.iter()),
            );
            for (var, r) in refs {
                let v = files.value_checked(&r.value.file, &r.value.key).map(drop);
                sort(
                    r.span,
                    format!(
                        "`{var}` of service `{service}` ({} `{}`)",
                        r.value.file, r.value.key
                    ),
                    v,
                );
            }
        }
        if policy(loaded, env_name) == PlainInGit::Allow {
            for f in plain_committed(loaded, env_name) {
                warnings.insert(format!(
                    "{}: env_file {f} is committed to git in plain text (used in {env_name}): encrypt it with sops (docs/secrets.md)",
                    loaded.path.display()
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(
            errors.into_iter().collect::<Vec<_>>().join("\n"),
        ));
    }
    let mut out: Vec<String> = warnings.into_iter().collect();
    for w in crate::manifest::checks::warnings(m) {
        out.push(at(w.span, w.message));
    }
    Ok(out)
}
