//! Retention: which snapshots a [`Policy`] keeps, and why.
//!
//! [`Policy::apply`] is a pure function of (snapshots, policy, now, time zone): it does no
//! I/O and reads no clock, so `forget`, `forget --dry-run` and the tests all see the same
//! answer for the same input. It returns one [`Group`] per [`GroupKey`], and in it one
//! [`Decision`] per snapshot: kept, with every [`Reason`] that keeps it, or removed (no
//! reason). Deleting anything is the caller's business.
//!
//! The rules follow restic's `forget`, each evaluated on its own over the snapshots of a
//! group sorted newest first (a snapshot kept by one rule still counts for the others):
//!
//! - `keep_last N`: the N newest snapshots.
//! - `keep_hourly`/`daily`/`weekly`/`monthly`/`yearly N`: the newest snapshot of each of the
//!   N most recent hours, days, ISO weeks, months or years *that have a snapshot*; a gap
//!   uses up no count. Buckets are taken in the given time zone, so a day is a local day
//!   across a DST change, and the last days of December may belong to ISO week 1 of the
//!   next year. These rules never look at `now`.
//! - `keep_within D`: every snapshot newer than `now − D`, where D's calendar units are
//!   counted back from `now` in the time zone (`1d` across a DST change is 23 or 25 hours;
//!   `24h` is always 24). Snapshots dated after `now` are kept by it.
//! - `keep_tags`: every snapshot with any of these tags.
//! - A snapshot tagged [`PROTECTED_TAG`] is always kept, whatever the policy.
//! - Restore points (tagged [`RESTORE_POINT_TAG`], taken by an application restore before
//!   it changes anything) are not counted by the policy's rules and not decided by them:
//!   they form a group per installation (host and installation directory), in which the
//!   [`RESTORE_POINTS_KEPT`] newest and every one younger than
//!   [`RESTORE_POINTS_KEPT_DAYS`] days are kept. A restore that went wrong is noticed
//!   within days; a policy of `keep-last 1` must not take away the way back.
//!
//! The same [`Policy`] is what the config file's `[retention]` table deserializes into
//! (kebab-case keys `keep-last` … `keep-yearly`, `keep-within` as a duration string,
//! `keep-tag`, `group-by`; unknown keys refused) and what `forget`'s flags build.
//! [`plan_forget`] holds forget's own rules around the policy: a damaged snapshot stops
//! it, the filters, protected snapshots named by id.
//!
//! Decided against: restic's extra "oldest" keep (when fewer buckets exist than asked
//! for, restic ≥ 0.17 also keeps the oldest snapshot); it surprises more than it helps and
//! is not what the rules say. Deliberately different from restic: an hour that a DST change
//! repeats is two hourly buckets, since they are two real hours apart.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

/// The tag that protects a snapshot from every retention policy.
pub const PROTECTED_TAG: &str = "protected";

/// The tag of a restore point (see the module's text).
pub const RESTORE_POINT_TAG: &str = "restore-point";

/// How many restore points of each installation are kept, the newest.
pub const RESTORE_POINTS_KEPT: usize = 3;

/// Restore points younger than this many days are all kept.
pub const RESTORE_POINTS_KEPT_DAYS: i64 = 7;

/// What to keep. `None` and `Some(0)` both mean "rule not set".
///
/// An empty policy ([`Policy::is_empty`]) keeps everything; callers that forget
/// snapshots must refuse it rather than apply it, as restic does.
///
/// Deserializes from the config file's `[retention]` table: `keep-last` … `keep-yearly`
/// (whole numbers), `keep-within` (a duration string, see [`Policy::parse_duration`]),
/// `keep-tag` (a list of non-empty tags) and `group-by` (see [`GroupBy`]'s `FromStr`);
/// a key it does not know is an error. Errors name the key, so that a caller reporting
/// them at a line and column says everything.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Keep the N newest snapshots.
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent hours that have one.
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent days that have one.
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent ISO weeks that have one.
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent months that have one.
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N most recent years that have one.
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot newer than `now` minus this span (see [`Policy::parse_duration`]).
    /// A span that is zero or negative is no rule.
    #[serde(deserialize_with = "de::within")]
    pub keep_within: Option<Span>,
    /// Keep every snapshot that has any of these tags.
    #[serde(rename = "keep-tag", deserialize_with = "de::tags")]
    pub keep_tags: Vec<String>,
    /// How snapshots are grouped; each group is judged on its own.
    #[serde(deserialize_with = "de::group_by")]
    pub group_by: GroupBy,
}

/// The deserializers of [`Policy`]'s fields that are written as strings.
mod de {
    use super::{GroupBy, Policy};
    use jiff::Span;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    pub(super) fn within<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
        let text = String::deserialize(d)?;
        Policy::parse_duration(&text)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("keep-within: {e}")))
    }

    /// A tag of `keep-tag`: not empty. Checked by a visitor, inside the entry's own
    /// deserializer, so that a deserializer that knows where values are (the config
    /// file's) places the error at the entry rather than at the list.
    struct Tag(String);

    impl<'de> Deserialize<'de> for Tag {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
            d.deserialize_string(TagVisitor)
        }
    }

    struct TagVisitor;

    impl serde::de::Visitor<'_> for TagVisitor {
        type Value = Tag;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, tag: &str) -> Result<Tag, E> {
            if tag.trim().is_empty() {
                return Err(E::custom("an entry of keep-tag is empty"));
            }
            Ok(Tag(tag.to_string()))
        }
    }

    pub(super) fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let tags = Vec::<Tag>::deserialize(d)?;
        Ok(tags.into_iter().map(|t| t.0).collect())
    }

    pub(super) fn group_by<'de, D: Deserializer<'de>>(d: D) -> Result<GroupBy, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| D::Error::custom(format!("group-by: {e}")))
    }
}

impl Policy {
    /// True if no rule is set, so that [`Policy::apply`] would keep every snapshot only
    /// because there is nothing to judge by. `forget` must refuse such a policy.
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        counts.iter().all(|c| c.unwrap_or(0) == 0)
            && self.within().is_none()
            && self.keep_tags.is_empty()
    }

    /// The rules that are set, in the words of the config file and of `forget`'s flags,
    /// as (key, value): `("keep-daily", "7")`, `("keep-within", "14d")`,
    /// `("keep-tag", "release")`, in that order, then `("group-by", …)` when the
    /// grouping is not the default.
    pub fn rule_pairs(&self) -> Vec<(&'static str, String)> {
        let counts = [
            ("keep-last", self.keep_last),
            ("keep-hourly", self.keep_hourly),
            ("keep-daily", self.keep_daily),
            ("keep-weekly", self.keep_weekly),
            ("keep-monthly", self.keep_monthly),
            ("keep-yearly", self.keep_yearly),
        ];
        let mut out: Vec<(&'static str, String)> = counts
            .into_iter()
            .filter_map(|(k, n)| n.map(|n| (k, n.to_string())))
            .collect();
        if let Some(w) = self.keep_within {
            out.push(("keep-within", Policy::format_duration(w)));
        }
        out.extend(self.keep_tags.iter().map(|t| ("keep-tag", t.clone())));
        if self.group_by != GroupBy::default() {
            out.push(("group-by", self.group_by.to_string()));
        }
        out
    }

    /// [`Policy::rule_pairs`] as words: `keep-daily 7`.
    pub fn rules(&self) -> Vec<String> {
        self.rule_pairs()
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect()
    }

    /// Parses a restic-style duration such as `1y2m3d4h`: one or more parts, each a
    /// whole number and a unit, `y` (years), `m` (months, not minutes), `w` (weeks),
    /// `d` (days) or `h` (hours), each unit at most once, in any order.
    pub fn parse_duration(text: &str) -> Result<Span> {
        let bad = |detail: String| {
            Error::Invalid(format!(
                "invalid duration {text:?}: {detail}; write a number and a unit for each part: \
                 y (years), m (months), w (weeks), d (days), h (hours), e.g. 1y2m3d4h"
            ))
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty".into()));
        }
        let mut span = Span::new();
        let mut seen = String::new();
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (number, after) = rest.split_at(digits);
            let mut chars = after.chars();
            let unit = chars.next();
            let unit = match (digits, unit) {
                (0, Some(c)) => return Err(bad(format!("expected a number before {c:?}"))),
                (_, None) => return Err(bad(format!("{number} has no unit"))),
                (_, Some(c)) => c,
            };
            if seen.contains(unit) {
                return Err(bad(format!("unit {unit:?} appears twice")));
            }
            let out_of_range = || bad(format!("{number}{unit} is out of range"));
            let n: i64 = number.parse().map_err(|_| out_of_range())?;
            span = match unit {
                'y' => span.try_years(n),
                'm' => span.try_months(n),
                'w' => span.try_weeks(n),
                'd' => span.try_days(n),
                'h' => span.try_hours(n),
                other => return Err(bad(format!("unknown unit {other:?}"))),
            }
            .map_err(|_| out_of_range())?;
            seen.push(unit);
            rest = chars.as_str();
        }
        Ok(span)
    }

    /// Writes a span the way [`Policy::parse_duration`] reads it (`1y2m3d4h`, zero as
    /// `0h`). A span with units finer than hours, or a negative one, is written in jiff's
    /// friendly format instead (`30m` there would mean minutes).
    pub fn format_duration(span: Span) -> String {
        let finer = [
            span.get_minutes(),
            span.get_seconds(),
            span.get_milliseconds(),
            span.get_microseconds(),
            span.get_nanoseconds(),
        ];
        if span.is_negative() || finer.iter().any(|&n| n != 0) {
            return format!("{span:#}");
        }
        let parts = [
            (i64::from(span.get_years()), 'y'),
            (i64::from(span.get_months()), 'm'),
            (i64::from(span.get_weeks()), 'w'),
            (i64::from(span.get_days()), 'd'),
            (i64::from(span.get_hours()), 'h'),
        ];
        let text: String = parts
            .iter()
            .filter(|(n, _)| *n != 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        if text.is_empty() {
            "0h".into()
        } else {
            text
        }
    }

    /// Decides, for every snapshot, whether the policy keeps it and why.
    ///
    /// Groups come sorted by key, decisions within a group newest first (ties broken by
    /// id); every snapshot appears in exactly one group. `now` and `tz` are used only by
    /// `keep_within` and to place snapshots in local hours, days, weeks, months and years;
    /// count-based rules give the same answer for any `now`. An empty policy keeps every
    /// snapshot with [`Reason::EmptyPolicy`] (refuse it before calling this).
    pub fn apply(&self, snapshots: &[(Id, Snapshot)], now: Timestamp, tz: &TimeZone) -> Vec<Group> {
        let mut groups: BTreeMap<GroupKey, Vec<&(Id, Snapshot)>> = BTreeMap::new();
        for entry in snapshots {
            let key = match entry.1.has_tag(RESTORE_POINT_TAG) {
                true => GroupKey::restore_points(&entry.1),
                false => self.group_by.key(&entry.1),
            };
            groups.entry(key).or_default().push(entry);
        }
        // The cutoff of `keep_within`. If it lies before the earliest representable
        // instant, every snapshot is within.
        let cutoff = self.within().map(|span| {
            now.to_zoned(tz.clone())
                .checked_sub(span)
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::MIN)
        });
        groups
            .into_iter()
            .map(|(key, mut members)| {
                members.sort_by(|a, b| b.1.time.cmp(&a.1.time).then_with(|| a.0.cmp(&b.0)));
                let decisions = match key.restore_points {
                    Some(_) => restore_point_decisions(&members, now),
                    None => self.decide(&members, cutoff, tz),
                };
                Group { key, decisions }
            })
            .collect()
    }

    /// The `keep_within` span, if it is a rule (positive).
    fn within(&self) -> Option<Span> {
        self.keep_within.filter(|s| s.is_positive())
    }

    /// Decides one group, `members` sorted newest first.
    fn decide(
        &self,
        members: &[&(Id, Snapshot)],
        cutoff: Option<Timestamp>,
        tz: &TimeZone,
    ) -> Vec<Decision> {
        let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); members.len()];
        if self.is_empty() {
            for r in &mut reasons {
                r.push(Reason::EmptyPolicy);
            }
        } else {
            // Rules run in the order reasons are listed: protected, last, the buckets from
            // finest to coarsest, within, tags.
            for (i, (_, snap)) in members.iter().enumerate() {
                if snap.has_tag(PROTECTED_TAG) {
                    reasons[i].push(Reason::Protected);
                }
            }
            let last = self.keep_last.unwrap_or(0) as usize;
            for (i, r) in reasons.iter_mut().take(last).enumerate() {
                r.push(Reason::Last(i as u32 + 1));
            }
            let local: Vec<(DateTime, Offset)> = members
                .iter()
                .map(|(_, s)| (tz.to_datetime(s.time), tz.to_offset(s.time)))
                .collect();
            // The offset is part of the hour so that the hour a DST change repeats makes
            // two buckets; whole days, weeks, months and years are local calendar units.
            let buckets = local.iter();
            keep_buckets(
                self.keep_hourly,
                buckets
                    .clone()
                    .map(|(dt, off)| (dt.date(), dt.hour(), *off)),
                &mut reasons,
                Reason::Hourly,
            );
            keep_buckets(
                self.keep_daily,
                buckets.clone().map(|(dt, _)| dt.date()),
                &mut reasons,
                Reason::Daily,
            );
            keep_buckets(
                self.keep_weekly,
                buckets.clone().map(|(dt, _)| {
                    let week = dt.date().iso_week_date();
                    (week.year(), week.week())
                }),
                &mut reasons,
                Reason::Weekly,
            );
            keep_buckets(
                self.keep_monthly,
                buckets.clone().map(|(dt, _)| (dt.year(), dt.month())),
                &mut reasons,
                Reason::Monthly,
            );
            keep_buckets(
                self.keep_yearly,
                buckets.map(|(dt, _)| dt.year()),
                &mut reasons,
                Reason::Yearly,
            );
            if let (Some(span), Some(cutoff)) = (self.within(), cutoff) {
                for (i, (_, snap)) in members.iter().enumerate() {
                    if snap.time > cutoff {
                        reasons[i].push(Reason::Within(span));
                    }
                }
            }
            for (i, (_, snap)) in members.iter().enumerate() {
                for (t, tag) in self.keep_tags.iter().enumerate() {
                    // A tag given twice is one reason.
                    if snap.has_tag(tag) && !self.keep_tags[..t].contains(tag) {
                        reasons[i].push(Reason::Tag(tag.clone()));
                    }
                }
            }
        }
        members
            .iter()
            .zip(reasons)
            .map(|((id, snap), reasons)| Decision {
                id: *id,
                time: snap.time,
                reasons,
            })
            .collect()
    }
}

/// Decides the restore points of one installation, `members` sorted newest first: the
/// [`RESTORE_POINTS_KEPT`] newest, those younger than [`RESTORE_POINTS_KEPT_DAYS`] days
/// and the protected ones are kept.
fn restore_point_decisions(members: &[&(Id, Snapshot)], now: Timestamp) -> Vec<Decision> {
    let cutoff = now
        .checked_sub(jiff::SignedDuration::from_hours(
            RESTORE_POINTS_KEPT_DAYS * 24,
        ))
        .unwrap_or(Timestamp::MIN);
    members
        .iter()
        .enumerate()
        .map(|(i, (id, snap))| {
            let mut reasons = Vec::new();
            if snap.has_tag(PROTECTED_TAG) {
                reasons.push(Reason::Protected);
            }
            if i < RESTORE_POINTS_KEPT {
                reasons.push(Reason::RestorePoint(i as u32 + 1));
            }
            if snap.time > cutoff {
                reasons.push(Reason::RestorePointRecent);
            }
            Decision {
                id: *id,
                time: snap.time,
                reasons,
            }
        })
        .collect()
}

/// Gives `reason(n)` to the newest snapshot of each of the `count` most recent buckets.
/// `keys` is each snapshot's bucket, newest snapshot first. A set, not a comparison with
/// the previous key, so a bucket met again later (local time running backwards) is not
/// counted twice.
fn keep_buckets<K: Eq + Hash>(
    count: Option<u32>,
    keys: impl Iterator<Item = K>,
    reasons: &mut [Vec<Reason>],
    reason: fn(u32) -> Reason,
) {
    let count = count.unwrap_or(0) as usize;
    let mut seen = HashSet::new();
    for (i, key) in keys.enumerate() {
        if seen.len() >= count {
            break;
        }
        if seen.insert(key) {
            reasons[i].push(reason(seen.len() as u32));
        }
    }
}

/// Which snapshot fields make up a group. With none, all snapshots form one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the set of backed-up paths.
    pub paths: bool,
    /// Group by the set of tags.
    pub tags: bool,
    /// Group by application front-end.
    pub app: bool,
}

impl GroupBy {
    /// No grouping: all snapshots form one group.
    pub const NONE: GroupBy = GroupBy {
        host: false,
        paths: false,
        tags: false,
        app: false,
    };

    /// The group key of `snap`. Paths and tags are sorted and deduplicated, so their
    /// order in the snapshot does not matter.
    pub fn key(&self, snap: &Snapshot) -> GroupKey {
        let set = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        };
        GroupKey {
            hostname: self.host.then(|| snap.hostname.clone()),
            paths: self.paths.then(|| set(&snap.paths)),
            tags: self.tags.then(|| set(&snap.tags)),
            app: self.app.then(|| snap.app.clone()),
            restore_points: None,
        }
    }
}

impl Default for GroupBy {
    /// Host and paths, as restic.
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
            app: false,
        }
    }
}

impl FromStr for GroupBy {
    type Err = Error;

    /// Parses a comma-separated list of `host`, `paths`, `tags`, `app`; `""` or `none`
    /// for no grouping.
    fn from_str(s: &str) -> Result<Self> {
        let mut by = GroupBy::NONE;
        let s = s.trim();
        if s.is_empty() || s == "none" {
            return Ok(by);
        }
        for part in s.split(',').map(str::trim) {
            match part {
                "host" => by.host = true,
                "paths" => by.paths = true,
                "tags" => by.tags = true,
                "app" => by.app = true,
                other => {
                    return Err(Error::Invalid(format!(
                        "cannot group by {other:?}: use host, paths, tags and app, \
                         separated by commas, or none"
                    )))
                }
            }
        }
        Ok(by)
    }
}

impl fmt::Display for GroupBy {
    /// The form [`GroupBy::from_str`] reads: `host,paths`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.host, "host"),
            (self.paths, "paths"),
            (self.tags, "tags"),
            (self.app, "app"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// What the snapshots of one group share. A field is `None` when the policy does not
/// group by it; `app` is `Some(None)` for the group of snapshots made by no application.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    /// The host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The backed-up paths, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The tags, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The application front-end, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<Option<String>>,
    /// For the restore points of one installation: its host and directory (then the
    /// other fields are unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_points: Option<String>,
}

impl GroupKey {
    /// The group of the restore point `snap`: its installation, `HOST:DIR`.
    fn restore_points(snap: &Snapshot) -> GroupKey {
        let install = snap
            .manifest
            .as_ref()
            .and_then(|m| m.get("install"))
            .and_then(|i| i.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| snap.paths.join(" "));
        GroupKey {
            restore_points: Some(format!("{}:{install}", snap.hostname)),
            ..GroupKey::default()
        }
    }
}

impl fmt::Display for GroupKey {
    /// `host web, paths [/etc /srv], tags [], app kimai`, or `(all snapshots)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(install) = &self.restore_points {
            return write!(f, "restore points of {install}");
        }
        let mut parts = Vec::new();
        if let Some(host) = &self.hostname {
            parts.push(format!("host {host}"));
        }
        if let Some(paths) = &self.paths {
            parts.push(format!("paths [{}]", paths.join(" ")));
        }
        if let Some(tags) = &self.tags {
            parts.push(format!("tags [{}]", tags.join(" ")));
        }
        match &self.app {
            Some(Some(app)) => parts.push(format!("app {app}")),
            Some(None) => parts.push("app (none)".into()),
            None => {}
        }
        if parts.is_empty() {
            f.write_str("(all snapshots)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The snapshots of one group and what the policy decided for each.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// What the group's snapshots share.
    pub key: GroupKey,
    /// One decision per snapshot, newest first.
    pub decisions: Vec<Decision>,
}

impl Group {
    /// The decisions that keep their snapshot.
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.is_kept())
    }

    /// The decisions that remove their snapshot.
    pub fn removed(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.is_kept())
    }
}

/// What the policy decided for one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The snapshot.
    pub id: Id,
    /// Its time.
    pub time: Timestamp,
    /// Why it is kept, in rule order; empty if it is removed.
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// True if some rule keeps the snapshot.
    pub fn is_kept(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Why a snapshot is kept. Shown (and serialized) as `protected`, `last 1`, `hourly 2`,
/// `daily 3`, `weekly 1`, `monthly 1`, `yearly 1`, `within 30d`, `tag db` or
/// `empty policy`; the number is the snapshot's rank among those its rule keeps.
#[derive(Clone, Debug)]
pub enum Reason {
    /// Tagged [`PROTECTED_TAG`].
    Protected,
    /// The n-th newest snapshot.
    Last(u32),
    /// Newest of the n-th most recent hour with snapshots.
    Hourly(u32),
    /// Newest of the n-th most recent day with snapshots.
    Daily(u32),
    /// Newest of the n-th most recent ISO week with snapshots.
    Weekly(u32),
    /// Newest of the n-th most recent month with snapshots.
    Monthly(u32),
    /// Newest of the n-th most recent year with snapshots.
    Yearly(u32),
    /// Newer than now minus this span.
    Within(Span),
    /// Has this tag.
    Tag(String),
    /// The policy has no rule; see [`Policy::is_empty`].
    EmptyPolicy,
    /// The n-th newest restore point of its installation.
    RestorePoint(u32),
    /// A restore point younger than [`RESTORE_POINTS_KEPT_DAYS`] days.
    RestorePointRecent,
}

impl PartialEq for Reason {
    // By hand: jiff's `Span` compares only field by field, through `fieldwise()`.
    fn eq(&self, other: &Self) -> bool {
        use Reason::*;
        match (self, other) {
            (Protected, Protected)
            | (EmptyPolicy, EmptyPolicy)
            | (RestorePointRecent, RestorePointRecent) => true,
            (RestorePoint(a), RestorePoint(b)) => a == b,
            (Last(a), Last(b))
            | (Hourly(a), Hourly(b))
            | (Daily(a), Daily(b))
            | (Weekly(a), Weekly(b))
            | (Monthly(a), Monthly(b))
            | (Yearly(a), Yearly(b)) => a == b,
            (Within(a), Within(b)) => a.fieldwise() == b.fieldwise(),
            (Tag(a), Tag(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Reason {}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Protected => f.write_str("protected"),
            Reason::RestorePoint(n) => write!(f, "restore point {n}"),
            Reason::RestorePointRecent => {
                write!(f, "restore point within {RESTORE_POINTS_KEPT_DAYS}d")
            }
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Hourly(n) => write!(f, "hourly {n}"),
            Reason::Daily(n) => write!(f, "daily {n}"),
            Reason::Weekly(n) => write!(f, "weekly {n}"),
            Reason::Monthly(n) => write!(f, "monthly {n}"),
            Reason::Yearly(n) => write!(f, "yearly {n}"),
            Reason::Within(span) => write!(f, "within {}", Policy::format_duration(*span)),
            Reason::Tag(tag) => write!(f, "tag {tag}"),
            Reason::EmptyPolicy => f.write_str("empty policy"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which snapshots `forget` looks at: all, or those of one host, or with one tag.
#[derive(Clone, Debug, Default)]
pub struct ForgetFilter {
    /// Only snapshots of this host.
    pub host: Option<String>,
    /// Only snapshots with this tag.
    pub tag: Option<String>,
}

/// What `forget` removes: what a policy does not keep, or snapshots named by id.
#[derive(Clone, Copy, Debug)]
pub enum ForgetBy<'a> {
    /// Every snapshot the policy keeps for no reason.
    Policy(&'a Policy),
    /// These snapshots (`latest` or id prefixes, as [`crate::repository::select_snapshot`] takes
    /// them).
    Snapshots(&'a [String]),
}

/// What `forget` decided; carrying it out (or not, for a dry run) is the caller's.
#[derive(Clone, Debug, Default)]
pub struct ForgetPlan {
    /// The snapshots the filter let through, as given.
    pub snapshots: Vec<(Id, Snapshot)>,
    /// The policy's decisions per group; empty when snapshots were named.
    pub groups: Vec<Group>,
    /// The snapshots to remove, each once: in the groups' order for a policy, in the
    /// order named otherwise.
    pub remove: Vec<Id>,
}

/// Decides what `forget` removes among `snapshots`, the snapshots of the repository
/// that could be read; `damaged` is how many could not. Pure: it reads no clock (`now`
/// and `tz` are [`Policy::apply`]'s) and changes nothing.
///
/// Refused, with nothing decided:
/// - any damaged snapshot: the rules count snapshots, and without all of them they
///   could remove too much;
/// - an empty policy (see [`Policy::is_empty`]);
/// - a named snapshot that is not among those the filter lets through, or is tagged
///   [`PROTECTED_TAG`] (a policy keeps those; naming one is a mistake, not a wish).
pub fn plan_forget(
    snapshots: Vec<(Id, Snapshot)>,
    damaged: usize,
    by: ForgetBy<'_>,
    filter: &ForgetFilter,
    now: Timestamp,
    tz: &TimeZone,
) -> Result<ForgetPlan> {
    if damaged > 0 {
        return Err(Error::Invalid(format!(
            "{damaged} snapshot(s) cannot be read; forget changes nothing (run `cairn check`)"
        )));
    }
    let snapshots: Vec<(Id, Snapshot)> = snapshots
        .into_iter()
        .filter(|(_, sn)| filter.host.as_ref().is_none_or(|h| &sn.hostname == h))
        .filter(|(_, sn)| filter.tag.as_ref().is_none_or(|t| sn.has_tag(t)))
        .collect();
    let mut plan = ForgetPlan::default();
    match by {
        ForgetBy::Policy(policy) => {
            if policy.is_empty() {
                return Err(Error::Invalid(
                    "the retention policy has no rule: forget removes nothing by it".into(),
                ));
            }
            plan.groups = policy.apply(&snapshots, now, tz);
            plan.remove = plan
                .groups
                .iter()
                .flat_map(|g| g.removed().map(|d| d.id))
                .collect();
        }
        ForgetBy::Snapshots(specs) => {
            for spec in specs {
                let (id, sn) = crate::repository::select_snapshot(snapshots.clone(), &[], spec)?;
                if sn.has_tag(PROTECTED_TAG) {
                    return Err(Error::Invalid(format!(
                        "snapshot {} is protected; remove the tag first (cairn tag {} --remove {})",
                        id.short(),
                        id.short(),
                        PROTECTED_TAG
                    )));
                }
                if !plan.remove.contains(&id) {
                    plan.remove.push(id);
                }
            }
        }
    }
    plan.snapshots = snapshots;
    Ok(plan)
}

#[cfg(test)]
mod tests;
