use crate::output::{bytes, duration};
use crate::progress::Bar;
use crate::requests::BackupRequest;
use crate::settings::Settings;
use anyhow::{bail, Result};
use cairn_apps::db::{Database, MariaDb, Postgres, Sqlite};
use cairn_core::{BackupOptions, Excludes, ParentChoice, Progress, StreamSource};

pub fn run(s: &Settings, a: BackupRequest) -> Result<u8> {
    // Before anything runs or is written: a password in a URL is refused as the config
    // file refuses it.
    let configured = "database-password-file or database-password-command of a [[source]]";
    for (flag, urls) in [("--postgres", &a.postgres), ("--mariadb", &a.mariadb)] {
        for url in urls {
            cairn_config::refuse_url_password(flag, url, configured)?;
        }
    }
    let mut excludes = a.exclude;
    for f in &a.exclude_file {
        excludes.extend(Excludes::read_file(f)?);
    }
    excludes.extend(super::own_directories(s));
    let mut streams = Vec::new();
    if let Some(name) = a.stdin_name {
        streams.push(StreamSource::Reader {
            name,
            reader: Box::new(std::io::stdin()),
        });
    }
    if let Some(name) = a.stdin_from_command {
        let mut cmd = a.command.into_iter();
        let Some(program) = cmd.next() else {
            bail!("--stdin-from-command needs a command after `--`");
        };
        streams.push(StreamSource::Command {
            name,
            program,
            args: cmd.collect(),
            env: Vec::new(),
            observe: None,
        });
    } else if !a.command.is_empty() {
        bail!("a command after `--` needs --stdin-from-command NAME");
    }
    // Databases: each reached (and its versions asked) before anything is stored.
    let wrapper = a
        .db_wrapper
        .as_deref()
        .map(cairn_apps::db::Wrapper::parse)
        .unwrap_or_default();
    let pg_format = a.postgres_format;
    let mut databases = Vec::new();
    for url in &a.postgres {
        let pg = Postgres::from_url(url)?.with_format(pg_format);
        databases.push(Database::Postgres(pg).with_wrapper(wrapper.clone()));
    }
    for url in &a.mariadb {
        databases.push(Database::MariaDb(MariaDb::from_url(url)?).with_wrapper(wrapper.clone()));
    }
    for path in &a.sqlite {
        databases.push(Database::Sqlite(Sqlite::new(path)));
    }
    let mut dumps = Vec::new();
    for db in &databases {
        let (stream, info) = db.dump()?;
        streams.push(stream);
        dumps.push(info);
    }
    let manifest = (!dumps.is_empty()).then(|| serde_json::json!({ "databases": dumps }));
    if a.paths.is_empty() && streams.is_empty() {
        bail!(
            "nothing to back up: give paths, --stdin-name, --stdin-from-command, --postgres, \
             --mariadb or --sqlite"
        );
    }
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "backup")?;
    let opts = BackupOptions {
        paths: a.paths,
        streams,
        excludes,
        exclude_caches: a.exclude_caches,
        one_file_system: a.one_file_system,
        tags: a.tag.into_iter().filter(|t| !t.is_empty()).collect(),
        hostname: a.host,
        parent: match a.parent {
            Some(p) => ParentChoice::Snapshot(p),
            None => ParentChoice::Auto,
        },
        force: a.force,
        threads: a.threads,
        app: None,
        manifest,
        finish_manifest: None,
    };
    let bar = Bar::new(s.progress, None);
    let (scan_paths, scan_excludes, one_fs) = (
        opts.paths.clone(),
        opts.excludes.clone(),
        opts.one_file_system,
    );
    let result = std::thread::scope(|sc| {
        if s.progress && !scan_paths.is_empty() {
            // Count what is to be read beside the backup, for the ETA.
            let bar = &bar;
            sc.spawn(move || {
                let (files, bytes) = cairn_core::scan(&scan_paths, &scan_excludes, one_fs);
                bar.total(files, bytes);
            });
        }
        cairn_core::backup(&repo, opts, &bar)
    });
    bar.finish();
    report(s, &result?)
}

/// Prints what a backup did (a summary, or JSON) and returns its exit code.
pub fn report(s: &Settings, r: &cairn_core::BackupResult) -> Result<u8> {
    let sum = r.snapshot.summary.clone().unwrap_or_default();
    if s.json {
        super::print_json(&serde_json::json!({
            "snapshot": r.id.to_hex(),
            "summary": sum,
            "warnings": r.warnings,
        }))?;
    } else if s.show_summary() {
        println!(
            "files: {} new, {} changed, {} unchanged; {} dirs, {} other",
            sum.files_new, sum.files_changed, sum.files_unchanged, sum.dirs, sum.others
        );
        println!(
            "read {} of {}; added {} ({} stored) in {} blob(s), {} pack(s)",
            bytes(sum.bytes_read),
            bytes(sum.bytes_total),
            bytes(sum.added.bytes_raw),
            bytes(sum.added.bytes_stored),
            sum.added.data_blobs + sum.added.tree_blobs,
            sum.added.packs
        );
        for st in &sum.streams {
            println!(
                "stream {}: {} in {}",
                st.name,
                bytes(st.bytes),
                duration(st.duration_secs)
            );
        }
        println!(
            "snapshot {} saved in {}",
            r.id.short(),
            duration(sum.duration_secs)
        );
    }
    if sum.unreadable > 0 {
        eprintln!(
            "cairn: snapshot {} saved, but {} file(s) could not be read",
            r.id.short(),
            sum.unreadable
        );
        return Ok(crate::exit::PARTIAL);
    }
    Ok(crate::exit::OK)
}
