//! Which containers hold secret values other than the ones wanted now. The spec hash holds no
//! value (a hash of a short password could be tested offline), so a container whose hash matches
//! may still run old secrets: its environment is read from the engine, compared in memory and
//! dropped. Shared by planning (`ops::deploy`) and the host runner, which plans again under the
//! lock, so that both see the same.

use crate::engine::Engine;
use crate::manifest::resolve::ResolvedService;
use crate::plan::view::HostView;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The containers of `view` that would serve a service with secrets as they are (the current one
/// and the kept ones, when their spec hash matches) but whose environment lacks one of the values
/// wanted now. Their environment is read only for services with secrets, compared in memory and
/// dropped; one that cannot be read counts as stale (it is replaced, never trusted).
pub async fn stale<E: Engine>(
    engine: &E,
    desired: &[Arc<ResolvedService>],
    view: &HostView,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in desired.iter().filter(|r| !r.secret_env.is_empty()) {
        let candidates = view
            .current
            .get(&r.service)
            .into_iter()
            .chain(view.kept(&r.service))
            .filter(|c| {
                c.labels
                    .get(crate::plan::labels::SPEC_HASH)
                    .is_some_and(|h| r.hash_matches(h))
            });
        for c in candidates {
            let differs = match engine.container_env(&c.id).await {
                Ok(env) => crate::plan::secrets_differ(r, &env),
                Err(_) => true,
            };
            if differs {
                out.insert(c.id.clone());
            }
        }
    }
    out
}
