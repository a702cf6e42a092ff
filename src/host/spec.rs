//! From a resolved service to the engine's container spec: the one place the manifest's words
//! become Docker's (ports, mounts, limits, healthcheck, networks and the alias).

use crate::engine::{CreateSpec, HealthSpec, MountSpec, PortBinding};
use crate::manifest::resolve::{MountSource, ResolvedService};
use crate::plan::labels::{self, DeployStamp};

/// The container spec for `r` under `name`.
pub fn create_spec(r: &ResolvedService, name: &str, stamp: &DeployStamp) -> CreateSpec {
    let mut env: Vec<String> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(
        r.secret_env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose())),
    );
    CreateSpec {
        name: name.to_string(),
        image: r.image_ref.clone(),
        env,
        labels: labels::for_service(r, stamp),
        ports: r
            .ports
            .iter()
            .map(|p| PortBinding {
                ip: p.ip.map(|i| i.to_string()),
                host: p.host,
                container: p.container,
                protocol: match p.protocol {
                    crate::manifest::values::Protocol::Tcp => "tcp".into(),
                    crate::manifest::values::Protocol::Udp => "udp".into(),
                },
            })
            .collect(),
        mounts: r
            .mounts
            .iter()
            .map(|m| match &m.source {
                MountSource::Volume { name } => MountSpec::Volume {
                    name: name.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
                MountSource::Bind { path } => MountSpec::Bind {
                    path: path.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
            })
            .collect(),
        command: r.command.clone(),
        entrypoint: r.entrypoint.clone(),
        user: r.user.clone(),
        memory: r.memory.map(|m| m as i64),
        nano_cpus: r.cpus.map(|c| (c * 1e9).round() as i64),
        log_driver: r
            .logging
            .as_ref()
            .map(|l| (l.driver.clone(), l.options.clone())),
        healthcheck: r.healthcheck.as_ref().map(|h| HealthSpec {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }),
        restart_policy: r.restart.as_str().to_string(),
        stop_timeout: r.stop_timeout,
        networks: r.networks.clone(),
        aliases: vec![r.service.clone()],
    }
}
