//! Where the config file is: `--config`, `CAIRN_CONFIG`, the XDG place, `/etc`.

use crate::error::{Error, Result};
use crate::model::Config;
use crate::validate::parse;
use std::path::PathBuf;

/// Where the config file is, as found by [`locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Named by `--config` or `CAIRN_CONFIG`: it must exist.
    Explicit(PathBuf),
    /// The first usual place where one exists.
    Found(PathBuf),
    /// None exists at any of these places: defaults apply.
    Absent(Vec<PathBuf>),
}

/// The usual places, in order: `$XDG_CONFIG_HOME/cairn/config.toml` (else
/// `~/.config/cairn/config.toml`), then `/etc/cairn/config.toml`.
pub fn usual_places(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // The XDG base directory specification: a relative XDG_CONFIG_HOME is invalid and
    // is ignored.
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute());
    if let Some(d) = xdg {
        out.push(d.join("cairn/config.toml"));
    } else if let Some(home) = env("HOME") {
        out.push(PathBuf::from(home).join(".config/cairn/config.toml"));
    }
    out.push(PathBuf::from("/etc/cairn/config.toml"));
    out
}

/// Finds the config file: the `--config` flag, else `CAIRN_CONFIG`, else the first of
/// [`usual_places`] that exists. `env` gives non-empty environment variables.
pub fn locate(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> Location {
    if let Some(f) = flag.or_else(|| env("CAIRN_CONFIG").map(PathBuf::from)) {
        return Location::Explicit(f);
    }
    let places = usual_places(env);
    match places.iter().find(|p| p.exists()) {
        Some(p) => Location::Found(p.clone()),
        None => Location::Absent(places),
    }
}

/// Reads and checks the config file at `location` (nothing: the defaults). With
/// `check_secrets`, password files must also be readable now (`cairn config check`);
/// otherwise they are read when needed. Errors in the file come as [`Problems`].
pub fn load(location: &Location, check_secrets: bool) -> Result<Config> {
    let path = match location {
        Location::Explicit(p) | Location::Found(p) => p,
        Location::Absent(_) => return Ok(Config::default()),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if matches!(location, Location::Explicit(_)) {
                return Err(Error::Missing(path.clone()));
            }
            // Gone between `locate` and now.
            return Ok(Config::default());
        }
        Err(e) => {
            return Err(Error::Read {
                path: path.clone(),
                source: e,
            })
        }
    };
    Ok(parse(&text, path, check_secrets)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_file_is_found_in_order_and_a_named_one_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().join("xdg");
        let home = dir.path().join("home");
        let env = env_of(&[
            ("XDG_CONFIG_HOME", xdg.display().to_string()),
            ("HOME", home.display().to_string()),
        ]);
        assert_eq!(
            usual_places(&env),
            [
                xdg.join("cairn/config.toml"),
                PathBuf::from("/etc/cairn/config.toml")
            ]
        );
        let no_xdg = env_of(&[("HOME", home.display().to_string())]);
        assert_eq!(
            usual_places(&no_xdg)[0],
            home.join(".config/cairn/config.toml")
        );
        let relative_xdg = env_of(&[
            ("XDG_CONFIG_HOME", "rel".into()),
            ("HOME", home.display().to_string()),
        ]);
        assert_eq!(
            usual_places(&relative_xdg)[0],
            home.join(".config/cairn/config.toml")
        );

        std::fs::create_dir_all(xdg.join("cairn")).unwrap();
        std::fs::write(
            xdg.join("cairn/config.toml"),
            "[repository]\nurl = \"/r\"\n",
        )
        .unwrap();
        let found = locate(None, &env);
        assert_eq!(found, Location::Found(xdg.join("cairn/config.toml")));
        assert_eq!(
            load(&found, false).unwrap().repository.url.as_deref(),
            Some("/r")
        );

        // Named explicitly: the flag, then CAIRN_CONFIG; it must exist.
        let named = dir.path().join("named.toml");
        let with_var = env_of(&[
            ("XDG_CONFIG_HOME", xdg.display().to_string()),
            ("CAIRN_CONFIG", named.display().to_string()),
        ]);
        assert_eq!(locate(None, &with_var), Location::Explicit(named.clone()));
        let flag = dir.path().join("flag.toml");
        assert_eq!(
            locate(Some(flag.clone()), &with_var),
            Location::Explicit(flag)
        );
        let e = load(&Location::Explicit(named.clone()), false).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("config file {} ", named.display()))
                && e.to_string().contains("does not exist"),
            "{e}"
        );
        // A usual place that is not there: the defaults.
        let c = load(&Location::Absent(vec![named]), false).unwrap();
        assert!(c.file.is_none());
    }
}
