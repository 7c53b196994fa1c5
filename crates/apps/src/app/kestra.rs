//! Kestra (workflow orchestration; Java, Micronaut).
//!
//! From the vendor's backup page: with the JDBC backend, back up the database with its
//! native tools (`pg_dump` in custom/tar format, or `mysqldump`) and the internal storage
//! directory (local storage) with file tools, Kestra stopped if possible. Restore the
//! database with `pg_restore`/`mysql` into a new database, then the storage, then start
//! Kestra. The Enterprise Edition can also export its metadata (flows, namespaces, users,
//! secrets…) with `kestra backups create FULL|TENANT`, restored with `kestra backups
//! restore URI`.
//!
//! Everything is read from `application.yaml` (in the installation directory, or
//! `confs/application.yaml` as in Kestra's container image): `datasources.<name>.url`
//! (a JDBC URL), `.username`, `.password`, and `kestra.storage.local.base-path` when
//! `kestra.storage.type` is `local`. Micronaut's `${NAME}` / `${NAME:default}`
//! placeholders are taken from the environment.
//!
//! When a `kestra` executable is found (`bin/kestra` or `kestra` in the installation, or
//! on `PATH`), a before-hook runs `kestra backups create` and keeps its log, its summary
//! and (with local storage) a copy of the export in `.cairn/kestra-backup/` of the
//! installation, which the snapshot includes. `CAIRN_KESTRA_METADATA` chooses it:
//! `FULL` (the default), `TENANT`, `TENANT:name`, or `off`.

use super::Plan;
use crate::db::Database;
use crate::{Error, Result};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use yaml_rust2::{Yaml, YamlLoader};

/// The Kestra front-end.
#[derive(Debug)]
pub struct Kestra;

/// Where the configuration is looked for, in order, relative to the installation.
const CONFIGS: &[&str] = &[
    "application.yaml",
    "application.yml",
    "confs/application.yaml",
    "confs/application.yml",
];

/// Where the metadata export goes, relative to the installation.
pub const EXPORT_DIR: &str = ".cairn/kestra-backup";

/// Which metadata export `kestra backups create` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataExport {
    /// `FULL`: the whole instance.
    Full,
    /// `TENANT`: one tenant (the default tenant when no name is given).
    Tenant(Option<String>),
}

impl MetadataExport {
    /// From `CAIRN_KESTRA_METADATA`'s value: `FULL`, `TENANT`, `TENANT:name`, or
    /// `off`/`none`/`no`/`false` for no export (`None`).
    pub fn parse(s: &str) -> Result<Option<MetadataExport>> {
        let s = s.trim();
        let (kind, tenant) = match s.split_once(':') {
            Some((k, t)) => (k, Some(t.trim())),
            None => (s, None),
        };
        match (kind.to_ascii_uppercase().as_str(), tenant) {
            ("" | "FULL", None) => Ok(Some(MetadataExport::Full)),
            ("TENANT", None) => Ok(Some(MetadataExport::Tenant(None))),
            ("TENANT", Some(t)) if !t.is_empty() => {
                Ok(Some(MetadataExport::Tenant(Some(t.to_string()))))
            }
            ("OFF" | "NONE" | "NO" | "FALSE" | "0", None) => Ok(None),
            _ => Err(Error::Invalid(format!(
                "CAIRN_KESTRA_METADATA={s:?}: expected FULL, TENANT, TENANT:name or off"
            ))),
        }
    }

    fn args(&self) -> Vec<String> {
        match self {
            MetadataExport::Full => vec!["FULL".into()],
            MetadataExport::Tenant(None) => vec!["TENANT".into()],
            MetadataExport::Tenant(Some(t)) => vec!["TENANT".into(), format!("--tenant={t}")],
        }
    }
}

/// How `kestra backups create` encrypts the metadata export (the vendor's page: Kestra's
/// embedded key by default, `--encryption-key`, or `--no-encryption`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetadataEncryption {
    /// Kestra's embedded key.
    #[default]
    Embedded,
    /// The key in this file (read by the hook's shell when it runs: the key is in
    /// neither cairn's arguments nor its configuration; `kestra` itself takes it as an
    /// argument, the only way it offers).
    KeyFile(std::path::PathBuf),
    /// No encryption (the export then holds secrets in clear, inside cairn's
    /// encrypted snapshot).
    None,
}

impl MetadataEncryption {
    fn args(&self) -> String {
        match self {
            MetadataEncryption::Embedded => String::new(),
            MetadataEncryption::KeyFile(p) => format!(
                " --encryption-key=\"$(cat {})\"",
                sh_quote(&p.display().to_string())
            ),
            MetadataEncryption::None => " --no-encryption".into(),
        }
    }
}

impl Kestra {
    /// Reads the installation at `install`; the metadata export is the one
    /// `CAIRN_KESTRA_METADATA` asks for (`FULL` by default), made only when a `kestra`
    /// executable is found.
    pub fn discover(install: &Path) -> Result<Plan> {
        let export = match std::env::var("CAIRN_KESTRA_METADATA") {
            Ok(v) => MetadataExport::parse(&v)?,
            Err(_) => Some(MetadataExport::Full),
        };
        Kestra::discover_with(install, export)
    }

    /// Reads the installation at `install`, with the metadata export `export` (`None`:
    /// none) when a `kestra` executable is found.
    pub fn discover_with(install: &Path, export: Option<MetadataExport>) -> Result<Plan> {
        Kestra::discover_encrypted(install, export, &MetadataEncryption::Embedded)
    }

    /// [`Kestra::discover_with`], the export encrypted as `encryption` says.
    pub fn discover_encrypted(
        install: &Path,
        export: Option<MetadataExport>,
        encryption: &MetadataEncryption,
    ) -> Result<Plan> {
        let install = install.canonicalize().map_err(|e| Error::io(install, e))?;
        let config = CONFIGS
            .iter()
            .map(|c| install.join(c))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::NotAnInstallation {
                install: install.clone(),
                missing: "application.yaml (nor confs/application.yaml)".into(),
                app: "a Kestra".into(),
            })?;
        let text = std::fs::read_to_string(&config).map_err(|e| Error::io(&config, e))?;
        let docs = YamlLoader::load_from_str(&text)
            .map_err(|e| Error::config(&config, e.to_string(), Some(Box::new(e))))?;
        let yaml = docs.first().cloned().unwrap_or(Yaml::Null);
        let database = database(&yaml, &config)?;
        let storage = storage(&yaml, &config, &install)?;
        let kestra = executable(&install);

        let mut paths = Vec::new();
        let mut post_restore = Vec::new();
        match &storage {
            Storage::Local(dir) => paths.push(dir.clone()),
            Storage::Other(kind) => post_restore.push(format!(
                "the internal storage ({kind}) is not in this snapshot: restore it from the \
                 bucket's own replication or backup"
            )),
            Storage::None => {}
        }
        paths.push(config.clone());
        let mut before = Vec::new();
        if let (Some(exe), Some(export)) = (&kestra, &export) {
            let dir = install.join(EXPORT_DIR);
            let base = match &storage {
                Storage::Local(d) => Some(d.as_path()),
                _ => None,
            };
            before.push(export_hook(exe, export, encryption, &install, &dir, base));
            paths.push(dir);
            post_restore.push(format!(
                "only if the metadata must go to another instance or version: kestra backups \
                 restore URI (the URI and summary are in {EXPORT_DIR}/summary.txt, a copy of \
                 the export beside it)"
            ));
        }
        post_restore
            .push("start Kestra again and check that flows and executions are listed".into());
        Ok(Plan {
            app: "kestra".into(),
            version: version(kestra.as_deref()),
            revision: None,
            paths,
            excludes: Vec::new(),
            databases: vec![database],
            before,
            after: Vec::new(),
            before_restore: vec![
                "stop Kestra (webserver, executor, scheduler, workers): the vendor restores \
                 offline"
                    .into(),
            ],
            post_restore,
            problems: Vec::new(),
            name: None,
            optional_paths: Vec::new(),
            not_included: Vec::new(),
            missing_databases: Vec::new(),
            install,
        })
    }
}

/// Where the internal storage is.
#[derive(Debug)]
enum Storage {
    /// Local storage, in this directory.
    Local(PathBuf),
    /// Another kind (`s3`, `gcs`, `minio`…), not backed up here.
    Other(String),
    /// None configured.
    None,
}

/// A value at a dotted path: nested maps, or keys that are themselves dotted (Micronaut
/// reads `kestra.storage.type: local` as well as the nested form).
fn lookup<'a>(y: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    if path.is_empty() {
        return Some(y);
    }
    let Yaml::Hash(h) = y else { return None };
    (1..=path.len()).find_map(|n| {
        let key = Yaml::String(path[..n].join("."));
        h.get(&key).and_then(|v| lookup(v, &path[n..]))
    })
}

/// A scalar at `path` as text, placeholders resolved.
fn scalar(y: &Yaml, path: &[&str], config: &Path) -> Result<Option<String>> {
    let text = match lookup(y, path) {
        None | Some(Yaml::Null) => return Ok(None),
        Some(Yaml::String(s)) | Some(Yaml::Real(s)) => s.clone(),
        Some(Yaml::Integer(i)) => i.to_string(),
        Some(Yaml::Boolean(b)) => b.to_string(),
        Some(_) => {
            return Err(Error::config(
                config,
                format!("{} is not a single value", path.join(".")),
                None,
            ))
        }
    };
    resolve(&text, &|k| std::env::var(k).ok())
        .map(Some)
        .map_err(|name| {
            Error::config(
                config,
                format!(
                    "{} uses ${{{name}}}, which is not set in the environment",
                    path.join(".")
                ),
                None,
            )
        })
}

/// Replaces Micronaut's `${NAME}` and `${NAME:default}` placeholders; the error is the
/// name of one that has neither a value nor a default.
fn resolve(s: &str, env: &dyn Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let inner = &rest[i + 2..i + j];
        let (name, default) = match inner.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        // Micronaut also finds `a.b-c` as `A_B_C` in the environment.
        let env_name: String = name
            .chars()
            .map(|c| match c {
                '.' | '-' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        match env(name)
            .or_else(|| env(&env_name))
            .or(default.map(String::from))
        {
            Some(v) => out.push_str(&v),
            None => return Err(name.to_string()),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The database of the JDBC datasource: the one `kestra.repository.type` names, else
/// `postgres`, `mysql`, or the only one there is.
fn database(y: &Yaml, config: &Path) -> Result<Database> {
    let no_jdbc = || {
        Error::config(
            config,
            "no datasources.<name>.url: Kestra with the Elasticsearch/Kafka backend is backed \
             up with Elasticsearch snapshots, which cairn does not take",
            None,
        )
    };
    let Some(Yaml::Hash(sources)) = lookup(y, &["datasources"]) else {
        return Err(no_jdbc());
    };
    let names: Vec<String> = sources
        .keys()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    let wanted = scalar(y, &["kestra", "repository", "type"], config)?;
    let name = wanted
        .iter()
        .chain(["postgres".to_string(), "mysql".to_string()].iter())
        .find(|n| names.contains(n))
        .cloned()
        .or_else(|| (names.len() == 1).then(|| names[0].clone()))
        .ok_or_else(no_jdbc)?;
    let key = |k: &str| scalar(y, &["datasources", &name, k], config);
    let url = key("url")?
        .ok_or_else(|| Error::config(config, format!("datasources.{name}.url is missing"), None))?;
    from_jdbc(&url, key("username")?, key("password")?).map_err(|e| {
        Error::config(
            config,
            format!("datasources.{name}.url: {e}"),
            Some(Box::new(e)),
        )
    })
}

/// A database from a JDBC URL (`jdbc:postgresql://host:port/db?…`,
/// `jdbc:mysql://…`, `jdbc:mariadb://…`) and the datasource's credentials (those of the
/// URL's `user`/`password` parameters when the datasource has none).
fn from_jdbc(jdbc: &str, user: Option<String>, password: Option<String>) -> Result<Database> {
    let rest = jdbc
        .strip_prefix("jdbc:")
        .ok_or_else(|| Error::Invalid("not a JDBC URL (jdbc:…)".into()))?;
    let (sub, rest) = rest
        .split_once(':')
        .ok_or_else(|| Error::Invalid("no database type after jdbc:".into()))?;
    let scheme = match sub.to_ascii_lowercase().as_str() {
        "postgresql" => "postgresql",
        "mysql" | "mariadb" => "mariadb",
        "h2" => {
            return Err(Error::Invalid(
                "H2 is Kestra's embedded test database; back it up with Kestra stopped, or \
                 move to PostgreSQL or MySQL"
                    .into(),
            ))
        }
        other => {
            return Err(Error::Invalid(format!(
                "jdbc:{other} is not supported (postgresql, mysql, mariadb)"
            )))
        }
    };
    // `jdbc:postgresql:db` and `jdbc:postgresql:/` are the local server's.
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, db) = main.split_once('/').unwrap_or(if jdbc.contains("://") {
        (main, "")
    } else {
        ("", main)
    });
    if hosts.contains(',') {
        return Err(Error::Invalid(
            "several hosts (failover) are not supported; name the primary alone".into(),
        ));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let user = user.or_else(|| param("user"));
    let password = password.or_else(|| param("password"));
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let mut url = format!("{scheme}://");
    if let Some(u) = &user {
        url.push_str(&enc(u));
        if let Some(p) = &password {
            url.push(':');
            url.push_str(&enc(p));
        }
        url.push('@');
    }
    url.push_str(if hosts.is_empty() { "localhost" } else { hosts });
    if !db.is_empty() {
        // JDBC writes the name as it is; it may hold what a URL path may not.
        let db = percent_encoding::percent_decode_str(db).decode_utf8_lossy();
        url.push('/');
        url.push_str(&enc(&db));
    }
    if scheme == "postgresql" {
        if let Some(m) = param("sslmode") {
            url.push_str(&format!("?sslmode={}", enc(&m)));
        }
    }
    Database::parse(&url)
}

/// The internal storage: `kestra.storage.type` (`local` when only a local base path is
/// given), and for local storage its directory (relative to the installation).
fn storage(y: &Yaml, config: &Path, install: &Path) -> Result<Storage> {
    let kind = scalar(y, &["kestra", "storage", "type"], config)?;
    let base = scalar(y, &["kestra", "storage", "local", "base-path"], config)?.or(scalar(
        y,
        &["kestra", "storage", "local", "basePath"],
        config,
    )?);
    match (kind.as_deref(), base) {
        (Some("local") | None, Some(base)) => Ok(Storage::Local(install.join(base))),
        (Some("local"), None) => Err(Error::config(
            config,
            "kestra.storage.type is local but kestra.storage.local.base-path is missing",
            None,
        )),
        (Some(other), _) => Ok(Storage::Other(other.to_string())),
        (None, None) => Ok(Storage::None),
    }
}

/// The `kestra` executable: in the installation (`bin/kestra`, `kestra`), or on `PATH`.
fn executable(install: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let local = [install.join("bin/kestra"), install.join("kestra")];
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kestra"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    local.into_iter().chain(on_path).find(|p| runnable(p))
}

/// `kestra --version`, else `KESTRA_VERSION` from the environment.
fn version(kestra: Option<&Path>) -> Option<String> {
    let from_tool = kestra.and_then(|exe| {
        let out = cairn_core::command(exe)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(String::from)
    });
    from_tool.or_else(|| {
        std::env::var("KESTRA_VERSION")
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
}

/// Quotes a word for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The before-hook: `kestra backups create …` with its log in `dir`, the summary and URI
/// lines in `dir/summary.txt`, and a copy of the export (found under the local storage
/// directory `base`) beside them. A failing command fails the backup.
fn export_hook(
    exe: &Path,
    export: &MetadataExport,
    encryption: &MetadataEncryption,
    install: &Path,
    dir: &Path,
    base: Option<&Path>,
) -> String {
    let args: Vec<String> = export.args().iter().map(|a| sh_quote(a)).collect();
    let mut s = format!(
        "d={dir}; mkdir -p \"$d\" && rm -f \"$d\"/backup.log \"$d\"/summary.txt \"$d\"/*.kestra \
         && cd {install} || exit 1; \
         if ! {exe} backups create {args}{encryption} >\"$d/backup.log\" 2>&1; then \
         echo 'kestra backups create failed:' >&2; tail -n 20 \"$d/backup.log\" >&2; exit 1; fi; \
         grep -E 'Backup summary|Backup created' \"$d/backup.log\" >\"$d/summary.txt\"; \
         uri=$(sed -n 's|^.*Backup created: kestra://||p' \"$d/backup.log\" | tail -n 1); \
         if [ -z \"$uri\" ]; then \
         echo 'kestra backups create printed no \"Backup created:\" URI' >&2; exit 1; fi",
        dir = sh_quote(&dir.display().to_string()),
        install = sh_quote(&install.display().to_string()),
        exe = sh_quote(&exe.display().to_string()),
        args = args.join(" "),
        encryption = encryption.args(),
    );
    if let Some(base) = base {
        s.push_str(&format!(
            "; f=$(find {base} -type f -path \"*$uri\" 2>/dev/null | head -n 1); \
             if [ -n \"$f\" ]; then cp -p \"$f\" \"$d/\" || exit 1; fi",
            base = sh_quote(&base.display().to_string()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn discovers_a_postgres_install_with_relative_storage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "application.yaml",
            "datasources:\n  postgres:\n    url: jdbc:postgresql://db.local:5433/kestra?sslmode=require\n    \
             driverClassName: org.postgresql.Driver\n    username: kestra\n    password: \"p@ss:w/rd\"\n\
             kestra:\n  repository:\n    type: postgres\n  queue:\n    type: postgres\n  storage:\n    \
             type: local\n    local:\n      base-path: \"data/storage\"\n",
        );
        let plan = Kestra::discover_with(root, None).unwrap();
        assert_eq!(plan.app, "kestra");
        let real = root.canonicalize().unwrap();
        assert_eq!(
            plan.paths,
            vec![real.join("data/storage"), real.join("application.yaml")]
        );
        assert!(plan.before.is_empty());
        let Database::Postgres(p) = &plan.databases[0] else {
            panic!("postgres expected")
        };
        assert_eq!(p.database(), Some("kestra"));
        assert_eq!(p.location(), "db.local:5433");
        let cmd = p.dump_command();
        let args: Vec<String> = cmd
            .args
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert!(args.contains(&"--username=kestra".into()), "{args:?}");
        assert!(args.contains(&"--format=custom".into()), "{args:?}");
        let env: Vec<(String, String)> = cmd
            .env
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        assert!(env.contains(&("PGPASSWORD".into(), "p@ss:w/rd".into())));
        assert!(env.contains(&("PGSSLMODE".into(), "require".into())));
        // What cairn does itself (loading the database) is no step left to the user;
        // stopping Kestra comes before the restore.
        assert!(!plan.post_restore.iter().any(|s| s.contains("database")));
        assert!(plan
            .before_restore
            .iter()
            .any(|s| s.starts_with("stop Kestra")));
    }

    #[test]
    fn discovers_a_mysql_install_in_confs_with_absolute_storage_and_dotted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "confs/application.yaml",
            "datasources:\n  mysql:\n    url: jdbc:mysql://mysql:3307/kestra_db?useSSL=false\n    \
             username: root\n    password: ${CAIRN_TEST_UNSET_KESTRA_PW:secret}\n\
             kestra.storage.type: local\nkestra.storage.local.base-path: /app/storage\n",
        );
        let plan = Kestra::discover_with(root, None).unwrap();
        let real = root.canonicalize().unwrap();
        assert_eq!(
            plan.paths,
            vec![
                PathBuf::from("/app/storage"),
                real.join("confs/application.yaml")
            ]
        );
        let Database::MariaDb(m) = &plan.databases[0] else {
            panic!("mariadb expected")
        };
        assert_eq!(m.database(), Some("kestra_db"));
        assert_eq!(m.location(), "mysql:3307");
        let cmd = m.dump_command();
        assert!(cmd
            .env
            .iter()
            .any(|(k, v)| k == "MYSQL_PWD" && v == "secret"));
        // What cairn does itself (loading the database) is no step left to the user;
        // stopping Kestra comes before the restore.
        assert!(!plan.post_restore.iter().any(|s| s.contains("database")));
        assert!(plan
            .before_restore
            .iter()
            .any(|s| s.starts_with("stop Kestra")));
    }

    #[test]
    fn the_metadata_export_hook_runs_only_with_an_executable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "application.yaml",
            "datasources:\n  postgres:\n    url: jdbc:postgresql://localhost:5432/kestra\n    \
             username: kestra\nkestra:\n  storage:\n    type: local\n    local:\n      \
             base-path: storage\n",
        );
        let plan = Kestra::discover_with(root, Some(MetadataExport::Full)).unwrap();
        // No bin/kestra here (and none on PATH in a test run, as a rule).
        if executable(&root.canonicalize().unwrap()).is_none() {
            assert!(plan.before.is_empty());
            assert_eq!(plan.version, std::env::var("KESTRA_VERSION").ok());
        }
        write(
            root,
            "bin/kestra",
            "#!/bin/sh\n[ \"$1\" = --version ] && echo 'Kestra 0.19.0' && exit 0\nexit 1\n",
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("bin/kestra"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let real = root.canonicalize().unwrap();
        let plan =
            Kestra::discover_with(root, Some(MetadataExport::Tenant(Some("acme".into())))).unwrap();
        assert_eq!(plan.version.as_deref(), Some("Kestra 0.19.0"));
        assert_eq!(plan.before.len(), 1);
        let hook = &plan.before[0];
        assert!(
            hook.contains("backups create 'TENANT' '--tenant=acme'"),
            "{hook}"
        );
        assert!(
            hook.contains(&real.join("storage").display().to_string()),
            "{hook}"
        );
        assert!(plan.paths.contains(&real.join(EXPORT_DIR)));
        assert!(!hook.contains("encryption"), "{hook}");
        // The vendor's encryption choices: a key read from a file when the hook runs
        // (never in cairn's arguments or configuration), or none.
        let plan = Kestra::discover_encrypted(
            root,
            Some(MetadataExport::Full),
            &MetadataEncryption::KeyFile("/etc/cairn/kestra key".into()),
        )
        .unwrap();
        assert!(
            plan.before[0].contains(
                "backups create 'FULL' --encryption-key=\"$(cat '/etc/cairn/kestra key')\" >"
            ),
            "{}",
            plan.before[0]
        );
        let plan =
            Kestra::discover_encrypted(root, Some(MetadataExport::Full), &MetadataEncryption::None)
                .unwrap();
        assert!(
            plan.before[0].contains("backups create 'FULL' --no-encryption >"),
            "{}",
            plan.before[0]
        );
        let plan = Kestra::discover_with(root, None).unwrap();
        assert!(plan.before.is_empty());
        assert!(!plan.paths.contains(&real.join(EXPORT_DIR)));
    }

    #[test]
    fn metadata_choices_parse() {
        assert_eq!(
            MetadataExport::parse("FULL").unwrap(),
            Some(MetadataExport::Full)
        );
        assert_eq!(
            MetadataExport::parse("tenant").unwrap(),
            Some(MetadataExport::Tenant(None))
        );
        assert_eq!(
            MetadataExport::parse("TENANT:acme").unwrap(),
            Some(MetadataExport::Tenant(Some("acme".into())))
        );
        assert_eq!(MetadataExport::parse("off").unwrap(), None);
        assert!(MetadataExport::parse("FULL:x").is_err());
        assert!(MetadataExport::parse("everything").is_err());
    }

    #[test]
    fn jdbc_urls_become_databases() {
        let db = from_jdbc(
            "jdbc:postgresql://127.0.0.1:5432/kestra",
            Some("u".into()),
            None,
        )
        .unwrap();
        assert_eq!((db.engine(), db.name()), ("postgresql", "kestra".into()));
        let db = from_jdbc("jdbc:postgresql:kestra?user=k&password=x", None, None).unwrap();
        let Database::Postgres(p) = &db else { panic!() };
        assert_eq!(p.location(), "localhost");
        assert!(p
            .dump_command()
            .env
            .iter()
            .any(|(k, v)| k == "PGPASSWORD" && v == "x"));
        let db = from_jdbc("jdbc:mariadb://db/kestra", None, None).unwrap();
        assert_eq!(db.engine(), "mariadb");
        assert!(from_jdbc("jdbc:h2:mem:public", None, None)
            .unwrap_err()
            .to_string()
            .contains("H2"));
        assert!(from_jdbc("jdbc:postgresql://a:1,b:2/k", None, None).is_err());
        assert!(from_jdbc("postgresql://a/k", None, None).is_err());
    }

    #[test]
    fn placeholders_come_from_the_environment() {
        let env = |k: &str| (k == "DB_PASSWORD").then(|| "s3cret".to_string());
        assert_eq!(resolve("${DB_PASSWORD}", &env).unwrap(), "s3cret");
        assert_eq!(resolve("x-${db.password}-y", &env).unwrap(), "x-s3cret-y");
        assert_eq!(resolve("${NOPE:dflt}", &env).unwrap(), "dflt");
        assert_eq!(resolve("${NOPE:}", &env).unwrap(), "");
        assert_eq!(resolve("${NOPE}", &env).unwrap_err(), "NOPE");
    }

    #[test]
    fn missing_configuration_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Kestra::discover_with(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("not a Kestra installation"), "{e}");
        write(
            dir.path(),
            "application.yaml",
            "kestra:\n  repository:\n    type: elasticsearch\n",
        );
        let e = Kestra::discover_with(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("Elasticsearch"), "{e}");
        write(
            dir.path(),
            "application.yaml",
            "datasources:\n  postgres:\n    url: jdbc:postgresql://h/k\n\
             kestra:\n  storage:\n    type: local\n",
        );
        let e = Kestra::discover_with(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("base-path is missing"), "{e}");
        write(dir.path(), "application.yaml", "datasources: [unclosed\n");
        assert!(Kestra::discover_with(dir.path(), None).is_err());
    }
}
