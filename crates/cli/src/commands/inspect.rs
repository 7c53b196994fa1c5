//! Commands that compare, search and measure snapshots: diff, find, stats.

use crate::output::{bytes, local_time};
use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{Change, DiffSummary, Id, Snapshot, Usage};
use std::io::Write;

pub fn diff(s: &Settings, a: &str, b: &str) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "diff")?;
    repo.load_index()?;
    let (ida, sa) = repo.find_snapshot(a)?;
    let (idb, sb) = repo.find_snapshot(b)?;
    if s.json {
        let changes = cairn_core::diff(&repo, &sa, &sb)?;
        let summary = DiffSummary::of(&changes);
        super::print_json(&serde_json::json!({
            "from": ida.to_hex(),
            "to": idb.to_hex(),
            "changes": changes,
            "summary": summary,
        }))?;
        return Ok(crate::exit::OK);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut summary = DiffSummary::default();
    if !s.quiet {
        writeln!(
            out,
            "comparing snapshot {} ({}) to {} ({})",
            ida.short(),
            local_time(sa.time),
            idb.short(),
            local_time(sb.time)
        )?;
    }
    cairn_core::diff_trees_with(&repo, &sa.tree, &sb.tree, &mut |c: Change| {
        summary.add(c.kind);
        writeln!(out, "{}  {}", c.kind.mark(), c.path)
            .map_err(|e| cairn_core::Error::io("<stdout>", e))
    })?;
    writeln!(
        out,
        "{} added, {} removed, {} changed, {} metadata only, {} type changed",
        summary.added,
        summary.removed,
        summary.changed,
        summary.metadata_only,
        summary.type_changed
    )?;
    out.flush()?;
    Ok(crate::exit::OK)
}

pub fn stats(s: &Settings, specs: &[String]) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "stats")?;
    repo.load_index()?;
    let mut code = crate::exit::OK;
    let snaps: Vec<(Id, Snapshot)> = if specs.is_empty() {
        let (all, damage) = repo.snapshots_and_damage()?;
        for e in &damage {
            eprintln!("cairn: {e}");
            code = crate::exit::ERROR;
        }
        all
    } else {
        specs
            .iter()
            .map(|spec| repo.find_snapshot(spec))
            .collect::<cairn_core::Result<_>>()?
    };
    let st = cairn_core::stats(&repo, &snaps)?;
    if s.json {
        super::print_json(&st)?;
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<9} {:<19} {:>9} {:>7} {:>11} {:>11} {:>11} {:>6} {:>6}",
        "id", "time", "files", "dirs", "restore", "dedup", "stored", "compr", "dedup"
    )?;
    let row = |out: &mut dyn Write, id: &str, time: &str, u: &Usage| -> std::io::Result<()> {
        writeln!(
            out,
            "{:<9} {:<19} {:>9} {:>7} {:>11} {:>11} {:>11} {:>5.2}x {:>5.2}x",
            id,
            time,
            u.files,
            u.dirs,
            bytes(u.restore_size),
            bytes(u.dedup_size),
            bytes(u.stored_size),
            u.compression_ratio,
            u.dedup_ratio
        )
    };
    for sn in &st.snapshots {
        row(&mut out, &sn.id.short(), &local_time(sn.time), &sn.usage)?;
    }
    row(
        &mut out,
        "total",
        &format!("{} snapshot(s)", st.snapshots.len()),
        &st.total,
    )?;
    writeln!(
        out,
        "restore: sum of file sizes; dedup: unique blobs before compression; stored: \
         their bytes in packs; compr = dedup/stored; dedup = restore/dedup"
    )?;
    Ok(code)
}

pub fn find(s: &Settings, a: crate::requests::FindRequest) -> Result<u8> {
    let pattern = cairn_core::name_pattern(&a.pattern)?;
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "find")?;
    repo.load_index()?;
    let (all, damaged) = repo.snapshots_and_damaged()?;
    let chosen: Vec<(Id, Snapshot)> = if a.snapshots.is_empty() {
        all.into_iter()
            .filter(|(_, sn)| a.host.as_ref().is_none_or(|h| &sn.hostname == h))
            .collect()
    } else {
        a.snapshots
            .iter()
            .map(|spec| cairn_core::select_snapshot(all.clone(), &damaged, spec))
            .collect::<cairn_core::Result<_>>()?
    };
    let mut found = Vec::new();
    let mut out = std::io::stdout().lock();
    let n = cairn_core::find(&repo, &chosen, &pattern, &mut |f| {
        if s.json {
            found.push(f);
        } else {
            writeln!(
                out,
                "{:<9} {:<19} {} {:>10}  {}",
                f.snapshot.short(),
                local_time(f.time),
                f.kind,
                f.size,
                f.path
            )
            .map_err(|e| cairn_core::Error::io("<output>", e))?;
        }
        Ok(())
    })?;
    drop(out);
    if s.json {
        super::print_json(&found)?;
    } else if !s.quiet {
        eprintln!("{n} match(es) in {} snapshot(s)", chosen.len());
    }
    Ok(crate::exit::OK)
}
