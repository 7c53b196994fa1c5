//! Counting the rows of a `mariadb-dump` output as it streams into the backup.
//!
//! `mariadb-dump --single-transaction` reads one consistent snapshot, which no other
//! session can share. Counting rows with `SELECT count(*)` before the dump gives the
//! state of another moment; a busy application makes them differ, and `app verify`
//! would report differences that are not there. The dump itself holds the exact counts:
//! every row is one tuple of an `INSERT INTO `table` VALUES (...),(...);` statement,
//! on one line (mysqldump) or with each tuple on its own line (mariadb-dump 10.11).
//!
//! [`RowCounter`] reads the output byte by byte, in whatever pieces it comes:
//! - a line that starts with ``INSERT INTO ` `` and whose head reaches `` ` VALUES``
//!   names a table (backquotes doubled inside the name);
//! - after it, a tuple starts at each `(` at depth 0 outside string literals, up to the
//!   `;` that ends the statement; string literals are `'...'` with backslash escapes,
//!   which is how the dump writes them (binary values as hex with `--hex-blob`);
//! - lines between `DELIMITER ;;` and `DELIMITER ;` (triggers, routines, events, whose
//!   bodies may hold `INSERT` statements) are not counted.
//!
//! Anything it does not recognise it skips; a dump that ends inside a statement makes
//! the counts unsure, and the caller keeps the counts taken before the dump.

use std::collections::HashMap;

const PREFIX: &[u8] = b"INSERT INTO `";
const VALUES: &[u8] = b"` VALUES";
/// A statement head longer than this is not an `INSERT` the counter understands.
const HEAD_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the start of a line into `head`.
    Head,
    /// In a line that is not counted, up to its end.
    Skip,
    /// In the tuples of an `INSERT` line.
    Values,
}

/// Counts the rows of each table in a dump; see the module documentation.
#[derive(Debug)]
pub struct RowCounter {
    state: State,
    head: Vec<u8>,
    /// The table of the current `INSERT` line (index into `rows`).
    table: usize,
    rows: Vec<(String, u64)>,
    index: HashMap<String, usize>,
    in_string: bool,
    escaped: bool,
    depth: u32,
    in_delimiter: bool,
}

impl Default for RowCounter {
    fn default() -> Self {
        RowCounter {
            state: State::Head,
            head: Vec::new(),
            table: 0,
            rows: Vec::new(),
            index: HashMap::new(),
            in_string: false,
            escaped: false,
            depth: 0,
            in_delimiter: false,
        }
    }
}

impl RowCounter {
    /// A counter at the start of a dump.
    pub fn new() -> RowCounter {
        RowCounter::default()
    }

    /// Reads the next piece of the dump.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.state {
                State::Head => self.head_byte(b),
                State::Skip => {
                    if b == b'\n' {
                        self.state = State::Head;
                    }
                }
                State::Values => self.value_byte(b),
            }
        }
    }

    fn head_byte(&mut self, b: u8) {
        if b == b'\n' {
            let line = std::mem::take(&mut self.head);
            match line.as_slice() {
                b"DELIMITER ;;" => self.in_delimiter = true,
                b"DELIMITER ;" => self.in_delimiter = false,
                _ => {}
            }
            return;
        }
        self.head.push(b);
        let n = self.head.len();
        let prefix_ok = if n <= PREFIX.len() {
            PREFIX.starts_with(&self.head)
        } else {
            true
        };
        // Only the DELIMITER lines matter among lines that are not INSERTs.
        let delimiter = b"DELIMITER ;;".starts_with(&self.head);
        if (!prefix_ok && !delimiter) || n > HEAD_MAX || (self.in_delimiter && !delimiter) {
            self.head.clear();
            self.state = State::Skip;
            return;
        }
        if b == b'S' && n > PREFIX.len() + VALUES.len() && self.head.ends_with(VALUES) {
            let name = &self.head[PREFIX.len()..n - VALUES.len()];
            let name = String::from_utf8_lossy(name).replace("``", "`");
            let next = self.rows.len();
            self.table = *self.index.entry(name.clone()).or_insert(next);
            if self.table == next {
                self.rows.push((name, 0));
            }
            self.head.clear();
            self.depth = 0;
            self.in_string = false;
            self.escaped = false;
            self.state = State::Values;
        }
    }

    fn value_byte(&mut self, b: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'\'' {
                self.in_string = false;
            }
            return;
        }
        match b {
            b'\'' => self.in_string = true,
            b'(' => {
                if self.depth == 0 {
                    self.rows[self.table].1 += 1;
                }
                self.depth += 1;
            }
            b')' => self.depth = self.depth.saturating_sub(1),
            b';' if self.depth == 0 => self.state = State::Skip,
            _ => {}
        }
    }

    /// The rows counted per table, in the order first met; `None` when the dump ended
    /// inside a statement or held a line the counter could not follow.
    pub fn finish(&self) -> Option<Vec<(String, u64)>> {
        (self.state != State::Values).then(|| self.rows.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MariaDB dump 10.19\n\
/*!40101 SET NAMES utf8mb4 */;\n\
DROP TABLE IF EXISTS `kimai2_users`;\n\
CREATE TABLE `kimai2_users` (\n\
  `id` int(11) NOT NULL,\n\
  `name` varchar(60) DEFAULT NULL COMMENT 'who (or what)',\n\
  PRIMARY KEY (`id`)\n\
) ENGINE=InnoDB;\n\
INSERT INTO `kimai2_users` VALUES (1,'a(b'),(2,'it\\'s ) here'),(3,'back\\\\'),(4,NULL);\n\
INSERT INTO `kimai2_users` VALUES\n(5,'x\\ny'),\n(6,'two\nlines; (really)');\n\
INSERT INTO `we``ird` VALUES (1,0x28292C),(2,'(,)');\n\
DELIMITER ;;\n\
/*!50003 CREATE*/ /*!50003 TRIGGER t AFTER INSERT ON `kimai2_users` FOR EACH ROW\n\
INSERT INTO `kimai2_log` VALUES (NEW.id) */;;\n\
DELIMITER ;\n\
INSERT INTO `empty_later` VALUES (7);\n\
-- Dump completed\n";

    fn counts(pieces: &[&[u8]]) -> Option<Vec<(String, u64)>> {
        let mut c = RowCounter::new();
        for p in pieces {
            c.feed(p);
        }
        c.finish()
    }

    #[test]
    fn counts_tuples_whatever_the_pieces() {
        let want = vec![
            ("kimai2_users".to_string(), 6),
            ("we`ird".to_string(), 2),
            ("empty_later".to_string(), 1),
        ];
        let bytes = DUMP.as_bytes();
        assert_eq!(counts(&[bytes]), Some(want.clone()));
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(counts(&singles), Some(want.clone()));
        for size in [2, 3, 7, 13, 64] {
            let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(counts(&pieces), Some(want.clone()), "pieces of {size}");
        }
    }

    #[test]
    fn a_dump_cut_inside_a_statement_is_unsure() {
        let bytes = DUMP.as_bytes();
        let cut = DUMP.find("(2,'it").unwrap() + 4;
        assert_eq!(counts(&[&bytes[..cut]]), None);
        assert_eq!(
            counts(&[b"INSERT INTO `t` VALUES (1,'open\n"]),
            None,
            "ends inside a string"
        );
        assert_eq!(counts(&[b"INSERT INTO `t` VALUES\n(1,'a'),\n"]), None);
        assert_eq!(counts(&[b"no inserts here\n"]), Some(vec![]));
    }
}
