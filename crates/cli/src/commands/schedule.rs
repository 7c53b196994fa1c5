//! `cairn schedule install|list|remove`: the timers that run `cairn run JOB`. The units
//! and cron entries are cairn-schedule's; this command turns the config file's job into
//! a [`cairn_schedule::Job`] and prints what was done.

use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use cairn_config::JobConfig;
use cairn_schedule::{InstallOptions, Job, Where};

/// What `cairn schedule` is asked to do.
#[derive(Debug)]
pub enum ScheduleRequest {
    /// Install the timer of a job (default: the only one).
    Install {
        job: Option<String>,
        place: Where,
        options: InstallOptions,
    },
    /// List the timers cairn installed.
    List(Where),
    /// Remove the timer of a job (default: the only one).
    Remove { job: Option<String>, place: Where },
}

pub fn run(s: &Settings, r: ScheduleRequest) -> Result<u8> {
    let mut say = |line: &str| println!("{line}");
    match r {
        ScheduleRequest::Install {
            job,
            place,
            options,
        } => {
            let job = s.config.job(job.as_deref())?;
            let at = cairn_schedule::place(&place, &job.name)?;
            let job = timer_job(s, &job)?;
            cairn_schedule::install(&job, &at, options, &mut say)?;
        }
        ScheduleRequest::List(place) => list(s, &place)?,
        ScheduleRequest::Remove { job, place } => {
            let name = match job {
                Some(n) => n,
                None => s.config.job(None)?.name,
            };
            cairn_schedule::remove(&name, &place, &mut say)?;
        }
    }
    Ok(crate::exit::OK)
}

/// The job as its timer runs it: `cairn --config FILE run JOB`, with absolute paths.
fn timer_job(s: &Settings, job: &JobConfig) -> Result<Job> {
    let Some(config) = &s.config.file else {
        bail!(
            "a schedule runs `cairn run` with the config file, and none was found (see \
             docs/config.md)"
        );
    };
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    Ok(Job {
        name: job.name.clone(),
        calendar: job.schedule.clone(),
        randomized_delay: job.randomized_delay,
        command: cairn_schedule::command_line(&exe, config, &job.name)?,
    })
}

fn list(s: &Settings, place: &Where) -> Result<()> {
    let rows: Vec<serde_json::Value> = cairn_schedule::list(place)?
        .into_iter()
        .map(|e| serde_json::json!({"job": e.job, "file": e.file, "when": e.when, "kind": e.kind}))
        .collect();
    if s.json {
        super::print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no job is scheduled");
    } else {
        for r in &rows {
            println!(
                "{:<16} {}  ({})",
                r["job"].as_str().unwrap_or_default(),
                r["when"].as_str().unwrap_or_default(),
                r["file"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}
