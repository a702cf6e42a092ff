//! First contact with the private fleet: fleetpin's bollard engine reaches every host over TCP
//! and over its unix socket, speaks the host's own API version, and reads
//! the engine version.

mod support;

use fleetpin::engine::Engine;
use fleetpin::engine::docker::{DockerEngine, Target};
use fleetpin::manifest::values::Endpoint;
use std::time::Duration;

#[tokio::test]
async fn every_fleet_host_reports_its_engine_version_over_tcp_and_unix() {
    let fleet = require_fleet!();
    assert!(
        fleet.hosts.len() >= 3,
        "the fleet should have at least 3 hosts"
    );
    for host in &fleet.hosts {
        for (how, endpoint) in [("tcp", &host.tcp), ("unix", &host.unix)] {
            if endpoint.is_empty() {
                continue; // the TLS host has no plain endpoint: tests/fleet_security.rs covers it
            }
            let target = Target {
                endpoint: Endpoint::parse(endpoint).unwrap(),
                tls: None,
                insecure: true,
            };
            let engine = DockerEngine::connect(&target, Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("{} over {how}: {e}", host.name));
            let info = engine.info().await.unwrap();
            println!(
                "{} ({how} {}): Docker Engine {} API {} {}/{}",
                host.name, endpoint, info.server_version, info.api_version, info.os, info.arch
            );
            assert!(
                info.server_version.starts_with("20.10"),
                "{}: {}",
                host.name,
                info.server_version
            );
            assert_eq!(
                info.api_version, "1.41",
                "bollard must negotiate down to the host's API"
            );
            assert_eq!(info.os, "linux");
        }
    }
}

#[tokio::test]
async fn a_dead_endpoint_costs_one_connect_timeout() {
    // 10.213.7.250 is inside the fleet's bridge subnet and never assigned: nothing answers.
    let _fleet = require_fleet!();
    let target = Target {
        endpoint: Endpoint::parse("tcp://10.213.7.250:2375").unwrap(),
        tls: None,
        insecure: true,
    };
    let started = std::time::Instant::now();
    // Connecting sends nothing (no GET /version per host): the first request is the one that
    // finds nobody there, bounded by the connect timeout.
    let engine = DockerEngine::connect(&target, Duration::from_secs(2))
        .await
        .expect("preparing the client sends no request");
    let err = engine
        .list_containers("fleetpin.")
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("10.213.7.250"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
