//! The small value syntaxes of the manifest — ports, volumes, durations, memory, endpoints — parsed
//! into typed values once, so that validation, resolution and the Docker seam never re-parse strings.
//! Each parser returns a message a person can act on; `decode` adds the file, line and column.

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `[IP:]HOST:CONTAINER[/tcp|/udp]`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortMapping {
    pub ip: Option<IpAddr>,
    pub host: u16,
    pub container: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    pub fn parse(s: &str) -> Result<PortMapping, String> {
        let expected = "expected `HOST:CONTAINER`, `IP:HOST:CONTAINER`, optionally ending in `/tcp` or `/udp`, e.g. \"8081:8080\"";
        let (body, protocol) = match s.rsplit_once('/') {
            Some((b, "tcp")) => (b, Protocol::Tcp),
            Some((b, "udp")) => (b, Protocol::Udp),
            Some((_, p)) => {
                return Err(format!(
                    "unknown protocol `{p}` in port `{s}`; use tcp or udp"
                ));
            }
            None => (s, Protocol::Tcp),
        };
        // A bracketed IPv6 address may hold colons itself.
        let (ip, rest) = if let Some(after) = body.strip_prefix('[') {
            let (addr, rest) = after
                .split_once("]:")
                .ok_or_else(|| format!("`{s}`: {expected}"))?;
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{addr}` in port `{s}` is not an IP address"))?;
            (Some(ip), rest)
        } else {
            let parts: Vec<&str> = body.split(':').collect();
            match parts.len() {
                2 => (None, body),
                3 => {
                    let ip: IpAddr = parts[0].parse().map_err(|_| {
                        format!("`{}` in port `{s}` is not an IP address", parts[0])
                    })?;
                    (Some(ip), &body[parts[0].len() + 1..])
                }
                _ => return Err(format!("`{s}`: {expected}")),
            }
        };
        let (h, c) = rest
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: {expected}"))?;
        let port = |p: &str| -> Result<u16, String> {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                _ => Err(format!(
                    "`{p}` in port `{s}` is not a port number (1 to 65535)"
                )),
            }
        };
        Ok(PortMapping {
            ip,
            host: port(h)?,
            container: port(c)?,
            protocol,
        })
    }

    /// Two mappings collide when they would bind the same host port: same protocol and port, and
    /// the same address or either one on all addresses.
    pub fn collides_with(&self, other: &PortMapping) -> bool {
        self.host == other.host
            && self.protocol == other.protocol
            && (self.ip.is_none() || other.ip.is_none() || self.ip == other.ip)
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}:{}/{p}", self.host, self.container)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum VolumeSource {
    /// A named volume, created on the host as `{platform}-{environment}-{name}`.
    Named { name: String },
    /// A host directory, written as an absolute path.
    Bind { path: String },
}

/// `NAME:PATH[:ro]` or `/ABSOLUTE/HOST/PATH:PATH[:ro]`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VolumeMount {
    pub source: VolumeSource,
    pub target: String,
    pub read_only: bool,
}

impl VolumeMount {
    pub fn parse(s: &str) -> Result<VolumeMount, String> {
        let expected = "expected `NAME:PATH`, `/HOST/PATH:PATH`, optionally ending in `:ro` or `:rw`, e.g. \"billing-logs:/var/log/tomcat\"";
        let parts: Vec<&str> = s.split(':').collect();
        let (src, target, read_only) = match parts.as_slice() {
            [src, target] => (*src, *target, false),
            [src, target, "ro"] => (*src, *target, true),
            [src, target, "rw"] => (*src, *target, false),
            [_, _, mode] => {
                return Err(format!(
                    "unknown mode `{mode}` in volume `{s}`; use ro or rw"
                ));
            }
            _ => return Err(format!("`{s}`: {expected}")),
        };
        for path in [src, target] {
            if let Some(c) = path.chars().find(|c| bad_path_char(*c)) {
                return Err(format!(
                    "`{}` in volume `{}` is not a plain path: {c:?} has no place in one",
                    path.escape_debug(),
                    s.escape_debug()
                ));
            }
        }
        if !target.starts_with('/') {
            return Err(format!(
                "the container path `{target}` in volume `{s}` must be absolute (start with `/`)"
            ));
        }
        if target.split('/').any(|c| c == "..") {
            return Err(format!(
                "the container path `{target}` in volume `{s}` must not contain `..`"
            ));
        }
        let source = if src.starts_with('/') {
            VolumeSource::Bind {
                path: src.to_string(),
            }
        } else if src.starts_with('.') || src.starts_with('~') {
            return Err(format!(
                "`{src}` in volume `{s}` is a relative host path; write an absolute path or a volume name"
            ));
        } else if valid_volume_name(src) {
            VolumeSource::Named {
                name: src.to_string(),
            }
        } else {
            return Err(format!(
                "`{src}` in volume `{s}` is not a valid volume name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)"
            ));
        };
        Ok(VolumeMount {
            source,
            target: target.to_string(),
            read_only,
        })
    }
}

/// Characters refused in paths: controls and what a shell would interpret. Paths reach Docker's
/// API, never a shell, but a path holding `$(…)` or a newline is a mistake or an attack.
fn bad_path_char(c: char) -> bool {
    c.is_control() || "$`;|&<>(){}*?!\"'\\".contains(c)
}

pub fn valid_volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Network names follow the same rule as volume names.
pub fn valid_network_name(s: &str) -> bool {
    valid_volume_name(s)
}

/// `2s`, `500ms`, `1m30s`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let msg = || {
        format!(
            "`{s}` is not a duration; expected a number with a unit, e.g. \"10s\", \"500ms\", \"1m30s\""
        )
    };
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(msg());
    }
    let d = humantime::parse_duration(t).map_err(|_| msg())?;
    if d > Duration::from_secs(24 * 3600) {
        return Err(format!("`{s}` is longer than a day; that cannot be meant"));
    }
    Ok(d)
}

/// A webhook URL: `http(s)://HOST[:PORT][/PATH][?QUERY]`. Messages never repeat the URL: its path
/// is often a secret (Slack's are).
pub fn check_webhook(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains a space or a control character".into());
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err("not a URL; expected https://HOST/PATH".into());
    };
    if scheme != "https" && scheme != "http" {
        return Err(format!(
            "`{scheme}://` is not supported; a webhook is https:// (or http://)"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "the URL holds a user or password; send a token with `webhook_env` instead".into(),
        );
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL has no host".into());
    }
    if s.contains('#') {
        return Err("the URL has a #fragment, which is never sent; leave it out".into());
    }
    match s.parse::<hyper::Uri>() {
        Ok(u) if u.host().is_some_and(|h| !h.is_empty()) && port_ok(authority) => Ok(()),
        _ => Err("not a valid URL (host, port or path)".into()),
    }
}

/// No port, or one from 1 to 65535.
fn port_ok(authority: &str) -> bool {
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, rest)| rest).unwrap_or(""),
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(p) => p.parse::<u16>().is_ok_and(|n| n > 0),
    }
}

/// `scheme://host[:port]` of a URL: all of a webhook that messages may show.
pub fn url_origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Userinfo is refused by `check_webhook`; never shown even so.
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => "(a webhook)".into(),
    }
}

/// `512m`, `1g`, `256k`, `1024` (bytes); Docker's units, powers of 1024.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let msg = || {
        format!(
            "`{s}` is not a memory size; expected a number with a unit, e.g. \"512m\" or \"2g\""
        )
    };
    let digits_end = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let num: f64 = num.parse().map_err(|_| msg())?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(msg()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 6.0 * (1u64 << 20) as f64 || bytes > (1u64 << 50) as f64 {
        return Err(format!(
            "`{s}` is out of range: Docker needs at least 6m, and no host has a petabyte"
        ));
    }
    Ok(bytes as u64)
}

/// How fleetpin reaches a host's Docker engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum Endpoint {
    Unix {
        path: String,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{s}`: a unix endpoint needs an absolute socket path, e.g. unix:///var/run/docker.sock"
                ));
            }
            if let Some(c) = path
                .chars()
                .find(|c| bad_path_char(*c) || c.is_whitespace())
            {
                return Err(format!(
                    "`{}`: {c:?} has no place in a socket path",
                    s.escape_debug()
                ));
            }
            return Ok(Endpoint::Unix {
                path: path.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = split_host_port(rest).ok_or_else(|| {
                format!("`{s}`: a tcp endpoint needs a host and a port, e.g. tcp://10.0.0.11:2376")
            })?;
            let port = port.ok_or_else(|| {
                format!("`{s}`: a tcp endpoint needs a port, e.g. tcp://10.0.0.11:2376")
            })?;
            return Ok(Endpoint::Tcp { host, port });
        }
        if let Some(rest) = s.strip_prefix("ssh://") {
            let rest = rest.trim_end_matches('/');
            let (user, hostport) = match rest.rsplit_once('@') {
                // The user reaches the ssh command line: a plain login name only, never an option.
                Some((u, _))
                    if u.starts_with('-')
                        || !u
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
                {
                    return Err(format!(
                        "`{}`: `{}` is not a plain user name",
                        s.escape_debug(),
                        u.escape_debug()
                    ));
                }
                Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                Some(_) => return Err(format!("`{s}`: empty user before `@`")),
                None => (None, rest),
            };
            let (host, port) = split_host_port(hostport).ok_or_else(|| {
                format!("`{s}`: an ssh endpoint needs a host, e.g. ssh://deploy@prod-1")
            })?;
            return Ok(Endpoint::Ssh { user, host, port });
        }
        Err(format!(
            "`{s}` is not a Docker endpoint; expected unix:///path/to/docker.sock, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]"
        ))
    }

    /// The same engine written two ways (`tcp://h:1` twice) is the same endpoint.
    pub fn key(&self) -> String {
        match self {
            Endpoint::Unix { path } => format!("unix://{path}"),
            Endpoint::Tcp { host, port } => format!("tcp://{}:{port}", host.to_ascii_lowercase()),
            Endpoint::Ssh { user, host, port } => format!(
                "ssh://{}{}:{}",
                user.as_ref().map(|u| format!("{u}@")).unwrap_or_default(),
                host.to_ascii_lowercase(),
                port.unwrap_or(22)
            ),
        }
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(after) = s.strip_prefix('[') {
        let (h, rest) = after.split_once(']')?;
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return None,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || host.starts_with('-')
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks() {
        for ok in [
            "https://hooks.example/fleetpin",
            "http://127.0.0.1:18870/in?x=1",
            "https://hooks.slack.com/services/T0/B0/XXXX",
            "https://[::1]:8443/",
        ] {
            assert_eq!(check_webhook(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("hooks.example/x", "not a URL"),
            ("ftp://hooks.example/x", "not supported"),
            ("https:///x", "no host"),
            ("https://user:secret@hooks.example/x", "user or password"),
            ("https://hooks.example/x#f", "fragment"),
            ("https://hooks.example/a b", "space"),
            ("https://hooks.example:99999/", "not a valid URL"),
        ] {
            let e = check_webhook(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
            assert!(
                !e.contains("hooks.example"),
                "the URL is never repeated: {e}"
            );
        }
        assert_eq!(
            url_origin("https://hooks.slack.com/services/T0/B0/XXXX?a=b"),
            "https://hooks.slack.com"
        );
        assert_eq!(url_origin("http://10.0.0.1:8080"), "http://10.0.0.1:8080");
        assert_eq!(url_origin("https://u:p@h.example/x"), "https://h.example");
    }

    #[test]
    fn ports() {
        let p = PortMapping::parse("8081:8080").unwrap();
        assert_eq!(
            (p.host, p.container, p.protocol, p.ip),
            (8081, 8080, Protocol::Tcp, None)
        );
        let p = PortMapping::parse("127.0.0.1:53:53/udp").unwrap();
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(p.to_string(), "127.0.0.1:53:53/udp");
        assert!(PortMapping::parse("[::1]:80:8080").is_ok());
        assert!(PortMapping::parse("8080").is_err());
        assert!(PortMapping::parse("70000:80").is_err());
        assert!(PortMapping::parse("80:80/sctp").is_err());
        assert!(PortMapping::parse("nope:80:80").is_err());
        let a = PortMapping::parse("80:1").unwrap();
        let b = PortMapping::parse("127.0.0.1:80:2").unwrap();
        let c = PortMapping::parse("80:3/udp").unwrap();
        assert!(a.collides_with(&b));
        assert!(!a.collides_with(&c));
    }

    #[test]
    fn volumes() {
        let v = VolumeMount::parse("billing-logs:/var/log/tomcat").unwrap();
        assert_eq!(
            v.source,
            VolumeSource::Named {
                name: "billing-logs".into()
            }
        );
        let v = VolumeMount::parse("/srv/conf:/etc/app:ro").unwrap();
        assert!(v.read_only);
        assert!(VolumeMount::parse("./conf:/etc/app").is_err());
        assert!(VolumeMount::parse("logs:relative").is_err());
        assert!(VolumeMount::parse("logs:/x:rx").is_err());
        assert!(VolumeMount::parse("just-a-name").is_err());
    }

    #[test]
    fn durations_and_memory() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1GiB").unwrap(), 1 << 30);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("1k").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.11:2376").unwrap(),
            Endpoint::Tcp {
                host: "10.0.0.11".into(),
                port: 2376
            }
        );
        assert!(matches!(
            Endpoint::parse("ssh://deploy@prod-1").unwrap(),
            Endpoint::Ssh { .. }
        ));
        assert!(Endpoint::parse("unix:///var/run/docker.sock").is_ok());
        assert!(Endpoint::parse("http://x:1").is_err());
        assert!(Endpoint::parse("tcp://x").is_err());
        assert!(Endpoint::parse("tcp://x;rm -rf /:1").is_err());
        assert_eq!(
            Endpoint::parse("tcp://HOST:1").unwrap().key(),
            Endpoint::parse("tcp://host:1/").unwrap().key()
        );
    }
}
