//! Around the registry, on real daemons: credentials found the way the docker CLI finds them
//! (a credential helper program on PATH, behind the fleet's basic-auth registry), and the images
//! every upgrade leaves behind removed once no container uses them, while the running and
//! retained ones and a tag the operator pulled by hand stay.

mod support;

use support::{Scenario, block_on};

/// Writes `docker-credential-fleettest` into `dir`: it answers for `registry` with the fleet's
/// user and password (and notes each question in `dir/asked`), and holds nothing else.
fn fleettest_helper(dir: &std::path::Path, registry: &str, user: &str, password: &str) {
    use std::os::unix::fs::PermissionsExt;
    let script = format!(
        r#"#!/bin/sh
[ "$1" = get ] || {{ echo "unknown action $1"; exit 1; }}
read -r server || true
echo "$server" >> "{asked}"
if [ "$server" = "{registry}" ]; then
  printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{password}"}}\n' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"#,
        asked = dir.join("asked").display(),
    );
    let p = dir.join("docker-credential-fleettest");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A docker config directory holding `config_json`, the helper of `fleettest_helper` for the
/// fleet's auth registry, and the two PATHs: without the helper and with it first.
struct Credentials {
    helpers: tempfile::TempDir,
    config: tempfile::TempDir,
    plain_path: String,
    with_helper: String,
}

impl Credentials {
    fn new(fleet: &support::Fleet, config_json: &str) -> Credentials {
        let helpers = tempfile::tempdir().unwrap();
        fleettest_helper(
            helpers.path(),
            &fleet.auth_registry,
            &fleet.auth_user,
            &fleet.auth_password,
        );
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("config.json"), config_json).unwrap();
        let plain_path = std::env::var("PATH").unwrap();
        let with_helper = format!("{}:{plain_path}", helpers.path().display());
        Credentials {
            helpers,
            config,
            plain_path,
            with_helper,
        }
    }
}

fn run_fleetpin(
    s: &Scenario,
    args: &[&str],
    docker_config: &std::path::Path,
    path: &str,
) -> support::Out {
    s.run_with(
        args,
        &[
            ("DOCKER_CONFIG", docker_config.to_str().unwrap()),
            ("PATH", path),
        ],
    )
}

#[test]
fn a_pull_from_a_registry_behind_auth_works_only_through_the_credential_helper() {
    let fleet = require_fleet!();
    assert!(
        !fleet.auth_registry.is_empty(),
        "the fleet has no auth registry (FLEET_AUTH_REGISTRY)"
    );
    let s = Scenario::new(&fleet, "cc-credhelper");
    let image = format!("{}/fleetpin/app", fleet.auth_registry);
    let manifest = |v: &str| {
        s.manifest(&["h3"], &[("web", 18680, "")], &[("web", v)])
            .replace(&fleet.image, &image)
    };
    s.write(&manifest("1.0.0"));
    // An earlier run may have left the images on the host: they must be pulled.
    for v in ["1.0.0", "1.1.0"] {
        s.remove_image("h3", &format!("{image}:{v}"));
    }
    // The seed's config: a store, and an `auths` entry without credentials.
    let Credentials {
        helpers,
        config,
        plain_path,
        with_helper,
    } = Credentials::new(
        &fleet,
        &format!(
            r#"{{"auths": {{"{}": {{"auth": ""}}}}, "credsStore": "fleettest"}}"#,
            fleet.auth_registry
        ),
    );

    // The helper is not on PATH: the pull goes anonymous, fails, and says which helper and why.
    let out = run_fleetpin(&s, &["apply", "test", "--yes"], config.path(), &plain_path);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("pull of {image}:1.0.0 failed")),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("docker-credential-fleettest (credsStore in")
            && out.stdout.contains("is not on PATH: install it"),
        "names the helper and what to do: {out:?}"
    );
    assert!(s.containers("h3").is_empty(), "{out:?}");

    // On PATH: asked once, with the registry's host on stdin, and the pull goes through.
    let out = run_fleetpin(&s, &["apply", "test", "--yes"], config.path(), &with_helper);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h3", 18680).as_deref(), Some("1.0.0"));
    assert_eq!(
        std::fs::read_to_string(helpers.path().join("asked")).unwrap(),
        format!("{}\n", fleet.auth_registry)
    );
    assert!(
        !out.stdout.contains(&fleet.auth_password) && !out.stderr.contains(&fleet.auth_password),
        "the secret is never printed"
    );

    // credHelpers names the helper for this registry and wins over a store that is not
    // installed.
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"credsStore": "not-installed", "credHelpers": {{"{}": "fleettest"}}}}"#,
            fleet.auth_registry
        ),
    )
    .unwrap();
    s.write(&manifest("1.1.0"));
    let out = run_fleetpin(&s, &["apply", "test", "--yes"], config.path(), &with_helper);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(s.version("h3", 18680).as_deref(), Some("1.1.0"));
}

/// The image ids of a host, or whether one is there, through the Engine API.
fn image_tags(s: &Scenario, host: &str, id: &str) -> Option<Vec<String>> {
    s.inspect_image(host, id)
        .ok()
        .map(|i| i.repo_tags.unwrap_or_default())
}

/// An image of its own for `repo:tag` in the fleet's registry, made from `source` (so that it
/// runs the same) but with an id no other test's image has; pushed, then left off the host.
/// Returns its id.
fn own_image(s: &Scenario, host: &str, source: &str, repo: &str, tags: &[&str]) -> String {
    let docker = s.docker(host);
    let (source, repo) = (source.to_string(), repo.to_string());
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    let holder = format!("{}-source-{}", s.platform, tags[0].replace('.', "-"));
    block_on(async move {
        support::docker::pull(&docker, &source).await;
        support::docker::create_plain(&docker, &holder, &source).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let opts = bollard::query_parameters::CommitContainerOptionsBuilder::new()
            .container(&holder)
            .repo(&repo)
            .tag(&tags[0])
            .comment(&format!("fleetpin cleanup test {nanos}"))
            .build();
        let id = docker
            .commit_container(opts, bollard::models::ContainerConfig::default())
            .await
            .unwrap()
            .id;
        let _ = docker
            .remove_container(
                &holder,
                None::<bollard::query_parameters::RemoveContainerOptions>,
            )
            .await;
        for tag in &tags {
            let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
                .repo(&repo)
                .tag(tag)
                .build();
            docker.tag_image(&id, Some(opts)).await.unwrap();
            support::docker::push(&docker, &repo, tag).await;
        }
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        docker.remove_image(&id, Some(opts), None).await.unwrap();
        id
    })
}

/// Removes what an interrupted earlier run left on `host`: the images `own_image` made (known
/// by their comment, tagged or not) and the containers using them.
fn forget_own_images(s: &Scenario, host: &str) {
    s.cleanup();
    let docker = s.docker(host);
    block_on(async move {
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
            .all(true)
            .build();
        for i in docker.list_images(Some(opts)).await.unwrap() {
            let Ok(inspect) = docker.inspect_image(&i.id).await else {
                continue;
            };
            if inspect
                .comment
                .is_some_and(|c| c.starts_with("fleetpin cleanup test "))
            {
                let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .force(true)
                    .build();
                let _ = docker.remove_image(&i.id, Some(opts), None).await;
            }
        }
    });
}

#[test]
fn upgrades_leave_only_the_running_and_retained_images_and_a_tag_pulled_by_hand() {
    let (fleet, s) = fleet_scenario!("cc-imgclean");
    let host = "h2";
    let repo = format!("{}/fleetpin/imgclean", fleet.registry);
    forget_own_images(&s, host);
    let mut id = std::collections::BTreeMap::new();
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        // 1.1.0 is also `golden` in the registry: the operator pulls that tag by hand.
        let tags: &[&str] = if v == "1.1.0" { &[v, "golden"] } else { &[v] };
        let made = own_image(&s, host, &format!("{}:{v}", fleet.image), &repo, tags);
        assert_eq!(image_tags(&s, host, &made), None, "not on the host yet");
        id.insert(v, made);
    }
    // The operator's own pull, with a plain API call.
    let docker = s.docker(host);
    let golden = format!("{repo}:golden");
    block_on(support::docker::pull(&docker, &golden));
    assert_eq!(
        image_tags(&s, host, &id["1.1.0"]),
        Some(vec![golden.clone()])
    );

    let manifest = |v: &str| {
        s.manifest(&[host], &[("web", 18681, "")], &[("web", v)])
            .replace(&fleet.image, &repo)
            .replace("retain: 2\n", "retain: 1\n")
    };
    let mut outs = Vec::new();
    for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
        s.write(&manifest(v));
        let out = s.apply_ok("test");
        assert_eq!(s.version(host, 18681).as_deref(), Some(v));
        outs.push(out);
    }
    // 1.2.0 let 1.0.0's container go, and with it its image; 2.0.0 let 1.1.0's go, whose image
    // the operator's tag keeps.
    assert!(
        outs[2]
            .stdout
            .contains(&format!("unused image removed: {repo}:1.0.0")),
        "{:?}",
        outs[2]
    );
    assert!(
        outs[3].stdout.contains(&format!(
            "unused tag removed: {repo}:1.1.0 (other tags still name the image)"
        )),
        "{:?}",
        outs[3]
    );
    assert_eq!(image_tags(&s, host, &id["1.0.0"]), None, "1.0.0 is gone");
    assert_eq!(
        image_tags(&s, host, &id["1.1.0"]),
        Some(vec![golden.clone()]),
        "the tag pulled by hand stays, and its image"
    );
    assert_eq!(
        image_tags(&s, host, &id["1.2.0"]),
        Some(vec![format!("{repo}:1.2.0")]),
        "the retained release's image"
    );
    assert_eq!(
        image_tags(&s, host, &id["2.0.0"]),
        Some(vec![format!("{repo}:2.0.0")]),
        "the running release's image"
    );

    // A container fleetpin did not create (stopped) keeps the image it uses.
    let foreign = format!("{}-foreign", s.platform);
    let (f, img) = (foreign.clone(), id["1.2.0"].clone());
    block_on(support::docker::create_plain(&docker, &f, &img));
    s.write(&manifest("1.1.0"));
    let out = s.apply_ok("test");
    assert!(!out.stdout.contains("unused image removed"), "{out:?}");
    assert_eq!(
        image_tags(&s, host, &id["1.2.0"]),
        Some(vec![format!("{repo}:1.2.0")]),
        "used by {foreign}"
    );

    // Leave the host as it was.
    s.cleanup();
    block_on(async {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(true)
            .build();
        for i in id.values() {
            let _ = docker.remove_image(i, Some(opts.clone()), None).await;
        }
    });
}

/// `fleetpin publish` to the basic-auth registry: refused without credentials (saying what to
/// do), pushed through the credential helper, and readable there under the branch's tag.
#[test]
fn publish_reaches_a_registry_behind_auth_through_the_credential_helper() {
    let fleet = require_fleet!();
    assert!(
        !fleet.auth_registry.is_empty(),
        "the fleet has no auth registry (FLEET_AUTH_REGISTRY)"
    );
    let s = Scenario::new(&fleet, "cc-publish");
    let repository = format!("{}/{}/reference", fleet.auth_registry, s.platform);
    s.write(
        &(s.web(&["h3"], 18690, "1.0.0")
            + &format!("reference: {{repository: \"{repository}\", insecure: true}}\n")),
    );
    let Credentials {
        helpers: _helpers,
        config,
        plain_path,
        with_helper,
    } = Credentials::new(
        &fleet,
        &format!(
            r#"{{"credHelpers": {{"{}": "fleettest"}}}}"#,
            fleet.auth_registry
        ),
    );

    // Without the helper: anonymous, refused, and the message says how to log in.
    let out = run_fleetpin(&s, &["publish"], config.path(), &plain_path);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("docker-credential-fleettest"),
        "{out:?}"
    );

    let out = run_fleetpin(
        &s,
        &["publish", "--format", "json"],
        config.path(),
        &with_helper,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let doc = out.json();
    assert_eq!(doc["commit"], s.head().as_str(), "{doc}");
    for o in [&out.stdout, &out.stderr] {
        assert!(
            !o.contains(&fleet.auth_password),
            "the secret is never printed"
        );
    }
    // The registry serves it under the branch's tag, with the digest publish named.
    let branch = doc["tags"][1].as_str().unwrap().to_string();
    let head = std::process::Command::new("curl")
        .args([
            "-sS",
            "-I",
            "-u",
            &format!("{}:{}", fleet.auth_user, fleet.auth_password),
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!(
                "http://{}/v2/{}/reference/manifests/{branch}",
                fleet.auth_registry, s.platform
            ),
        ])
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&head.stdout).to_lowercase();
    assert!(
        headers.contains(&format!(
            "docker-content-digest: {}",
            doc["digest"].as_str().unwrap()
        )),
        "{headers}"
    );
}
