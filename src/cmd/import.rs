//! `fleetpin import`: the arguments into an import request, the import (`import::run`), its
//! warnings on stderr, and the manifest where it was asked for: stdout, or `-o FILE`, which is
//! never overwritten without `--force` (a hand-edited manifest is not lost to a second import);
//! a device or a pipe (`-o /dev/null`) is not a file to lose and is written to as it is.

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::error::{Error, Exit, Result};
use crate::import::{self, ImportError, Request};
use std::io::Write;
use std::path::Path;

pub fn run(config: &Config, args: &ImportArgs) -> Result<Exit> {
    super::table_or_json(config)?;
    let hosts = args
        .hosts
        .iter()
        .map(|h| import::parse_host(h))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::msg)?;
    let cwd = std::env::current_dir()
        .map_err(|e| Error::msg(format!("cannot read the current directory: {e}")))?;
    let out_dir = match &args.out {
        Some(p) => {
            let abs = cwd.join(p);
            crate::import::compose::normalize(abs.parent().unwrap_or(&cwd))
        }
        None => cwd.clone(),
    };
    let req = Request {
        files: args.files.clone(),
        environment: args.env.clone(),
        hosts,
        platform: args.platform.clone(),
        out_dir,
        project_dir: args.project_dir.clone(),
        tls_dir: args.tls_dir.clone(),
        insecure: args.insecure,
    };
    if let Some(d) = &req.project_dir
        && !d.starts_with('/')
    {
        return Err(Error::msg(format!(
            "--project-dir `{d}` must be an absolute path on the hosts"
        )));
    }
    let out = match import::run(&req) {
        Ok(o) => o,
        Err(ImportError::Usage(m)) => return Err(Error::msg(m)),
        Err(ImportError::Invalid(m)) => return Err(m.into()),
        Err(ImportError::Files(list)) => {
            crate::render::show::import_problems(super::look(config), &list);
            return Err(Error::Reported(Exit::Failure));
        }
    };
    // The input is checked first (a bad compose file is worth hearing about whatever -o names);
    // then an existing regular file is refused before any warning is printed.
    if let Some(path) = &args.out
        && !args.force
        && is_regular_file(path)
    {
        return Err(exists(path));
    }
    let look = super::look(config);
    crate::render::show::import_warnings(look, &out.warnings);
    if let Some(path) = &args.out {
        write_file(path, &out.text, args.force)?;
    }
    crate::render::show::imported(look, &out, args.out.as_deref());
    Ok(Exit::Success)
}

/// Whether `path` names an existing regular file (through a symbolic link too): the only kind
/// of output that --force guards. A device (`/dev/null`) or a pipe is written to as it is.
fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn exists(path: &Path) -> Error {
    Error::msg(format!(
        "{} exists; pass --force to overwrite it",
        path.display()
    ))
}

/// Writes the manifest; without `force`, only if the file does not exist (checked again here,
/// at the moment of writing) or is not a regular file (a device or a pipe, opened as it is:
/// neither created nor truncated).
fn write_file(path: &Path, text: &str, force: bool) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if special {
        // O_TRUNC means nothing to a device or a pipe; leave it out.
    } else if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            exists(path)
        } else {
            Error::msg(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))
}
