//! Commands that change what the repository keeps: forget, prune, tag.

use crate::output::{bytes, local_time};
use crate::requests::{ForgetRequest, TagRequest};
use crate::settings::Settings;
use anyhow::{bail, Result};
use cairn_core::{select_snapshot, ForgetBy, Id, PruneOptions, PruneReport, Repository, Snapshot};
use std::io::Write;

pub fn forget(s: &Settings, a: ForgetRequest) -> Result<u8> {
    let policy = &a.policy;
    match (policy.is_empty(), a.snapshots.is_empty()) {
        (true, true) => bail!(
            "no rule (--keep-*) and no snapshot given: forget removes nothing without one \
             (see cairn forget --help)"
        ),
        (false, false) => bail!("give either snapshot ids or --keep-* rules, not both"),
        _ => {}
    }
    let by = match a.snapshots.is_empty() {
        true => ForgetBy::Policy(policy),
        false => ForgetBy::Snapshots(&a.snapshots),
    };
    let repo = super::open(s)?;
    let lock = super::lock_shared(s, &repo, "forget")?;
    let (all, damage) = repo.snapshots_and_damage()?;
    for e in &damage {
        eprintln!("cairn: {e}");
    }
    let now = jiff::Timestamp::now();
    let tz = jiff::tz::TimeZone::system();
    let plan = cairn_core::plan_forget(all, damage.len(), by, &a.filter, now, &tz)?;

    let mut out = std::io::stdout().lock();
    let show = !s.quiet && !s.json;
    if show {
        let by_id: std::collections::HashMap<Id, &Snapshot> =
            plan.snapshots.iter().map(|(id, sn)| (*id, sn)).collect();
        for g in &plan.groups {
            let kept = g.kept().count();
            writeln!(
                out,
                "{}: {} snapshot(s), {} kept, {} to remove",
                if g.key.to_string().is_empty() {
                    "all snapshots".to_string()
                } else {
                    g.key.to_string()
                },
                g.decisions.len(),
                kept,
                g.decisions.len() - kept
            )?;
            for d in &g.decisions {
                let sn = by_id[&d.id];
                let why: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
                writeln!(
                    out,
                    "  {:<6} {:<9} {:<19} {:<16} {}",
                    if d.is_kept() { "keep" } else { "remove" },
                    d.id.short(),
                    local_time(sn.time),
                    sn.tags.join(","),
                    if d.is_kept() {
                        why.join(", ")
                    } else {
                        "no rule keeps it".into()
                    }
                )?;
            }
        }
        if !a.snapshots.is_empty() {
            for id in &plan.remove {
                writeln!(out, "  remove {}", id.short())?;
            }
        }
    }
    let remove = &plan.remove;
    if !a.dry_run {
        for id in remove {
            repo.remove_snapshot(id)?;
        }
    }
    if show {
        writeln!(
            out,
            "{} {} snapshot(s)",
            if a.dry_run { "would remove" } else { "removed" },
            remove.len()
        )?;
    }
    drop(out);
    let mut pruned = None;
    if let (Some(max_unused), false) = (a.prune, a.dry_run) {
        drop(lock);
        pruned = Some(run_prune(s, &repo, max_unused, false)?);
    }
    if s.json {
        super::print_json(&serde_json::json!({
            "dry_run": a.dry_run,
            "groups": plan.groups,
            "removed": remove.iter().map(|id| id.to_hex()).collect::<Vec<_>>(),
            "prune": pruned,
        }))?;
    }
    Ok(crate::exit::OK)
}

pub fn prune(s: &Settings, max_unused: f64, dry_run: bool) -> Result<u8> {
    let repo = super::open(s)?;
    let r = run_prune(s, &repo, max_unused, dry_run)?;
    if s.json {
        super::print_json(&r)?;
    }
    Ok(crate::exit::OK)
}

fn run_prune(
    s: &Settings,
    repo: &Repository,
    max_unused: f64,
    dry_run: bool,
) -> Result<PruneReport> {
    let lock = super::lock_exclusive(s, repo, "prune")?;
    let r = cairn_core::prune(
        repo,
        &lock,
        &PruneOptions {
            max_unused,
            dry_run,
        },
    )?;
    // Temporary files of writes that a crash interrupted; none is in progress while
    // the exclusive lock is held, the hour is a margin for processes that do not lock.
    let temp_removed = if dry_run {
        0
    } else {
        repo.backend()
            .remove_stale_temp_files(std::time::Duration::from_secs(3600))?
    };
    drop(lock);
    if !s.quiet && !s.json {
        if temp_removed > 0 {
            println!("removed {temp_removed} temporary file(s) left by interrupted writes");
        }
        let would = |done: &str, not: &str| {
            if dry_run {
                not.to_string()
            } else {
                done.to_string()
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} snapshot(s) use {} blob(s); {} blob(s) are unused",
            r.snapshots, r.blobs_used, r.blobs_unused
        )?;
        writeln!(
            out,
            "{} {} unused pack(s), {}",
            would("deleted", "would delete"),
            r.packs_deleted,
            bytes(r.bytes_deleted)
        )?;
        writeln!(
            out,
            "{} {} pack(s), {} ({} blob(s), {} kept)",
            would("repacked", "would repack"),
            r.packs_repacked,
            bytes(r.bytes_repacked),
            r.blobs_moved,
            bytes(r.bytes_moved)
        )?;
        if r.packs_unindexed > 0 {
            writeln!(
                out,
                "{} {} pack(s) no index names (left by interrupted backups), {}",
                would("deleted", "would delete"),
                r.packs_unindexed,
                bytes(r.bytes_unindexed)
            )?;
        }
        writeln!(
            out,
            "{} unused in packs that stay (below --max-unused {}%)",
            bytes(r.bytes_unused_kept),
            max_unused * 100.0
        )?;
    }
    Ok(r)
}

pub fn tag(s: &Settings, a: TagRequest) -> Result<u8> {
    if a.add.is_empty() && a.remove.is_empty() && a.set.is_empty() {
        bail!("nothing to change: give --add, --remove or --set");
    }
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "tag")?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    let mut changed = Vec::new();
    for spec in &a.snapshots {
        let (old_id, mut sn) = select_snapshot(all.clone(), &damaged, spec)?;
        let before = sn.tags.clone();
        if !a.set.is_empty() {
            sn.tags = a.set.clone();
        }
        sn.tags.retain(|t| !a.remove.contains(t));
        for t in &a.add {
            if !sn.tags.contains(t) {
                sn.tags.push(t.clone());
            }
        }
        sn.tags.sort();
        sn.tags.dedup();
        if sn.tags == before {
            continue;
        }
        // Snapshots are named by their bytes: the changed one is a new file, written
        // before the old one goes, so a crash in between leaves both, never neither.
        let new_id = repo.save_snapshot(&sn)?;
        repo.remove_snapshot(&old_id)?;
        changed.push((old_id, new_id, sn.tags.clone()));
    }
    if s.json {
        let v: Vec<_> = changed
            .iter()
            .map(|(o, n, t)| serde_json::json!({"old": o.to_hex(), "id": n.to_hex(), "tags": t}))
            .collect();
        super::print_json(&v)?;
    } else if !s.quiet {
        let mut out = std::io::stdout().lock();
        for (o, n, t) in &changed {
            writeln!(out, "{} → {}  tags: {}", o.short(), n.short(), t.join(","))?;
        }
        writeln!(out, "{} snapshot(s) changed", changed.len())?;
    }
    Ok(crate::exit::OK)
}

pub fn repair_index(s: &Settings) -> Result<u8> {
    let repo = super::open(s)?;
    let lock = super::lock_exclusive(s, &repo, "repair index")?;
    let r = cairn_core::repair_index(&repo, &lock)?;
    drop(lock);
    for b in &r.bad_packs {
        eprintln!("cairn: left out {b}");
    }
    if s.json {
        super::print_json(&r)?;
    } else if !s.quiet {
        println!(
            "indexed {} blobs in {} of {} packs: {} index file(s) written, {} removed",
            r.blobs,
            r.packs - r.bad_packs.len(),
            r.packs,
            r.index_files_written,
            r.index_files_removed
        );
    }
    Ok(if r.bad_packs.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    })
}

pub fn repair_snapshots(s: &Settings, specs: &[String]) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "repair snapshots")?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    let chosen: Vec<Id> = if specs.is_empty() {
        all.iter().map(|(id, _)| *id).collect()
    } else {
        specs
            .iter()
            .map(|spec| select_snapshot(all.clone(), &damaged, spec).map(|(id, _)| id))
            .collect::<cairn_core::Result<_>>()?
    };
    let mut reports = Vec::new();
    for id in &chosen {
        let r = cairn_core::repair_snapshot(&repo, id)?;
        if !s.json && !s.quiet {
            match &r.repaired {
                None => println!("{}: whole", id.short()),
                Some(new) => {
                    println!(
                        "{}: {} path(s) lost, repaired copy {}",
                        id.short(),
                        r.lost.len(),
                        &new[..8]
                    );
                    for p in &r.lost {
                        println!("  lost {p}");
                    }
                }
            }
        }
        reports.push(r);
    }
    if s.json {
        super::print_json(&reports)?;
    }
    Ok(crate::exit::OK)
}
