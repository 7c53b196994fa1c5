//! The command line, as clap sees it. Nothing outside `main.rs`, `dispatch.rs`,
//! `requests.rs` and `settings.rs` uses these types: commands take resolved settings and
//! the plain requests of `requests.rs`.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Environment:
  CAIRN_CONFIG            the config file (default: $XDG_CONFIG_HOME/cairn/config.toml,
                          else ~/.config/cairn/config.toml, else /etc/cairn/config.toml)
  CAIRN_REPOSITORY        repository location (default: ~/.local/share/cairn/repository)
  CAIRN_PASSWORD          the password (prefer one of the two below)
  CAIRN_PASSWORD_FILE     read the password from this file
  CAIRN_PASSWORD_COMMAND  run this command (with sh -c) and use its output as password
  CAIRN_CACHE_DIR         where the local catalogs are (default: ~/.cache/cairn)

Each setting comes from the first of: flags, environment, config file, default
(see docs/config.md).

Exit codes: 0 success, 1 error, 2 wrong usage, 3 backup done but some files could not be
read, 10 no repository at the location, 11 repository locked by another process (after
waiting --retry-lock), 12 wrong password.";

/// Parses a duration such as `90s`, `30m`, `1h`, `2h30m` or `0`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    cairn_config::duration::parse(text)
}

/// Parses a percentage such as `10%` or `10` into a fraction.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!("{text:?} is not a percentage from 0% to 100%")),
    }
}

/// cairn: deduplicating, encrypted backups of files, streams and whole applications.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read this config file (it must exist).
    ///
    /// Read this config file (it must exist) instead of the first found of
    /// $XDG_CONFIG_HOME/cairn/config.toml (or ~/.config/...) and /etc/cairn/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Repository location (a directory path).
    #[arg(short = 'r', long = "repo", global = true, value_name = "REPO")]
    pub repo: Option<String>,

    /// Read the password from this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Get the password from this command's output.
    #[arg(long, global = true, value_name = "COMMAND")]
    pub password_command: Option<String>,

    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print what is done even when not on a terminal.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// How long to wait for a conflicting lock, e.g. 0, 10m, 2h.
    ///
    /// How long to wait when another process holds a conflicting lock (a backup waits for a
    /// running prune, a prune for running backups), e.g. 0, 10m, 2h.
    #[arg(long, global = true, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub retry_lock: std::time::Duration,

    /// Take no lock for commands that read or add.
    ///
    /// Take no lock for commands that read or add (to read a repository on read-only
    /// storage). Prune and repair always lock.
    #[arg(long, global = true)]
    pub no_lock: bool,

    /// Directory of the local catalogs (one per repository; default ~/.cache/cairn).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Use no local catalog: read everything from the repository.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    pub no_cache: bool,

    /// Open the repository with this key file only (or CAIRN_KEY_ID).
    ///
    /// Open the repository with this key file only (a prefix of its name, as `cairn key
    /// list` shows; or CAIRN_KEY_ID). By default every key file is tried.
    #[arg(long, global = true, value_name = "ID")]
    pub key_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    #[command(
        after_help = "Example:\n  CAIRN_PASSWORD_FILE=~/.cairn-pass cairn init -r /srv/backup"
    )]
    Init(InitArgs),
    /// Back up paths and streams into a new snapshot.
    #[command(
        after_help = "Examples:\n  cairn backup ~/Documents /etc --exclude '*.tmp'\n  pg_dump app | cairn backup --stdin-name db/app.sql\n  cairn backup /srv/app --stdin-from-command db/app.dump -- pg_dump -Fc app"
    )]
    Backup(BackupArgs),
    /// List snapshots.
    #[command(after_help = "Example:\n  cairn snapshots --json")]
    Snapshots(SnapshotsArgs),
    /// List files in a snapshot.
    #[command(after_help = "Examples:\n  cairn ls latest\n  cairn ls 1a2b3c4d:/etc --long")]
    Ls(LsArgs),
    /// Write a file of a snapshot to standard output, or a directory as an archive.
    ///
    /// Write one file of a snapshot to standard output, or with --archive a directory (the
    /// whole snapshot by default) as a tar or zip archive.
    ///
    /// Archive entries are named relative to the directory dumped. tar keeps modes, owners,
    /// times (to the nanosecond), symlinks, hard links, devices, FIFOs and extended
    /// attributes; zip keeps modes, times (to two seconds) and symlinks, and stores a hard
    /// link's contents again. File contents stream from the repository: memory does not
    /// grow with their size.
    #[command(
        after_help = "Examples:\n  cairn dump latest /etc/hosts > hosts\n  cairn dump --archive tar latest > snapshot.tar\n  cairn dump --archive zip 1a2b3c4d:/home/ann/Documents > documents.zip\n  cairn dump --archive tar latest:/srv/www | ssh host tar -x -C /srv/www"
    )]
    Dump(DumpArgs),
    /// Restore a snapshot (or a path inside it) into a directory.
    #[command(
        after_help = "Examples:\n  cairn restore latest --target /tmp/restore\n  cairn restore 1a2b3c4d:/home/ann --target /home/ann --include '*.odt'\n  cairn restore --from-export web1.cairn --target /srv/restore --export-password-file pw"
    )]
    Restore(RestoreArgs),
    /// Show the snapshots as a read-only file system (FUSE).
    ///
    /// Show the snapshots as a read-only file system (FUSE) until unmounted or interrupted:
    /// browse them, copy files out, diff them with your own tools.
    ///
    /// Layout: snapshots/<time>_<id>/ (every snapshot, local time), hosts/<host>/,
    /// apps/<app>/ and tags/<tag>/ (links into snapshots/), and a `latest` link in each.
    /// Files are read from the repository as they are read: memory does not grow with their
    /// size. Needs /dev/fuse, and root or the fuse3 package's fusermount3 (see
    /// docs/mount.md).
    #[command(
        after_help = "Examples:\n  mkdir -p /mnt/cairn && cairn mount /mnt/cairn    # Ctrl-C (or fusermount3 -u /mnt/cairn) to unmount\n  cairn mount /mnt/cairn --host web1 &\n  cp /mnt/cairn/snapshots/latest/etc/hosts /tmp/\n  diff -r /mnt/cairn/hosts/web1/latest/etc /etc"
    )]
    Mount(MountArgs),
    /// Copy snapshots from another repository into this one (an offsite copy).
    ///
    /// Copy snapshots from another repository into this one (an offsite copy): only what
    /// this repository lacks is read and stored, encrypted with this repository's keys.
    /// Snapshots copied before are skipped, so an interrupted copy run again finishes the
    /// work.
    ///
    /// A repository made with `init --copy-params-from` names and cuts blobs as its source
    /// does: copies then move only missing blobs and keep dumps stored as deltas. Into any
    /// other repository every file is read and cut again, which costs more; the summary
    /// says so.
    #[command(
        after_help = "Examples:\n  cairn copy -r usb --from-repo local    # configured repositories, by name\n  cairn -r /mnt/offsite copy --from-repo ~/.local/share/cairn/repository --from-password-file ~/.cairn-pw\n  cairn -r /mnt/offsite init --copy-params-from ~/.local/share/cairn/repository --from-password-file ~/.cairn-pw"
    )]
    Copy(CopyArgs),
    /// Write one snapshot into a self-contained, encrypted export file.
    ///
    /// Write one snapshot into one self-contained, encrypted file that opens with its own
    /// password (see docs/exports.md).
    ///
    /// The export password comes from --export-password-file, --export-password-command,
    /// CAIRN_EXPORT_PASSWORD_FILE, CAIRN_EXPORT_PASSWORD_COMMAND, CAIRN_EXPORT_PASSWORD,
    /// else a prompt. Read it back with `cairn import FILE` (into a repository), `cairn
    /// restore --from-export FILE --target DIR` (no repository needed) or `cairn import
    /// FILE --list`.
    #[command(
        after_help = "Examples:\n  cairn export latest --output /media/usb/web1.cairn --export-password-file ~/.export-pw\n  cairn export 1a2b3c4d -o ann.cairn     # asks for the export password twice"
    )]
    Export(ExportArgs),
    /// Copy the snapshot of an export into this repository, or list what it holds.
    ///
    /// Copy the snapshot of an export into this repository (what it already holds is not
    /// stored again), or with --list show what the export holds.
    ///
    /// A snapshot imported before is skipped, so importing twice stores nothing new.
    #[command(
        after_help = "Examples:\n  cairn import /media/usb/web1.cairn --export-password-file ~/.export-pw\n  cairn import web1.cairn --list     # host, time, paths, tags, app, size; no repository needed"
    )]
    Import(ImportArgs),
    /// Where each recent snapshot is kept, and what falls short of [copies].
    ///
    /// Where each recent snapshot is kept: for every host and application (or set of
    /// paths), which of the configured repositories ([repository] and each [[offsite]])
    /// hold its newest snapshots, how old the newest offsite copy is, and what falls short
    /// of [copies] in the config file. Exits 1 when anything does.
    #[command(after_help = "Example:\n  cairn status --json")]
    Status,
    /// Verify the repository's structure, and with --read-data every stored byte.
    #[command(after_help = "Example:\n  cairn check --read-data")]
    Check(CheckArgs),
    /// Show what changed between two snapshots: added, removed, changed, metadata only.
    ///
    /// Marks: + added, - removed, M contents changed, U metadata only (mode, owner,
    /// modification time, extended attributes, link target), T type changed. An added or
    /// removed directory is one line ending in `/`.
    #[command(
        after_help = "Examples:\n  cairn diff 1a2b3c4d latest\n  cairn diff 1a2b3c4d 5e6f7a8b --json"
    )]
    Diff(DiffArgs),
    /// Show restore size, deduplicated size and compression, per snapshot and in total.
    ///
    /// Without snapshots, all snapshots are measured. The total counts each blob once,
    /// however many snapshots use it: the space they take together.
    #[command(after_help = "Examples:\n  cairn stats\n  cairn stats latest 1a2b3c4d --json")]
    Stats(StatsArgs),
    /// Remove snapshots by retention rules (or by id), optionally pruning afterwards.
    #[command(
        after_help = "Examples:\n  cairn forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run\n  cairn forget --keep-last 30 --keep-tag release --prune\n  cairn forget 1a2b3c4d\n\nA snapshot tagged `protected` is always kept. Times are grouped into hours, days,\nweeks (ISO), months and years in the local time zone."
    )]
    Forget(ForgetArgs),
    /// Delete data no snapshot uses and repack packs that are mostly unused.
    #[command(after_help = "Examples:\n  cairn prune --dry-run\n  cairn prune --max-unused 5%")]
    Prune(PruneArgs),
    /// Find entries by name in all snapshots (or some).
    ///
    /// The pattern is a glob matched against entry names (not paths).
    #[command(
        after_help = "Examples:\n  cairn find '*.conf'\n  cairn find 'id_rsa*' --host web1 --json"
    )]
    Find(FindArgs),
    /// Rebuild what can be rebuilt from what is stored.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Change the tags of snapshots (`--set protected` keeps a snapshot from forget).
    #[command(
        after_help = "Examples:\n  cairn tag latest --add release\n  cairn tag 1a2b3c4d --set protected"
    )]
    Tag(TagArgs),
    /// Manage the keys (passwords) of the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The local catalog: a cache of the repository's snapshots and trees.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Applications (Kimai, ...): their files and databases in one snapshot.
    #[command(subcommand)]
    App(AppCommand),
    /// The config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a job of the config file: backups, forget, copies, prune, check, report.
    ///
    /// Run a job of the config file: back up its apps and sources, forget by [retention],
    /// copy to each offsite repository, prune and check when due, then report (log lines, a
    /// summary, pings, metrics). A failed step does not stop the steps that do not need it;
    /// the exit code is 1 when any failed.
    ///
    /// Each step is a cairn command run with the same config file; the log shows its
    /// command line, so a failed step can be run again by hand. Exit codes: 0 every step
    /// succeeded, 3 a backup could not read some files, 1 a step failed.
    #[command(
        after_help = "Examples:\n  cairn run                 # the only job (or `nightly`, the job of a file without [[job]])\n  cairn run nightly --dry-run\n  cairn run nightly --random-delay 1h   # from cron: start within the next hour"
    )]
    Run(RunArgs),
    /// Install, list or remove the timers that run jobs (systemd or cron).
    ///
    /// Install, list or remove the timers that run jobs (systemd units, or a cron entry
    /// where systemd is absent).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  cairn completions bash > /etc/bash_completion.d/cairn\n  \
        cairn completions zsh > \"${fpath[1]}/_cairn\"\n  \
        cairn completions fish > ~/.config/fish/completions/cairn.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or with --dir write one page per command.
    #[command(
        after_help = "Examples:\n  cairn man | man -l -\n  cairn man --dir /usr/local/share/man/man1 && mandb -q"
    )]
    Man {
        /// Write cairn.1 and a page for every command into this directory.
        ///
        /// Write cairn.1 and a page for every command (cairn-backup.1, cairn-key-add.1,
        /// ...) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job (a [[job]] name); default: the only one.
    pub job: Option<String>,
    /// Wait a random time up to this long first, e.g. 30m.
    ///
    /// Wait a random time up to this long first (for cron, which has no randomized delay of
    /// its own), e.g. 30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub random_delay: Option<std::time::Duration>,
    /// Print the backup commands the job would run; run nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write and enable the timer of a job (systemd units, or a cron entry).
    ///
    /// Write and enable a systemd service and timer for a job (`cairn-JOB.service`,
    /// `cairn-JOB.timer`: the job's schedule, its randomized delay, persistent), or a cron
    /// entry where systemd is not running.
    ///
    /// As root the units go to /etc/systemd/system (cron: /etc/cron.d/cairn-JOB); as
    /// another user to ~/.config/systemd/user (cron: the user's crontab).
    #[command(
        after_help = "Examples:\n  cairn schedule install              # the only job\n  cairn schedule install nightly --dry-run\n  cairn schedule install nightly --cron\n  cairn schedule install nightly --unit-dir /tmp/units --no-enable"
    )]
    Install(ScheduleInstallArgs),
    /// List the jobs' timers cairn installed, with their schedules.
    #[command(
        after_help = "Examples:\n  cairn schedule list\n  cairn schedule list --cron --json"
    )]
    List(ScheduleWhereArgs),
    /// Disable and remove the timer of a job.
    #[command(
        after_help = "Examples:\n  cairn schedule remove nightly\n  cairn schedule remove nightly --cron"
    )]
    Remove {
        /// The job; default: the only one.
        job: Option<String>,
        #[command(flatten)]
        place: ScheduleWhereArgs,
    },
}

#[derive(Debug, Args)]
pub struct ScheduleInstallArgs {
    /// The job; default: the only one.
    pub job: Option<String>,
    #[command(flatten)]
    pub place: ScheduleWhereArgs,
    /// Write the units but do not reload systemd nor enable the timer.
    #[arg(long)]
    pub no_enable: bool,
    /// Print what would be written; write nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleWhereArgs {
    /// Use cron even where systemd runs.
    #[arg(long)]
    pub cron: bool,
    /// The directory of the systemd units.
    ///
    /// The directory of the systemd units (default: /etc/systemd/system as root, else
    /// ~/.config/systemd/user).
    #[arg(long, value_name = "DIR", conflicts_with = "cron")]
    pub unit_dir: Option<PathBuf>,
    /// The cron file to write.
    ///
    /// The cron file to write (default: /etc/cron.d/cairn-JOB as root, else the user's
    /// crontab).
    #[arg(long, value_name = "FILE", requires = "cron")]
    pub cron_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read and check the config file; print what it found, or every error.
    ///
    /// Read and check the config file: unknown keys, types, app kinds, absolute paths,
    /// unique names, one password source per table, readable password files. Prints what it
    /// found, or every error with file:line:column; exit code 0 or 1.
    #[command(
        after_help = "Examples:\n  cairn config check\n  cairn config check --config /etc/cairn/config.toml --json"
    )]
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// The known front-ends, and what each installation would back up.
    ///
    /// The known front-ends, and for each installation given (or, without any, each one
    /// configured in the config file, then each found where they usually are) what would be
    /// backed up and whether its databases answer.
    #[command(
        after_help = "Examples:\n  cairn app list\n  cairn app list kimai=/var/www/kimai\n  cairn app list kimai   # a configured installation"
    )]
    List {
        /// Installations to look at, as KIND=DIR or a configured NAME.
        installs: Vec<String>,
    },
    /// Back up an installation: its databases first, then its files, one snapshot.
    ///
    /// A flag replaces the configured value of its key (lists too: --before replaces the
    /// configured before-hooks). After-hooks run whatever happens, each even if an earlier
    /// one failed. A dump that fails commits no snapshot.
    #[command(
        after_help = "Examples:\n  cairn app backup kimai           # configured in the config file ([[app]] name = \"kimai\")\n  cairn app backup kimai --path /var/www/kimai\n  cairn app backup kimai --path /var/www/kimai --before 'systemctl stop php-fpm' --after 'systemctl start php-fpm'"
    )]
    Backup(AppBackupArgs),
    /// Restore an application snapshot: files, databases, then a health check.
    ///
    /// Restore an application snapshot: files, then each database into an empty database (a
    /// restore point first if it must replace one), then a health check.
    ///
    /// What will happen, and any difference between the snapshot's version and the
    /// installed one, is shown before anything is changed. A restore is one transaction:
    /// first a restore point (a snapshot tagged restore-point) of every path and database
    /// it will replace, read back before it is trusted; if any step fails, every database
    /// and path is put back as it was. A database that holds tables is replaced only with
    /// --replace-existing. A restore cut short (killed, power lost) is found by the next
    /// `cairn app` command: --rollback puts everything back, --finish completes it.
    #[command(
        after_help = "Examples:\n  cairn app restore kimai\n  cairn app restore kimai 1a2b3c4d --target /var/www/kimai --database kimai_restored\n  cairn app restore kimai --replace-existing\n  cairn app restore kimai --rollback"
    )]
    Restore(AppRestoreArgs),
    /// Check an application snapshot's dumps by loading them into scratch databases.
    ///
    /// Load the dumps of an application snapshot into scratch databases and compare their
    /// tables and row counts with the manifest; nothing else is touched.
    #[command(after_help = "Example:\n  cairn app verify kimai latest --path /var/www/kimai")]
    Verify {
        /// A configured installation's name, or a front-end.
        app: String,
        /// `latest` (default: the newest snapshot of the app) or an id prefix.
        snapshot: Option<String>,
        /// The installation whose configuration names the database server.
        ///
        /// The installation whose configuration names the database server (default: the
        /// configured one, else where the snapshot was taken).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// The server to load into, as a URL (instead of the installation's).
        #[arg(long, value_name = "URL")]
        database: Option<String>,
    },
    /// List an application's snapshots with their versions.
    ///
    /// List an application's snapshots, each with its version and whether it matches the
    /// installed one (match / different / unknown).
    #[command(after_help = "Example:\n  cairn app snapshots immich --path /opt/immich")]
    Snapshots {
        /// A configured installation's name, or a front-end.
        app: String,
        /// The installation to compare versions with.
        ///
        /// The installation to compare versions with (default: the configured one, else
        /// where each snapshot was taken).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
    },
    /// Show the manifest of an application snapshot.
    #[command(after_help = "Example:\n  cairn app show latest")]
    Show {
        /// `latest` (the newest application snapshot) or an id prefix.
        snapshot: String,
    },
}

#[derive(Debug, Args)]
pub struct AppRestoreArgs {
    /// A configured installation's name, or a front-end.
    pub app: String,
    /// `latest` (default: the newest snapshot of the app) or an id prefix.
    pub snapshot: Option<String>,
    /// Where the installation goes (default: the configured path, else where it was).
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Choose among the readable snapshots even when a damaged one might be the newest.
    #[arg(long)]
    pub skip_damaged: bool,
    /// Restore the database into this one: a name on the same server, or a URL.
    #[arg(long, value_name = "NAME_OR_URL")]
    pub database: Option<String>,
    /// Replace a database that holds tables (a restore point is taken first).
    #[arg(long)]
    pub replace_existing: bool,
    /// Go on although the installed version differs from the snapshot's.
    #[arg(long)]
    pub ignore_version: bool,
    /// Restore the files only.
    #[arg(long, conflicts_with = "databases_only")]
    pub files_only: bool,
    /// Restore the databases only.
    #[arg(long)]
    pub databases_only: bool,
    /// Say what would happen; change nothing.
    ///
    /// Say what would happen (versions, where each database goes and what is there now);
    /// change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Put back everything a restore that was cut short touched.
    ///
    /// A restore of this installation was cut short (killed, power lost): put back every
    /// database and path it touched as its restore point holds them.
    #[arg(long, conflicts_with_all = ["snapshot", "finish", "dry_run"])]
    pub rollback: bool,
    /// Complete a restore that was cut short.
    ///
    /// A restore of this installation was cut short: complete it (the same snapshot; its
    /// restore point already holds what was there before).
    #[arg(long, conflicts_with_all = ["snapshot", "dry_run"])]
    pub finish: bool,
    /// Restore the system configuration the snapshot holds too.
    ///
    /// Restore the system configuration the snapshot holds too (files under /etc, e.g.
    /// i-doit's Apache, PHP and MariaDB files), in the same transaction.
    #[arg(long)]
    pub system_config: bool,
    /// Restore in the vendor's stages (Kimai): `core`, then `rest`.
    ///
    /// Restore in the vendor's stages (Kimai): `core` (the databases and the files, less
    /// plugins, invoice templates and local.yaml), check that it works, then `rest`.
    #[arg(long, value_enum, conflicts_with_all = ["files_only", "databases_only", "rollback", "finish"])]
    pub stage: Option<StageArg>,
    /// Run this shell command before the first change (repeatable).
    ///
    /// Run this shell command before the first change (repeatable), e.g. to stop the app
    /// (default: the configured installation's before-hooks, as for a backup).
    #[arg(long, value_name = "COMMAND")]
    pub before: Vec<String>,
    /// Run this shell command at the end, whatever happened (repeatable).
    ///
    /// Run this shell command at the end, whatever happened (repeatable), e.g. to start the
    /// app again (default: the configured installation's after-hooks).
    #[arg(long, value_name = "COMMAND")]
    pub after: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AppBackupArgs {
    /// A configured installation's name, or a front-end: kimai, immich, kestra, idoit.
    pub app: String,
    /// The installation directory (default: the configured one).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Run this shell command before the backup (repeatable), e.g. to stop the app.
    #[arg(long, value_name = "COMMAND")]
    pub before: Vec<String>,
    /// Run this shell command after the backup, whatever happened (repeatable).
    #[arg(long, value_name = "COMMAND")]
    pub after: Vec<String>,
    /// Add a tag (repeatable; the app's name is always one).
    #[arg(long, value_delimiter = ',')]
    pub tag: Vec<String>,
    /// Run the dump tools through this command, e.g. 'docker exec db' (split at spaces).
    #[arg(long, value_name = "COMMAND")]
    pub db_wrapper: Option<String>,
    /// Also back up what the application can generate again.
    ///
    /// Also back up what the application can generate again (Immich's thumbnails, encoded
    /// videos and its own database dumps).
    #[arg(long)]
    pub with_generated: bool,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Delete the local catalog and fill a new one from the repository.
    ///
    /// Delete the local catalog and fill a new one from the repository: every snapshot and
    /// every tree of every snapshot.
    #[command(after_help = "Example:\n  cairn catalog rebuild")]
    Rebuild,
    /// Show where the catalog is and what it holds.
    #[command(after_help = "Example:\n  cairn catalog info --json")]
    Info,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to remove by id prefix (instead of, or besides, the rules).
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Show what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run prune afterwards.
    #[arg(long)]
    pub prune: bool,
    /// With --prune: see `cairn prune --help`.
    #[arg(long, default_value = "10%", value_name = "PERCENT", value_parser = parse_percent)]
    pub max_unused: f64,
}

/// The retention rules, as `forget` takes them; [`RetentionArgs::policy`] turns them
/// into cairn-core's [`cairn_core::Policy`], the one type of the rules (the config
/// file's `[retention]` deserializes into it too).
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N latest hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N latest days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N latest weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N latest months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N latest years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot newer than this, e.g. 14d, 1y6m, 2w.
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// Apply the rules per group: any of host, paths, tags, app, comma-separated, or none.
    #[arg(long, default_value = "host,paths", value_name = "FIELDS")]
    pub group_by: String,
}

impl RetentionArgs {
    /// The policy these flags give. The duration and the grouping are parsed here
    /// rather than by clap, so that a bad one is cairn's error (exit code 1), as it
    /// always was.
    pub fn policy(&self) -> anyhow::Result<cairn_core::Policy> {
        Ok(cairn_core::Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self
                .keep_within
                .as_deref()
                .map(cairn_core::Policy::parse_duration)
                .transpose()?,
            keep_tags: self.keep_tag.clone(),
            group_by: self.group_by.parse()?,
        })
    }
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Repack a pack when more than this share of it is unused.
    ///
    /// Repack a pack when more than this share of it is unused (lower: more space
    /// reclaimed, more data rewritten).
    #[arg(long, default_value = "10%", value_name = "PERCENT", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Show what would be deleted and repacked; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Snapshots (`latest` or id prefixes).
    #[arg(required = true)]
    pub snapshots: Vec<String>,
    /// Add this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub add: Vec<String>,
    /// Remove this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub remove: Vec<String>,
    /// Replace all tags by these (repeatable).
    #[arg(long, value_name = "TAG", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// zstd compression level for new data (0 = none).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression: i32,
    /// Repository format version to create (1 to the newest; default the newest).
    ///
    /// Repository format version to create. The newest (3) stores the small files of a
    /// directory in shared chunks; 2 makes a repository that cairn versions from before
    /// that can still use (see docs/format.md, "Versioning").
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=cairn_core::REPO_VERSION as i64))]
    pub repository_version: Option<u32>,
    /// Name and cut blobs as the repository REPO does.
    ///
    /// Name and cut blobs as the repository REPO does, so that `cairn copy` between them
    /// moves only what is missing (its password from the --from-password options or
    /// CAIRN_FROM_PASSWORD_FILE, CAIRN_FROM_PASSWORD_COMMAND, CAIRN_FROM_PASSWORD).
    #[arg(long, value_name = "REPO")]
    pub copy_params_from: Option<String>,
    #[command(flatten)]
    pub from: FromRepoArgs,
}

/// The other repository of `copy` and `init --copy-params-from`.
#[derive(Debug, Args)]
pub struct FromRepoArgs {
    /// A file holding the other repository's password.
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// A command printing the other repository's password.
    #[arg(long, value_name = "COMMAND")]
    pub from_password_command: Option<String>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from (or CAIRN_FROM_REPOSITORY).
    #[arg(long, value_name = "REPO")]
    pub from_repo: Option<String>,
    #[command(flatten)]
    pub from: FromRepoArgs,
    /// Snapshots to copy (ids or prefixes, `latest`); default: every snapshot.
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Read a stream from standard input and store it under this name.
    #[arg(long, value_name = "NAME")]
    pub stdin_name: Option<String>,
    /// Store the output of the command after `--` under this name.
    ///
    /// Store the output of the command after `--` under this name; a failing command
    /// commits no snapshot.
    #[arg(long, value_name = "NAME", requires = "command")]
    pub stdin_from_command: Option<String>,
    /// The command for --stdin-from-command.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
    /// Dump a PostgreSQL database or server: postgresql://USER@HOST[:PORT][/DB].
    ///
    /// Dump a PostgreSQL database (pg_dump) or, without a database in the URL, a whole
    /// server (pg_dumpall) into the snapshot: postgresql://USER@HOST[:PORT]/DB (repeatable;
    /// a URL with a password is refused: set PGPASSWORD or use ~/.pgpass).
    #[arg(long, value_name = "URL")]
    pub postgres: Vec<String>,
    /// Format of --postgres dumps of one database: custom (pg_restore) or plain (SQL).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = PostgresFormat::Custom)]
    pub postgres_format: PostgresFormat,
    /// Dump a MariaDB/MySQL database or server: mariadb://USER@HOST[:PORT][/DB].
    ///
    /// Dump a MariaDB/MySQL database (mariadb-dump --single-transaction) or, without a
    /// database, all of them: mariadb://USER@HOST[:PORT]/DB (repeatable; a URL with a
    /// password is refused: set MYSQL_PWD or use ~/.my.cnf).
    #[arg(long, value_name = "URL")]
    pub mariadb: Vec<String>,
    /// Copy a SQLite database consistently, even while it is written (repeatable).
    ///
    /// Copy a SQLite database consistently (online backup API), even while it is written
    /// (repeatable).
    #[arg(long, value_name = "PATH")]
    pub sqlite: Vec<PathBuf>,
    /// Run the dump tools through this command, e.g. 'docker exec db' (split at spaces).
    #[arg(long, value_name = "COMMAND")]
    pub db_wrapper: Option<String>,
    /// Exclude paths matching this pattern (repeatable).
    #[arg(short = 'e', long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Read exclude patterns from a file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Skip directories that contain a CACHEDIR.TAG file.
    #[arg(long)]
    pub exclude_caches: bool,
    /// Stay on the file system of each path.
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Add a tag (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tag: Vec<String>,
    /// Host name to record.
    #[arg(long)]
    pub host: Option<String>,
    /// Snapshot to compare against to skip unchanged files (default: latest of the same host and paths).
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Read every file, even unchanged ones.
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

/// Which snapshot `latest` means, and what to do about damaged snapshots.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Only snapshots of this host (with `latest`: the newest of this host).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeatable: with all of them).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Only snapshots of this application or installation name.
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Choose among the readable snapshots even when a damaged one might be meant.
    ///
    /// Choose among the readable snapshots even when a damaged one might be the one meant
    /// (by default a damaged snapshot that `latest` could mean stops the command).
    #[arg(long)]
    pub skip_damaged: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// `latest`, an id prefix, optionally followed by `:path`.
    pub snapshot: String,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Show type, mode, owner, size and time.
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// `latest` or an id prefix (with --archive, optionally followed by `:path`).
    pub snapshot: String,
    /// Path of a file in the snapshot (with --archive: of a directory, default `/`).
    #[arg(required_unless_present = "archive")]
    pub path: Option<String>,
    /// Write the directory (or file) as an archive of this format.
    #[arg(long, value_name = "FORMAT")]
    pub archive: Option<ArchiveFormat>,
    #[command(flatten)]
    pub select: SelectArgs,
}

/// The formats of `dump --archive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchiveFormat {
    /// POSIX tar (ustar with PAX records where needed).
    Tar,
    /// Zip, deflated.
    Zip,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// `latest`, an id prefix, optionally followed by `:path`.
    ///
    /// `latest`, an id prefix, optionally followed by `:path` (with --from-export, default:
    /// the export's snapshot).
    #[arg(required_unless_present = "from_export")]
    pub snapshot: Option<String>,
    /// Restore from this export file instead of a repository.
    ///
    /// Restore from this export file instead of a repository (only the export password is
    /// needed; see `cairn export --help`).
    #[arg(long, value_name = "FILE")]
    pub from_export: Option<PathBuf>,
    #[command(flatten)]
    pub export_password: ExportPasswordArgs,
    /// Directory to restore into.
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this pattern (repeatable).
    #[arg(short, long, value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Do not restore paths matching this pattern (repeatable).
    #[arg(short = 'e', long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// An existing, empty directory to mount on.
    pub mountpoint: PathBuf,
    /// Let other users see the file system too.
    ///
    /// Let other users see the file system too (passes allow_other; for users other than
    /// root, /etc/fuse.conf must say user_allow_other). Modes and owners of the files are
    /// checked as on the restored files.
    #[arg(long)]
    pub allow_other: bool,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// `latest` or an id prefix.
    pub snapshot: String,
    /// The file to write (it must not exist yet).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub export_password: ExportPasswordArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file.
    pub file: PathBuf,
    /// Show what the export holds; import nothing.
    ///
    /// Show what the export holds (host, time, paths, tags, app and databases, size,
    /// files); import nothing and open no repository.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub export_password: ExportPasswordArgs,
}

/// The password of an export file (else CAIRN_EXPORT_PASSWORD_FILE,
/// CAIRN_EXPORT_PASSWORD_COMMAND, CAIRN_EXPORT_PASSWORD, else a prompt).
#[derive(Debug, Args)]
pub struct ExportPasswordArgs {
    /// A file holding the export's password.
    #[arg(long, value_name = "FILE")]
    pub export_password_file: Option<PathBuf>,
    /// A command printing the export's password.
    #[arg(long, value_name = "COMMAND")]
    pub export_password_command: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Read and authenticate every pack.
    #[arg(long)]
    pub read_data: bool,
    /// Read and authenticate only part of the packs: `n/t` or `x%`.
    ///
    /// Read and authenticate only part of the packs: `n/t` (group n of t, e.g. 1/7 to 7/7
    /// on successive days) or `x%` (a random share).
    #[arg(long, value_name = "n/t|x%", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
    /// Accept the repository as it is now after a reported rollback.
    ///
    /// Accept the repository as it is now after a reported rollback (a newest snapshot
    /// gone, an index file back after it had gone): this machine forgets what it had seen
    /// and remembers afresh. Only once you know why (e.g. snapshots forgotten on another
    /// machine, or the repository restored from a copy on purpose).
    #[arg(long)]
    pub accept_rollback: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a password: a full key, or with --put-only a key that can only add backups.
    #[command(
        after_help = "Examples:\n  cairn key add                                 # asks for the new password twice\n  cairn key add --new-password-file /root/.cairn-pw2\n  cairn key add --put-only --new-password-file client.pw   # for a client that must not read or delete"
    )]
    Add(KeyAddArgs),
    /// List keys.
    #[command(after_help = "Example:\n  cairn key list --json")]
    List,
    /// Remove a key by id prefix (not the one in use).
    #[command(after_help = "Example:\n  cairn key remove 1a2b3c4d")]
    Remove {
        /// Key id prefix.
        id: String,
    },
    /// Change the password of the key in use.
    #[command(
        after_help = "Examples:\n  cairn key passwd\n  cairn key passwd --new-password-file /root/.cairn-new-pw"
    )]
    Passwd(NewPasswordArgs),
    /// Make new meta and data keys (after a key may have leaked).
    ///
    /// Make new meta and data keys: what is written from now on cannot be opened with the
    /// current keys, should they have leaked. Earlier data stays readable with them unless
    /// --rewrite-data re-seals it (see docs/maintenance.md).
    #[command(
        after_help = "Examples:\n  cairn key rotate                       # refused while other keys exist; it names them\n  cairn key rotate --remove-other-keys   # then add the others again with cairn key add\n  cairn key rotate --remove-other-keys --rewrite-data   # and re-seal every pack and snapshot"
    )]
    Rotate {
        /// Remove every other key; add them again afterwards.
        ///
        /// Remove every other key (they would not open what is written after the rotation);
        /// add them again afterwards.
        #[arg(long)]
        remove_other_keys: bool,
        /// Also re-seal every pack, snapshot and index file under the new keys.
        ///
        /// Also re-seal every pack, snapshot and index file under the new keys, so that the
        /// earlier keys open none of them (reads and writes the whole repository). When
        /// files are still sealed under earlier keys (an interrupted run), no new keys are
        /// made: the run continues re-sealing them.
        #[arg(long)]
        rewrite_data: bool,
    },
}

#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (otherwise it is asked for twice).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// Read the new password from this file (otherwise it is asked for twice).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// A put-only key: it can back up but cannot read, restore or delete anything.
    ///
    /// A put-only key: it can back up (and deduplicate against what is stored) but cannot
    /// read, restore, forget, prune or check anything, its own backups included.
    #[arg(long)]
    pub put_only: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first snapshot: `latest` or an id prefix.
    pub from: String,
    /// The second snapshot: `latest` or an id prefix.
    pub to: String,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Snapshots to measure (`latest` or id prefixes); all when none is given.
    pub snapshots: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index files from the headers of the packs.
    ///
    /// Rebuild the index files from the headers of the packs (after an index file was lost
    /// or damaged, or `check` reports blobs missing from the index).
    #[command(after_help = "Example:\n  cairn repair index && cairn check")]
    Index,
    /// Write copies (tagged `repaired`) of snapshots that lost data.
    ///
    /// Write copies (tagged `repaired`) of snapshots that lost data, without the files and
    /// directories that cannot be read; run `repair index` first.
    #[command(
        after_help = "Examples:\n  cairn repair snapshots\n  cairn repair snapshots 1a2b3c4d latest"
    )]
    Snapshots {
        /// Snapshots to repair (`latest` or id prefixes); all by default.
        snapshots: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// Glob matched against entry names, e.g. '*.conf'.
    pub pattern: String,
    /// Only these snapshots (`latest` or id prefixes; repeatable).
    #[arg(short, long = "snapshot", value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command a user can run (the leaves of the tree), as `cairn a b`.
    fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
        if subs.is_empty() {
            out.push((path.to_string(), cmd.clone()));
        }
        for s in subs {
            leaves(s, &format!("{path} {}", s.get_name()), out);
        }
    }

    #[test]
    fn every_command_has_help_with_examples() {
        Cli::command().debug_assert();
        let mut all = Vec::new();
        leaves(&Cli::command(), "cairn", &mut all);
        let mut missing = Vec::new();
        for (path, cmd) in &all {
            let after = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if cmd.get_about().is_none() || !after.contains(path.as_str()) {
                missing.push(path.clone());
            }
        }
        assert!(
            missing.is_empty(),
            "commands without an about line or an example of themselves: {missing:?}"
        );
    }
}

/// `--postgres-format`. No doc comments on the variants: the help lists the values
/// without descriptions, as the field's own line explains them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PostgresFormat {
    Custom,
    Plain,
}

/// `--stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageArg {
    /// The databases and the files, less those restored last.
    Core,
    /// The files restored last.
    Rest,
}
