//! Where each snapshot is kept: the 3-2-1 status of a set of repositories.
//!
//! "Three copies, two media, one offsite": given the snapshots of each repository (the
//! primary and its copies), [`copies_status`] says for each group of snapshots (one
//! host and application, or one host and set of paths) which repositories hold its
//! newest snapshots, how old the newest offsite copy is, and what falls short of the
//! policy. A pure function: the caller lists the repositories and passes the clock.
//!
//! A snapshot is recognised in every repository by the id it was first taken as
//! ([`Snapshot::original`], set by `copy`), whatever its id there.

use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// The snapshots of one repository.
#[derive(Clone, Debug)]
pub struct Holding {
    /// The repository's name (e.g. `local`, `offsite-s3`).
    pub name: String,
    /// Whether it counts as offsite.
    pub offsite: bool,
    /// Its snapshots; `None` when it could not be read (it then holds nothing).
    pub snapshots: Option<Vec<(Id, Snapshot)>>,
}

/// What the copies must satisfy.
#[derive(Clone, Debug, Default)]
pub struct CopiesPolicy {
    /// The newest offsite copy of each group may be at most this old (seconds).
    pub max_offsite_age: Option<i64>,
    /// Each group's newest snapshot must be held by at least this many repositories.
    pub min_copies: Option<usize>,
}

/// One snapshot of a group and where it is.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Placement {
    /// The id it was first taken as.
    pub original: Id,
    /// When it was taken.
    pub time: Timestamp,
    /// The repositories that hold it, in the order given.
    pub held_by: Vec<String>,
}

/// The status of one group of snapshots.
#[derive(Clone, Debug, Serialize)]
pub struct GroupCopies {
    /// The host.
    pub hostname: String,
    /// The application, for application snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The paths, for other snapshots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The newest snapshots (newest first), each with the repositories holding it.
    pub recent: Vec<Placement>,
    /// The newest snapshot held offsite: when it was taken, and its age in seconds.
    pub newest_offsite: Option<(Timestamp, i64)>,
    /// What falls short of the policy; empty when all is well.
    pub warnings: Vec<String>,
}

/// Snapshots listed per group.
pub const RECENT: usize = 3;

/// The status of every group found in any repository; see the module documentation.
pub fn copies_status(
    holdings: &[Holding],
    policy: &CopiesPolicy,
    now: Timestamp,
) -> Vec<GroupCopies> {
    type Key = (String, Option<String>, Vec<String>);
    // Per group, per original id: its time, and the repositories holding it.
    let mut groups: BTreeMap<Key, BTreeMap<Id, (Timestamp, Vec<usize>)>> = BTreeMap::new();
    for (r, h) in holdings.iter().enumerate() {
        let mut seen = HashSet::new();
        for (id, s) in h.snapshots.iter().flatten() {
            let original = s.original.unwrap_or(*id);
            if !seen.insert(original) {
                continue;
            }
            let key = match &s.app {
                Some(app) => (s.hostname.clone(), Some(app.clone()), Vec::new()),
                None => {
                    let mut p = s.paths.clone();
                    p.sort();
                    (s.hostname.clone(), None, p)
                }
            };
            let e = groups
                .entry(key)
                .or_default()
                .entry(original)
                .or_insert((s.time, Vec::new()));
            e.1.push(r);
        }
    }
    let mut out = Vec::new();
    for ((hostname, app, paths), snaps) in groups {
        let mut list: Vec<(Id, Timestamp, Vec<usize>)> =
            snaps.into_iter().map(|(o, (t, r))| (o, t, r)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let newest_offsite = list
            .iter()
            .find(|(_, _, held)| held.iter().any(|&r| holdings[r].offsite))
            .map(|(_, t, _)| (*t, now.as_second() - t.as_second()));
        let mut warnings = Vec::new();
        for h in holdings.iter().filter(|h| h.snapshots.is_none()) {
            warnings.push(format!("{} could not be read", h.name));
        }
        if let Some(max) = policy.max_offsite_age {
            match newest_offsite {
                None => warnings.push("no offsite copy".to_string()),
                Some((_, age)) if age > max => warnings.push(format!(
                    "the newest offsite copy is {} old (at most {} allowed)",
                    human_age(age),
                    human_age(max)
                )),
                _ => {}
            }
        }
        if let (Some(min), Some((_, _, held))) = (policy.min_copies, list.first()) {
            if held.len() < min {
                warnings.push(format!(
                    "the newest snapshot is in {} repositor{} ({min} wanted)",
                    held.len(),
                    if held.len() == 1 { "y" } else { "ies" }
                ));
            }
        }
        let recent = list
            .into_iter()
            .take(RECENT)
            .map(|(original, time, held)| Placement {
                original,
                time,
                held_by: held.iter().map(|&r| holdings[r].name.clone()).collect(),
            })
            .collect();
        out.push(GroupCopies {
            hostname,
            app,
            paths,
            recent,
            newest_offsite,
            warnings,
        });
    }
    out
}

/// An age in seconds as days, hours or minutes.
pub fn human_age(secs: i64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3_600 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s if s >= 60 => "1 minute".into(),
        s => format!("{} seconds", s.max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(
        n: u8,
        host: &str,
        app: Option<&str>,
        hours_ago: i64,
        original: Option<u8>,
    ) -> (Id, Snapshot) {
        let now = 1_800_000_000;
        (
            Id([n; 32]),
            Snapshot {
                version: 1,
                time: Timestamp::from_second(now - hours_ago * 3600).unwrap(),
                tree: Id([0; 32]),
                paths: vec!["/srv".into()],
                hostname: host.into(),
                username: String::new(),
                tags: vec![],
                parent: None,
                excludes: vec![],
                program_version: String::new(),
                summary: None,
                app: app.map(str::to_string),
                manifest: None,
                original: original.map(|o| Id([o; 32])),
                key: None,
                access: None,
            },
        )
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn copies_are_recognised_by_their_original_and_ages_checked() {
        let local = Holding {
            name: "local".into(),
            offsite: false,
            snapshots: Some(vec![
                snap(1, "web", Some("kimai"), 1, None),
                snap(2, "web", Some("kimai"), 25, None),
                snap(3, "web", Some("kimai"), 49, None),
                snap(4, "web", None, 2, None),
            ]),
        };
        let offsite = Holding {
            name: "offsite".into(),
            offsite: true,
            // Copies of 2 and 3 under their own ids.
            snapshots: Some(vec![
                snap(12, "web", Some("kimai"), 25, Some(2)),
                snap(13, "web", Some("kimai"), 49, Some(3)),
            ]),
        };
        let policy = CopiesPolicy {
            max_offsite_age: Some(2 * 86_400),
            min_copies: Some(2),
        };
        let s = copies_status(&[local.clone(), offsite.clone()], &policy, now());
        assert_eq!(s.len(), 2);
        let kimai = s
            .iter()
            .find(|g| g.app.as_deref() == Some("kimai"))
            .unwrap();
        assert_eq!(kimai.recent[0].held_by, vec!["local"]);
        assert_eq!(kimai.recent[1].held_by, vec!["local", "offsite"]);
        assert_eq!(kimai.recent[1].original, Id([2; 32]));
        assert_eq!(kimai.newest_offsite.unwrap().1, 25 * 3600);
        // Offsite is recent enough; the newest snapshot is in one repository only.
        assert_eq!(kimai.warnings.len(), 1, "{:?}", kimai.warnings);
        assert!(kimai.warnings[0].contains("1 repository (2 wanted)"));
        let files = s.iter().find(|g| g.app.is_none()).unwrap();
        assert_eq!(files.paths, vec!["/srv"]);
        assert!(files.warnings.iter().any(|w| w == "no offsite copy"));

        // A day later without a new copy: the offsite copy is too old.
        let later = Timestamp::from_second(now().as_second() + 2 * 86_400).unwrap();
        let s = copies_status(&[local, offsite.clone()], &policy, later);
        let kimai = s.iter().find(|g| g.app.is_some()).unwrap();
        assert!(
            kimai
                .warnings
                .iter()
                .any(|w| w.contains("the newest offsite copy is 3 days old")),
            "{:?}",
            kimai.warnings
        );

        // A repository that cannot be read is named.
        let gone = Holding {
            name: "offsite-s3".into(),
            offsite: true,
            snapshots: None,
        };
        let s = copies_status(&[offsite, gone], &CopiesPolicy::default(), now());
        assert!(s[0]
            .warnings
            .iter()
            .any(|w| w == "offsite-s3 could not be read"));
    }
}
