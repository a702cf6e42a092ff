//! Image cleanup. Every upgrade leaves the old image behind, and `retain` only bounds containers:
//! without this, disks fill. The rule, since Docker does not record who pulled an image: an image
//! is removed when fleetpin removes the last fleetpin container that used it and no other
//! container on the engine — fleetpin's or not, running or not — uses it. `retain` then bounds
//! the disk as well.
//!
//! Every container fleetpin removes from a service (retention, `--prune`, a discarded or extra
//! failed container, repair) goes through `remove_container`, which notes its image. The images
//! are released once the host's run is done (`release`, from the runner, still under the lock):
//! the same run may still create a container from an image another service just stopped using.
//!
//! What is removed is the reference the container was created from, never forced: when other
//! tags name the same image (an operator's `docker tag`, or a tag pulled by hand that happens to
//! be the same image), Docker only untags that reference and the image stays; the image goes
//! with its last tag, and Docker itself refuses an image a container uses. When that reference
//! names another image by now (a tag re-pulled since), the old image is removed by id, and only
//! when no tag names it any more: a tag fleetpin did not deploy is never removed.

use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::host::report::{Progress, RemovedImage};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The images of the containers removed on one host during one run, released at its end.
#[derive(Debug, Default)]
pub struct Released {
    /// (the reference the container was created from, its image id)
    images: Mutex<Vec<(String, String)>>,
}

impl Released {
    fn note(&self, reference: &str, id: &str) {
        if id.is_empty() {
            return;
        }
        let mut images = self.images.lock().unwrap_or_else(|p| p.into_inner());
        let entry = (reference.to_string(), id.to_string());
        if !images.contains(&entry) {
            images.push(entry);
        }
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.images.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Removes a container of a service (never its volumes) and notes its image for `release`.
pub async fn remove_container<E: Engine>(
    engine: &E,
    released: &Released,
    c: &ContainerSummary,
) -> Result<(), EngineError> {
    engine.remove(&c.id).await?;
    released.note(&c.image, &c.image_id);
    Ok(())
}

/// `remove_container` for a container known by id only (one a swap created and drops).
pub async fn remove_by_id<E: Engine>(
    engine: &E,
    released: &Released,
    id: &str,
) -> Result<(), EngineError> {
    let image = engine
        .inspect_container(id)
        .await
        .ok()
        .map(|d| (d.image, d.image_id));
    engine.remove(id).await?;
    if let Some((reference, image_id)) = image {
        released.note(&reference, &image_id);
    }
    Ok(())
}

/// Removes the noted images that no container on the engine uses now (module comment). Never
/// fails the run: an image that cannot be removed is left, with a warning.
pub async fn release<E: Engine>(
    engine: &E,
    released: &Released,
    progress: Progress<'_>,
) -> Vec<RemovedImage> {
    let noted = released.take();
    if noted.is_empty() {
        return vec![];
    }
    let all = match engine.list_containers("").await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("could not list the containers to remove unused images: {e}");
            return vec![];
        }
    };
    let used: BTreeSet<&str> = all.iter().map(|c| c.image_id.as_str()).collect();
    let mut removed = Vec::new();
    for (reference, id) in &noted {
        if used.contains(id.as_str()) {
            continue;
        }
        let Some(target) = what_to_remove(engine, reference, id).await else {
            continue;
        };
        progress(&format!("removing the unused image {target}"));
        match engine.remove_image(&target).await {
            Ok(r) => removed.push(RemovedImage {
                reference: target,
                id: id.clone(),
                deleted: r.deleted,
            }),
            // Gone already, or in use by a container created since the list.
            Err(EngineError::NotFound { .. }) | Err(EngineError::Conflict { .. }) => {}
            Err(e) => tracing::warn!("could not remove the unused image {target}: {e}"),
        }
    }
    removed
}

/// The reference to remove for an image a removed container was created from `reference`:
/// that reference while it still names the image; else the image's id when no tag names it any
/// more; else nothing.
async fn what_to_remove<E: Engine>(engine: &E, reference: &str, id: &str) -> Option<String> {
    if !reference.starts_with("sha256:")
        && let Ok(Some(img)) = engine.inspect_image(reference).await
        && img.id == id
    {
        return Some(reference.to_string());
    }
    match engine.inspect_image(id).await {
        Ok(Some(img)) if img.repo_tags.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunState;
    use crate::engine::memory::{MemContainer, MemoryEngine};
    use std::collections::BTreeMap;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn container(e: &MemoryEngine, name: &str, image: &str) -> ContainerSummary {
        e.add_container(MemContainer::new(
            name,
            image,
            RunState::Exited,
            BTreeMap::new(),
        ));
        block(e.list_containers(name))
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    fn present(e: &MemoryEngine) -> Vec<String> {
        let mut v = e.state.lock().unwrap().images.clone();
        v.sort();
        v
    }

    #[test]
    fn the_image_goes_with_the_last_container_that_used_it() {
        let e = MemoryEngine::new(vec![]);
        let a = container(&e, "p-e-web.prev-1", "r/app:1.0.0");
        let b = container(&e, "p-e-worker.prev-1", "r/app:1.0.0");
        let released = Released::default();
        block(remove_container(&e, &released, &a)).unwrap();
        let none = block(release(&e, &released, &|_: &str| {}));
        assert!(none.is_empty(), "worker still uses it: {none:?}");
        assert_eq!(present(&e), ["r/app:1.0.0"]);
        block(remove_container(&e, &released, &b)).unwrap();
        let gone = block(release(&e, &released, &|_: &str| {}));
        assert_eq!(
            gone,
            [RemovedImage {
                reference: "r/app:1.0.0".into(),
                id: e.image_id("r/app:1.0.0"),
                deleted: true,
            }]
        );
        assert!(present(&e).is_empty());
    }

    #[test]
    fn a_container_fleetpin_did_not_create_keeps_the_image() {
        let e = MemoryEngine::new(vec![]);
        let a = container(&e, "p-e-web.prev-1", "r/app:1.0.0");
        container(&e, "someone-elses", "r/app:1.0.0");
        let released = Released::default();
        block(remove_container(&e, &released, &a)).unwrap();
        assert!(block(release(&e, &released, &|_: &str| {})).is_empty());
        assert_eq!(present(&e), ["r/app:1.0.0"]);
    }

    #[test]
    fn another_tag_of_the_same_image_stays_and_keeps_the_image() {
        let e = MemoryEngine::new(vec![]);
        let a = container(&e, "p-e-web.prev-1", "r/app:1.0.0");
        e.tag("r/app:1.0.0", "r/app:golden");
        let released = Released::default();
        block(remove_container(&e, &released, &a)).unwrap();
        let untagged = block(release(&e, &released, &|_: &str| {}));
        assert_eq!(untagged.len(), 1);
        assert!(!untagged[0].deleted, "only the tag went");
        assert_eq!(present(&e), ["r/app:golden"]);
        assert_eq!(e.image_id("r/app:golden"), e.image_id("r/app:1.0.0"));
    }

    #[test]
    fn nothing_removed_nothing_asked() {
        let e = MemoryEngine::new(vec![]);
        container(&e, "p-e-web", "r/app:1.0.0");
        let calls = e.state.lock().unwrap().calls.len();
        assert!(block(release(&e, &Released::default(), &|_: &str| {})).is_empty());
        assert_eq!(e.state.lock().unwrap().calls.len(), calls);
        assert_eq!(present(&e), ["r/app:1.0.0"]);
    }
}
