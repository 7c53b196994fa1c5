//! Snapshots: the commit points of a repository.
//!
//! A snapshot file is a sealed file (magic `CRNs`) whose body is JSON. Writing it is
//! the last step of a backup: every blob and index it needs is stored before it.

use crate::formats::id::Id;
use crate::report::BackupSummary;
use serde::{Deserialize, Serialize};

/// Snapshot JSON version.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A snapshot as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// JSON version (1).
    pub version: u32,
    /// When the backup started (RFC 3339, UTC).
    pub time: jiff::Timestamp,
    /// The root tree.
    pub tree: Id,
    /// The paths given to the backup, absolute, plus stream names.
    pub paths: Vec<String>,
    /// Host name.
    pub hostname: String,
    /// User who ran the backup.
    #[serde(default)]
    pub username: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The snapshot used to skip unchanged files, if any.
    #[serde(default)]
    pub parent: Option<Id>,
    /// Exclude patterns in effect.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Version of cairn that wrote it.
    #[serde(default)]
    pub program_version: String,
    /// What the backup did.
    #[serde(default)]
    pub summary: Option<BackupSummary>,
    /// The application front-end that made the snapshot (e.g. "kimai"), if any. Absent in
    /// snapshots of plain file trees and streams, and in snapshots written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// What an application front-end recorded about the run (app and database versions,
    /// dump tools and formats, what was included and in which order). Its shape is the
    /// front-end's; absent in other snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    /// For a snapshot copied from another repository (`cairn copy`), or re-sealed under
    /// a later key epoch (`key rotate --rewrite-data`, which renames it), the id of the
    /// snapshot it was first taken as; copies of copies keep the first id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    /// The name of the key file that wrote the snapshot, as the writer says (absent in
    /// snapshots written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// "put-only" when the snapshot was sealed by a put-only key. Not taken from the JSON:
    /// a reader sets it from the file's envelope, which a put-only key cannot forge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

impl Snapshot {
    /// True if the snapshot has `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// A snapshot of `host` taken `secs` seconds after the epoch, for tests.
#[cfg(test)]
pub(crate) fn sample(host: &str, secs: i64, tags: &[&str], app: Option<&str>) -> Snapshot {
    Snapshot {
        version: 1,
        time: jiff::Timestamp::from_second(secs).unwrap(),
        tree: Id([0; 32]),
        paths: vec!["/srv".into()],
        hostname: host.into(),
        username: String::new(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        parent: None,
        excludes: vec![],
        program_version: String::new(),
        summary: None,
        app: app.map(str::to_string),
        manifest: None,
        original: None,
        key: None,
        access: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_is_optional_in_json() {
        let json = r#"{"version":1,"time":"2024-01-01T00:00:00Z","tree":"0000000000000000000000000000000000000000000000000000000000000000","paths":["/srv"],"hostname":"web"}"#;
        let mut snap: Snapshot = serde_json::from_str(json).unwrap();
        assert_eq!(snap.app, None);
        assert!(!serde_json::to_string(&snap).unwrap().contains("\"app\""));
        snap.app = Some("kimai".into());
        let again: Snapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
        assert_eq!(again.app.as_deref(), Some("kimai"));
    }
}
