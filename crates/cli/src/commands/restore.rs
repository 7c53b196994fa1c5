use crate::output::{bytes, error_chain};
use crate::progress::Bar;
use crate::requests::RestoreRequest;
use crate::settings::Settings;
use anyhow::{bail, Result};
use cairn_core::{browse, RestoreOptions};

pub fn run(s: &Settings, a: RestoreRequest) -> Result<u8> {
    // An export is read in place: no repository, no lock (it is read-only).
    let (repo, _lock) = match &a.from_export {
        Some(file) => (super::export::open_export(file, a.export_password)?, None),
        None => {
            let repo = super::open(s)?;
            let lock = super::lock_shared(s, &repo, "restore")?;
            (repo, lock)
        }
    };
    let (spec, path) = browse::split_spec(a.snapshot.as_deref().unwrap_or("latest"));
    let (id, snap) = repo.select_snapshot(spec, &a.select.filter(), a.select.skip_damaged)?;
    repo.load_index()?;
    let path = path.unwrap_or("/");
    let node = browse::resolve(&repo, &id, &snap, path)?;
    let snap_path = path.trim_end_matches('/');
    let bar = Bar::new(s.progress, None);
    let opts = RestoreOptions {
        target: a.target.clone(),
        includes: a.include,
        excludes: a.exclude,
        owners: None,
    };
    let result = cairn_core::restore(&repo, &node, snap_path, &opts, &bar);
    bar.finish();
    let (sum, warnings) = result.map_err(|e| anyhow::anyhow!(error_chain(&e.into())))?;
    if s.json {
        super::print_json(&serde_json::json!({
            "snapshot": id.to_hex(),
            "target": a.target,
            "summary": sum,
            "errors": warnings,
        }))?;
    } else if s.show_summary() {
        println!(
            "restored snapshot {} to {}: {} files written, {} already there, {} dirs, {} other, {} hard links; {} written, {} verified in place",
            id.short(),
            a.target.display(),
            sum.files_restored,
            sum.files_unchanged,
            sum.dirs,
            sum.others,
            sum.hardlinks,
            bytes(sum.bytes_written),
            bytes(sum.bytes_skipped)
        );
    }
    if sum.errors > 0 {
        bail!("{} item(s) could not be restored (see above)", sum.errors);
    }
    Ok(crate::exit::OK)
}
