//! The round trip on the private fleet: a compose file (two services with host ports,
//! environment in both forms, named volumes and a bind mount) is imported, the manifest
//! validates, `fleetpin apply` runs it on a real host, and the containers Docker reports carry
//! exactly the compose file's ports, environment and mounts.

mod support;

use std::collections::BTreeMap;
use support::Scenario;

fn env_of(c: &bollard::models::ContainerInspectResponse) -> BTreeMap<String, String> {
    c.config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// (host ip, host port) per container port, as Docker holds them.
fn ports_of(
    c: &bollard::models::ContainerInspectResponse,
) -> BTreeMap<String, Vec<(String, String)>> {
    c.host_config
        .as_ref()
        .and_then(|h| h.port_bindings.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        (
                            b.host_ip.unwrap_or_default(),
                            b.host_port.unwrap_or_default(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// (type, source, target, read-write) of each mount, sorted by target.
fn mounts_of(c: &bollard::models::ContainerInspectResponse) -> Vec<(String, String, String, bool)> {
    let mut v: Vec<_> = c
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
            // Docker reports a volume's name, and a bind mount's host path, as its source.
            let source = if typ == "volume" {
                m.name.unwrap_or_default()
            } else {
                m.source.unwrap_or_default()
            };
            (
                typ,
                source,
                m.destination.unwrap_or_default(),
                m.rw.unwrap_or(false),
            )
        })
        .collect();
    v.sort_by(|a, b| a.2.cmp(&b.2));
    v
}

/// `docker run --rm [--entrypoint E] -v …  IMAGE CMD…` on `host`, as an operator would;
/// returns the exit code.
fn docker_run(
    s: &Scenario,
    host: &str,
    image: &str,
    entrypoint: &[&str],
    cmd: &[&str],
    volumes: &[(&str, &str, bool)],
) -> i64 {
    use futures_util::StreamExt;
    let docker = s.docker(host);
    let image = image.to_string();
    let entrypoint: Vec<String> = entrypoint.iter().map(|e| e.to_string()).collect();
    let cmd: Vec<String> = cmd.iter().map(|e| e.to_string()).collect();
    let mounts: Vec<bollard::models::Mount> = volumes
        .iter()
        .map(|(name, target, ro)| bollard::models::Mount {
            typ: Some(bollard::models::MountType::VOLUME),
            source: Some(name.to_string()),
            target: Some(target.to_string()),
            read_only: Some(*ro),
            ..Default::default()
        })
        .collect();
    support::block_on(async move {
        support::docker::pull(&docker, &image).await;
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: (!entrypoint.is_empty()).then_some(entrypoint),
            cmd: Some(cmd),
            host_config: Some(bollard::models::HostConfig {
                mounts: Some(mounts),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = support::docker::create(&docker, None, body).await;
        support::docker::start(&docker, &id).await;
        let code = match docker
            .wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>)
            .next()
            .await
        {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            other => panic!("wait: {other:?}"),
        };
        let opts = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .build();
        docker.remove_container(&id, Some(opts)).await.unwrap();
        code
    })
}

#[test]
fn an_imported_compose_file_applies_and_its_containers_carry_its_settings() {
    let (fleet, s) = fleet_scenario!("import");
    let p = s.platform.clone();
    let h1 = s.host("h1").tcp.clone();
    // The bind mount's host directory (the fleet's engines share this machine's filesystem),
    // with a page the app serves from it.
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(extra.path().join("hello.txt"), "from the host").unwrap();
    let extra_path = extra.path().display().to_string();
    let compose = format!(
        r#"name: {p}-compose
services:
  web:
    image: ${{APP_IMAGE}}:1.0.0
    restart: unless-stopped
    ports:
      - "18750:8080"
    environment:
      MODE: blue
      GREETING: hello ${{WHO}}
      PRICE: 5$$
    volumes:
      - web-data:/data
      - {extra_path}:/www/extra:ro
    depends_on:
      api:
        condition: service_healthy
  api:
    image: ${{APP_IMAGE}}:1.1.0
    ports:
      - target: 8080
        published: 18751
        host_ip: 0.0.0.0
    environment:
      - API_MODE=${{API_MODE:-green}}
      - EMPTY=
    volumes:
      - type: volume
        source: api-logs
        target: /var/log/tomcat
volumes:
  web-data:
  api-logs:
"#
    );
    std::fs::write(s.dir.path().join("compose.yml"), compose).unwrap();
    std::fs::write(
        s.dir.path().join(".env"),
        format!("APP_IMAGE={}\nWHO=fleet\n", fleet.image),
    )
    .unwrap();

    let host = format!("h1={h1}");
    let out = s.run(&[
        "import",
        "compose.yml",
        "--env",
        "test",
        "--host",
        &host,
        "--insecure",
        "--platform",
        &p,
        "-o",
        "platform.yaml",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    // The volumes' new names, said before anything runs.
    assert!(
        out.stderr.contains(&format!(
            "volume `web-data`: compose keeps its data in the Docker volume `{p}-compose_web-data`; the manifest mounts `{p}-test-web-data`"
        )),
        "{out:?}"
    );
    let v = s.run(&["validate"]);
    assert_eq!(v.code, 0, "{v:?}");
    s.commit("imported from compose.yml");

    // What compose left on the host: its volume, with data. Moved over with docs/import.md's
    // recipe (the volume created with fleetpin's labels, then `cp -a` in a throwaway container of
    // an image the host has).
    let image = format!("{}:1.0.0", fleet.image);
    let old = format!("{p}-compose_web-data");
    let new = format!("{p}-test-web-data");
    let sh = [
        "sh",
        "-c",
        "echo 42 > /v/orders && mkdir /v/dir && echo x > /v/dir/f",
    ];
    assert_eq!(
        docker_run(&s, "h1", &image, &[], &sh, &[(&old, "/v", false)]),
        0
    );
    let docker = s.docker("h1");
    let (n, plat) = (new.clone(), p.clone());
    support::block_on(async move {
        let req = bollard::models::VolumeCreateRequest {
            name: Some(n),
            labels: Some(std::collections::HashMap::from([
                ("io.fleetpin.platform".to_string(), plat),
                ("io.fleetpin.environment".to_string(), "test".to_string()),
            ])),
            ..Default::default()
        };
        docker.create_volume(req).await.unwrap();
    });
    let copy = ["-a", "/from/.", "/to/"];
    let moved = [(old.as_str(), "/from", true), (new.as_str(), "/to", false)];
    assert_eq!(docker_run(&s, "h1", &image, &["cp"], &copy, &moved), 0);

    s.apply_ok("test");

    let web = s.inspect("h1", &format!("{p}-test-web"));
    let api = s.inspect("h1", &format!("{p}-test-api"));

    // Ports, exactly.
    assert_eq!(
        ports_of(&web),
        BTreeMap::from([(
            "8080/tcp".to_string(),
            vec![(String::new(), "18750".to_string())]
        )])
    );
    assert_eq!(
        ports_of(&api),
        BTreeMap::from([(
            "8080/tcp".to_string(),
            vec![("0.0.0.0".to_string(), "18751".to_string())]
        )])
    );

    // Environment, exactly as compose would have set it (the image adds PATH and APP_VERSION).
    let mut env = env_of(&web);
    env.remove("PATH");
    env.remove("APP_VERSION");
    assert_eq!(
        env,
        BTreeMap::from([
            ("MODE".to_string(), "blue".to_string()),
            ("GREETING".to_string(), "hello fleet".to_string()),
            ("PRICE".to_string(), "5$".to_string()),
        ])
    );
    let mut env = env_of(&api);
    env.remove("PATH");
    env.remove("APP_VERSION");
    assert_eq!(
        env,
        BTreeMap::from([
            ("API_MODE".to_string(), "green".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    );

    // Mounts: the named volumes under fleetpin's names, the bind mount as written.
    assert_eq!(
        mounts_of(&web),
        vec![
            (
                "volume".to_string(),
                format!("{p}-test-web-data"),
                "/data".to_string(),
                true
            ),
            (
                "bind".to_string(),
                extra_path.clone(),
                "/www/extra".to_string(),
                false
            ),
        ]
    );
    assert_eq!(
        mounts_of(&api),
        vec![(
            "volume".to_string(),
            format!("{p}-test-api-logs"),
            "/var/log/tomcat".to_string(),
            true
        )]
    );

    // The restart policy as compose had it, and compose's default for the service without one.
    let policy = |c: &bollard::models::ContainerInspectResponse| {
        c.host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    assert_eq!(policy(&web), "unless-stopped");
    assert_eq!(policy(&api), "no");

    // And they serve: each its version, and the page from the bind mount.
    assert_eq!(s.version("h1", 18750).as_deref(), Some("1.0.0"));
    assert_eq!(s.version("h1", 18751).as_deref(), Some("1.1.0"));
    assert_eq!(
        s.get("h1", 18750, "/extra/hello.txt").as_deref(),
        Some("from the host")
    );

    // The data compose kept is what the new container sees.
    let check = ["-c", "test \"$(cat /v/orders)\" = 42 && test -f /v/dir/f"];
    assert_eq!(
        docker_run(&s, "h1", &image, &["sh"], &check, &[(&new, "/v", true)]),
        0
    );
    let wrong = ["-c", "test \"$(cat /v/orders)\" = 43"];
    assert_eq!(
        docker_run(&s, "h1", &image, &["sh"], &wrong, &[(&new, "/v", true)]),
        1
    );

    // A second apply finds nothing to do: the manifest says what runs.
    let again = s.run(&["plan", "test", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again:?}");
}
