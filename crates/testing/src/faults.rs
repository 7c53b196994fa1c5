//! [`Faulty`]: a backend that fails, damages, delays and reorders operations at random.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::{Backend, BackendError, FileKind, Staged};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A fault [`Faulty`] can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The operation fails with EIO before it reaches storage.
    Eio,
    /// A write fails with ENOSPC before it reaches storage.
    NoSpace,
    /// The connection is reset before the operation reaches storage.
    Reset,
    /// The operation is done, but the answer is lost: the caller sees a reset
    /// connection. (A write is stored whole; a remove has removed.)
    LostAnswer,
    /// A read returns fewer bytes than asked for, without an error: a backend that
    /// breaks its contract.
    ShortRead,
    /// A read returns the bytes with one bit flipped: decay on the way.
    FlippedBit,
    /// The operation waits up to 20 ms first, so concurrent operations finish in
    /// another order.
    Delay,
}

impl Fault {
    /// Faults that may hit a write.
    const WRITE: [Fault; 5] = [
        Fault::Eio,
        Fault::NoSpace,
        Fault::Reset,
        Fault::LostAnswer,
        Fault::Delay,
    ];
    /// Faults that may hit a read.
    const READ: [Fault; 5] = [
        Fault::Eio,
        Fault::Reset,
        Fault::ShortRead,
        Fault::FlippedBit,
        Fault::Delay,
    ];
    /// Faults that may hit a list or a remove.
    const OTHER: [Fault; 4] = [Fault::Eio, Fault::Reset, Fault::LostAnswer, Fault::Delay];
}

/// Wraps a backend and, once [`Faulty::arm`]ed, injects a [`Fault`] into each operation
/// with probability `rate`, chosen from those that fit the operation: writes may fail
/// (EIO, ENOSPC, reset) or be stored with the answer lost; reads may fail, come back
/// short or with a flipped bit; lists and removes may fail or lose their answer; any of
/// them may be delayed. Lists always come back shuffled. The choices follow `seed`, so
/// a failing case can be replayed (with one thread; several threads interleave).
///
/// A write never leaves part of a file under its name: every backend writes atomically
/// (see the [`Backend`] contract). Partial writes are what a full disk does to a real
/// local backend's temporary files; the tests of a full disk cover them.
///
/// A file written piece by piece ([`Backend::stage`], where the inner backend offers it)
/// draws one random write fault when it is started, which strikes at one of its first
/// appends (after half of that append reached the inner file, as a full disk does) or at
/// its commit; a lost answer is a commit done whose answer is lost. A planned write
/// fault strikes at the next commit of a staged file of its kind.
#[derive(Debug)]
pub struct Faulty {
    inner: Arc<dyn Backend>,
    dice: Arc<Dice>,
}

/// What decides the faults, shared with the staged files a [`Faulty`] hands out.
#[derive(Debug)]
struct Dice {
    rate: f64,
    armed: AtomicBool,
    rng: Mutex<SmallRng>,
    injected: Mutex<BTreeMap<Fault, u64>>,
    /// Faults planned with [`Faulty::plan`]: (operation, kind, fault).
    planned: Mutex<Vec<(Op, FileKind, Fault)>>,
}

/// An operation of the [`Backend`] port, for [`Faulty::plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// [`Backend::write`], and a file written piece by piece ([`Backend::stage`]).
    Write,
    /// [`Backend::read`] and [`Backend::read_range`].
    Read,
    /// [`Backend::list`].
    List,
    /// [`Backend::remove`].
    Remove,
}

impl Faulty {
    /// Wraps `inner`, unarmed: every operation goes through untouched until
    /// [`Faulty::arm`].
    pub fn new(inner: Arc<dyn Backend>, rate: f64, seed: u64) -> Faulty {
        Faulty {
            inner,
            dice: Arc::new(Dice {
                rate,
                armed: AtomicBool::new(false),
                rng: Mutex::new(SmallRng::seed_from_u64(seed)),
                injected: Mutex::new(BTreeMap::new()),
                planned: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Injects `fault` into the next `op` on a file of `kind`, armed or not, whatever
    /// the rate (for a test that needs one fault at one place, such as the answer of a
    /// snapshot's write lost).
    pub fn plan(&self, op: Op, kind: FileKind, fault: Fault) {
        self.dice.planned.lock().unwrap().push((op, kind, fault));
    }

    /// Starts injecting faults.
    pub fn arm(&self) {
        self.dice.armed.store(true, Ordering::SeqCst);
    }

    /// Stops injecting faults.
    pub fn disarm(&self) {
        self.dice.armed.store(false, Ordering::SeqCst);
    }

    /// How many faults of each kind were injected so far.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.dice.injected.lock().unwrap().clone()
    }

    fn draw(&self, op: Op, kind: FileKind, choices: &[Fault]) -> Option<Fault> {
        self.dice.draw(op, kind, choices, true, true)
    }

    fn random_index(&self, len: usize) -> usize {
        self.dice.random_index(len)
    }
}

impl Dice {
    /// The fault for the next `op` on a file of `kind`, if any: a planned one (when
    /// `planned`), else one drawn from `choices` when armed (and `random`).
    fn draw(
        &self,
        op: Op,
        kind: FileKind,
        choices: &[Fault],
        planned: bool,
        random: bool,
    ) -> Option<Fault> {
        let planned = match planned {
            false => None,
            true => {
                let mut planned = self.planned.lock().unwrap();
                let i = planned.iter().position(|p| p.0 == op && p.1 == kind);
                i.map(|i| planned.remove(i).2)
            }
        };
        let (fault, delay) = {
            let mut rng = self.rng.lock().unwrap();
            let delay = Duration::from_micros(rng.random_range(0..20_000));
            match planned {
                Some(f) => (f, delay),
                None if !random || !self.armed.load(Ordering::SeqCst) => return None,
                None if !rng.random_bool(self.rate) => return None,
                None => (choices[rng.random_range(0..choices.len())], delay),
            }
        };
        *self.injected.lock().unwrap().entry(fault).or_default() += 1;
        if fault == Fault::Delay {
            std::thread::sleep(delay);
            return None;
        }
        Some(fault)
    }

    fn random_index(&self, len: usize) -> usize {
        self.rng.lock().unwrap().random_range(0..len.max(1))
    }
}

fn failure(fault: Fault, what: String) -> BackendError {
    let source = match fault {
        Fault::Eio => io::Error::from_raw_os_error(5),
        Fault::NoSpace => io::Error::from_raw_os_error(28),
        _ => io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"),
    };
    BackendError::io(format!("{what} (fault injected by the test)"), source)
}

impl Faulty {
    /// A read's result after `fault`.
    fn damage_read(
        &self,
        fault: Option<Fault>,
        what: String,
        read: impl FnOnce() -> Result<Vec<u8>, BackendError>,
    ) -> Result<Vec<u8>, BackendError> {
        match fault {
            None | Some(Fault::Delay) => read(),
            Some(Fault::ShortRead) => {
                let mut bytes = read()?;
                let keep = self.random_index(bytes.len());
                bytes.truncate(keep);
                Ok(bytes)
            }
            Some(Fault::FlippedBit) => {
                let mut bytes = read()?;
                if !bytes.is_empty() {
                    let i = self.random_index(bytes.len());
                    bytes[i] ^= 1 << (i % 8);
                }
                Ok(bytes)
            }
            Some(f) => Err(failure(f, what)),
        }
    }
}

impl Backend for Faulty {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<(), BackendError> {
        self.inner.create()
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        let what = || format!("writing {kind:?} file {name}");
        match self.draw(Op::Write, kind, &Fault::WRITE) {
            None => self.inner.write(kind, name, data),
            Some(Fault::LostAnswer) => {
                self.inner.write(kind, name, data)?;
                Err(failure(Fault::LostAnswer, what()))
            }
            Some(f) => Err(failure(f, what())),
        }
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        let fault = self.draw(Op::Read, kind, &Fault::READ);
        self.damage_read(fault, format!("reading {kind:?} file {name}"), || {
            self.inner.read(kind, name)
        })
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        let fault = self.draw(Op::Read, kind, &Fault::READ);
        self.damage_read(
            fault,
            format!("reading {kind:?} file {name} at {offset}"),
            || self.inner.read_range(kind, name, offset, len),
        )
    }

    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>, BackendError> {
        let Some(inner) = self.inner.stage(kind)? else {
            return Ok(None);
        };
        // A random fault is drawn now; a planned one at the commit, so that a staged
        // file dropped unused (merged into another) does not use it up.
        let fault = self.dice.draw(Op::Write, kind, &Fault::WRITE, false, true);
        // The append that fails (0 = the first), or None for the commit.
        let at = match self.random_index(4) {
            3 => None,
            n => Some(n),
        };
        Ok(Some(Box::new(FaultyStaged {
            inner,
            dice: self.dice.clone(),
            kind,
            fault,
            at,
            appends: 0,
        })))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        let what = || format!("listing {kind:?} files");
        let mut files = match self.draw(Op::List, kind, &Fault::OTHER) {
            None => self.inner.list(kind)?,
            Some(Fault::LostAnswer) => {
                self.inner.list(kind)?;
                return Err(failure(Fault::LostAnswer, what()));
            }
            Some(f) => return Err(failure(f, what())),
        };
        files.shuffle(&mut *self.dice.rng.lock().unwrap());
        Ok(files)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        let what = || format!("removing {kind:?} file {name}");
        match self.draw(Op::Remove, kind, &Fault::OTHER) {
            None => self.inner.remove(kind, name),
            Some(Fault::LostAnswer) => {
                self.inner.remove(kind, name)?;
                Err(failure(Fault::LostAnswer, what()))
            }
            Some(f) => Err(failure(f, what())),
        }
    }

    fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, BackendError> {
        self.inner.remove_stale_temp_files(older_than)
    }

    fn parallelism(&self) -> usize {
        self.inner.parallelism()
    }
}

/// A staged file of [`Faulty`]: fails at one append or at its commit, as drawn.
struct FaultyStaged {
    inner: Box<dyn Staged>,
    dice: Arc<Dice>,
    kind: FileKind,
    /// The fault drawn when the file was started (never `Delay`: that already waited).
    fault: Option<Fault>,
    /// The append that fails, or None for the commit.
    at: Option<usize>,
    appends: usize,
}

impl Staged for FaultyStaged {
    fn append(&mut self, data: &[u8]) -> Result<(), BackendError> {
        let n = self.appends;
        self.appends += 1;
        match self.fault {
            Some(f) if f != Fault::LostAnswer && self.at == Some(n) => {
                self.inner.append(&data[..data.len() / 2])?;
                Err(failure(
                    f,
                    format!("writing {:?} file (staged, append {n})", self.kind),
                ))
            }
            _ => self.inner.append(data),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.inner.read_at(offset, buf)
    }

    fn commit(self: Box<Self>, name: &str) -> Result<(), BackendError> {
        let what = format!("writing {:?} file {name} (staged)", self.kind);
        let planned = self.dice.draw(Op::Write, self.kind, &[], true, false);
        match planned.or(self.fault) {
            None => self.inner.commit(name),
            Some(Fault::LostAnswer) => {
                self.inner.commit(name)?;
                Err(failure(Fault::LostAnswer, what))
            }
            // The append chosen to fail never came: the file was shorter.
            Some(f) => Err(failure(f, what)),
        }
    }
}
