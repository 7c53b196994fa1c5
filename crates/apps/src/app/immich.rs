//! Immich (photo and video library; Docker Compose with PostgreSQL).
//!
//! From the vendor's backup page: the database holds the file paths and all metadata
//! (Immich does not rescan the library), so it is dumped first, then the files, so that
//! every file the dump points at is in the snapshot. Originals live in
//! `UPLOAD_LOCATION/{library,upload,profile}`; `thumbs` and `encoded-video` can be
//! generated again and `backups` holds Immich's own database dumps, so those three are
//! left out. A restore needs a fresh database and the `search_path` fix, which cairn's
//! restore applies to plain PostgreSQL dumps.
//!
//! The installation directory is the one with the `.env` of `docker-compose.yml`:
//! `UPLOAD_LOCATION`, `DB_USERNAME`, `DB_PASSWORD`, `DB_DATABASE_NAME`, and, when the
//! database is reachable from the host, `DB_HOSTNAME` and `DB_PORT`. Without a host name
//! (or with the Compose service's, `database`), the dump runs inside the database
//! container: `docker exec immich_postgres`.

use super::{lookup, read_dotenv, Plan};
use crate::db::{Database, PgFormat, Postgres, Wrapper};
use cairn_core::{Error, Result};
use std::path::Path;

/// The Immich front-end.
#[derive(Debug)]
pub struct Immich;

/// The folders of `UPLOAD_LOCATION` that hold originals.
const ORIGINALS: &[&str] = &["library", "upload", "profile"];

/// The container of the database in the vendor's `docker-compose.yml`.
const DB_CONTAINER: &str = "immich_postgres";

impl Immich {
    /// Reads the installation at `install`.
    pub fn discover(install: &Path) -> Result<Plan> {
        let install = install.canonicalize().map_err(|e| Error::io(install, e))?;
        let env_file = install.join(".env");
        if !env_file.is_file() {
            return Err(Error::Invalid(format!(
                "{} has no .env: not an Immich installation",
                install.display()
            )));
        }
        let env = read_dotenv(&env_file)?;
        let get = |k: &str| lookup(&env, k).filter(|v| !v.is_empty());
        let upload = get("UPLOAD_LOCATION")
            .ok_or_else(|| Error::Invalid(format!("{}: no UPLOAD_LOCATION", env_file.display())))?;
        let upload = install.join(upload);
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let user = get("DB_USERNAME").unwrap_or("postgres");
        let name = get("DB_DATABASE_NAME").unwrap_or("immich");
        let password = get("DB_PASSWORD")
            .map(|p| format!(":{}", enc(p)))
            .unwrap_or_default();
        let host = get("DB_HOSTNAME").filter(|h| *h != "database" && *h != DB_CONTAINER);
        let pg = match host {
            Some(h) => {
                let port = get("DB_PORT").unwrap_or("5432");
                Postgres::from_url(&format!(
                    "postgresql://{}{password}@{h}:{port}/{}",
                    enc(user),
                    enc(name)
                ))?
            }
            // Inside the container, where the server listens on localhost.
            None => Postgres::from_url(&format!(
                "postgresql://{}{password}@localhost/{}",
                enc(user),
                enc(name)
            ))?
            .with_wrapper(Wrapper::new(vec![
                "docker".into(),
                "exec".into(),
                DB_CONTAINER.into(),
            ])),
        };
        // Plain SQL, as the vendor's own dumps: restored with psql and the search_path
        // fix.
        let pg = pg.with_format(PgFormat::Plain);
        let mut paths = vec![env_file.clone()];
        let compose = install.join("docker-compose.yml");
        if compose.is_file() {
            paths.push(compose);
        }
        paths.extend(ORIGINALS.iter().map(|d| upload.join(d)));
        Ok(Plan {
            app: "immich".into(),
            version: get("IMMICH_VERSION")
                .filter(|v| *v != "release")
                .map(String::from),
            revision: None,
            paths,
            excludes: Vec::new(),
            databases: vec![Database::Postgres(pg)],
            before: Vec::new(),
            after: Vec::new(),
            before_restore: vec![
                "stop Immich's server and machine-learning containers (docker compose stop \
                 immich-server immich-machine-learning); the database container stays up"
                    .into(),
            ],
            post_restore: vec![
                "start Immich with the same IMMICH_VERSION as the snapshot (app_version); a \
                 different version runs its migrations on start"
                    .into(),
                "run the thumbnail and transcoding jobs for all assets (thumbs and \
                 encoded-video are not in the snapshot)"
                    .into(),
            ],
            problems: Vec::new(),
            name: None,
            missing_databases: Vec::new(),
            install,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_env(dir: &Path, text: &str) {
        std::fs::write(dir.join(".env"), text).unwrap();
    }

    #[test]
    fn a_host_database_is_reached_directly() {
        let dir = tempfile::tempdir().unwrap();
        write_env(
            dir.path(),
            "UPLOAD_LOCATION=./library\nDB_PASSWORD=p@ss word\nDB_USERNAME=immich\n\
             DB_DATABASE_NAME=immich_db\nDB_HOSTNAME=127.0.0.1\nDB_PORT=5433\nIMMICH_VERSION=v1.120.0\n",
        );
        let plan = Immich::discover(dir.path()).unwrap();
        assert_eq!(plan.version.as_deref(), Some("v1.120.0"));
        let root = dir.path().canonicalize().unwrap();
        assert!(plan.paths.contains(&root.join("library/upload")));
        assert!(!plan.paths.iter().any(|p| p.ends_with("thumbs")));
        let Database::Postgres(pg) = &plan.databases[0] else {
            panic!("postgres expected")
        };
        assert_eq!(pg.location(), "127.0.0.1:5433");
        assert_eq!(pg.database(), Some("immich_db"));
        let cmd = pg.dump_command();
        assert_eq!(cmd.program, "pg_dump");
        assert!(cmd.args.iter().any(|a| a == "--format=plain"));
        assert_eq!(cmd.env[0].1, "p@ss word");
    }

    #[test]
    fn the_compose_database_is_dumped_in_its_container() {
        let dir = tempfile::tempdir().unwrap();
        write_env(
            dir.path(),
            "UPLOAD_LOCATION=/srv/photos\nDB_PASSWORD=postgres\nIMMICH_VERSION=release\n",
        );
        let plan = Immich::discover(dir.path()).unwrap();
        assert_eq!(plan.version, None);
        assert!(plan
            .paths
            .contains(&std::path::PathBuf::from("/srv/photos/profile")));
        let Database::Postgres(pg) = &plan.databases[0] else {
            panic!("postgres expected")
        };
        let cmd = pg.dump_command();
        let args: Vec<_> = cmd.args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(cmd.program, "docker");
        assert_eq!(&args[..4], ["exec", "--env", "PGPASSWORD", DB_CONTAINER]);
        assert!(args.contains(&"--dbname=immich"));
    }
}
