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
use crate::{Error, Result};
use std::path::Path;

/// The Immich front-end.
#[derive(Debug)]
pub struct Immich;

/// The folders of `UPLOAD_LOCATION` that hold originals.
const ORIGINALS: &[&str] = &["library", "upload", "profile"];

/// The folders of `UPLOAD_LOCATION` that Immich can generate again (thumbnails, encoded
/// videos) or that hold its own database dumps: backed up on request.
const GENERATED: &[&str] = &["thumbs", "encoded-video", "backups"];

/// The external libraries of `docker-compose.yml`: host directories bind-mounted into
/// the Immich server besides `UPLOAD_LOCATION` (and the database's directory, the
/// clock): they are not in the snapshot, so each is named, for the manifest and a
/// warning at every backup.
fn external_libraries(
    compose: &Path,
    env: &[(String, String)],
    install: &Path,
    upload: &Path,
) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(compose).map_err(|e| Error::io(compose, e))?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .map_err(|e| Error::config(compose, e.to_string(), Some(Box::new(e))))?;
    let Some(doc) = docs.first() else {
        return Ok(Vec::new());
    };
    // `${NAME}` and `$NAME` from the .env, as Compose expands them.
    let expand = |s: &str| -> String {
        let mut out = s.to_string();
        for (k, v) in env {
            out = out
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
        out
    };
    let db_data = lookup(env, "DB_DATA_LOCATION").map(|d| install.join(d));
    let mut out = Vec::new();
    for (name, service) in doc["services"].as_hash().into_iter().flatten() {
        let name = name.as_str().unwrap_or("");
        if name != "immich-server" && name != "immich_server" {
            continue;
        }
        for v in service["volumes"].as_vec().into_iter().flatten() {
            let (source, target) = match v.as_str() {
                Some(short) => {
                    let mut parts = short.splitn(3, ':');
                    (
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    )
                }
                None => (
                    v["source"].as_str().unwrap_or("").to_string(),
                    v["target"].as_str().unwrap_or("").to_string(),
                ),
            };
            let source = expand(&source);
            // Named volumes (no path) are Docker's; only bind mounts are files here.
            if !(source.starts_with('/') || source.starts_with('.')) {
                continue;
            }
            let host = install.join(&source);
            let norm = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            let host_n = norm(&host);
            let skip = host_n.starts_with(norm(upload))
                || db_data
                    .as_ref()
                    .is_some_and(|d| host_n.starts_with(norm(d)))
                || source.starts_with("/etc/")
                || source.starts_with("/var/run/")
                || source.starts_with("/run/");
            if !skip {
                out.push(format!(
                    "external library {} (mounted at {target} in {}) is not in the \
                     snapshot: back it up as a [[source]], or restore it by other means",
                    host.display(),
                    compose.display()
                ));
            }
        }
    }
    Ok(out)
}

/// The container of the database in the vendor's `docker-compose.yml`.
const DB_CONTAINER: &str = "immich_postgres";

impl Immich {
    /// Reads the installation at `install`.
    pub fn discover(install: &Path) -> Result<Plan> {
        let install = install.canonicalize().map_err(|e| Error::io(install, e))?;
        let env_file = super::required_file(&install, ".env", "an Immich")?;
        let env = read_dotenv(&env_file)?;
        let get = |k: &str| lookup(&env, k).filter(|v| !v.is_empty());
        let upload = get("UPLOAD_LOCATION")
            .ok_or_else(|| Error::config(&env_file, "no UPLOAD_LOCATION", None))?;
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
        let mut not_included = Vec::new();
        if compose.is_file() {
            not_included = external_libraries(&compose, &env, &install, &upload)?;
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
            optional_paths: GENERATED.iter().map(|d| upload.join(d)).collect(),
            not_included,
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
