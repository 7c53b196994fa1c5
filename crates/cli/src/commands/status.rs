//! `cairn status`: the 3-2-1 status of the configured repositories.

use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{
    copies_status, human_age, CopiesPolicy, Holding, Id, RESTORE_POINTS_KEPT,
    RESTORE_POINTS_KEPT_DAYS, RESTORE_POINT_TAG,
};

/// `cairn status`.
pub fn run(s: &Settings) -> Result<u8> {
    let primary = s.config.repository.name.clone().unwrap_or("primary".into());
    let mut holdings = vec![holding(s, primary, false)];
    for rc in &s.config.offsite {
        let name = rc.name.clone().unwrap_or_default();
        let h = match s.for_repository(rc) {
            Ok(os) => holding(&os, name, true),
            Err(e) => {
                eprintln!("cairn: {name}: {e:#}");
                Holding {
                    name,
                    offsite: true,
                    snapshots: None,
                }
            }
        };
        holdings.push(h);
    }
    let policy = CopiesPolicy {
        max_offsite_age: s.config.copies.offsite_max_age,
        min_copies: s.config.copies.min_copies,
    };
    let now = jiff::Timestamp::now();
    // Restore points are the way back from an application restore, kept by a rule of
    // their own: listed apart, not held to the copy rules.
    let restore_points = restore_points(&holdings);
    let backups: Vec<Holding> = holdings
        .iter()
        .map(|h| Holding {
            name: h.name.clone(),
            offsite: h.offsite,
            snapshots: h.snapshots.as_ref().map(|v| {
                v.iter()
                    .filter(|(_, sn)| !sn.has_tag(RESTORE_POINT_TAG))
                    .cloned()
                    .collect()
            }),
        })
        .collect();
    let groups = copies_status(&backups, &policy, now);
    // Short of the rules when one is not met, or when a repository cannot be read (the
    // primary among them: then there are no groups to warn in).
    let short = groups.iter().any(|g| !g.warnings.is_empty())
        || holdings.iter().any(|h| h.snapshots.is_none());
    if s.json {
        super::print_json(&serde_json::json!({
            "repositories": holdings.iter().map(|h| serde_json::json!({
                "name": h.name,
                "offsite": h.offsite,
                "readable": h.snapshots.is_some(),
                "snapshots": h.snapshots.as_ref().map(Vec::len),
                "newest": h.snapshots.as_ref().and_then(|v| v.iter().map(|(_, sn)| sn.time).max()),
            })).collect::<Vec<_>>(),
            "groups": groups,
            "restore_points": restore_points.iter().map(|r| serde_json::json!({
                "repository": r.repository,
                "installation": r.installation,
                "count": r.count,
                "newest": r.newest.to_string(),
                "newest_id": r.newest_id.to_hex(),
            })).collect::<Vec<_>>(),
            "ok": !short,
        }))?;
    } else {
        for h in &holdings {
            let what = match &h.snapshots {
                Some(v) => format!("{} snapshots", v.len()),
                None => "could not be read".into(),
            };
            let kind = if h.offsite { "offsite" } else { "primary" };
            println!("{:<16} {kind:<8} {what}", h.name);
        }
        for g in &groups {
            let what = match (&g.app, g.paths.is_empty()) {
                (Some(app), _) => format!("app {app}"),
                (None, false) => g.paths.join(" "),
                (None, true) => String::new(),
            };
            println!("\n{} {what}", g.hostname);
            for p in &g.recent {
                println!(
                    "  {} {}  in {}",
                    p.original.short(),
                    p.time.strftime("%Y-%m-%d %H:%M"),
                    p.held_by.join(", ")
                );
            }
            match g.newest_offsite {
                Some((_, age)) => println!("  newest offsite copy: {} old", human_age(age)),
                None => println!("  newest offsite copy: none"),
            }
            for w in &g.warnings {
                println!("  WARNING: {w}");
            }
        }
        if !restore_points.is_empty() {
            println!("\nrestore points (kept: the {RESTORE_POINTS_KEPT} newest of each installation and all of the last {RESTORE_POINTS_KEPT_DAYS} days)");
            for r in &restore_points {
                println!(
                    "  {} in {}: {}, newest {} {} ({} old)",
                    r.installation,
                    r.repository,
                    r.count,
                    r.newest_id.short(),
                    r.newest.strftime("%Y-%m-%d %H:%M"),
                    human_age(now.as_second() - r.newest.as_second())
                );
            }
        }
    }
    Ok(if short {
        crate::exit::ERROR
    } else {
        crate::exit::OK
    })
}

/// The snapshots of the repository `s` names; `None` (with a message) when it cannot
/// be read.
fn holding(s: &Settings, name: String, offsite: bool) -> Holding {
    let snapshots = match super::open(s).and_then(|r| Ok(r.snapshots()?)) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("cairn: {name} ({}): {e:#}", s.repo);
            None
        }
    };
    Holding {
        name,
        offsite,
        snapshots,
    }
}

/// The restore points of one installation in one repository.
struct RestorePoints {
    repository: String,
    /// `HOST:DIR`.
    installation: String,
    count: usize,
    newest: jiff::Timestamp,
    newest_id: Id,
}

/// The restore points the repositories hold, per repository and installation.
fn restore_points(holdings: &[Holding]) -> Vec<RestorePoints> {
    let mut out: Vec<RestorePoints> = Vec::new();
    for h in holdings {
        for (id, sn) in h.snapshots.iter().flatten() {
            if !sn.has_tag(RESTORE_POINT_TAG) {
                continue;
            }
            let install = sn
                .manifest
                .as_ref()
                .and_then(|m| m.get("install"))
                .and_then(|i| i.as_str())
                .unwrap_or("?");
            let installation = format!("{}:{install}", sn.hostname);
            match out
                .iter_mut()
                .find(|r| r.repository == h.name && r.installation == installation)
            {
                Some(r) => {
                    r.count += 1;
                    if sn.time > r.newest {
                        r.newest = sn.time;
                        r.newest_id = *id;
                    }
                }
                None => out.push(RestorePoints {
                    repository: h.name.clone(),
                    installation,
                    count: 1,
                    newest: sn.time,
                    newest_id: *id,
                }),
            }
        }
    }
    out
}
