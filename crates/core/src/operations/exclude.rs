//! Exclude patterns, as `--exclude` and `--exclude-file` give them.
//!
//! A pattern is a glob (`*`, `?`, `[...]`, `**`) matched against the absolute path of
//! every file and directory met during a walk. `*` does not cross `/`; `**` does.
//! - A pattern starting with `/` is anchored: `/home/*/.cache` matches exactly there.
//! - Any other pattern may match at any depth: `*.tmp` matches `/a/b/x.tmp`, and
//!   `node_modules` matches every directory of that name.
//! - A pattern ending in `/` matches directories only.
//!
//! An excluded directory is not entered.

use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// Compiled exclude patterns.
#[derive(Debug, Clone)]
pub struct Excludes {
    any: GlobSet,
    dirs_only: GlobSet,
    empty: bool,
}

impl Excludes {
    /// Compiles patterns; an invalid pattern is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let mut any = GlobSetBuilder::new();
        let mut dirs_only = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (body, dir_only) = match p.strip_suffix('/') {
                Some(b) if !b.is_empty() => (b, true),
                _ => (p, false),
            };
            let full = if body.starts_with('/') {
                body.to_string()
            } else {
                format!("**/{body}")
            };
            let glob = GlobBuilder::new(&full)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Invalid(format!("invalid exclude pattern {p:?}: {e}")))?;
            if dir_only {
                dirs_only.add(glob);
            } else {
                any.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Invalid(format!("exclude patterns: {e}")))
        };
        let any = build(any)?;
        let dirs_only = build(dirs_only)?;
        let empty = any.is_empty() && dirs_only.is_empty();
        Ok(Excludes {
            any,
            dirs_only,
            empty,
        })
    }

    /// Reads patterns from a file: one per line, `#` starts a comment line.
    pub fn read_file(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// True when `path` (absolute) is excluded.
    pub fn is_excluded(&self, path: &Path, is_dir: bool) -> bool {
        if self.empty {
            return false;
        }
        self.any.is_match(path) || (is_dir && self.dirs_only.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excludes {
        Excludes::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn patterns_match_as_documented() {
        let e = ex(&["*.tmp", "/home/*/.cache", "node_modules", "build/"]);
        assert!(e.is_excluded(Path::new("/a/b/x.tmp"), false));
        assert!(!e.is_excluded(Path::new("/a/b/x.tmpl"), false));
        assert!(e.is_excluded(Path::new("/home/ann/.cache"), true));
        assert!(!e.is_excluded(Path::new("/srv/home/ann/.cache"), true));
        assert!(e.is_excluded(Path::new("/src/app/node_modules"), true));
        assert!(e.is_excluded(Path::new("/x/build"), true));
        assert!(!e.is_excluded(Path::new("/x/build"), false));
        assert!(Excludes::new(&["[".to_string()]).is_err());
        assert!(!ex(&[]).is_excluded(Path::new("/a"), false));
    }
}
