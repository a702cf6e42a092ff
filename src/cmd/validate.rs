//! `fleetpin validate`: parse and check the manifest; every problem located, all at once (the
//! edge prints them); a missing env_file is a warning here, an error where its values are needed.

use crate::config::Config;
use crate::error::{Exit, Result};

pub fn run(config: &Config) -> Result<Exit> {
    super::table_or_json(config)?;
    let loaded = super::load(config, None)?;
    let m = &loaded.manifest;
    // Secrets are usually not committed: a missing env_file is worth a warning, not a failure,
    // until a command needs its values.
    let dir = loaded.dir();
    let mut warnings = Vec::new();
    for (name, s) in &m.services {
        if let Some(f) = &s.env_file
            && !dir.join(&f.value).is_file()
        {
            warnings.push(format!(
                "{}:{}:{}: env_file `{}` of service `{name}` is not in the working tree; plan and apply will need it",
                loaded.path.display(),
                f.span.line,
                f.span.column,
                f.value
            ));
        }
    }
    for w in crate::manifest::checks::warnings(m) {
        warnings.push(format!(
            "{}:{}:{}: {}",
            loaded.path.display(),
            w.span.line,
            w.span.column,
            w.message
        ));
    }
    crate::render::show::valid(super::look(config), &loaded, &warnings);
    Ok(Exit::Success)
}
