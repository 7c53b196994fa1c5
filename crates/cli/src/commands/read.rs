//! Commands that read a repository: snapshots, ls, dump, check.

use crate::output::{bytes, local_time};
use crate::progress::Bar;
use crate::requests::Select;
use crate::settings::Settings;
use anyhow::{bail, Result};
use cairn_core::{browse, CheckOptions, Node, NodeKind};
use std::io::Write;

pub fn snapshots(s: &Settings, host: Option<String>, tag: Option<String>) -> Result<u8> {
    let repo = super::open(s)?;
    let (all, damage) = repo.snapshots_and_damage()?;
    for e in &damage {
        eprintln!("cairn: {e}");
    }
    let code = if damage.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    };
    let snaps: Vec<_> = all
        .into_iter()
        .filter(|(_, sn)| host.as_ref().is_none_or(|h| &sn.hostname == h))
        .filter(|(_, sn)| tag.as_ref().is_none_or(|t| sn.has_tag(t)))
        .collect();
    if s.json {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, sn)| {
                let mut v = serde_json::to_value(sn).expect("snapshot serializes");
                v["id"] = serde_json::Value::String(id.to_hex());
                v["short_id"] = serde_json::Value::String(id.short());
                v
            })
            .collect();
        super::print_json(&list)?;
        return Ok(code);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<9} {:<19} {:<16} {:<16} {:<17} paths",
        "id", "time", "host", "tags", "key"
    )?;
    for (id, sn) in &snaps {
        // The key that wrote it: its file's short name as the snapshot says, and
        // "put-only" from the envelope, which a put-only key cannot forge.
        let key = match (&sn.key, &sn.access) {
            (Some(k), Some(a)) => format!("{} {a}", &k[..k.len().min(8)]),
            (Some(k), None) => k[..k.len().min(8)].to_string(),
            (None, Some(a)) => a.clone(),
            (None, None) => "-".into(),
        };
        writeln!(
            out,
            "{:<9} {:<19} {:<16} {:<16} {:<17} {}",
            id.short(),
            local_time(sn.time),
            sn.hostname,
            sn.tags.join(","),
            key,
            sn.paths.join(" ")
        )?;
    }
    writeln!(out, "{} snapshot(s)", snaps.len())?;
    Ok(code)
}

fn node_json(path: &str, n: &Node) -> serde_json::Value {
    let kind = match n.kind {
        NodeKind::File { .. } => "file",
        NodeKind::Dir { .. } => "dir",
        NodeKind::Symlink { .. } => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
        NodeKind::CharDevice { .. } => "chardev",
        NodeKind::BlockDevice { .. } => "blockdev",
    };
    let mut v = serde_json::json!({
        "path": path,
        "type": kind,
        "size": n.size,
        "mode": format!("{:o}", n.mode & 0o7777),
        "uid": n.uid,
        "gid": n.gid,
        "user": n.user,
        "group": n.group,
        "mtime": jiff::Timestamp::new(n.mtime.secs, n.mtime.nanos as i32).ok().map(|t| t.to_string()),
        "inode": n.inode,
        "links": n.links,
    });
    if let NodeKind::Symlink { target } = &n.kind {
        v["target"] = String::from_utf8_lossy(target).into_owned().into();
    }
    v
}

pub fn ls(s: &Settings, spec: &str, select: &Select, long: bool) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "ls")?;
    let (snap_spec, path) = browse::split_spec(spec);
    let (id, snap) = repo.select_snapshot(snap_spec, &select.filter(), select.skip_damaged)?;
    repo.load_index()?;
    let path = path.unwrap_or("/");
    let node = browse::resolve(&repo, &id, &snap, path)?;
    let prefix = path.trim_end_matches('/').to_string();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let json = s.json;
    let mut print = |p: &str, n: &Node| -> cairn_core::Result<()> {
        let io = |e| cairn_core::Error::io("<stdout>", e);
        if json {
            serde_json::to_writer(&mut out, &node_json(p, n))
                .map_err(|e| io(std::io::Error::other(e)))?;
            writeln!(out).map_err(io)
        } else if long {
            let t = jiff::Timestamp::new(n.mtime.secs, n.mtime.nanos as i32)
                .map(local_time)
                .unwrap_or_default();
            writeln!(
                out,
                "{}{:04o} {:>8} {:>8} {:>12} {} {}",
                n.type_char(),
                n.mode & 0o7777,
                n.user.clone().unwrap_or_else(|| n.uid.to_string()),
                n.group.clone().unwrap_or_else(|| n.gid.to_string()),
                n.size,
                t,
                p
            )
            .map_err(io)
        } else {
            writeln!(out, "{p}").map_err(io)
        }
    };
    match &node.kind {
        NodeKind::Dir { subtree } => browse::walk(&repo, subtree, &prefix, &mut print)?,
        _ => print(&prefix, &node)?,
    }
    out.flush()?;
    Ok(crate::exit::OK)
}

pub fn dump(s: &Settings, spec: &str, select: &Select, path: &str) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "dump")?;
    let (id, snap) = repo.select_snapshot(spec, &select.filter(), select.skip_damaged)?;
    repo.load_index()?;
    let node = browse::resolve(&repo, &id, &snap, path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    browse::dump_file(&repo, &node, &mut out)?;
    out.flush()?;
    Ok(crate::exit::OK)
}

/// `cairn dump --archive FORMAT SNAPSHOT[:path] [PATH]`: a directory of a snapshot (or
/// one file) as an archive on standard output (written by cairn-archive).
pub fn dump_archive(
    s: &Settings,
    spec: &str,
    select: &Select,
    path: Option<&str>,
    format: cairn_archive::Format,
) -> Result<u8> {
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "dump")?;
    let (snap_spec, spec_path) = browse::split_spec(spec);
    if spec_path.is_some() && path.is_some() {
        bail!("give the path either as SNAPSHOT:path or as PATH, not both");
    }
    let path = spec_path.or(path).unwrap_or("/");
    let (id, snap) = repo.select_snapshot(snap_spec, &select.filter(), select.skip_damaged)?;
    repo.load_index()?;
    let node = browse::resolve(&repo, &id, &snap, path)?;
    let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let skipped = |what: &str| eprintln!("cairn: {what}");
    cairn_archive::write(&repo, &node, format, out, &skipped).map_err(archive_error)?;
    Ok(crate::exit::OK)
}

/// An archive error as the error it wraps, so that `main` still finds a closed pipe
/// (quiet exit) or a repository error (its exit code) in the chain.
fn archive_error(e: cairn_archive::Error) -> anyhow::Error {
    match e {
        cairn_archive::Error::Repository(e) => e.into(),
        cairn_archive::Error::Io(e) => e.into(),
        other => other.into(),
    }
}

pub fn check(s: &Settings, a: &crate::requests::CheckRequest) -> Result<u8> {
    let subset: Option<cairn_core::DataSubset> =
        a.read_data_subset.as_deref().map(str::parse).transpose()?;
    let read_data = a.read_data || subset.is_some();
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "check")?;
    if a.accept_rollback {
        for alarm in repo.accept_rollback()? {
            if !s.quiet {
                eprintln!("cairn: accepted: {alarm}");
            }
        }
    }
    let bar = Bar::new(s.progress && read_data, Some(0));
    let report = cairn_core::check(&repo, &CheckOptions { read_data, subset }, &bar);
    bar.finish();
    let report = report?;
    if s.json {
        super::print_json(&report)?;
    } else {
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        if s.show_summary() {
            for i in &report.info {
                println!("info: {i}");
            }
            println!(
                "checked {} snapshots, {} trees, {} blobs in {} packs{}",
                report.snapshots,
                report.trees,
                report.blobs,
                report.packs,
                if read_data {
                    format!(
                        "; read {} of {} packs, {}",
                        report.packs_read,
                        report.packs,
                        bytes(report.bytes_read)
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    if !report.errors.is_empty() {
        bail!("check found {} problem(s)", report.errors.len());
    }
    if !s.json && s.show_summary() {
        println!("no errors found");
    }
    Ok(crate::exit::OK)
}
