//! Checks what the types of [`crate::raw`] cannot say (one password source, absolute
//! paths, known front-ends, unique names) and builds the [`Config`]; every problem is
//! reported at its line and column, all of them at once.

use crate::duration::parse_age;
use crate::error::{line_column, problem, Problem, Problems};
use crate::error::{Error, Result};
use crate::model::*;
use crate::password::{InlinePassword, PasswordSource};
use crate::raw;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Parses and checks the text of the config file `file` (named in errors).
///
/// `[retention]` is read on its own, straight into cairn-core's [`cairn_core::Policy`]:
/// it is taken out of the parsed document first, so that a problem in it is reported
/// with the problems of the other tables rather than instead of them.
pub fn parse(text: &str, file: &Path, check_secrets: bool) -> Result<Config, Problems> {
    let problem_of = |e: toml::de::Error| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        problem(text, file, at, e.message().trim().to_string())
    };
    let mut document = toml::de::DeTable::parse(text).map_err(|e| Problems(vec![problem_of(e)]))?;
    let retention = document.get_mut().remove("retention");
    let raw = raw::File::deserialize(toml::de::Deserializer::from(document))
        .map_err(|e| Problems(vec![problem_of(e)]))?;
    let mut v = Validator {
        text,
        file,
        check_secrets,
        problems: Vec::new(),
    };
    let mut config = Config::default();
    if let Some(r) = retention {
        match cairn_core::Policy::deserialize(toml::de::ValueDeserializer::from(r)) {
            Ok(policy) => config.retention = Some(policy),
            Err(e) => v.problems.push(problem_of(e)),
        }
    }
    let config = validate(raw, config, &mut v);
    v.problems.sort_by_key(|p| (p.line, p.column));
    if v.problems.is_empty() {
        Ok(Config {
            file: Some(file.to_path_buf()),
            ..config
        })
    } else {
        Err(Problems(v.problems))
    }
}

/// Collects the problems of one file while its tables are checked.
struct Validator<'a> {
    text: &'a str,
    file: &'a Path,
    check_secrets: bool,
    problems: Vec<Problem>,
}

impl Validator<'_> {
    /// Records a problem at the value `at`.
    fn at<T>(&mut self, at: &Spanned<T>, message: String) {
        let p = problem(self.text, self.file, at.span().start, message);
        self.problems.push(p);
    }

    /// An absolute path, or a problem.
    fn absolute(&mut self, key: &str, p: &Spanned<PathBuf>) -> Option<PathBuf> {
        if p.get_ref().is_absolute() {
            Some(p.get_ref().clone())
        } else {
            self.at(
                p,
                format!(
                    "{key} must be an absolute path, not {:?}",
                    p.get_ref().display().to_string()
                ),
            );
            None
        }
    }

    /// A non-empty string, or a problem.
    fn nonempty(&mut self, key: &str, s: &Spanned<String>) -> Option<String> {
        if s.get_ref().trim().is_empty() {
            self.at(s, format!("{key} is empty"));
            None
        } else {
            Some(s.get_ref().clone())
        }
    }

    /// A secret from a file or a command (`file_key`, `command_key`), not both.
    fn password_pair(
        &mut self,
        file_key: &str,
        file: Option<Spanned<PathBuf>>,
        command_key: &str,
        command: Option<Spanned<String>>,
    ) -> Option<PasswordSource> {
        match (file, command) {
            (Some(_), Some(c)) => {
                self.at(
                    &c,
                    format!("give one of {file_key} and {command_key}, not both"),
                );
                None
            }
            (Some(f), None) => self.absolute(file_key, &f).map(PasswordSource::File),
            (None, Some(c)) => self.nonempty(command_key, &c).map(PasswordSource::Command),
            (None, None) => None,
        }
    }

    /// The one password source of a table (`password-file`, `password-command` or
    /// `password`), if it gives any.
    fn password(
        &mut self,
        file: Option<Spanned<PathBuf>>,
        command: Option<Spanned<String>>,
        inline: Option<Spanned<String>>,
    ) -> Option<PasswordSource> {
        let given = usize::from(file.is_some())
            + usize::from(command.is_some())
            + usize::from(inline.is_some());
        if given > 1 {
            // Reported at the last of them, in the file's order.
            let spans = [
                file.as_ref().map(|s| s.span()),
                command.as_ref().map(|s| s.span()),
                inline.as_ref().map(|s| s.span()),
            ];
            let last = spans.into_iter().flatten().max_by_key(|s| s.start);
            let at = last.map_or(0, |s| s.start);
            let p = problem(
                self.text,
                self.file,
                at,
                "give one of password-file, password-command and password, not several".into(),
            );
            self.problems.push(p);
            return None;
        }
        if let Some(f) = file {
            let path = self.absolute("password-file", &f)?;
            if self.check_secrets {
                if let Err(e) = std::fs::File::open(&path) {
                    self.at(
                        &f,
                        format!("cannot read the password file {}: {e}", path.display()),
                    );
                    return None;
                }
            }
            return Some(PasswordSource::File(path));
        }
        if let Some(c) = command {
            return self
                .nonempty("password-command", &c)
                .map(PasswordSource::Command);
        }
        if let Some(p) = inline {
            if p.get_ref().is_empty() {
                self.at(&p, "password is empty".into());
                return None;
            }
            return Some(PasswordSource::Inline(InlinePassword::new(p.into_inner())));
        }
        None
    }
}

/// Checks the tables and completes `config` (which holds `[retention]` already);
/// problems go to `v`.
fn validate(raw: raw::File, mut config: Config, v: &mut Validator) -> Config {
    if let Some(r) = raw.repository {
        config.repository = repository(r, v);
    }
    let primary = config
        .repository
        .name
        .clone()
        .unwrap_or_else(|| "primary".into());
    let mut names = vec![primary];
    for o in raw.offsite {
        let at = o.span();
        let o = o.into_inner();
        let Some(name) = o.name.clone() else {
            let p = problem(v.text, v.file, at.start, "[[offsite]] needs a name".into());
            v.problems.push(p);
            continue;
        };
        if names.contains(name.get_ref()) {
            v.at(
                &name,
                format!("repository name {:?} is used twice", name.get_ref()),
            );
        }
        if o.url.is_none() {
            let p = problem(v.text, v.file, at.start, "[[offsite]] needs a url".into());
            v.problems.push(p);
        }
        names.push(name.get_ref().clone());
        config.offsite.push(repository(o, v));
    }
    if let Some(c) = raw.copies {
        config.copies = CopiesConfig {
            offsite_max_age: c
                .offsite_max_age
                .and_then(|t| match parse_age(t.get_ref()) {
                    Ok(secs) => Some(secs),
                    Err(e) => {
                        v.at(&t, e);
                        None
                    }
                }),
            min_copies: c.min_copies.map(|n| n.into_inner()),
        };
    }
    let mut first_at: Vec<(String, usize)> = Vec::new();
    for a in raw.app {
        let app_at = a.span().start;
        let a = a.into_inner();
        let name = a.name.get_ref().clone();
        let duplicate = first_at.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
        if let Some(line) = duplicate {
            let message = format!("duplicate app name {name:?} (first at line {line})");
            v.at(&a.name, message);
        } else {
            first_at.push((name, line_column(v.text, app_at).0));
        }
        // Checked even when a duplicate, so that all its problems are reported at once.
        if let (Some(app), None) = (app(a, v), duplicate) {
            config.apps.push(app);
        }
    }
    for src in raw.source {
        let src = src.into_inner();
        let name = src.name.get_ref().clone();
        if config.apps.iter().any(|a| a.name == name)
            || config.sources.iter().any(|o| o.name == name)
        {
            v.at(
                &src.name,
                format!("the name {name:?} is used twice (apps and sources share names)"),
            );
            continue;
        }
        if let Some(src) = source(src, v) {
            config.sources.push(src);
        }
    }
    if let Some(m) = raw.monitoring {
        config.monitoring = MonitoringConfig {
            textfile_dir: m.textfile_dir.and_then(|d| v.absolute("textfile-dir", &d)),
        };
    }
    for j in raw.job {
        let j = j.into_inner();
        if config.jobs.iter().any(|o| &o.name == j.name.get_ref()) {
            v.at(
                &j.name,
                format!("job name {:?} is used twice", j.name.get_ref()),
            );
            continue;
        }
        if let Some(job) = job(j, &config, v) {
            config.jobs.push(job);
        }
    }
    config
}

fn source(s: raw::Source, v: &mut Validator) -> Option<SourceConfig> {
    let before_problems = v.problems.len();
    let name = s.name.get_ref().clone();
    if !valid_name(&name) {
        v.at(
            &s.name,
            format!("source name {name:?}: use letters, digits, '-', '_' and '.' only"),
        );
    }
    if s.paths.is_empty() && s.postgres.is_empty() && s.mariadb.is_empty() && s.sqlite.is_empty() {
        v.at(
            &s.name,
            format!("source {name:?} backs up nothing: give paths, postgres, mariadb or sqlite"),
        );
    }
    let paths = s
        .paths
        .iter()
        .filter_map(|p| v.absolute("an entry of paths", p))
        .collect();
    let exclude_files = s
        .exclude_file
        .iter()
        .filter_map(|p| v.absolute("an entry of exclude-file", p))
        .collect();
    let sqlite = s
        .sqlite
        .iter()
        .filter_map(|p| v.absolute("an entry of sqlite", p))
        .collect();
    let mut urls = |key: &str, items: &[Spanned<String>], schemes: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        for u in items {
            // The message never repeats the URL: it may hold a password.
            match url_password(u.get_ref(), schemes) {
                Err(e) => v.at(u, format!("an entry of {key}: {e}")),
                Ok(true) => v.at(
                    u,
                    url_holds_password(
                        &format!("an entry of {key}"),
                        "use database-password-file or database-password-command",
                    ),
                ),
                Ok(false) => out.push(u.get_ref().clone()),
            }
        }
        out
    };
    let postgres = urls("postgres", &s.postgres, &["postgresql://", "postgres://"]);
    let mariadb = urls("mariadb", &s.mariadb, &["mariadb://", "mysql://"]);
    let database_password = v.password_pair(
        "database-password-file",
        s.database_password_file,
        "database-password-command",
        s.database_password_command,
    );
    let mut list = |key: &str, items: Vec<Spanned<String>>| -> Vec<String> {
        items
            .iter()
            .filter_map(|s| v.nonempty(&format!("an entry of {key}"), s))
            .collect()
    };
    let exclude = list("exclude", s.exclude);
    let tags = list("tags", s.tags);
    let before = list("before", s.before);
    let after = list("after", s.after);
    let db_wrapper = s.db_wrapper.and_then(|w| v.nonempty("db-wrapper", &w));
    if v.problems.len() > before_problems {
        return None;
    }
    Some(SourceConfig {
        name,
        paths,
        exclude,
        exclude_files,
        exclude_caches: s.exclude_caches,
        one_file_system: s.one_file_system,
        postgres,
        mariadb,
        sqlite,
        db_wrapper,
        database_password,
        tags,
        before,
        after,
    })
}

/// Why a database URL that holds a password is refused, worded once for the config
/// file and the command line: `what` says where the URL was given, `instead` how to
/// give the password. The URL itself is never repeated.
fn url_holds_password(what: &str, instead: &str) -> String {
    format!("{what} holds a password, which would show in the process list: {instead}")
}

/// Refuses a database URL given on the command line (`flag`, e.g. `--postgres`) that
/// holds a password, as the config file refuses one: the command line is visible to
/// every local user (`ps`, `/proc/PID/cmdline`) and may be kept in a shell's history.
/// `configured` names the config file's keys that give the password instead. A URL of
/// another kind is left to the parser that reads it.
pub fn refuse_url_password(flag: &str, url: &str, configured: &str) -> Result<()> {
    const POSTGRES: &[&str] = &["postgresql://", "postgres://"];
    const MARIADB: &[&str] = &["mariadb://", "mysql://"];
    let (schemes, tool) = if POSTGRES.iter().any(|s| url.starts_with(s)) {
        (POSTGRES, "set PGPASSWORD or use ~/.pgpass")
    } else if MARIADB.iter().any(|s| url.starts_with(s)) {
        (MARIADB, "set MYSQL_PWD or use ~/.my.cnf")
    } else {
        return Ok(());
    };
    if url_password(url, schemes) == Ok(true) {
        return Err(Error::UrlPassword(url_holds_password(
            flag,
            &format!("{tool} (in the config file: {configured})"),
        )));
    }
    Ok(())
}

/// Whether a database URL with one of `schemes` holds a password; an error when it is
/// not such a URL.
fn url_password(text: &str, schemes: &[&str]) -> Result<bool, String> {
    if !schemes.iter().any(|s| text.starts_with(s)) {
        return Err(format!("the url must start with {}", schemes.join(" or ")));
    }
    let rest = text.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
    // libpq also takes `?password=`; cairn does not use it, but it is a password on a
    // command line all the same.
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let in_query = query
        .split('&')
        .any(|kv| kv.split('=').next() == Some("password"));
    Ok(userinfo.is_some_and(|u| u.contains(':')) || in_query)
}

fn job(j: raw::Job, config: &Config, v: &mut Validator) -> Option<JobConfig> {
    let before_problems = v.problems.len();
    let name = j.name.get_ref().clone();
    if !valid_name(&name) {
        v.at(
            &j.name,
            format!("job name {name:?}: use letters, digits, '-', '_' and '.' only"),
        );
    }
    let mut job = JobConfig::with_defaults(name, config);
    let mut names = |key: &str, given: Option<Vec<Spanned<String>>>, known: Vec<String>| {
        let Some(given) = given else {
            return known;
        };
        let mut out = Vec::new();
        for n in given {
            if known.contains(n.get_ref()) {
                out.push(n.into_inner());
            } else {
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                v.at(
                    &n,
                    format!(
                        "{key}: {:?} is not configured (configured: {known})",
                        n.get_ref()
                    ),
                );
            }
        }
        out
    };
    job.apps = names("apps", j.apps, job.apps.clone());
    job.sources = names("sources", j.sources, job.sources.clone());
    job.copy_to = names("copy-to", j.copy_to, job.copy_to.clone());
    if let Some(f) = j.forget {
        job.forget = f;
    }
    let mut cadence = |c: Option<Spanned<String>>, default: Cadence| match c {
        None => default,
        Some(c) => Cadence::parse(c.get_ref()).unwrap_or_else(|e| {
            v.at(&c, e);
            default
        }),
    };
    job.prune_every = cadence(j.prune_every, job.prune_every);
    job.check_every = cadence(j.check_every, job.check_every);
    if let Some(c) = j.check_subset {
        match c.get_ref().parse::<cairn_core::DataSubset>() {
            Ok(_) => job.check_subset = c.into_inner(),
            Err(e) => v.at(&c, format!("check-subset: {e}")),
        }
    }
    if let Some(sch) = j.schedule {
        if let Some(t) = v.nonempty("schedule", &sch) {
            job.schedule = t;
        }
    }
    if let Some(d) = j.randomized_delay {
        match crate::duration::parse(d.get_ref()) {
            Ok(d) => job.randomized_delay = d.as_secs(),
            Err(e) => v.at(&d, format!("randomized-delay: {e}")),
        }
    }
    if let Some(u) = j.ping_url {
        let t = u.get_ref();
        if t.starts_with("http://") || t.starts_with("https://") {
            job.ping_url = Some(t.trim_end_matches('/').to_string());
        } else {
            v.at(&u, "ping-url must start with http:// or https://".into());
        }
    }
    for (key, given, out) in [
        ("before", j.before, &mut job.before),
        ("after", j.after, &mut job.after),
    ] {
        *out = given
            .iter()
            .filter_map(|h| v.nonempty(&format!("an entry of {key}"), h))
            .collect();
    }
    if job.forget && config.retention.is_none() {
        let p = problem(
            v.text,
            v.file,
            j.name.span().start,
            format!(
                "job {:?} has forget = true but there is no [retention]",
                job.name
            ),
        );
        v.problems.push(p);
    }
    (v.problems.len() == before_problems).then_some(job)
}

fn repository(r: raw::Repository, v: &mut Validator) -> RepositoryConfig {
    let url = r.url.and_then(|u| {
        let text = v.nonempty("url", &u)?;
        if ["s3://", "sftp://", "file://", "rclone:"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
        {
            return Some(text);
        }
        if text.contains("://") {
            v.at(
                &u,
                "the repository url must be an absolute path, file://, s3://bucket/prefix, \
                 sftp://user@host/path or rclone:remote:path"
                    .into(),
            );
            return None;
        }
        let path = Spanned::new(u.span(), PathBuf::from(&text));
        v.absolute("url", &path).map(|_| text)
    });
    let remote = RemoteConfig {
        s3_endpoint: r.s3_endpoint.and_then(|s| v.nonempty("s3-endpoint", &s)),
        s3_region: r.s3_region.and_then(|s| v.nonempty("s3-region", &s)),
        s3_path_style: r.s3_path_style,
        s3_access_key_id: r
            .s3_access_key_id
            .and_then(|s| v.nonempty("s3-access-key-id", &s)),
        sftp_identity_file: r
            .sftp_identity_file
            .and_then(|p| v.absolute("sftp-identity-file", &p)),
        sftp_known_hosts: r
            .sftp_known_hosts
            .and_then(|p| v.absolute("sftp-known-hosts", &p)),
    };
    // The S3 secret comes from the same three kinds of source as the password.
    let given = [
        r.s3_secret_access_key_file.as_ref().map(|s| s.span()),
        r.s3_secret_access_key_command.as_ref().map(|s| s.span()),
        r.s3_secret_access_key.as_ref().map(|s| s.span()),
    ];
    let s3_secret = if given.iter().flatten().count() > 1 {
        let at = given
            .into_iter()
            .flatten()
            .map(|s| s.start)
            .max()
            .unwrap_or(0);
        let p = problem(
            v.text,
            v.file,
            at,
            "give one of s3-secret-access-key-file, s3-secret-access-key-command and \
             s3-secret-access-key, not several"
                .into(),
        );
        v.problems.push(p);
        None
    } else if let Some(f) = r.s3_secret_access_key_file {
        v.absolute("s3-secret-access-key-file", &f)
            .map(PasswordSource::File)
    } else if let Some(c) = r.s3_secret_access_key_command {
        v.nonempty("s3-secret-access-key-command", &c)
            .map(PasswordSource::Command)
    } else {
        r.s3_secret_access_key
            .and_then(|s| v.nonempty("s3-secret-access-key", &s))
            .map(|s| PasswordSource::Inline(InlinePassword::new(s)))
    };
    RepositoryConfig {
        name: r.name.and_then(|n| {
            let text = v.nonempty("name", &n)?;
            if valid_name(&text) {
                Some(text)
            } else {
                v.at(
                    &n,
                    format!("{text:?}: names are letters, digits, -, _ and ."),
                );
                None
            }
        }),
        url,
        password: v.password(r.password_file, r.password_command, r.password),
        cache_dir: r.cache_dir.and_then(|d| v.absolute("cache-dir", &d)),
        remote,
        s3_secret,
    }
}

/// Instance names: letters, digits, `-`, `_` and `.`, as they are used on command
/// lines, in `NAME=DIR` and as tags.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn app(a: raw::App, v: &mut Validator) -> Option<AppConfig> {
    let before_problems = v.problems.len();
    let name = a.name.get_ref().clone();
    if !valid_name(&name) {
        v.at(
            &a.name,
            format!("app name {name:?}: use letters, digits, '-', '_' and '.' only"),
        );
    }
    let known = FRONT_ENDS.join(", ");
    let kind = match &a.kind {
        Some(k) => {
            let kind = if k.get_ref() == "i-doit" {
                "idoit".to_string()
            } else {
                k.get_ref().clone()
            };
            if !FRONT_ENDS.contains(&kind.as_str()) {
                v.at(
                    k,
                    format!("unknown kind {:?} (known: {known})", k.get_ref()),
                );
            }
            kind
        }
        None => {
            if !FRONT_ENDS.contains(&name.as_str()) {
                v.at(
                    &a.name,
                    format!(
                        "app {name:?} is not the name of a front-end: add kind = \"...\" \
                         (one of {known})"
                    ),
                );
            }
            name.clone()
        }
    };
    let path = v.absolute("path", &a.path);
    let mut list = |key: &str, items: Vec<Spanned<String>>| -> Vec<String> {
        items
            .iter()
            .filter_map(|s| v.nonempty(&format!("an entry of {key}"), s))
            .collect()
    };
    let before = list("before", a.before);
    let after = list("after", a.after);
    let tags = list("tags", a.tags);
    let db_wrapper = a.db_wrapper.and_then(|w| v.nonempty("db-wrapper", &w));
    let database = match a.database {
        None => DatabaseConfig::default(),
        Some(d) => database(d, v),
    };
    if a.with_generated && kind != "immich" {
        v.at(
            &a.name,
            "with-generated is a key of immich installations".into(),
        );
    }
    let metadata_export =
        a.metadata_export
            .and_then(|m| match metadata_export_is_valid(m.get_ref()) {
                true => Some(m.into_inner()),
                false => {
                    v.at(&m, "expected FULL, TENANT, TENANT:name or off".into());
                    None
                }
            });
    let key_file = a
        .metadata_encryption_key_file
        .and_then(|f| v.absolute("metadata-encryption-key-file", &f));
    let metadata_encryption = match (a.metadata_encryption, key_file) {
        (Some(false), Some(_)) => {
            v.at(
                &a.name,
                "metadata-encryption = false and metadata-encryption-key-file contradict \
                 each other"
                    .into(),
            );
            MetadataEncryption::None
        }
        (Some(false), None) => MetadataEncryption::None,
        (_, Some(f)) => MetadataEncryption::KeyFile(f),
        (_, None) => MetadataEncryption::Embedded,
    };
    let kestra_only =
        metadata_export.is_some() || metadata_encryption != MetadataEncryption::Embedded;
    if kestra_only && kind != "kestra" {
        v.at(
            &a.name,
            "metadata-export and metadata-encryption are keys of kestra installations".into(),
        );
    }
    let options = AppOptions {
        with_generated: a.with_generated,
        metadata_export,
        metadata_encryption,
    };
    if v.problems.len() > before_problems {
        return None;
    }
    Some(AppConfig {
        name,
        kind,
        path: path?,
        before,
        after,
        tags,
        db_wrapper,
        database,
        options,
    })
}

/// Whether `text` is a value of Kestra's metadata export: `FULL`, `TENANT`,
/// `TENANT:name` or `off` (also `none`, `no`, `false`, `0`), in any case. The same
/// syntax as cairn-apps' `MetadataExport::parse` (a test of the binary checks it).
pub fn metadata_export_is_valid(text: &str) -> bool {
    let s = text.trim();
    let (kind, tenant) = match s.split_once(':') {
        Some((k, t)) => (k, Some(t.trim())),
        None => (s, None),
    };
    match (kind.to_ascii_uppercase().as_str(), tenant) {
        ("" | "FULL" | "TENANT", None) => true,
        ("TENANT", Some(t)) => !t.is_empty(),
        ("OFF" | "NONE" | "NO" | "FALSE" | "0", None) => true,
        _ => false,
    }
}

/// What [`check_database_url`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A PostgreSQL or MariaDB URL.
    Server,
    /// No `scheme://`: a SQLite file as the dump sources take it, not a server.
    NotAUrl,
}

/// Checks a database URL as cairn-apps' `Database::parse` reads it (a test of the
/// binary checks that both agree): `postgresql://`, `postgres://`, `mariadb://` or
/// `mysql://`, a URL the `url` crate parses, one database name at most, UTF-8 when
/// percent-decoded. The error never repeats the URL: it may hold a password.
pub fn check_database_url(spec: &str) -> Result<DatabaseUrl, String> {
    let Some((scheme, _)) = spec.split_once("://") else {
        return Ok(DatabaseUrl::NotAUrl);
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(
        scheme.as_str(),
        "postgresql" | "postgres" | "mariadb" | "mysql"
    ) {
        return Err(format!(
            "unknown database URL scheme {scheme}:// (postgresql, mariadb, mysql)"
        ));
    }
    let bad = |why: &str| format!("invalid database URL: {why}");
    let url = url::Url::parse(spec).map_err(|e| bad(&e.to_string()))?;
    let database = url.path().trim_start_matches('/');
    if database.contains('/') {
        return Err(bad("the path must be one database name"));
    }
    let utf8 = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .is_ok()
    };
    if ![url.username(), url.password().unwrap_or(""), database]
        .into_iter()
        .all(utf8)
    {
        return Err(bad("a percent-encoded part is not UTF-8"));
    }
    Ok(DatabaseUrl::Server)
}

fn database(d: raw::Database, v: &mut Validator) -> DatabaseConfig {
    let url = d.url.and_then(|u| {
        // The message never repeats the URL: it may hold a password.
        match check_database_url(u.get_ref()) {
            Ok(DatabaseUrl::NotAUrl) => {
                v.at(
                    &u,
                    "the database url must start with postgresql://, mariadb:// or mysql://".into(),
                );
                None
            }
            Ok(_) => Some(u.into_inner()),
            Err(e) => {
                v.at(&u, e.to_string());
                None
            }
        }
    });
    DatabaseConfig {
        url,
        password: v.password(d.password_file, d.password_command, d.password),
        exclude: d.exclude,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"# cairn's configuration
[repository]
url = "/var/backups/cairn"
password-file = "/etc/cairn/password"
cache-dir = "/var/cache/cairn"

[[app]]
name = "kimai"
path = "/var/www/kimai"
before = ["systemctl stop php8.2-fpm"]
after = ["systemctl start php8.2-fpm"]
tags = ["nightly"]
db-wrapper = "docker exec kimai-db"
[app.database]
password-file = "/etc/cairn/kimai-db-password"

[[app]]
name = "photos"
kind = "immich"
path = "/opt/immich"
[app.database]
url = "postgresql://postgres@127.0.0.1/immich"
password-command = "pass show immich-db"

[[app]]
name = "cmdb"
kind = "i-doit"
path = "/var/www/html/i-doit"

[retention]
keep-last = 3
keep-daily = 7
keep-weekly = 5
keep-within = "14d"
keep-tag = ["release"]
"#;

    fn file() -> PathBuf {
        PathBuf::from("/etc/cairn/config.toml")
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, &file(), false) {
            Ok(c) => panic!("parsed, expected an error: {c:?}"),
            Err(Problems(p)) => p,
        }
    }

    /// The one problem of `text`, as `line:column: message`.
    fn one_problem(text: &str) -> String {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].file, file());
        format!("{}:{}: {}", p[0].line, p[0].column, p[0].message)
    }

    #[test]
    fn offsite_repositories_and_the_copies_policy() {
        let c = parse(
            "[repository]\nname = \"local\"\nurl = \"/srv/cairn\"\n\n\
             [[offsite]]\nname = \"usb\"\nurl = \"/mnt/usb/cairn\"\npassword-command = \"pass usb\"\n\n\
             [[offsite]]\nname = \"cloud\"\nurl = \"s3://b/web1\"\ns3-region = \"eu-1\"\n\n\
             [copies]\noffsite-max-age = \"2d\"\nmin-copies = 3\n",
            &file(),
            false,
        )
        .unwrap();
        assert_eq!(c.repository.name.as_deref(), Some("local"));
        let names: Vec<_> = c.offsite.iter().map(|o| o.name.clone().unwrap()).collect();
        assert_eq!(names, ["usb", "cloud"]);
        assert_eq!(c.offsite[1].remote.s3_region.as_deref(), Some("eu-1"));
        assert_eq!(c.copies.offsite_max_age, Some(2 * 86_400));
        assert_eq!(c.copies.min_copies, Some(3));
        assert_eq!(
            one_problem("[[offsite]]\nurl = \"/x\"\n"),
            "1:1: [[offsite]] needs a name"
        );
        assert_eq!(
            one_problem("[[offsite]]\nname = \"primary\"\nurl = \"/x\"\n"),
            "2:8: repository name \"primary\" is used twice"
        );
        assert_eq!(
            one_problem("[copies]\noffsite-max-age = \"soon\"\n"),
            "2:19: \"soon\" is not an age (examples: 2d, 36h, 90m)"
        );
        assert_eq!(parse_age("36h"), Ok(36 * 3600));
        assert!(parse_age("-1d").is_err());
    }

    #[test]
    fn sources_jobs_and_monitoring() {
        let c = parse(
            "[repository]\nname = \"local\"\nurl = \"/srv/cairn\"\n\n\
             [[offsite]]\nname = \"usb\"\nurl = \"/mnt/usb\"\n\n\
             [[app]]\nname = \"kimai\"\npath = \"/var/www/kimai\"\n\n\
             [[source]]\nname = \"etc\"\npaths = [\"/etc\"]\nexclude = [\"*.tmp\"]\n\
             postgres = [\"postgresql://backup@127.0.0.1/crm\"]\n\
             database-password-file = \"/etc/cairn/db\"\nbefore = [\"sync\"]\n\n\
             [retention]\nkeep-daily = 7\n\n\
             [[job]]\nname = \"nightly\"\nsources = [\"etc\"]\nprune-every = \"never\"\n\
             check-every = \"always\"\ncheck-subset = \"1/7\"\nrandomized-delay = \"30m\"\n\
             ping-url = \"https://hc.example.org/ping/abc/\"\n\n\
             [[job]]\nname = \"db\"\napps = []\ncopy-to = []\nforget = false\n\n\
             [monitoring]\ntextfile-dir = \"/var/lib/node_exporter\"\n",
            &file(),
            false,
        )
        .unwrap();
        let src = &c.sources[0];
        assert_eq!(src.paths, [PathBuf::from("/etc")]);
        assert_eq!(src.postgres, ["postgresql://backup@127.0.0.1/crm"]);
        assert_eq!(
            src.database_password,
            Some(PasswordSource::File("/etc/cairn/db".into()))
        );
        let jobs = c.jobs();
        assert_eq!(jobs.len(), 2);
        let n = c.job(Some("nightly")).unwrap();
        assert_eq!(n.apps, ["kimai"], "apps default to every app");
        assert_eq!(n.sources, ["etc"]);
        assert_eq!(n.copy_to, ["usb"]);
        assert!(n.forget, "forgets when there is a [retention]");
        assert_eq!(n.prune_every, Cadence::Never);
        assert_eq!(n.check_every, Cadence::Always);
        assert_eq!(n.check_subset, "1/7");
        assert_eq!(n.randomized_delay, 1800);
        assert_eq!(n.schedule, "02:00");
        assert_eq!(
            n.ping_url.as_deref(),
            Some("https://hc.example.org/ping/abc")
        );
        let db = c.job(Some("db")).unwrap();
        assert!(db.apps.is_empty() && db.copy_to.is_empty() && !db.forget);
        assert_eq!(db.prune_every, Cadence::Every(7 * 86_400));
        assert!(c
            .job(None)
            .unwrap_err()
            .to_string()
            .contains("jobs: nightly, db"));
        assert_eq!(
            c.monitoring.textfile_dir.as_deref(),
            Some(Path::new("/var/lib/node_exporter"))
        );
        assert_eq!(
            c.named_repository("usb").unwrap().url.as_deref(),
            Some("/mnt/usb")
        );
        assert_eq!(
            c.named_repository("local").unwrap().url.as_deref(),
            Some("/srv/cairn")
        );
        assert!(c.named_repository("primary").is_none());

        // Without [[job]]: one job, `nightly`, with every default.
        let c = parse(
            "[[source]]\nname = \"etc\"\npaths = [\"/etc\"]\n",
            &file(),
            false,
        )
        .unwrap();
        let j = c.job(None).unwrap();
        assert_eq!(
            (j.name.as_str(), j.sources.len(), j.forget),
            ("nightly", 1, false)
        );
    }

    #[test]
    fn jobs_and_sources_are_checked() {
        let src = "[[source]]\nname = \"etc\"\npaths = [\"/etc\"]\n";
        assert_eq!(
            one_problem(&format!(
                "{src}[[job]]\nname = \"n\"\nsources = [\"etc\", \"home\"]\n"
            )),
            "6:19: sources: \"home\" is not configured (configured: etc)"
        );
        assert_eq!(
            one_problem(&format!("{src}[[job]]\nname = \"n\"\nforget = true\n")),
            "5:8: job \"n\" has forget = true but there is no [retention]"
        );
        assert_eq!(
            one_problem(&format!(
                "{src}[[job]]\nname = \"n\"\nprune-every = \"weekly\"\n"
            )),
            "6:15: \"weekly\" is not an age (examples: 2d, 36h, 90m), always or never"
        );
        assert_eq!(
            one_problem(&format!(
                "{src}[[job]]\nname = \"n\"\nping-url = \"hc.example.org\"\n"
            )),
            "6:12: ping-url must start with http:// or https://"
        );
        assert_eq!(
            one_problem(&format!(
                "{src}[[job]]\nname = \"n\"\n[[job]]\nname = \"n\"\n"
            )),
            "7:8: job name \"n\" is used twice"
        );
        assert_eq!(
            one_problem("[[source]]\nname = \"db\"\npostgres = [\"postgresql://u:s3cret@h/db\"]\n"),
            "3:13: an entry of postgres holds a password, which would show in the process list: \
             use database-password-file or database-password-command"
        );
        assert_eq!(
            one_problem("[[source]]\nname = \"empty\"\n"),
            "2:8: source \"empty\" backs up nothing: give paths, postgres, mariadb or sqlite"
        );
        assert_eq!(
            one_problem("[[app]]\nname = \"kimai\"\npath = \"/k\"\n[[source]]\nname = \"kimai\"\npaths = [\"/etc\"]\n"),
            "5:8: the name \"kimai\" is used twice (apps and sources share names)"
        );
        assert_eq!(
            one_problem("[[source]]\nname = \"x\"\nmariadb = [\"postgresql://h/db\"]\n"),
            "3:12: an entry of mariadb: the url must start with mariadb:// or mysql://"
        );
        assert_eq!(
            one_problem("[monitoring]\ntextfile-dir = \"prom\"\n"),
            "2:16: textfile-dir must be an absolute path, not \"prom\""
        );
        let out = problems(&format!(
            "{src}[[job]]\nname = \"n\"\nschedule = \"\"\nfrequency = 1\n"
        ));
        assert!(
            out[0].message.contains("unknown field `frequency`"),
            "{out:?}"
        );
    }

    #[test]
    fn app_options_of_immich_and_kestra() {
        let c = parse(
            "[[app]]\nname = \"immich\"\npath = \"/opt/immich\"\nwith-generated = true\n\n\
             [[app]]\nname = \"kestra\"\npath = \"/opt/kestra\"\nmetadata-export = \"TENANT:acme\"\n\
             metadata-encryption-key-file = \"/etc/cairn/kestra-key\"\n\n\
             [[app]]\nname = \"kestra-b\"\nkind = \"kestra\"\npath = \"/opt/b\"\n\
             metadata-encryption = false\n\n[app.database]\nexclude = [\"old\"]\n",
            &file(),
            false,
        )
        .unwrap();
        assert!(c.apps[0].options.with_generated);
        assert_eq!(
            c.apps[1].options.metadata_export.as_deref(),
            Some("TENANT:acme")
        );
        assert_eq!(
            c.apps[1].options.metadata_encryption,
            MetadataEncryption::KeyFile("/etc/cairn/kestra-key".into())
        );
        assert_eq!(
            c.apps[2].options.metadata_encryption,
            MetadataEncryption::None
        );
        assert_eq!(c.apps[2].database.exclude, vec!["old".to_string()]);
        assert_eq!(
            one_problem("[[app]]\nname = \"kimai\"\npath = \"/k\"\nwith-generated = true\n"),
            "2:8: with-generated is a key of immich installations"
        );
        assert_eq!(
            one_problem("[[app]]\nname = \"kestra\"\npath = \"/k\"\nmetadata-export = \"HALF\"\n"),
            "4:19: expected FULL, TENANT, TENANT:name or off"
        );
    }

    #[test]
    fn the_full_example_parses() {
        let c = parse(FULL, &file(), false).unwrap();
        assert_eq!(c.file, Some(file()));
        assert_eq!(c.repository.url.as_deref(), Some("/var/backups/cairn"));
        assert_eq!(
            c.repository.password,
            Some(PasswordSource::File("/etc/cairn/password".into()))
        );
        assert_eq!(
            c.repository.cache_dir,
            Some(PathBuf::from("/var/cache/cairn"))
        );
        assert_eq!(c.apps.len(), 3);
        let k = c.app("kimai").unwrap();
        assert_eq!(k.kind, "kimai", "the kind defaults to the name");
        assert_eq!(k.path, PathBuf::from("/var/www/kimai"));
        assert_eq!(k.before, ["systemctl stop php8.2-fpm"]);
        assert_eq!(k.after, ["systemctl start php8.2-fpm"]);
        assert_eq!(k.tags, ["nightly"]);
        assert_eq!(k.db_wrapper.as_deref(), Some("docker exec kimai-db"));
        assert_eq!(k.database.url, None);
        assert_eq!(
            k.database.password,
            Some(PasswordSource::File("/etc/cairn/kimai-db-password".into()))
        );
        let p = c.app("photos").unwrap();
        assert_eq!(p.kind, "immich");
        assert_eq!(
            p.database.url.as_deref(),
            Some("postgresql://postgres@127.0.0.1/immich")
        );
        assert_eq!(
            p.database.password,
            Some(PasswordSource::Command("pass show immich-db".into()))
        );
        assert_eq!(c.app("cmdb").unwrap().kind, "idoit");
        assert_eq!(c.app_names(), "kimai, photos, cmdb");
        let r = c.retention.unwrap();
        assert_eq!(
            r.rules(),
            [
                "keep-last 3",
                "keep-daily 7",
                "keep-weekly 5",
                "keep-within 14d",
                "keep-tag release"
            ]
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("# nothing yet\n", &file(), false).unwrap();
        assert!(c.apps.is_empty() && c.retention.is_none());
        assert_eq!(c.repository.url, None);
        assert_eq!(c.app_names(), "none");
    }

    #[test]
    fn an_unknown_key_in_a_nested_table_is_an_error_at_its_line() {
        // Line 15 of FULL is `password-file = ...` under kimai's [app.database].
        let text = FULL.replacen(
            "password-file = \"/etc/cairn/kimai-db-password\"",
            "pasword-file = \"/etc/cairn/kimai-db-password\"",
            1,
        );
        let p = one_problem(&text);
        assert!(
            p.starts_with("15:1: unknown field `pasword-file`, expected one of"),
            "{p}"
        );
        assert!(p.contains("`password-file`"), "{p}");
        // And at the top, and in [repository] and [retention].
        assert!(one_problem("[schedule]\nat = 1\n").starts_with("1:2: unknown field `schedule`"));
        let p = one_problem("[repository]\nurl = \"/r\"\n  pasword = \"x\"\n");
        assert!(p.starts_with("3:3: unknown field `pasword`"), "{p}");
        let p = one_problem("[retention]\nkeep-daily = 7\nkeep-dayly = 7\n");
        assert!(p.starts_with("3:1: unknown field `keep-dayly`"), "{p}");
        let full_problem = &problems(&text)[0];
        assert!(
            full_problem
                .to_string()
                .starts_with("/etc/cairn/config.toml:15:1: unknown field `pasword-file`"),
            "{full_problem}"
        );
    }

    #[test]
    fn duplicate_app_names_are_an_error_at_the_second() {
        let text = "[[app]]\nname = \"kimai\"\npath = \"/a\"\n\n[[app]]\nname = \"kimai\"\npath = \"/b\"\n";
        assert_eq!(
            one_problem(text),
            "6:8: duplicate app name \"kimai\" (first at line 1)"
        );
    }

    #[test]
    fn wrong_types_are_errors_at_the_value() {
        let p = one_problem("[repository]\nurl = 5\n");
        assert!(
            p.starts_with("2:7: invalid type: integer `5`, expected a string"),
            "{p}"
        );
        let p = one_problem("[[app]]\nname = \"kimai\"\npath = \"/a\"\nbefore = \"stop\"\n");
        assert!(p.starts_with("4:10: invalid type: string"), "{p}");
        let p = one_problem("[retention]\nkeep-daily = -1\n");
        assert!(p.starts_with("2:14:"), "{p}");
        // `app` must be an array of tables.
        let p = one_problem("[app]\nname = \"kimai\"\n");
        assert!(p.contains("expected a sequence"), "{p}");
        // Not TOML at all.
        let p = one_problem("[repository\n");
        assert!(p.starts_with("1:"), "{p}");
    }

    #[test]
    fn missing_keys_name_the_table() {
        let p = one_problem("[[app]]\nname = \"kimai\"\n");
        assert!(p.contains("missing field `path`"), "{p}");
    }

    #[test]
    fn values_are_checked_and_every_problem_is_reported() {
        let text = r#"[repository]
url = "relative/repo"
password-file = "/p"
password-command = "pass show cairn"
cache-dir = "cache"

[[app]]
name = "kimia"
path = "/var/www/kimai"

[[app]]
name = "web"
kind = "wordpress"
path = "www"
before = [""]
[app.database]
url = "/var/data/x.sqlite"

[[app]]
name = "with space"
kind = "kimai"
path = "/srv/k"

[retention]
keep-within = "2 weeks"
"#;
        let found: Vec<String> = problems(text)
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect();
        let expect = [
            "2:7: url must be an absolute path",
            "4:20: give one of password-file, password-command and password, not several",
            "5:13: cache-dir must be an absolute path",
            "8:8: app \"kimia\" is not the name of a front-end: add kind",
            "13:8: unknown kind \"wordpress\" (known: idoit, immich, kestra, kimai)",
            "14:8: path must be an absolute path",
            "15:11: an entry of before is empty",
            "17:7: the database url must start with postgresql://",
            "20:8: app name \"with space\": use letters, digits",
            "25:15: keep-within: invalid duration",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for (f, e) in found.iter().zip(expect) {
            assert!(f.starts_with(e), "{f}\n  expected to start with\n{e}");
        }
    }

    #[test]
    fn remote_urls_and_an_inline_password_and_an_empty_one() {
        let p = one_problem("[repository]\nurl = \"ftp://host/x\"\n");
        assert!(p.starts_with("2:7: the repository url must be"), "{p}");
        let c = parse(
            "[repository]\nurl = \"s3://bucket/x\"\ns3-endpoint = \"http://127.0.0.1:9000\"\n\
             s3-region = \"garage\"\ns3-path-style = true\ns3-access-key-id = \"AK\"\n\
             s3-secret-access-key-file = \"/etc/cairn/s3-secret\"\n\
             sftp-identity-file = \"/root/.ssh/id_ed25519\"\nsftp-known-hosts = \"/etc/cairn/kh\"\n",
            &file(),
            false,
        )
        .unwrap();
        let r = &c.repository;
        assert_eq!(r.url.as_deref(), Some("s3://bucket/x"));
        assert_eq!(
            r.remote.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(r.remote.s3_region.as_deref(), Some("garage"));
        assert_eq!(r.remote.s3_path_style, Some(true));
        assert_eq!(r.remote.s3_access_key_id.as_deref(), Some("AK"));
        assert_eq!(
            r.s3_secret,
            Some(PasswordSource::File("/etc/cairn/s3-secret".into()))
        );
        assert_eq!(
            r.remote.sftp_known_hosts.as_deref(),
            Some(Path::new("/etc/cairn/kh"))
        );
        let p = one_problem(
            "[repository]\ns3-secret-access-key = \"x\"\ns3-secret-access-key-command = \"pass s3\"\n",
        );
        assert!(
            p.starts_with("3:32: give one of s3-secret-access-key-file"),
            "{p}"
        );
        let c = parse("[repository]\nurl = \"sftp://u@h/srv/r\"\n", &file(), false).unwrap();
        assert_eq!(c.repository.url.as_deref(), Some("sftp://u@h/srv/r"));
        let c = parse(
            "[repository]\nurl = \"rclone:b2:bucket/r\"\n",
            &file(),
            false,
        )
        .unwrap();
        assert_eq!(c.repository.url.as_deref(), Some("rclone:b2:bucket/r"));
        let c = parse("[repository]\npassword = \"s3cret\"\n", &file(), false).unwrap();
        let pw = c.repository.password.unwrap();
        assert!(matches!(pw, PasswordSource::Inline(_)));
        assert!(!format!("{pw:?}").contains("s3cret"), "{pw:?}");
        let p = one_problem("[repository]\npassword = \"\"\n");
        assert!(p.starts_with("2:12: password is empty"), "{p}");
    }

    #[test]
    fn a_database_url_with_a_password_is_refused_on_the_command_line_too() {
        let keys = "database-password-file or database-password-command of a [[source]]";
        let e = refuse_url_password("--postgres", "postgresql://u:s3cret@h/db", keys)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--postgres holds a password, which would show in the process list: set \
             PGPASSWORD or use ~/.pgpass (in the config file: database-password-file or \
             database-password-command of a [[source]])"
        );
        let e = refuse_url_password("--mariadb", "mysql://root:s3cret@h:3306/", keys)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set MYSQL_PWD or use ~/.my.cnf"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        // An empty password is a password given on the command line all the same, and
        // so is libpq's query parameter.
        assert!(refuse_url_password("--postgres", "postgres://u:@h/db", keys).is_err());
        assert!(refuse_url_password("--postgres", "postgres://u@h/db?password=x", keys).is_err());
        for fine in [
            "postgresql://u@h/db",
            "postgresql:///db?host=/run/postgresql",
            "mariadb://root@127.0.0.1:3306/app",
            // A name, not a URL (app restore --database NAME).
            "kimai_restored",
            // The '@' and ':' of a path or query are not a password.
            "postgresql://u@h/db?options=a:b@c",
        ] {
            assert!(refuse_url_password("--x", fine, keys).is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_database_url_is_never_repeated_in_errors() {
        let p = one_problem(
            "[[app]]\nname = \"kimai\"\npath = \"/k\"\n[app.database]\nurl = \"ftp://u:hunter2@h/x\"\n",
        );
        assert!(
            p.starts_with("5:7: unknown database URL scheme ftp://"),
            "{p}"
        );
        assert!(!p.contains("hunter2"), "{p}");
        let c = parse(
            "[[app]]\nname = \"kimai\"\npath = \"/k\"\n[app.database]\nurl = \"mysql://u:hunter2@h/x\"\n",
            &file(),
            false,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn unreadable_password_files_are_found_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let text = format!(
            "[repository]\npassword-file = {:?}\n",
            missing.display().to_string()
        );
        assert!(parse(&text, &file(), false).is_ok());
        let Err(Problems(p)) = parse(&text, &file(), true) else {
            panic!("an unreadable password file passed the check")
        };
        assert_eq!((p[0].line, p[0].column), (2, 17));
        assert!(
            p[0].message.starts_with("cannot read the password file"),
            "{p:?}"
        );
        std::fs::write(&missing, "pw\n").unwrap();
        assert!(parse(&text, &file(), true).is_ok());
    }

    #[test]
    fn retention_is_a_policy_and_its_problems_are_reported_with_the_others() {
        let text = "[repository]\nurl = \"rel\"\n\n[retention]\nkeep-tag = [\"a\", \" \"]\n";
        let found: Vec<String> = problems(text)
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("2:7: url must be an absolute path"),
            "{found:#?}"
        );
        assert_eq!(found[1], "5:18: an entry of keep-tag is empty");
        let c = parse(
            "[retention]\nkeep-last = 1\ngroup-by = \"host,app\"\n",
            &file(),
            false,
        )
        .unwrap();
        let r = c.retention.unwrap();
        assert_eq!(r.group_by, "host,app".parse().unwrap());
        assert_eq!(r.rules(), ["keep-last 1", "group-by host,app"]);
        let p = one_problem("[retention]\ngroup-by = \"hostname\"\n");
        assert!(p.starts_with("2:12: group-by: cannot group by"), "{p}");
    }
}
