//! `cairn config check`: reads and checks the config file, and says what it found.

use crate::password::PasswordSource;
use anyhow::Result;
use cairn_config::{Cadence, Config, JobConfig, Location, Problems};
use serde_json::json;

/// `cairn config check`: exit code 0 when the file (or its absence) is sound, 1 with
/// every error found, each as `file:line:column: message`.
pub fn check(location: &Location, json: bool) -> Result<u8> {
    if let Location::Absent(places) = location {
        if json {
            super::print_json(&json!({"file": null, "ok": true, "looked_at": places}))?;
        } else {
            let places: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
            println!(
                "no config file (looked at {}): every setting comes from flags, the \
                 environment or its default",
                places.join(", ")
            );
        }
        return Ok(crate::exit::OK);
    }
    match cairn_config::load(location, true) {
        Ok(c) => {
            if json {
                super::print_json(&summary_json(&c))?;
            } else {
                print_summary(&c);
            }
            Ok(crate::exit::OK)
        }
        Err(e) => {
            let cairn_config::Error::Problems(Problems(problems)) = &e else {
                return Err(e.into());
            };
            let file = problems.first().map(|p| p.file.display().to_string());
            if json {
                super::print_json(&json!({"file": file, "ok": false, "errors": problems}))?;
            } else {
                for p in problems {
                    eprintln!("{p}");
                }
                eprintln!(
                    "cairn: {} error(s) in {}",
                    problems.len(),
                    file.unwrap_or_default()
                );
            }
            Ok(crate::exit::ERROR)
        }
    }
}

/// How a password is obtained, in words (never the password).
fn describe(p: Option<&PasswordSource>) -> String {
    match p {
        None => "not configured (flags, the environment or a prompt give it)".into(),
        Some(PasswordSource::File(f)) => format!("from the file {}", f.display()),
        Some(PasswordSource::Command(c)) => format!("from the command `{c}`"),
        Some(PasswordSource::Inline(_)) => {
            "written in the config file (discouraged: prefer password-file or \
             password-command)"
                .into()
        }
        Some(PasswordSource::Env) => "from CAIRN_PASSWORD".into(),
        Some(PasswordSource::Prompt) => "asked for on the terminal".into(),
    }
}

/// The kind of a password source, for JSON.
fn kind(p: Option<&PasswordSource>) -> serde_json::Value {
    match p {
        None => serde_json::Value::Null,
        Some(PasswordSource::File(f)) => json!({"file": f}),
        Some(PasswordSource::Command(c)) => json!({"command": c}),
        Some(PasswordSource::Inline(_)) => json!("inline"),
        Some(PasswordSource::Env) => json!("environment"),
        Some(PasswordSource::Prompt) => json!("prompt"),
    }
}

fn summary_json(c: &Config) -> serde_json::Value {
    let apps: Vec<_> = c
        .apps
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "kind": a.kind,
                "path": a.path,
                "before": a.before,
                "after": a.after,
                "tags": a.tags,
                "db_wrapper": a.db_wrapper,
                "database": {
                    // Whether a URL is set; never the URL, which may hold a password.
                    "url": a.database.url.is_some(),
                    "password": kind(a.database.password.as_ref()),
                },
            })
        })
        .collect();
    json!({
        "file": c.file,
        "ok": true,
        "repository": {
            "url": c.repository.url,
            "password": kind(c.repository.password.as_ref()),
            "cache_dir": c.repository.cache_dir,
        },
        "offsite": c.offsite.iter().map(|o| json!({
            "name": o.name,
            "url": o.url,
            "password": kind(o.password.as_ref()),
        })).collect::<Vec<_>>(),
        "apps": apps,
        "sources": c.sources.iter().map(|s| json!({
            "name": s.name,
            "paths": s.paths,
            "exclude": s.exclude,
            "databases": s.postgres.len() + s.mariadb.len() + s.sqlite.len(),
            "before": s.before,
            "after": s.after,
            "tags": s.tags,
        })).collect::<Vec<_>>(),
        "retention": c.retention.as_ref().map(|r| r.rules()),
        "jobs": c.jobs().iter().map(job_json).collect::<Vec<_>>(),
        "monitoring": { "textfile_dir": c.monitoring.textfile_dir },
    })
}

fn cadence(c: Cadence) -> String {
    match c {
        Cadence::Always => "always".into(),
        Cadence::Never => "never".into(),
        Cadence::Every(secs) => format!("every {}", cairn_core::human_age(secs)),
    }
}

fn job_json(j: &JobConfig) -> serde_json::Value {
    json!({
        "name": j.name,
        "apps": j.apps,
        "sources": j.sources,
        "copy_to": j.copy_to,
        "forget": j.forget,
        "prune_every": cadence(j.prune_every),
        "check_every": cadence(j.check_every),
        "check_subset": j.check_subset,
        "schedule": j.schedule,
        "randomized_delay_secs": j.randomized_delay,
        // Whether one is set; the URL is a secret of sorts.
        "ping_url": j.ping_url.is_some(),
    })
}

fn print_summary(c: &Config) {
    let file = c
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    println!("config file {file}: ok");
    let r = &c.repository;
    println!(
        "repository  {}",
        r.url
            .as_deref()
            .unwrap_or("not configured (-r, CAIRN_REPOSITORY or the default)")
    );
    println!("password    {}", describe(r.password.as_ref()));
    if let Some(d) = &r.cache_dir {
        println!("cache dir   {}", d.display());
    }
    for a in &c.apps {
        println!(
            "app         {} ({}) at {}",
            a.name,
            a.kind,
            a.path.display()
        );
        for h in &a.before {
            println!("              before: {h}");
        }
        for h in &a.after {
            println!("              after:  {h}");
        }
        if !a.tags.is_empty() {
            println!("              tags:   {}", a.tags.join(", "));
        }
        if let Some(w) = &a.db_wrapper {
            println!("              dump tools through: {w}");
        }
        if a.database.url.is_some() {
            println!("              database: at the configured URL");
        }
        if a.database.password.is_some() {
            println!(
                "              database password {}",
                describe(a.database.password.as_ref())
            );
        }
    }
    if c.apps.is_empty() {
        println!("apps        none");
    }
    for o in &c.offsite {
        println!(
            "offsite     {} at {}, password {}",
            o.name.as_deref().unwrap_or_default(),
            o.url.as_deref().unwrap_or_default(),
            describe(o.password.as_ref())
        );
    }
    for s in &c.sources {
        let mut what: Vec<String> = s.paths.iter().map(|p| p.display().to_string()).collect();
        let dbs = s.postgres.len() + s.mariadb.len() + s.sqlite.len();
        if dbs > 0 {
            what.push(format!("{dbs} database(s)"));
        }
        println!("source      {}: {}", s.name, what.join(" "));
        if !s.exclude.is_empty() {
            println!("              exclude: {}", s.exclude.join(" "));
        }
    }
    if let Some(r) = &c.retention {
        println!("retention   {}", r.rules().join(", "));
    }
    for j in c.jobs() {
        let mut what: Vec<String> = j.apps.iter().map(|a| format!("app {a}")).collect();
        what.extend(j.sources.iter().map(|s| format!("source {s}")));
        println!(
            "job         {}: {}",
            j.name,
            if what.is_empty() {
                "nothing to back up".to_string()
            } else {
                what.join(", ")
            }
        );
        let copies = if j.copy_to.is_empty() {
            "no copy".to_string()
        } else {
            format!("copy to {}", j.copy_to.join(", "))
        };
        println!(
            "              {copies}; {}; prune {}, check {} ({})",
            if j.forget {
                "forget by [retention]"
            } else {
                "no forget"
            },
            cadence(j.prune_every),
            cadence(j.check_every),
            j.check_subset
        );
        println!(
            "              schedule {} (+ up to {}){}",
            j.schedule,
            cairn_core::human_age(j.randomized_delay as i64),
            if j.ping_url.is_some() {
                ", pings its URL"
            } else {
                ""
            }
        );
    }
    if let Some(d) = &c.monitoring.textfile_dir {
        println!("metrics     {}", d.display());
    }
}
