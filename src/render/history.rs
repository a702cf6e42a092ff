//! The pin history as a table.

use crate::ops::history::Row;

pub fn short(pin: &Option<String>) -> String {
    match pin {
        None => "-".into(),
        Some(p) => match p.split_once("@sha256:") {
            Some((tag, d)) => format!("{tag}@{}", &d[..12.min(d.len())]),
            None => p.clone(),
        },
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut b = tabled::builder::Builder::default();
    // Who signed: a column once any change is signed.
    let signed = rows.iter().any(|r| r.signed_by.is_some());
    let mut head = vec![
        "date",
        "author",
        "commit",
        "env",
        "service",
        "from -> to",
        "subject",
    ];
    if signed {
        head.push("signed by");
    }
    b.push_record(head);
    for r in rows {
        let mut line = vec![
            r.date.replace('T', " ").trim_end_matches('Z').to_string(),
            r.author.clone(),
            r.commit[..8].to_string(),
            r.environment.clone(),
            r.service.clone(),
            format!("{} -> {}", short(&r.from), short(&r.to)),
            r.subject.clone(),
        ];
        if signed {
            line.push(r.signed_by.clone().unwrap_or_else(|| "-".into()));
        }
        b.push_record(line);
    }
    let mut table = b.build();
    table.with(tabled::settings::Style::sharp());
    format!("{table}\n")
}
