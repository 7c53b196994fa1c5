//! Resolved settings: where the repository is, how to get the password, where the
//! catalogs are, and what the config file says.
//!
//! Precedence, written down once (and in docs/config.md), for each setting on its own:
//!
//! 1. command-line flags (`-r/--repo`, `--password-file`, `--password-command`,
//!    `--cache-dir`, `--no-cache`);
//! 2. environment variables (`CAIRN_REPOSITORY`; `CAIRN_PASSWORD_FILE`, then
//!    `CAIRN_PASSWORD_COMMAND`, then `CAIRN_PASSWORD`; `CAIRN_CACHE_DIR`);
//! 3. the config file (`[repository]`: `url`; `password-file`, `password-command` or
//!    `password`; `cache-dir`), found as [`crate::config`] says (`--config`,
//!    `CAIRN_CONFIG`, `$XDG_CONFIG_HOME/cairn/config.toml`, `/etc/cairn/config.toml`);
//! 4. defaults: the local default repository, a prompt on a terminal, the catalogs
//!    under `~/.cache/cairn`.
//!
//! Remote repositories (`s3://`, `sftp://`; an `rclone:` one has rclone's own config)
//! take their options from the config file's `[repository]` (`s3-endpoint`,
//! `s3-region`, `s3-path-style`, `s3-access-key-id`,
//! `s3-secret-access-key-file`/`-command`/`s3-secret-access-key`, `sftp-identity-file`,
//! `sftp-known-hosts`), each replaced by its environment variable when that is set
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `CAIRN_SFTP_IDENTITY_FILE`, `CAIRN_SFTP_KNOWN_HOSTS`); they
//! have no flags.
//!
//! Each setting is resolved apart: `-r` on the command line replaces the configured
//! repository but not the configured password source. Any password source of a higher
//! rank replaces every one of a lower rank (`--password-command` wins over a configured
//! `password-file`). Application settings (`[[app]]`) follow the same rule in
//! `cairn app`: a flag replaces the configured value of its key.

use crate::password::{read_password, PasswordSource};
use anyhow::{bail, Context, Result};
use cairn_config::Config;
use cairn_core::Password;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Settings shared by every command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Repository location.
    pub repo: String,
    /// Password source.
    pub password: PasswordSource,
    /// JSON output.
    pub json: bool,
    /// Print summaries even when not on a terminal.
    pub verbose: bool,
    /// Print only errors.
    pub quiet: bool,
    /// Standard error is a terminal (progress bars).
    pub progress: bool,
    /// How locks are taken.
    pub locking: Locking,
    /// Directory of the local catalogs; `None` to use none.
    pub cache_dir: Option<PathBuf>,
    /// Options of remote repositories: the config file's, overridden by the
    /// environment; the S3 secret from a file or command is read by
    /// [`Settings::remote_options`].
    pub remote: cairn_backend::RemoteOptions,
    /// The configured source of the S3 secret of this repository, read only when an
    /// S3 repository is opened.
    pub s3_secret: Option<PasswordSource>,
    /// The config file's contents (applications, retention); empty without one.
    pub config: Config,
    /// Whether the command may run with a put-only key (it only adds backups); set by
    /// the command dispatcher, false otherwise.
    pub put_only_allowed: bool,
    /// Open the repository with this key file only (a prefix of its name).
    pub key_id: Option<String>,
}

/// How commands lock the repository.
#[derive(Clone, Copy, Debug)]
pub struct Locking {
    /// How long to wait for a conflicting lock.
    pub retry: std::time::Duration,
    /// Take no shared lock (read-only storage).
    pub no_shared: bool,
}

/// The documented default repository: `$XDG_DATA_HOME/cairn/repository`, else
/// `~/.local/share/cairn/repository`. `env` gives non-empty environment variables.
fn default_repository(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(d) = env("XDG_DATA_HOME") {
        return Ok(PathBuf::from(d).join("cairn/repository"));
    }
    let home = env("HOME").context(
        "no repository given: neither -r/--repo, CAIRN_REPOSITORY, a config file's \
         [repository] url nor HOME is set",
    )?;
    Ok(PathBuf::from(home).join(".local/share/cairn/repository"))
}

/// The environment variable `name` when it is set and not empty.
pub fn env_var(name: &str) -> Option<String> {
    if cairn_core::is_secret_env(std::ffi::OsStr::new(name)) {
        return cairn_core::secret_env(name)
            .and_then(|v| v.into_string().ok())
            .filter(|v| !v.is_empty());
    }
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// cairn's state directory, `$XDG_STATE_HOME/cairn` (else `~/.local/state/cairn`): the
/// jobs' last runs and the journals of application restores in progress. `what` names
/// what needs it, for the error when neither variable is set.
pub fn state_dir(what: &str) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let base = match env_var("XDG_STATE_HOME").filter(|d| d.starts_with('/')) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            let home = env_var("HOME").with_context(|| {
                format!("neither XDG_STATE_HOME nor HOME is set: no place for {what}")
            })?;
            std::path::PathBuf::from(home).join(".local/state")
        }
    };
    Ok(base.join("cairn"))
}

impl Settings {
    /// Resolves the global flags against the environment and the config file.
    pub fn resolve(flags: crate::args::GlobalArgs) -> Result<Settings> {
        let location = cairn_config::locate(flags.config.clone(), &env_var);
        let config = cairn_config::load(&location, false)?;
        let password_set = cairn_core::secret_env("CAIRN_PASSWORD").is_some();
        Settings::resolve_with(flags, &env_var, password_set, config)
    }

    /// [`Settings::resolve`] with the environment given: `env` yields non-empty
    /// variables; `password_set` says whether `CAIRN_PASSWORD` is set (even empty: it
    /// is then refused as an empty password rather than passed over).
    fn resolve_with(
        flags: crate::args::GlobalArgs,
        env: &dyn Fn(&str) -> Option<String>,
        password_set: bool,
        config: Config,
    ) -> Result<Settings> {
        let crate::args::GlobalArgs {
            config: _,
            repo,
            password_file,
            password_command,
            json,
            verbose,
            quiet,
            retry_lock,
            no_lock,
            cache_dir,
            no_cache,
            key_id,
        } = flags;
        let locking = Locking {
            retry: retry_lock,
            no_shared: no_lock,
        };
        // `-r NAME` (or CAIRN_REPOSITORY=NAME) may name a configured repository
        // (`[repository]`, `primary` unless named, or an `[[offsite]]`): its table then
        // gives the url, password source and remote options.
        let given = repo.or_else(|| env("CAIRN_REPOSITORY"));
        let named = given
            .as_deref()
            .and_then(|g| config.named_repository(g))
            .cloned();
        let configured = named.clone().unwrap_or_else(|| config.repository.clone());
        let repo = match (named, given) {
            (Some(rc), _) => rc.url,
            (None, Some(g)) => Some(g),
            (None, None) => configured.url.clone(),
        };
        let repo = match repo {
            Some(r) => r,
            None => default_repository(env)?.to_string_lossy().into_owned(),
        };
        let configured = &configured;
        let password = if let Some(f) = password_file {
            PasswordSource::File(f)
        } else if let Some(c) = password_command {
            PasswordSource::Command(c)
        } else if let Some(f) = env("CAIRN_PASSWORD_FILE") {
            PasswordSource::File(f.into())
        } else if let Some(c) = env("CAIRN_PASSWORD_COMMAND") {
            PasswordSource::Command(c)
        } else if password_set {
            PasswordSource::Env
        } else if let Some(p) = &configured.password {
            p.clone()
        } else {
            PasswordSource::Prompt
        };
        let cache_dir = if no_cache {
            None
        } else {
            cache_dir
                .or_else(|| env("CAIRN_CACHE_DIR").map(PathBuf::from))
                .or_else(|| configured.cache_dir.clone())
                .or_else(|| config.repository.cache_dir.clone())
                .or_else(cairn_catalog::default_cache_dir)
        };
        let mut remote = remote_options(&configured.remote);
        remote.apply_env(env);
        let s3_secret = configured.s3_secret.clone();
        Ok(Settings {
            repo,
            remote,
            s3_secret,
            password,
            json,
            verbose,
            quiet,
            progress: !quiet && !json && std::io::stderr().is_terminal(),
            locking,
            cache_dir,
            config,
            put_only_allowed: false,
            key_id: key_id.or_else(|| env("CAIRN_KEY_ID")),
        })
    }

    /// True when summaries go to standard output.
    pub fn show_summary(&self) -> bool {
        !self.quiet && (self.verbose || std::io::stdout().is_terminal())
    }

    /// The options of a remote repository, with the S3 secret read from its
    /// configured file or command when the environment gives none and the repository
    /// is on S3.
    pub fn remote_options(&self) -> Result<cairn_backend::RemoteOptions> {
        let mut options = self.remote.clone();
        if let (None, Some(source), true) = (
            &options.s3_secret_access_key,
            &self.s3_secret,
            self.repo.starts_with("s3://"),
        ) {
            let secret = read_password(source, false, "S3 secret access key")?;
            let secret = String::from_utf8(secret.as_bytes().to_vec())
                .context("the S3 secret access key is not UTF-8")?;
            options.s3_secret_access_key = Some(cairn_backend::Secret::new(secret));
        }
        Ok(options)
    }

    /// The settings of another configured repository (an `[[offsite]]`): its url,
    /// password source and remote options (the environment overriding them, as for
    /// the primary); everything else stays.
    pub fn for_repository(&self, rc: &cairn_config::RepositoryConfig) -> Result<Settings> {
        let name = rc.name.as_deref().unwrap_or("primary");
        let Some(url) = &rc.url else {
            bail!("the repository {name} has no url");
        };
        let mut remote = remote_options(&rc.remote);
        remote.apply_env(&env_var);
        Ok(Settings {
            repo: url.clone(),
            password: rc.password.clone().unwrap_or(PasswordSource::Prompt),
            remote,
            s3_secret: rc.s3_secret.clone(),
            key_id: None,
            ..self.clone()
        })
    }

    /// Gets the password; `confirm` asks twice on a prompt (for new passwords).
    pub fn password(&self, confirm: bool) -> Result<Password> {
        read_password(&self.password, confirm, "repository password")
    }
}

/// The backends' options from the config file's `s3-*` and `sftp-*` keys.
fn remote_options(c: &cairn_config::RemoteConfig) -> cairn_backend::RemoteOptions {
    cairn_backend::RemoteOptions {
        s3_endpoint: c.s3_endpoint.clone(),
        s3_region: c.s3_region.clone(),
        s3_path_style: c.s3_path_style,
        s3_access_key_id: c.s3_access_key_id.clone(),
        s3_secret_access_key: None,
        s3_session_token: None,
        sftp_identity_file: c.sftp_identity_file.clone(),
        sftp_known_hosts: c.sftp_known_hosts.clone(),
    }
}

/// The front-end's options from an `[[app]]`'s keys.
pub fn app_options(c: &cairn_config::AppOptions) -> cairn_apps::app::AppOptions {
    use cairn_apps::app::MetadataEncryption as To;
    use cairn_config::MetadataEncryption as From;
    cairn_apps::app::AppOptions {
        with_generated: c.with_generated,
        metadata_export: c.metadata_export.clone(),
        metadata_encryption: match &c.metadata_encryption {
            From::Embedded => To::Embedded,
            From::KeyFile(f) => To::KeyFile(f.clone()),
            From::None => To::None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{trim_one_newline, InlinePassword};

    /// cairn-config checks front-end names, Kestra's metadata export and database URLs
    /// without depending on cairn-apps; it must agree with what cairn-apps reads.
    #[test]
    fn the_config_files_checks_agree_with_the_front_ends() {
        assert_eq!(cairn_config::FRONT_ENDS, cairn_apps::app::APPS);
        for m in [
            "FULL",
            "full",
            "",
            " TENANT ",
            "TENANT:acme",
            "tenant: x",
            "TENANT:",
            "TENANT: ",
            "off",
            "None",
            "no",
            "FALSE",
            "0",
            "HALF",
            "FULL:x",
            "off:x",
            ":",
        ] {
            assert_eq!(
                cairn_config::metadata_export_is_valid(m),
                cairn_apps::app::MetadataExport::parse(m).is_ok(),
                "{m:?}"
            );
        }
        for u in [
            "postgresql://u@h/db",
            "postgres://u:p@h:5432/db?sslmode=require",
            "mariadb://root@127.0.0.1:3306/",
            "mysql://u@h/a/b",
            "postgresql://u@h:99999/db",
            "postgresql://u%FF@h/db",
            "postgresql://u@h/d%FFb",
            "postgresql://[::1/db",
            "ftp://u:hunter2@h/x",
            "MySQL://h/x",
            "/var/data/x.sqlite",
            "x.sqlite",
        ] {
            let config = cairn_config::check_database_url(u);
            let apps = cairn_apps::db::Database::parse(u);
            match (&config, &apps) {
                (
                    Ok(cairn_config::DatabaseUrl::NotAUrl),
                    Ok(cairn_apps::db::Database::Sqlite(_)),
                )
                | (Ok(cairn_config::DatabaseUrl::Server), Ok(_)) => {}
                (Err(c), Err(a)) => assert_eq!(c, &a.to_string(), "{u}"),
                _ => panic!(
                    "{u}: cairn-config says {config:?}, cairn-apps {:?}",
                    apps.is_ok()
                ),
            }
        }
    }
    use clap::Parser;

    const CONFIGURED: &str = "[repository]\nurl = \"/conf/repo\"\npassword-file = \"/conf/pw\"\n\
                              cache-dir = \"/conf/cache\"\n";

    /// Settings from command-line flags, environment variables and config file text.
    fn resolved(flags: &[&str], env: &[(&str, &str)], config: &str) -> Settings {
        let mut argv = vec!["cairn"];
        argv.extend_from_slice(flags);
        argv.push("snapshots");
        let cli = crate::args::Cli::try_parse_from(argv).unwrap();
        let config = cairn_config::parse(config, std::path::Path::new("/c.toml"), false).unwrap();
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
                .filter(|v| !v.is_empty())
        };
        let password_set = env.iter().any(|(k, _)| *k == "CAIRN_PASSWORD");
        Settings::resolve_with(cli.global, &lookup, password_set, config).unwrap()
    }

    #[test]
    fn precedence_is_flags_then_environment_then_config_then_defaults() {
        use PasswordSource::{Command as Cmd, Env, File, Inline, Prompt};
        let default_cache = cairn_catalog::default_cache_dir();
        let file = |p: &str| File(PathBuf::from(p));
        let home = ("HOME", "/home/ann");
        // (case, flags, environment, config file, repository, password, cache dir)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Vec<&str>,
            Vec<(&str, &str)>,
            &str,
            &str,
            PasswordSource,
            Option<PathBuf>,
        )> = vec![
            (
                "defaults",
                vec![],
                vec![home],
                "",
                "/home/ann/.local/share/cairn/repository",
                Prompt,
                default_cache.clone(),
            ),
            (
                "defaults under XDG_DATA_HOME",
                vec![],
                vec![home, ("XDG_DATA_HOME", "/data")],
                "",
                "/data/cairn/repository",
                Prompt,
                default_cache.clone(),
            ),
            (
                "config file over defaults",
                vec![],
                vec![home],
                CONFIGURED,
                "/conf/repo",
                file("/conf/pw"),
                Some("/conf/cache".into()),
            ),
            (
                "environment over config file",
                vec![],
                vec![
                    ("CAIRN_REPOSITORY", "/env/repo"),
                    ("CAIRN_PASSWORD_FILE", "/env/pw"),
                    ("CAIRN_CACHE_DIR", "/env/cache"),
                ],
                CONFIGURED,
                "/env/repo",
                file("/env/pw"),
                Some("/env/cache".into()),
            ),
            (
                "CAIRN_PASSWORD_COMMAND over a configured password file",
                vec![],
                vec![("CAIRN_PASSWORD_COMMAND", "pass cairn")],
                CONFIGURED,
                "/conf/repo",
                Cmd("pass cairn".into()),
                Some("/conf/cache".into()),
            ),
            (
                "CAIRN_PASSWORD, even empty, over a configured password file",
                vec![],
                vec![("CAIRN_PASSWORD", "")],
                CONFIGURED,
                "/conf/repo",
                Env,
                Some("/conf/cache".into()),
            ),
            (
                "an empty variable counts as unset",
                vec![],
                vec![("CAIRN_REPOSITORY", ""), ("CAIRN_PASSWORD_FILE", "")],
                CONFIGURED,
                "/conf/repo",
                file("/conf/pw"),
                Some("/conf/cache".into()),
            ),
            (
                "flags over environment and config file",
                vec![
                    "-r",
                    "/flag/repo",
                    "--password-command",
                    "echo pw",
                    "--cache-dir",
                    "/flag/cache",
                ],
                vec![
                    ("CAIRN_REPOSITORY", "/env/repo"),
                    ("CAIRN_PASSWORD_FILE", "/env/pw"),
                    ("CAIRN_CACHE_DIR", "/env/cache"),
                ],
                CONFIGURED,
                "/flag/repo",
                Cmd("echo pw".into()),
                Some("/flag/cache".into()),
            ),
            (
                "each setting apart: -r keeps the configured password",
                vec!["-r", "/flag/repo"],
                vec![],
                CONFIGURED,
                "/flag/repo",
                file("/conf/pw"),
                Some("/conf/cache".into()),
            ),
            (
                "--password-file over CAIRN_PASSWORD_COMMAND",
                vec!["--password-file", "/flag/pw"],
                vec![("CAIRN_PASSWORD_COMMAND", "pass cairn")],
                CONFIGURED,
                "/conf/repo",
                file("/flag/pw"),
                Some("/conf/cache".into()),
            ),
            (
                "--no-cache over a configured cache dir",
                vec!["--no-cache"],
                vec![("CAIRN_CACHE_DIR", "/env/cache")],
                CONFIGURED,
                "/conf/repo",
                file("/conf/pw"),
                None,
            ),
            (
                "an inline password from the config file",
                vec![],
                vec![home],
                "[repository]\npassword = \"s3cret\"\n",
                "/home/ann/.local/share/cairn/repository",
                Inline(InlinePassword::new("s3cret".into())),
                default_cache.clone(),
            ),
        ];
        for (case, flags, env, config, repo, password, cache) in cases {
            let s = resolved(&flags, &env, config);
            assert_eq!(s.repo, repo, "{case}: repository");
            assert_eq!(s.password, password, "{case}: password");
            assert_eq!(s.cache_dir, cache, "{case}: cache dir");
        }
    }

    #[test]
    fn a_configured_repository_is_named_with_r() {
        let config = "[repository]\nname = \"local\"\nurl = \"/srv/local\"\npassword-file = \"/pw/local\"\n\
                      [[offsite]]\nname = \"cloud\"\nurl = \"s3://b/p\"\npassword-command = \"pass cloud\"\n\
                      s3-region = \"eu-1\"\ns3-secret-access-key = \"k\"\n";
        let s = resolved(&["-r", "cloud"], &[], config);
        assert_eq!(s.repo, "s3://b/p");
        assert_eq!(s.password, PasswordSource::Command("pass cloud".into()));
        assert_eq!(s.remote.s3_region.as_deref(), Some("eu-1"));
        assert_eq!(
            s.remote_options()
                .unwrap()
                .s3_secret_access_key
                .unwrap()
                .expose(),
            "k"
        );
        let s = resolved(&[], &[("CAIRN_REPOSITORY", "local")], config);
        assert_eq!(s.repo, "/srv/local");
        assert_eq!(s.password, PasswordSource::File("/pw/local".into()));
        // A flag's password still wins; a path is a path.
        let s = resolved(&["-r", "cloud", "--password-file", "/pw/flag"], &[], config);
        assert_eq!(s.password, PasswordSource::File("/pw/flag".into()));
        let s = resolved(&["-r", "./cloud"], &[], config);
        assert_eq!(s.repo, "./cloud");
        assert_eq!(s.password, PasswordSource::File("/pw/local".into()));
    }

    #[test]
    fn remote_options_come_from_the_config_file_and_the_environment_overrides() {
        let config = "[repository]\nurl = \"s3://b/p\"\ns3-endpoint = \"http://conf:9000\"\n\
                      s3-region = \"conf-region\"\ns3-access-key-id = \"conf-key\"\n\
                      s3-secret-access-key = \"conf-secret\"\nsftp-known-hosts = \"/conf/kh\"\n";
        let s = resolved(&[], &[("AWS_REGION", "env-region")], config);
        let o = s.remote_options().unwrap();
        assert_eq!(o.s3_endpoint.as_deref(), Some("http://conf:9000"));
        assert_eq!(o.s3_region.as_deref(), Some("env-region"));
        assert_eq!(o.s3_access_key_id.as_deref(), Some("conf-key"));
        assert_eq!(o.s3_secret_access_key.unwrap().expose(), "conf-secret");
        assert_eq!(o.sftp_known_hosts, Some(PathBuf::from("/conf/kh")));
        let s = resolved(
            &[],
            &[
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("CAIRN_SFTP_KNOWN_HOSTS", "/env/kh"),
            ],
            config,
        );
        let o = s.remote_options().unwrap();
        assert_eq!(o.s3_secret_access_key.unwrap().expose(), "env-secret");
        assert_eq!(o.sftp_known_hosts, Some(PathBuf::from("/env/kh")));
    }

    #[test]
    fn no_repository_anywhere_is_a_clear_error() {
        let cli = crate::args::Cli::try_parse_from(["cairn", "snapshots"]).unwrap();
        let e =
            Settings::resolve_with(cli.global, &|_| None, false, Config::default()).unwrap_err();
        assert!(e.to_string().contains("[repository] url"), "{e}");
    }

    #[test]
    fn an_inline_password_is_read_and_never_printed() {
        let src = PasswordSource::Inline(InlinePassword::new("s3cret".into()));
        assert_eq!(format!("{src:?}"), "Inline([redacted])");
        let pw = read_password(&src, false, "x").unwrap();
        assert_eq!(pw.as_bytes(), b"s3cret");
    }

    #[test]
    fn trims_exactly_one_newline() {
        assert_eq!(trim_one_newline(b"pw\n".to_vec()), b"pw");
        assert_eq!(trim_one_newline(b"pw\r\n".to_vec()), b"pw");
        assert_eq!(trim_one_newline(b"pw\n\n".to_vec()), b"pw\n");
        assert_eq!(trim_one_newline(b" pw ".to_vec()), b" pw ");
    }
}
