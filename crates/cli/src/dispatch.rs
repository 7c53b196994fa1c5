//! From the parsed command line to a command: parse → convert (`crate::requests`) →
//! call (`crate::commands`) → the exit code. The only place besides `requests.rs` and
//! `settings.rs` that sees clap's types.

use crate::args::{
    AppCommand, CatalogCommand, Cli, Command, ConfigCommand, KeyCommand, RepairCommand,
};
use crate::commands::{
    app, backup, catalog, config, copy, export, init, inspect, key, maintain, mount, read, restore,
    run, schedule, status,
};
use crate::settings::Settings;
use anyhow::Result;

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    // `config check` reports a broken config file instead of failing on it, so it runs
    // before the settings (which need a sound one) are resolved; completions need no
    // settings at all.
    let command = match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into memory first: the generator panics when its writer fails (a closed
            // pipe); writing the result ourselves turns that into an error.
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut crate::args::Cli::command(),
                "cairn",
                &mut script,
            );
            std::io::stdout().write_all(&script)?;
            return Ok(crate::exit::OK);
        }
        Command::Man { dir } => return manual(dir),
        Command::Config(ConfigCommand::Check) => {
            let location = cairn_config::locate(cli.global.config, &crate::settings::env_var);
            return config::check(&location, cli.global.json);
        }
        other => other,
    };
    let mut s = Settings::resolve(cli.global)?;
    s.put_only_allowed = put_only_may_run(&command);
    let result = run_command(&s, command);
    crate::commands::report_retries(&s);
    result
}

/// `cairn man`: the manual page on standard output, or every page into `dir`.
fn manual(dir: Option<std::path::PathBuf>) -> Result<u8> {
    use clap::CommandFactory;
    use std::io::Write;
    let cmd = crate::args::Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(cmd, &dir)?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
        }
    }
    Ok(crate::exit::OK)
}

/// Whether the command may run with a put-only key: it only adds backups (or changes
/// that key's own password). Every other command is refused before it reads anything.
fn put_only_may_run(command: &Command) -> bool {
    matches!(
        command,
        Command::Backup(_)
            | Command::App(AppCommand::Backup(_))
            | Command::Key(KeyCommand::List | KeyCommand::Passwd(_))
    )
}

fn run_command(s: &Settings, command: Command) -> Result<u8> {
    match command {
        Command::Init(a) => init::run(s, a.into()),
        Command::Copy(a) => copy::run(s, a.into()),
        Command::Export(a) => export::export(s, a.into()),
        Command::Import(a) => export::import(s, a.into()),
        Command::Status => status::run(s),
        Command::Run(a) => run::run(s, a.job, a.random_delay, a.dry_run),
        Command::Schedule(c) => schedule::run(s, schedule_request(c)),
        Command::Backup(a) => backup::run(s, a.into()),
        Command::Snapshots(a) => read::snapshots(s, a.host, a.tag),
        Command::Ls(a) => read::ls(s, &a.snapshot, &a.select.into(), a.long),
        Command::Dump(a) => {
            let select: crate::requests::Select = a.select.into();
            match (a.archive, a.path) {
                (Some(format), path) => {
                    read::dump_archive(s, &a.snapshot, &select, path.as_deref(), format.into())
                }
                (None, path) => read::dump(s, &a.snapshot, &select, &path.unwrap_or_default()),
            }
        }
        Command::Restore(a) => restore::run(s, a.into()),
        Command::Mount(a) => mount::run(
            s,
            mount::MountOptions {
                mountpoint: a.mountpoint,
                allow_other: a.allow_other,
                host: a.host,
                tag: a.tag,
            },
        ),
        Command::Check(a) => read::check(s, &a.into()),
        Command::Diff(a) => inspect::diff(s, &a.from, &a.to),
        Command::Stats(a) => inspect::stats(s, &a.snapshots),
        Command::Find(a) => inspect::find(s, a.into()),
        Command::Forget(a) => maintain::forget(s, a.try_into()?),
        Command::Prune(a) => maintain::prune(s, a.max_unused, a.dry_run),
        Command::Repair(RepairCommand::Index) => maintain::repair_index(s),
        Command::Repair(RepairCommand::Snapshots { snapshots }) => {
            maintain::repair_snapshots(s, &snapshots)
        }
        Command::Tag(a) => maintain::tag(s, a.into()),
        Command::Key(k) => match k {
            KeyCommand::Add(a) => key::add(s, a.new_password_file, a.put_only),
            KeyCommand::List => key::list(s),
            KeyCommand::Remove { id } => key::remove(s, &id),
            KeyCommand::Passwd(a) => key::passwd(s, a.new_password_file),
            KeyCommand::Rotate {
                remove_other_keys,
                rewrite_data,
            } => key::rotate(s, remove_other_keys, rewrite_data),
        },
        Command::Catalog(CatalogCommand::Rebuild) => catalog::rebuild(s),
        Command::Catalog(CatalogCommand::Info) => catalog::info(s),
        Command::App(AppCommand::List { installs }) => app::list(s, &installs),
        Command::App(AppCommand::Backup(a)) => app::backup(s, a.into()),
        Command::App(AppCommand::Show { snapshot }) => app::show(s, &snapshot),
        Command::App(AppCommand::Snapshots { app, path }) => app::snapshots(s, &app, path),
        Command::App(AppCommand::Restore(a)) => app::restore(s, a.into()),
        Command::App(AppCommand::Verify {
            app,
            snapshot,
            path,
            database,
        }) => app::verify(s, &app, snapshot.as_deref(), path, database),
        Command::Config(ConfigCommand::Check)
        | Command::Completions { .. }
        | Command::Man { .. } => {
            unreachable!("handled before the settings")
        }
    }
}

/// `cairn schedule`'s arguments as a request.
fn schedule_request(c: crate::args::ScheduleCommand) -> schedule::ScheduleRequest {
    use crate::args::{ScheduleCommand, ScheduleWhereArgs};
    let place = |p: ScheduleWhereArgs| cairn_schedule::Where {
        unit_dir: p.unit_dir,
        cron: p.cron,
        cron_file: p.cron_file,
    };
    match c {
        ScheduleCommand::Install(a) => schedule::ScheduleRequest::Install {
            job: a.job,
            place: place(a.place),
            options: cairn_schedule::InstallOptions {
                dry_run: a.dry_run,
                no_enable: a.no_enable,
            },
        },
        ScheduleCommand::List(p) => schedule::ScheduleRequest::List(place(p)),
        ScheduleCommand::Remove { job, place: p } => schedule::ScheduleRequest::Remove {
            job,
            place: place(p),
        },
    }
}
