//! Tests of the retention rules and of forget's plan.

use super::*;
use std::collections::HashMap;

/// Europe/Berlin without depending on the system's tz database (jiff bundles none
/// on Linux): CET, and CEST from the last Sunday of March 02:00 to the last Sunday of
/// October 03:00.
fn berlin() -> TimeZone {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
}

/// `2024-10-27T02:30+01:00` as written, or a Berlin wall-clock time `2024-03-31T02:30`
/// (a time skipped by DST resolves as a clock would: 02:30 becomes 03:30).
fn at(s: &str) -> Timestamp {
    if s.contains('+') || s.ends_with('Z') {
        s.parse().unwrap()
    } else {
        let dt: DateTime = s.parse().unwrap();
        berlin()
            .to_ambiguous_zoned(dt)
            .compatible()
            .unwrap()
            .timestamp()
    }
}

/// A snapshot named for the tables; its id is derived from the name.
#[derive(Clone)]
struct S {
    name: &'static str,
    snap: Snapshot,
}

fn s(name: &'static str, time: &str) -> S {
    S {
        name,
        snap: Snapshot {
            version: crate::formats::snapshot::SNAPSHOT_VERSION,
            time: at(time),
            tree: Id::default(),
            paths: vec!["/srv".into()],
            hostname: "web".into(),
            username: "root".into(),
            tags: vec![],
            parent: None,
            excludes: vec![],
            program_version: String::new(),
            summary: None,
            app: None,
            manifest: None,
            original: None,
            key: None,
            access: None,
        },
    }
}

impl S {
    fn host(mut self, host: &str) -> S {
        self.snap.hostname = host.into();
        self
    }
    fn paths(mut self, paths: &[&str]) -> S {
        self.snap.paths = paths.iter().map(|p| p.to_string()).collect();
        self
    }
    fn tags(mut self, tags: &[&str]) -> S {
        self.snap.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
    fn app(mut self, app: &str) -> S {
        self.snap.app = Some(app.into());
        self
    }
    /// A restore point of the installation at `install`.
    fn restore_point(mut self, install: &str) -> S {
        self.snap.tags = vec![RESTORE_POINT_TAG.into(), "kimai".into()];
        self.snap.app = Some("kimai".into());
        self.snap.manifest = Some(serde_json::json!({ "install": install }));
        self
    }
}

struct Case {
    name: &'static str,
    snaps: Vec<S>,
    policy: Policy,
    now: &'static str,
    /// The kept snapshots with their reasons joined by ", "; all others are removed.
    kept: &'static [(&'static str, &'static str)],
    /// The group keys in order, or empty to leave them unchecked.
    groups: &'static [&'static str],
}

fn p() -> Policy {
    Policy::default()
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|t| t.to_string()).collect()
}

fn span(text: &str) -> Option<Span> {
    Some(Policy::parse_duration(text).unwrap())
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "restore points: the three newest of each installation and a week's, \
                   whatever the policy, and they use up none of its counts",
            snaps: vec![
                s("backup-1", "2024-03-01T03:00"),
                s("backup-2", "2024-03-02T03:00"),
                s("rp-a1", "2024-02-01T10:00").restore_point("/var/www/kimai"),
                s("rp-a2", "2024-02-02T10:00").restore_point("/var/www/kimai"),
                s("rp-a3", "2024-02-03T10:00").restore_point("/var/www/kimai"),
                s("rp-a4", "2024-02-04T10:00").restore_point("/var/www/kimai"),
                s("rp-a5", "2024-02-28T10:00").restore_point("/var/www/kimai"),
                s("rp-a6", "2024-02-29T10:00").restore_point("/var/www/kimai"),
                s("rp-a7", "2024-03-01T10:00").restore_point("/var/www/kimai"),
                s("rp-a8", "2024-03-02T10:00").restore_point("/var/www/kimai"),
                s("rp-b1", "2024-01-01T10:00").restore_point("/srv/kimai-test"),
                s("rp-b2", "2024-01-02T10:00")
                    .restore_point("/srv/kimai-test")
                    .tags(&[RESTORE_POINT_TAG, PROTECTED_TAG]),
            ],
            policy: Policy {
                keep_last: Some(1),
                ..p()
            },
            now: "2024-03-03T00:00",
            kept: &[
                ("backup-2", "last 1"),
                ("rp-a8", "restore point 1, restore point within 7d"),
                ("rp-a7", "restore point 2, restore point within 7d"),
                ("rp-a6", "restore point 3, restore point within 7d"),
                ("rp-a5", "restore point within 7d"),
                ("rp-b2", "protected, restore point 1"),
                ("rp-b1", "restore point 2"),
            ],
            groups: &[
                "restore points of web:/srv/kimai-test",
                "restore points of web:/var/www/kimai",
                "host web, paths [/srv]",
            ],
        },
        Case {
            name: "an empty policy keeps everything",
            snaps: vec![s("a", "2024-01-01T10:00"), s("b", "2024-01-02T10:00")],
            policy: p(),
            now: "2024-01-03T00:00",
            kept: &[("a", "empty policy"), ("b", "empty policy")],
            groups: &["host web, paths [/srv]"],
        },
        Case {
            name: "keep-last keeps the newest, whatever the input order",
            snaps: vec![
                s("c", "2024-01-03T10:00"),
                s("a", "2024-01-01T10:00"),
                s("d", "2024-01-04T10:00"),
                s("b", "2024-01-02T10:00"),
            ],
            policy: Policy {
                keep_last: Some(2),
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[("d", "last 1"), ("c", "last 2")],
            groups: &[],
        },
        Case {
            name: "several a day: hourly and daily keep the newest of each local hour and day",
            snaps: vec![
                s("mon-0810", "2024-01-08T08:10"),
                s("mon-0850", "2024-01-08T08:50"),
                s("mon-1200", "2024-01-08T12:00"),
                s("mon-2000", "2024-01-08T20:00"),
                s("tue-0800", "2024-01-09T08:00"),
                s("tue-0830", "2024-01-09T08:30"),
                s("tue-0845", "2024-01-09T08:45"),
                // 23:15 UTC on Tuesday: a UTC day would put it with Tuesday's.
                s("wed-0015", "2024-01-10T00:15"),
            ],
            policy: Policy {
                keep_hourly: Some(4),
                keep_daily: Some(2),
                ..p()
            },
            now: "2024-01-10T01:00",
            kept: &[
                ("wed-0015", "hourly 1, daily 1"),
                ("tue-0845", "hourly 2, daily 2"),
                ("mon-2000", "hourly 3"),
                ("mon-1200", "hourly 4"),
            ],
            groups: &[],
        },
        Case {
            name: "gaps of weeks use up no counts",
            snaps: vec![
                s("jan-02", "2024-01-02T03:00"),
                s("jan-03", "2024-01-03T03:00"),
                s("feb-20", "2024-02-20T03:00"),
                s("apr-30", "2024-04-30T03:00"),
                s("may-01-03", "2024-05-01T03:00"),
                s("may-01-04", "2024-05-01T04:00"),
            ],
            policy: Policy {
                keep_daily: Some(3),
                keep_weekly: Some(3),
                keep_monthly: Some(3),
                ..p()
            },
            now: "2024-12-01T00:00",
            kept: &[
                ("may-01-04", "daily 1, weekly 1, monthly 1"),
                ("apr-30", "daily 2, monthly 2"),
                ("feb-20", "daily 3, weekly 2, monthly 3"),
                ("jan-03", "weekly 3"),
            ],
            groups: &[],
        },
        Case {
            name: "DST spring forward in Berlin: 02:30 does not exist, days stay local days",
            snaps: vec![
                s("sat-0230", "2024-03-30T02:30"),
                s("sat-2345", "2024-03-30T23:45"),
                s("sun-0130", "2024-03-31T01:30"),
                // Skipped by the clock change: taken at 03:30 CEST (01:30 UTC).
                s("sun-0230", "2024-03-31T02:30"),
                // 22:15 UTC on Sunday: a UTC day would put it with Sunday's.
                s("mon-0015", "2024-04-01T00:15"),
                s("mon-0230", "2024-04-01T02:30"),
            ],
            policy: Policy {
                keep_hourly: Some(3),
                keep_daily: Some(3),
                ..p()
            },
            now: "2024-04-01T03:00",
            kept: &[
                ("mon-0230", "hourly 1, daily 1"),
                ("mon-0015", "hourly 2"),
                ("sun-0230", "hourly 3, daily 2"),
                ("sat-2345", "daily 3"),
            ],
            groups: &[],
        },
        Case {
            name: "DST fall back in Berlin: the repeated 02:00 hour is two hours, one day",
            snaps: vec![
                s("sat", "2024-10-26T02:30+02:00"),
                s("0130", "2024-10-27T01:30+02:00"),
                s("0230-cest", "2024-10-27T02:30+02:00"),
                s("0245-cest", "2024-10-27T02:45+02:00"),
                s("0230-cet", "2024-10-27T02:30+01:00"),
                s("0240-cet", "2024-10-27T02:40+01:00"),
                s("0330", "2024-10-27T03:30+01:00"),
            ],
            policy: Policy {
                keep_hourly: Some(4),
                keep_daily: Some(2),
                ..p()
            },
            now: "2024-10-27T04:00",
            kept: &[
                ("0330", "hourly 1, daily 1"),
                ("0240-cet", "hourly 2"),
                ("0245-cest", "hourly 3"),
                ("0130", "hourly 4"),
                ("sat", "daily 2"),
            ],
            groups: &[],
        },
        Case {
            name: "year boundary: ISO week 53 of 2020 runs into January, years are local",
            snaps: vec![
                s("2020-12-27", "2020-12-27T12:00"), // Sunday, week 52
                s("2020-12-28", "2020-12-28T12:00"), // Monday, week 53
                s("2020-12-31", "2020-12-31T23:30"), // week 53, year 2020
                // 23:30 UTC on Dec 31: a UTC year would make it the newest of 2020.
                s("2021-01-01", "2021-01-01T00:30"), // week 53 of 2020, year 2021
                s("2021-01-03", "2021-01-03T12:00"), // Sunday, week 53 of 2020
                s("2021-01-04", "2021-01-04T12:00"), // Monday, week 1 of 2021
            ],
            policy: Policy {
                keep_weekly: Some(3),
                keep_monthly: Some(2),
                keep_yearly: Some(3),
                ..p()
            },
            now: "2021-01-05T00:00",
            kept: &[
                ("2021-01-04", "weekly 1, monthly 1, yearly 1"),
                ("2021-01-03", "weekly 2"),
                ("2020-12-31", "monthly 2, yearly 2"),
                ("2020-12-27", "weekly 3"),
            ],
            groups: &[],
        },
        Case {
            name: "year boundary: Dec 30 and 31 of 2024 are in ISO week 1 of 2025",
            snaps: vec![
                s("2024-12-29", "2024-12-29T12:00"), // Sunday, week 52 of 2024
                s("2024-12-31", "2024-12-31T12:00"), // week 1 of 2025
                s("2025-01-02", "2025-01-02T12:00"), // week 1 of 2025
            ],
            policy: Policy {
                keep_weekly: Some(2),
                keep_yearly: Some(2),
                ..p()
            },
            now: "2025-01-03T00:00",
            kept: &[
                ("2025-01-02", "weekly 1, yearly 1"),
                ("2024-12-31", "yearly 2"),
                ("2024-12-29", "weekly 2"),
            ],
            groups: &[],
        },
        Case {
            name: "keep-tag keeps snapshots with any of the tags, one reason per tag",
            snaps: vec![
                s("a", "2024-01-01T10:00").tags(&["db"]),
                s("b", "2024-01-02T10:00").tags(&["nightly", "db"]),
                s("c", "2024-01-03T10:00").tags(&["files"]),
                s("d", "2024-01-04T10:00"),
            ],
            policy: Policy {
                keep_last: Some(1),
                keep_tags: tags(&["db", "nightly", "db"]),
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[
                ("d", "last 1"),
                ("b", "tag db, tag nightly"),
                ("a", "tag db"),
            ],
            groups: &[],
        },
        Case {
            name: "keep-within 1m counts a calendar month back from now; the future is kept",
            snaps: vec![
                s("before", "2024-02-29T11:30"),
                // Mar 31 minus one month is Feb 29 (clamped), 12:00 CET: not after it.
                s("at-cutoff", "2024-02-29T12:00"),
                s("after", "2024-02-29T12:30"),
                s("recent", "2024-03-31T11:00"),
                s("future", "2024-04-02T00:00"),
            ],
            policy: Policy {
                keep_within: span("1m"),
                ..p()
            },
            now: "2024-03-31T12:00",
            kept: &[
                ("future", "within 1m"),
                ("recent", "within 1m"),
                ("after", "within 1m"),
            ],
            groups: &[],
        },
        Case {
            name: "keep-within 1d over spring forward is 23 hours",
            snaps: vec![
                s("0300", "2024-03-31T03:00"), // 01:00 UTC
                s("0345", "2024-03-31T03:45"), // 01:45 UTC
            ],
            policy: Policy {
                keep_within: span("1d"),
                ..p()
            },
            // 00:30 UTC; one day back is 03:30 CEST on Mar 31 (02:30 is skipped).
            now: "2024-04-01T02:30",
            kept: &[("0345", "within 1d")],
            groups: &[],
        },
        Case {
            name: "keep-within 24h over spring forward is 24 hours",
            snaps: vec![s("0300", "2024-03-31T03:00"), s("0345", "2024-03-31T03:45")],
            policy: Policy {
                keep_within: span("24h"),
                ..p()
            },
            now: "2024-04-01T02:30",
            kept: &[("0345", "within 24h"), ("0300", "within 24h")],
            groups: &[],
        },
        Case {
            name: "keep-within 1d over fall back is 25 hours",
            snaps: vec![
                s("0215-cest", "2024-10-27T02:15+02:00"),
                s("0245-cest", "2024-10-27T02:45+02:00"),
                s("0230-cet", "2024-10-27T02:30+01:00"),
            ],
            policy: Policy {
                keep_within: span("1d"),
                ..p()
            },
            // 01:30 UTC; one day back is the first 02:30 of Oct 27, 00:30 UTC.
            now: "2024-10-28T02:30",
            kept: &[("0230-cet", "within 1d"), ("0245-cest", "within 1d")],
            groups: &[],
        },
        Case {
            name: "grouping by host and paths (the default); path order does not matter",
            snaps: vec![
                s("web-1", "2024-01-01T10:00"),
                s("web-2", "2024-01-02T10:00"),
                s("web-etc", "2024-01-03T10:00").paths(&["/etc"]),
                s("web-both-1", "2024-01-04T10:00").paths(&["/srv", "/etc"]),
                s("web-both-2", "2024-01-05T10:00").paths(&["/etc", "/srv"]),
                s("db-1", "2024-01-01T11:00").host("db"),
                s("db-2", "2024-01-02T11:00").host("db"),
            ],
            policy: Policy {
                keep_last: Some(1),
                ..p()
            },
            now: "2024-01-06T00:00",
            kept: &[
                ("db-2", "last 1"),
                ("web-etc", "last 1"),
                ("web-both-2", "last 1"),
                ("web-2", "last 1"),
            ],
            groups: &[
                "host db, paths [/srv]",
                "host web, paths [/etc]",
                "host web, paths [/etc /srv]",
                "host web, paths [/srv]",
            ],
        },
        Case {
            name: "grouping by app only: hosts and paths do not matter",
            snaps: vec![
                s("kimai-1", "2024-01-01T10:00").app("kimai"),
                s("kimai-2", "2024-01-02T10:00").app("kimai").host("other"),
                s("immich-1", "2024-01-01T10:00").app("immich"),
                s("immich-2", "2024-01-03T10:00")
                    .app("immich")
                    .paths(&["/x"]),
                s("plain-1", "2024-01-02T10:00").host("a"),
                s("plain-2", "2024-01-04T10:00").host("b"),
            ],
            policy: Policy {
                keep_last: Some(1),
                group_by: GroupBy {
                    app: true,
                    ..GroupBy::NONE
                },
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[
                ("plain-2", "last 1"),
                ("immich-2", "last 1"),
                ("kimai-2", "last 1"),
            ],
            groups: &["app (none)", "app immich", "app kimai"],
        },
        Case {
            name: "grouping by host and app",
            snaps: vec![
                s("a-kimai", "2024-01-01T10:00").app("kimai").host("a"),
                s("b-kimai-1", "2024-01-01T10:00").app("kimai").host("b"),
                s("b-kimai-2", "2024-01-02T10:00").app("kimai").host("b"),
            ],
            policy: Policy {
                keep_last: Some(1),
                group_by: GroupBy {
                    host: true,
                    app: true,
                    ..GroupBy::NONE
                },
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[("a-kimai", "last 1"), ("b-kimai-2", "last 1")],
            groups: &["host a, app kimai", "host b, app kimai"],
        },
        Case {
            name: "grouping by tags: tag order does not matter",
            snaps: vec![
                s("ab-1", "2024-01-01T10:00").tags(&["a", "b"]),
                s("ab-2", "2024-01-02T10:00").tags(&["b", "a"]),
                s("none-1", "2024-01-01T11:00"),
                s("none-2", "2024-01-02T11:00"),
            ],
            policy: Policy {
                keep_last: Some(1),
                group_by: "tags".parse().unwrap(),
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[("none-2", "last 1"), ("ab-2", "last 1")],
            groups: &["tags []", "tags [a b]"],
        },
        Case {
            name: "no grouping: one group",
            snaps: vec![
                s("web", "2024-01-01T10:00"),
                s("db", "2024-01-02T10:00").host("db").paths(&["/var"]),
            ],
            policy: Policy {
                keep_last: Some(1),
                group_by: GroupBy::NONE,
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[("db", "last 1")],
            groups: &["(all snapshots)"],
        },
        Case {
            name: "protected snapshots are always kept and still count for other rules",
            snaps: vec![
                s("p", "2024-01-01T10:00").tags(&["protected"]),
                s("q", "2024-01-02T10:00").tags(&["protected"]),
                s("r", "2024-01-03T10:00"),
                s("s", "2024-01-04T10:00"),
            ],
            policy: Policy {
                keep_last: Some(1),
                keep_daily: Some(3),
                ..p()
            },
            now: "2024-01-05T00:00",
            kept: &[
                ("s", "last 1, daily 1"),
                ("r", "daily 2"),
                ("q", "protected, daily 3"),
                ("p", "protected"),
            ],
            groups: &[],
        },
        Case {
            name: "a combination of rules lists every reason, in rule order",
            snaps: vec![
                s("a", "2024-01-10T10:00").tags(&["db"]),
                s("b", "2024-02-05T10:00"),
                s("c", "2024-02-28T10:00"),
                s("d", "2024-03-13T09:00"),
                s("e", "2024-03-13T21:00"),
                s("f", "2024-03-14T08:00"),
                s("g", "2024-03-15T06:00"),
                s("h", "2024-03-15T07:00"),
            ],
            policy: Policy {
                keep_last: Some(2),
                keep_daily: Some(3),
                keep_weekly: Some(2),
                keep_monthly: Some(2),
                keep_within: span("2d"),
                keep_tags: tags(&["db"]),
                ..p()
            },
            now: "2024-03-15T12:00",
            kept: &[
                ("h", "last 1, daily 1, weekly 1, monthly 1, within 2d"),
                ("g", "last 2, within 2d"),
                ("f", "daily 2, within 2d"),
                ("e", "daily 3, within 2d"),
                ("c", "weekly 2, monthly 2"),
                ("a", "tag db"),
            ],
            groups: &[],
        },
    ]
}

fn entries(snaps: &[S]) -> Vec<(Id, Snapshot)> {
    snaps
        .iter()
        .map(|s| (Id::of_file(s.name.as_bytes()), s.snap.clone()))
        .collect()
}

#[test]
fn table() {
    let tz = berlin();
    for case in cases() {
        let input = entries(&case.snaps);
        let names: HashMap<Id, &str> = input
            .iter()
            .zip(&case.snaps)
            .map(|((id, _), s)| (*id, s.name))
            .collect();
        assert_eq!(
            names.len(),
            case.snaps.len(),
            "{}: duplicate names",
            case.name
        );
        let groups = case.policy.apply(&input, at(case.now), &tz);

        if !case.groups.is_empty() {
            let keys: Vec<String> = groups.iter().map(|g| g.key.to_string()).collect();
            assert_eq!(keys, case.groups, "{}: group keys", case.name);
        }
        let mut got: Vec<(&str, String)> = Vec::new();
        let mut seen = 0;
        for group in &groups {
            for d in &group.decisions {
                seen += 1;
                if d.is_kept() {
                    let reasons: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
                    got.push((names[&d.id], reasons.join(", ")));
                }
            }
        }
        assert_eq!(
            seen,
            input.len(),
            "{}: every snapshot decided once",
            case.name
        );
        let mut want: Vec<(&str, String)> =
            case.kept.iter().map(|(n, r)| (*n, r.to_string())).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", case.name);

        // Input order does not matter.
        let mut reversed = input.clone();
        reversed.reverse();
        assert_eq!(
            case.policy.apply(&reversed, at(case.now), &tz),
            groups,
            "{}: reversed input",
            case.name
        );
    }
}

#[test]
fn count_based_policies_do_not_depend_on_now() {
    let tz = berlin();
    let mut checked = 0;
    for case in cases() {
        // Restore points are kept for a week from now: that rule depends on it.
        let restore_points = case.snaps.iter().any(|s| s.snap.has_tag(RESTORE_POINT_TAG));
        if case.policy.within().is_some() || restore_points {
            continue;
        }
        let input = entries(&case.snaps);
        let latest = input.iter().map(|(_, s)| s.time).max().unwrap();
        let century = latest
            .to_zoned(tz.clone())
            .checked_add(Span::new().years(100))
            .unwrap()
            .timestamp();
        let at_latest = case.policy.apply(&input, latest, &tz);
        assert_eq!(
            at_latest,
            case.policy.apply(&input, century, &tz),
            "{}",
            case.name
        );
        assert_eq!(
            at_latest,
            case.policy.apply(&input, Timestamp::UNIX_EPOCH, &tz),
            "{}",
            case.name
        );
        checked += 1;
    }
    assert!(checked > 10);
}

#[test]
fn snapshots_at_the_same_time_are_ordered_by_id() {
    let a = s("a", "2024-01-01T10:00");
    let b = s("b", "2024-01-01T10:00");
    let policy = Policy {
        keep_last: Some(1),
        ..p()
    };
    let input = entries(&[a, b]);
    let first = input.iter().map(|(id, _)| *id).min().unwrap();
    for order in [input.clone(), input.iter().rev().cloned().collect()] {
        let groups = policy.apply(&order, at("2024-01-02T00:00"), &berlin());
        let kept: Vec<Id> = groups[0].kept().map(|d| d.id).collect();
        assert_eq!(kept, vec![first]);
        assert_eq!(groups[0].removed().count(), 1);
    }
}

#[test]
fn the_test_time_zone_is_berlin() {
    // 02:30 on the spring-forward day is skipped; the fall-back day has 25 hours.
    assert_eq!(at("2024-03-31T02:30"), at("2024-03-31T01:30Z"));
    assert_eq!(at("2024-01-10T00:15"), at("2024-01-09T23:15Z"));
    assert_eq!(at("2024-07-01T12:00"), at("2024-07-01T10:00Z"));
    let day = at("2024-10-28T00:00").duration_since(at("2024-10-27T00:00"));
    assert_eq!(day.as_hours(), 25);
}

#[test]
fn is_empty() {
    assert!(p().is_empty());
    assert!(Policy {
        keep_last: Some(0),
        keep_within: Some(Span::new()),
        group_by: GroupBy::NONE,
        ..p()
    }
    .is_empty());
    assert!(Policy {
        keep_within: Some(Span::new().days(-1)),
        ..p()
    }
    .is_empty());
    assert!(!Policy {
        keep_yearly: Some(1),
        ..p()
    }
    .is_empty());
    assert!(!Policy {
        keep_within: span("1h"),
        ..p()
    }
    .is_empty());
    assert!(!Policy {
        keep_tags: tags(&["x"]),
        ..p()
    }
    .is_empty());
}

#[test]
fn parse_duration_reads_restic_durations() {
    for (text, y, m, w, d, h) in [
        ("1y2m3d4h", 1, 2, 0, 3, 4),
        ("30d", 0, 0, 0, 30, 0),
        ("2w", 0, 0, 2, 0, 0),
        ("4h1y", 1, 0, 0, 0, 4),
        (" 6m ", 0, 6, 0, 0, 0),
        ("0d", 0, 0, 0, 0, 0),
    ] {
        let got = Policy::parse_duration(text).unwrap();
        let want = Span::new().years(y).months(m).weeks(w).days(d).hours(h);
        assert_eq!(got.fieldwise(), want.fieldwise(), "{text}");
    }
    for text in ["1y2m3d4h", "30d", "2w", "4h", "1y1w"] {
        let span = Policy::parse_duration(text).unwrap();
        assert_eq!(Policy::format_duration(span), text);
    }
    assert_eq!(Policy::format_duration(Span::new()), "0h");
    assert_eq!(Policy::format_duration(Span::new().minutes(30)), "30m");
    assert_eq!(
        Policy::format_duration(Span::new().days(1).minutes(30)),
        "1d 30m"
    );
}

#[test]
fn parse_duration_errors_say_what_is_wrong() {
    for (text, says) in [
        ("", "it is empty"),
        ("  ", "it is empty"),
        ("5", "5 has no unit"),
        ("1d5", "5 has no unit"),
        ("d", "expected a number before 'd'"),
        ("-1d", "expected a number before '-'"),
        ("1x", "unknown unit 'x'"),
        ("1D", "unknown unit 'D'"),
        ("1.5d", "unknown unit '.'"),
        ("1 d", "unknown unit ' '"),
        ("1d2d", "unit 'd' appears twice"),
        ("20000y", "20000y is out of range"),
        ("99999999999999999999h", "is out of range"),
    ] {
        let err = Policy::parse_duration(text).unwrap_err().to_string();
        assert!(err.contains(says), "{text:?}: {err}");
        assert!(err.contains("e.g. 1y2m3d4h"), "{text:?}: {err}");
    }
}

#[test]
fn within_longer_than_time_keeps_everything() {
    let policy = Policy {
        keep_within: span("19000y"),
        ..p()
    };
    let input = entries(&[s("a", "1970-01-01T00:00")]);
    let groups = policy.apply(&input, at("2024-01-01T00:00"), &berlin());
    assert!(groups[0].decisions[0].is_kept());
}

#[test]
fn group_by_parses_and_prints() {
    assert_eq!(GroupBy::default().to_string(), "host,paths");
    assert_eq!("host,paths".parse::<GroupBy>().unwrap(), GroupBy::default());
    assert_eq!("".parse::<GroupBy>().unwrap(), GroupBy::NONE);
    assert_eq!("none".parse::<GroupBy>().unwrap(), GroupBy::NONE);
    assert_eq!(GroupBy::NONE.to_string(), "none");
    let all: GroupBy = "app, tags,paths,host".parse().unwrap();
    assert_eq!(all.to_string(), "host,paths,tags,app");
    let err = "hostname".parse::<GroupBy>().unwrap_err().to_string();
    assert!(err.contains("cannot group by \"hostname\""), "{err}");
}

#[test]
fn decisions_serialize_for_json_output() {
    let input = entries(&[s("a", "2024-01-01T10:00").app("kimai")]);
    let policy = Policy {
        keep_within: span("1y2m"),
        group_by: "host,app".parse().unwrap(),
        ..p()
    };
    let groups = policy.apply(&input, at("2024-01-02T00:00"), &berlin());
    let json = serde_json::to_value(&groups).unwrap();
    assert_eq!(
        json[0]["key"],
        serde_json::json!({"hostname": "web", "app": "kimai"})
    );
    assert_eq!(
        json[0]["decisions"][0]["reasons"],
        serde_json::json!(["within 1y2m"])
    );
    assert_eq!(
        json[0]["decisions"][0]["id"],
        serde_json::json!(input[0].0.to_hex())
    );
}

fn plan(
    snaps: &[S],
    damaged: usize,
    by: ForgetBy<'_>,
    filter: &ForgetFilter,
) -> (Result<ForgetPlan>, HashMap<Id, &'static str>) {
    let input = entries(snaps);
    let names = input
        .iter()
        .zip(snaps)
        .map(|((id, _), s)| (*id, s.name))
        .collect();
    let now = at("2024-01-10T00:00");
    (
        plan_forget(input, damaged, by, filter, now, &berlin()),
        names,
    )
}

fn removed(plan: &ForgetPlan, names: &HashMap<Id, &'static str>) -> Vec<&'static str> {
    plan.remove.iter().map(|id| names[id]).collect()
}

fn week() -> Vec<S> {
    vec![
        s("mon", "2024-01-01T10:00"),
        s("tue", "2024-01-02T10:00").tags(&[PROTECTED_TAG]),
        s("wed", "2024-01-03T10:00").tags(&["release"]),
        s("thu", "2024-01-04T10:00").host("db"),
        s("fri", "2024-01-05T10:00"),
    ]
}

#[test]
fn forget_refuses_when_a_snapshot_is_damaged_whatever_the_rules() {
    let keep_last = Policy {
        keep_last: Some(1),
        ..p()
    };
    let named = ["latest".to_string()];
    for by in [ForgetBy::Policy(&keep_last), ForgetBy::Snapshots(&named)] {
        let (got, _) = plan(&week(), 1, by, &ForgetFilter::default());
        let err = got.unwrap_err().to_string();
        assert_eq!(
            err,
            "1 snapshot(s) cannot be read; forget changes nothing (run `cairn check`)"
        );
    }
}

#[test]
fn forget_by_policy_removes_what_no_rule_keeps_and_keeps_protected_and_tagged() {
    let policy = Policy {
        keep_last: Some(1),
        keep_tags: tags(&["release"]),
        group_by: GroupBy::NONE,
        ..p()
    };
    let (got, names) = plan(
        &week(),
        0,
        ForgetBy::Policy(&policy),
        &ForgetFilter::default(),
    );
    let got = got.unwrap();
    assert_eq!(removed(&got, &names), ["thu", "mon"]);
    assert_eq!(got.groups.len(), 1);
    assert_eq!(got.snapshots.len(), 5);
}

#[test]
fn forget_judges_each_group_on_its_own() {
    let policy = Policy {
        keep_last: Some(1),
        group_by: "host".parse().unwrap(),
        ..p()
    };
    let (got, names) = plan(
        &week(),
        0,
        ForgetBy::Policy(&policy),
        &ForgetFilter::default(),
    );
    let got = got.unwrap();
    // "db" keeps its only snapshot; "web" its newest and the protected one.
    assert_eq!(got.groups.len(), 2);
    assert_eq!(removed(&got, &names), ["wed", "mon"]);
}

#[test]
fn forget_looks_only_at_the_filtered_snapshots() {
    let policy = Policy {
        keep_last: Some(1),
        ..p()
    };
    let only_web = ForgetFilter {
        host: Some("web".into()),
        tag: None,
    };
    let (got, names) = plan(&week(), 0, ForgetBy::Policy(&policy), &only_web);
    let got = got.unwrap();
    assert_eq!(got.snapshots.len(), 4);
    assert!(!removed(&got, &names).contains(&"thu"));
    let released = ForgetFilter {
        host: None,
        tag: Some("release".into()),
    };
    let (got, _) = plan(&week(), 0, ForgetBy::Policy(&policy), &released);
    assert!(got.unwrap().remove.is_empty());
}

#[test]
fn forget_by_id_refuses_a_protected_snapshot_and_names_each_once() {
    let snaps = week();
    let input = entries(&snaps);
    let id_of = |name: &str| {
        let i = snaps.iter().position(|s| s.name == name).unwrap();
        input[i].0.to_hex()
    };
    let protected = [id_of("tue")];
    let (got, _) = plan(
        &snaps,
        0,
        ForgetBy::Snapshots(&protected),
        &ForgetFilter::default(),
    );
    let err = got.unwrap_err().to_string();
    assert!(err.contains("is protected; remove the tag first"), "{err}");
    let twice = [id_of("wed"), "latest".into(), id_of("wed")];
    let (got, names) = plan(
        &snaps,
        0,
        ForgetBy::Snapshots(&twice),
        &ForgetFilter::default(),
    );
    let got = got.unwrap();
    assert_eq!(removed(&got, &names), ["wed", "fri"]);
    assert!(got.groups.is_empty());
}

#[test]
fn forget_refuses_an_empty_policy() {
    let (got, _) = plan(&week(), 0, ForgetBy::Policy(&p()), &ForgetFilter::default());
    assert!(got.unwrap_err().to_string().contains("no rule"));
}

#[test]
fn planning_is_pure_so_a_dry_run_changes_nothing() {
    // A dry run is the plan without carrying it out: the same input gives the same
    // plan, and planning takes the snapshots by value and touches no repository.
    let policy = Policy {
        keep_daily: Some(2),
        ..p()
    };
    let by = ForgetBy::Policy(&policy);
    let (a, _) = plan(&week(), 0, by, &ForgetFilter::default());
    let (b, _) = plan(&week(), 0, by, &ForgetFilter::default());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.groups, b.groups);
    assert_eq!(a.remove, b.remove);
}

#[test]
fn the_config_files_retention_table_deserializes_into_a_policy() {
    let policy: Policy = serde_json::from_value(serde_json::json!({
        "keep-last": 3,
        "keep-daily": 7,
        "keep-within": "1y2m",
        "keep-tag": ["release"],
        "group-by": "host,app",
    }))
    .unwrap();
    assert_eq!(
        policy.rules(),
        [
            "keep-last 3",
            "keep-daily 7",
            "keep-within 1y2m",
            "keep-tag release",
            "group-by host,app"
        ]
    );
    let default: Policy = serde_json::from_value(serde_json::json!({})).unwrap();
    assert!(default.is_empty());
    assert_eq!(default.group_by, GroupBy::default());
    for (bad, says) in [
        (
            serde_json::json!({"keep-dayly": 7}),
            "unknown field `keep-dayly`",
        ),
        (
            serde_json::json!({"keep-within": "2 weeks"}),
            "keep-within: invalid duration",
        ),
        (
            serde_json::json!({"keep-tag": [""]}),
            "an entry of keep-tag is empty",
        ),
        (
            serde_json::json!({"group-by": "hostname"}),
            "group-by: cannot group by",
        ),
        (serde_json::json!({"keep-last": -1}), "invalid value"),
    ] {
        let err = serde_json::from_value::<Policy>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}
