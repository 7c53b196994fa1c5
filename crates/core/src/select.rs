//! Choosing a snapshot: `latest` or an id prefix, narrowed by host, tags and application,
//! and never silently past a snapshot that cannot be read.
//!
//! A damaged snapshot file cannot say whose it is or when it was taken, so it might be
//! the one a selection asks for: the newest of a host, say. Choosing the newest readable
//! snapshot instead would restore older data while reporting success, which on the day
//! of a disaster is the worst answer. So a selection that could have chosen a damaged
//! snapshot fails, naming it, unless the user asks to skip damaged snapshots.

use crate::error::{Error, Result};
use crate::formats::id::{short, Id};
use crate::formats::snapshot::Snapshot;

/// What a snapshot must match to be chosen (every given field must match).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// Only snapshots of this host.
    pub host: Option<String>,
    /// Only snapshots that have every one of these tags.
    pub tags: Vec<String>,
    /// Only snapshots made by this application front-end (or, for an installation
    /// configured under another name, recorded with that name).
    pub app: Option<String>,
}

impl SnapshotFilter {
    /// True when no field narrows the choice.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.tags.is_empty() && self.app.is_none()
    }

    /// True when `snap` matches every given field.
    pub fn matches(&self, snap: &Snapshot) -> bool {
        self.host.as_ref().is_none_or(|h| &snap.hostname == h)
            && self.tags.iter().all(|t| snap.has_tag(t))
            && self.app.as_ref().is_none_or(|a| {
                snap.app.as_ref() == Some(a)
                    || snap
                        .manifest
                        .as_ref()
                        .and_then(|m| m.get("installation"))
                        .and_then(|v| v.as_str())
                        == Some(a.as_str())
            })
    }

    /// "host web1, tag nightly, app kimai" (for messages); empty when nothing narrows.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        for t in &self.tags {
            parts.push(format!("tag {t}"));
        }
        if let Some(a) = &self.app {
            parts.push(format!("app {a}"));
        }
        parts.join(", ")
    }
}

/// A snapshot file that could not be read: its name and why.
#[derive(Debug)]
pub struct DamagedSnapshot {
    /// The file's full name (hex).
    pub name: String,
    /// Why it could not be read.
    pub error: Error,
}

/// Picks `latest` or the unique snapshot whose id starts with `spec`, among `snaps`
/// (oldest first) that match `filter`.
///
/// When a snapshot in `damaged` could be the one chosen (any of them for `latest`, since
/// its host and time cannot be read; those whose names start with `spec` otherwise), the
/// selection fails naming them, unless `skip_damaged` is set.
pub fn select(
    snaps: Vec<(Id, Snapshot)>,
    damaged: &[DamagedSnapshot],
    spec: &str,
    filter: &SnapshotFilter,
    skip_damaged: bool,
) -> Result<(Id, Snapshot)> {
    let latest = spec == "latest";
    if !latest && (spec.is_empty() || !spec.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Error::SnapshotNotFound(format!(
            "{spec:?} is neither `latest` nor a snapshot id"
        )));
    }
    let prefix = spec.to_ascii_lowercase();
    let in_doubt: Vec<&DamagedSnapshot> = damaged
        .iter()
        .filter(|d| latest || d.name.starts_with(&prefix))
        .collect();
    let narrowed = if filter.is_empty() {
        String::new()
    } else {
        format!(" of {}", filter.describe())
    };
    let mut found: Vec<(Id, Snapshot)> = snaps
        .into_iter()
        .filter(|(id, snap)| filter.matches(snap) && (latest || id.to_hex().starts_with(&prefix)))
        .collect();
    if !in_doubt.is_empty() && !skip_damaged {
        let names: Vec<String> = in_doubt
            .iter()
            .map(|d| format!("{} ({})", short(&d.name), d.error))
            .collect();
        let instead = match (latest, found.last()) {
            (true, Some((id, snap))) => format!(
                "; the newest readable snapshot{narrowed} is {} of {}",
                id.short(),
                snap.time.strftime("%Y-%m-%d %H:%M:%S UTC")
            ),
            _ => String::new(),
        };
        return Err(Error::DamagedSnapshots(format!(
            "{} cannot be read and may be the snapshot `{spec}`{narrowed} means: {}{instead}. \
             Nothing was done. Run `cairn check` to see the damage; name a snapshot by \
             its id, or add --skip-damaged (restore, ls, dump) to choose among the \
             readable snapshots only",
            if in_doubt.len() == 1 {
                "a snapshot".to_string()
            } else {
                format!("{} snapshots", in_doubt.len())
            },
            names.join(", ")
        )));
    }
    if latest {
        return found.pop().ok_or_else(|| {
            Error::SnapshotNotFound(if narrowed.is_empty() {
                "the repository has no snapshots".into()
            } else {
                format!("the repository has no snapshot{narrowed}")
            })
        });
    }
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        0 => Err(Error::SnapshotNotFound(format!(
            "no snapshot{narrowed} matches {prefix}"
        ))),
        n => Err(Error::SnapshotNotFound(format!(
            "{prefix} matches {n} snapshots; give more characters"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::snapshot::sample as snap;

    fn id(b: u8) -> Id {
        Id([b; 32])
    }

    fn damaged(b: u8) -> DamagedSnapshot {
        DamagedSnapshot {
            name: id(b).to_hex(),
            error: Error::corrupt(format!("snapshot {}", id(b).short())),
        }
    }

    fn all() -> Vec<(Id, Snapshot)> {
        vec![
            (id(0x11), snap("web1", 100, &["nightly"], None)),
            (id(0x22), snap("web2", 200, &[], Some("kimai"))),
            (id(0x33), snap("web1", 300, &[], None)),
        ]
    }

    #[test]
    fn latest_is_the_newest_that_matches() {
        let none = SnapshotFilter::default();
        assert_eq!(
            select(all(), &[], "latest", &none, false).unwrap().0,
            id(0x33)
        );
        let web2 = SnapshotFilter {
            host: Some("web2".into()),
            ..Default::default()
        };
        assert_eq!(
            select(all(), &[], "latest", &web2, false).unwrap().0,
            id(0x22)
        );
        let tagged = SnapshotFilter {
            tags: vec!["nightly".into()],
            ..Default::default()
        };
        assert_eq!(
            select(all(), &[], "latest", &tagged, false).unwrap().0,
            id(0x11)
        );
        let kimai = SnapshotFilter {
            app: Some("kimai".into()),
            ..Default::default()
        };
        assert_eq!(
            select(all(), &[], "latest", &kimai, false).unwrap().0,
            id(0x22)
        );
        let nobody = SnapshotFilter {
            host: Some("db9".into()),
            ..Default::default()
        };
        let e = select(all(), &[], "latest", &nobody, false).unwrap_err();
        assert!(e.to_string().contains("no snapshot of host db9"), "{e}");
    }

    #[test]
    fn a_damaged_snapshot_stops_latest_unless_skipped() {
        let none = SnapshotFilter::default();
        let e = select(all(), &[damaged(0x44)], "latest", &none, false).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::DamagedSnapshots(_)), "{msg}");
        assert!(msg.contains(&id(0x44).short()), "{msg}");
        assert!(
            msg.contains(&id(0x33).short()),
            "names the readable one: {msg}"
        );
        assert!(msg.contains("--skip-damaged"), "{msg}");
        let (chosen, _) = select(all(), &[damaged(0x44)], "latest", &none, true).unwrap();
        assert_eq!(chosen, id(0x33));
    }

    #[test]
    fn a_damaged_snapshot_stops_only_the_prefixes_it_matches() {
        let none = SnapshotFilter::default();
        let hex11 = id(0x11).to_hex();
        assert_eq!(
            select(all(), &[damaged(0x44)], &hex11[..6], &none, false)
                .unwrap()
                .0,
            id(0x11)
        );
        let hex44 = id(0x44).to_hex();
        let e = select(all(), &[damaged(0x44)], &hex44[..6], &none, false).unwrap_err();
        assert!(matches!(e, Error::DamagedSnapshots(_)), "{e}");
        let e = select(all(), &[damaged(0x44)], &hex44[..6], &none, true).unwrap_err();
        assert!(matches!(e, Error::SnapshotNotFound(_)), "{e}");
    }

    #[test]
    fn bad_specs_are_refused() {
        let none = SnapshotFilter::default();
        for spec in ["", "newest", "12g4"] {
            assert!(matches!(
                select(all(), &[], spec, &none, false),
                Err(Error::SnapshotNotFound(_))
            ));
        }
    }
}
