//! Writes the seed corpus in `fuzz/corpus/<target>/`: real encodings of every format,
//! built with the same code paths (or, where those are private, the byte layouts of
//! docs/format.md) and checked against the decoders before they are written.
//!
//! Sealed seeds (packs, sealed files) are sealed with `FIXED_KEY`, the key the
//! `pack_file` and `sealed_file` targets use, so the fuzzer starts past authentication.
//! Nonces are random, so re-running changes those files' bytes (not their structure).
//!
//! Run from `fuzz/`: `cargo run --example gen_corpus` (writes into `corpus/`).

use std::fs;
use std::path::Path;

use cairn_core::fuzzing;
use cairn_core::{
    BlobKind, ChunkerParams, Extent, Id, KdfParams, KeyFile, Node, NodeKind, RepoConfig, Time,
    Tree, Xattr,
};
use cairn_crypto::{keyed_hash, seal, Key};

/// Must match `FIXED_KEY` in fuzz_targets/pack_file.rs and sealed_file.rs.
const FIXED_KEY: [u8; 32] = [0x42; 32];
const ENVELOPE_LEN: usize = 77;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
    println!("corpus/{target}/{name}: {} bytes", bytes.len());
}

fn ad(magic: &[u8; 4], part: &[u8]) -> Vec<u8> {
    let mut ad = magic.to_vec();
    ad.push(1);
    ad.extend_from_slice(part);
    ad
}

/// `wrap kind 1 || epoch 0 || seal(wrap_key, magic || 1 || "envelope" || 1 || 0u32, file_key)`.
fn envelope(magic: &[u8; 4], wrap: &Key, file_key: &Key) -> Vec<u8> {
    let mut env = vec![1u8, 0, 0, 0, 0];
    let mut a = ad(magic, b"envelope");
    a.extend_from_slice(&env);
    env.extend_from_slice(&seal(wrap, &a, file_key.as_bytes()));
    assert_eq!(env.len(), ENVELOPE_LEN);
    env
}

fn sealed_file(magic: &[u8; 4], plaintext: &[u8]) -> Vec<u8> {
    let wrap = Key::from_bytes(FIXED_KEY);
    let fk = Key::from_bytes([0x17; 32]);
    let mut out = magic.to_vec();
    out.push(1);
    out.extend_from_slice(&envelope(magic, &wrap, &fk));
    out.extend_from_slice(&seal(&fk, &ad(magic, b"body"), plaintext));
    out
}

struct Entry {
    kind: BlobKind,
    id: Id,
    offset: u32,
    sealed_len: u32,
    raw_len: u32,
}

fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.push(match e.kind {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        });
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.sealed_len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
    }
    out
}

/// A pack sealed under `FIXED_KEY`; `tweak` may edit the entries before the header is sealed.
fn pack(blobs: &[(BlobKind, &[u8])], tweak: impl FnOnce(&mut Vec<u8>)) -> (Vec<u8>, Vec<Entry>) {
    let wrap = Key::from_bytes(FIXED_KEY);
    let fk = Key::from_bytes([0x23; 32]);
    let id_key = Key::from_bytes([0x05; 32]);
    let mut out = b"CRNp\x01".to_vec();
    out.extend_from_slice(&envelope(b"CRNp", &wrap, &fk));
    let mut entries = Vec::new();
    for (kind, plain) in blobs {
        let id = Id(keyed_hash(&id_key, plain));
        let mut ad = [0u8; 33];
        ad[0] = if *kind == BlobKind::Tree { 1 } else { 0 };
        ad[1..].copy_from_slice(&id.0);
        let mut stored = vec![0u8]; // compression: none
        stored.extend_from_slice(plain);
        let s = seal(&fk, &ad, &stored);
        entries.push(Entry {
            kind: *kind,
            id,
            offset: out.len() as u32,
            sealed_len: s.len() as u32,
            raw_len: plain.len() as u32,
        });
        out.extend_from_slice(&s);
    }
    let mut header = encode_entries(&entries);
    tweak(&mut header);
    let sh = seal(&fk, b"CRNp\x01header", &header);
    out.extend_from_slice(&sh);
    out.extend_from_slice(&(sh.len() as u32).to_le_bytes());
    (out, entries)
}

/// A padded (version 3) pack sealed under `FIXED_KEY`: after the blobs, the pad
/// `seal("CRNp" || 3 || "padding", pad zero bytes)`; the header's plaintext is the
/// entries, then `0xFF` and `trailer` zero bytes, sealed with `"CRNp" || 3 || "header"`.
/// (Real packs are at least 64 KiB; seeds stay small.)
fn padded_pack(blobs: &[(BlobKind, &[u8])], pad: usize, trailer: usize) -> Vec<u8> {
    let (old, entries) = pack(blobs, |_| {});
    let fk = Key::from_bytes([0x23; 32]);
    let hlen = u32::from_le_bytes(old[old.len() - 4..].try_into().unwrap()) as usize;
    let mut out = old[..old.len() - 4 - hlen].to_vec();
    out[4] = 3;
    out.extend_from_slice(&seal(&fk, b"CRNp\x03padding", &vec![0u8; pad]));
    let mut header = encode_entries(&entries);
    header.push(0xff);
    header.resize(header.len() + trailer, 0);
    let sh = seal(&fk, b"CRNp\x03header", &header);
    out.extend_from_slice(&sh);
    out.extend_from_slice(&(sh.len() as u32).to_le_bytes());
    out
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o100644,
        uid: 1000,
        gid: 1000,
        user: Some("alice".into()),
        group: Some("staff".into()),
        size: 12345,
        mtime: Time { secs: 1_700_000_000, nanos: 123_456_789 },
        ctime: Time { secs: -5, nanos: 0 },
        inode: 42,
        device: 2049,
        links: 1,
        xattrs: vec![],
    }
}

fn index_plain(packs: &[(Id, &[Entry])]) -> Vec<u8> {
    let mut out = (packs.len() as u32).to_le_bytes().to_vec();
    for (id, entries) in packs {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&[0x01, 0, 0, 0, 0]);
        out.extend_from_slice(&[0xAB; ENVELOPE_LEN - 5]);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&encode_entries(entries));
    }
    out
}

/// Deterministic filler bytes (xorshift), so chunker seeds have content-defined cuts.
fn noise(n: usize, mut s: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn main() {
    let key = Key::from_bytes(FIXED_KEY);
    let id = |b: u8| Id([b; 32]);

    // --- trees ---
    let tree = Tree {
        nodes: vec![
            node(b"bin", NodeKind::Dir { subtree: id(1) }),
            node(b"dev-null", NodeKind::CharDevice { rdev: 0x103 }),
            node(b"disk", NodeKind::BlockDevice { rdev: 0x800 }),
            node(b"fifo", NodeKind::Fifo),
            node(
                b"file.txt",
                NodeKind::File { content: vec![Extent::Data(id(2)), Extent::Hole(4096), Extent::Data(id(3))] },
            ),
            node(b"link", NodeKind::Symlink { target: b"../etc/passwd".to_vec() }),
            node(b"sock", NodeKind::Socket),
            Node {
                xattrs: vec![
                    Xattr { name: b"user.a".to_vec(), value: b"1".to_vec() },
                    Xattr { name: b"user.b".to_vec(), value: vec![0xff, 0] },
                ],
                user: None,
                group: None,
                ..node(b"z\xffnon-utf8", NodeKind::File { content: vec![] })
            },
        ],
    };
    let tree_bytes = tree.encode();
    assert_eq!(fuzzing::tree(&tree_bytes).unwrap(), tree);
    write("tree", "all-kinds", &tree_bytes);
    let small = Tree { nodes: vec![node(b"a", NodeKind::File { content: vec![Extent::Data(id(9))] })] };
    write("tree", "one-file", &small.encode());
    let parts = Tree {
        nodes: vec![
            node(b"a", NodeKind::File { content: vec![Extent::Part { id: id(9), offset: 0, len: 100 }] }),
            node(
                b"b",
                NodeKind::File {
                    content: vec![Extent::Part { id: id(9), offset: 100, len: 7 }, Extent::Part { id: id(10), offset: 0, len: 3 }],
                },
            ),
        ],
    };
    write("tree", "parts", &parts.encode());
    write("tree", "empty", &Tree::default().encode());

    // --- pack entries and packs ---
    let tree_blob = small.encode();
    let (pack_ok, entries) = pack(&[(BlobKind::Data, b"hello, world\n"), (BlobKind::Tree, &tree_blob)], |_| {});
    assert_eq!(fuzzing::pack_file(&pack_ok, &key).unwrap(), 2);
    write("pack_file", "two-blobs", &pack_ok);
    let (pack_empty, _) = pack(&[], |_| {});
    assert_eq!(fuzzing::pack_file(&pack_empty, &key).unwrap(), 0);
    write("pack_file", "no-blobs", &pack_empty);
    let (pack_out, _) = pack(&[(BlobKind::Data, b"x")], |h| h[37] = 0xff); // sealed_len too big
    assert!(fuzzing::pack_file(&pack_out, &key).is_err());
    write("pack_file", "entry-outside", &pack_out);
    let (pack_odd, _) = pack(&[(BlobKind::Data, b"y")], |h| h.push(0));
    assert!(fuzzing::pack_file(&pack_odd, &key).is_err());
    write("pack_file", "header-not-multiple", &pack_odd);

    let padded = padded_pack(&[(BlobKind::Data, b"hello, world\n"), (BlobKind::Tree, &tree_blob)], 200, 100);
    assert_eq!(fuzzing::pack_file(&padded, &key).unwrap(), 2);
    write("pack_file", "padded-two-blobs", &padded);
    let padded_empty = padded_pack(&[], 0, 0);
    assert_eq!(fuzzing::pack_file(&padded_empty, &key).unwrap(), 0);
    write("pack_file", "padded-no-blobs", &padded_empty);

    let enc = encode_entries(&entries);
    assert_eq!(fuzzing::pack_entries(&enc).unwrap(), enc.len());
    write("pack_entries", "two", &enc);
    write("pack_entries", "one", &enc[..45]);
    let mut enc_padded = enc.clone();
    enc_padded.extend_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(fuzzing::padded_pack_entries(&enc_padded).unwrap(), enc.len());
    write("pack_entries", "two-padded", &enc_padded);

    // --- index files ---
    let one = index_plain(&[(Id::of_file(&pack_ok), &entries)]);
    assert_eq!(fuzzing::index_file(&one).unwrap(), 1);
    write("index_file", "one-pack-two-entries", &one);
    let extra = [Entry { kind: BlobKind::Data, id: id(7), offset: 82, sealed_len: 60, raw_len: 19 }];
    let two = index_plain(&[(id(0xaa), &entries), (id(0xbb), &extra), (id(0xcc), &[])]);
    assert_eq!(fuzzing::index_file(&two).unwrap(), 3);
    write("index_file", "three-packs", &two);
    write("index_file", "empty", &0u32.to_le_bytes());
    let mut two_padded = two.clone();
    two_padded.push(0xff);
    two_padded.resize(two_padded.len() + 200, 0);
    assert_eq!(fuzzing::index_file(&two_padded).unwrap(), 3);
    write("index_file", "three-packs-padded", &two_padded);

    // --- config ---
    let cfg = RepoConfig {
        version: 1,
        id: id(0x3c),
        created: "2026-11-22T08:16:24.616955033Z".into(),
        chunker_files: ChunkerParams::FILES,
        chunker_streams: ChunkerParams::STREAMS,
        compression_level: 3,
        pack_size: 16 << 20,
        auth: None,
    };
    let cfg_json = serde_json::to_vec(&cfg).unwrap();
    fuzzing::config(&cfg_json).unwrap();
    write("config", "default", &cfg_json);
    let small_cfg = RepoConfig {
        chunker_files: ChunkerParams { min_size: 64, avg_size: 128, max_size: 1000 },
        chunker_streams: ChunkerParams { min_size: 100, avg_size: 4096, max_size: 4096 },
        compression_level: 0,
        pack_size: 1 << 20,
        ..cfg.clone()
    };
    let small_json = serde_json::to_vec_pretty(&small_cfg).unwrap();
    fuzzing::config(&small_json).unwrap();
    write("config", "small-chunks", &small_json);

    // --- snapshots ---
    let snap_full = br#"{"version":1,"time":"2026-11-22T08:16:25.5Z","tree":"0101010101010101010101010101010101010101010101010101010101010101","paths":["/home/alice","/db.sql"],"hostname":"vm","username":"root","tags":["daily","db"],"parent":"0202020202020202020202020202020202020202020202020202020202020202","excludes":["*.tmp","/home/*/.cache"],"program_version":"0.1.0","summary":{"files_new":3,"files_changed":1,"files_unchanged":10,"dirs":4,"others":1,"bytes_read":123456,"bytes_total":999999,"added":{"data_blobs":5,"tree_blobs":2,"bytes_raw":1000,"bytes_stored":800,"packs":1},"unreadable":0,"changed_while_read":0,"duration_secs":1.25}}"#;
    let snap_min = br#"{"version":1,"time":"2026-11-22T08:16:25Z","tree":"0101010101010101010101010101010101010101010101010101010101010101","paths":["/"],"hostname":"h","parent":null,"summary":null}"#;
    assert!(fuzzing::snapshot(snap_min).is_some(), "minimal snapshot must parse");
    assert!(fuzzing::snapshot(snap_full).is_some(), "full snapshot must parse");
    write("snapshot", "full", snap_full);
    write("snapshot", "minimal", snap_min);

    // --- locks ---
    let lock = br#"{"version":1,"exclusive":false,"command":"backup","hostname":"web1","username":"root","pid":4242,"created":"2026-11-30T22:00:00Z","refreshed":"2026-11-30T22:05:00Z","nonce":"00112233445566778899aabbccddeeff"}"#;
    assert!(fuzzing::lock(lock).is_some(), "lock must parse");
    write("lock", "shared", lock);

    // --- key files ---
    let kf = KeyFile {
        version: 1,
        created: "2026-11-22T08:16:24.616955033Z".into(),
        hostname: "vm".into(),
        username: "root".into(),
        kdf: "argon2id".into(),
        params: KdfParams::DEFAULT,
        salt: "9136a8a43b7f226ee0a04394b1063a0ef8fef4aa0c009bd9fe56a6cf0937998e".into(),
        data: "c9e792c8198a5eea22b35ee7900a4f2d".into(),
        access: None,
        epoch: None,
    };
    let kf_bytes = kf.to_bytes();
    fuzzing::key_file(&kf_bytes).unwrap();
    write("key_file", "default-params", &kf_bytes);
    let weak = KeyFile { params: KdfParams { memory_kib: 1024, iterations: 1, parallelism: 1 }, ..kf };
    assert!(fuzzing::key_file(&weak.to_bytes()).is_err());
    write("key_file", "weak-params", &serde_json::to_vec(&weak).unwrap());

    // --- sealed files ---
    for (magic, name, plain) in [
        (b"CRNc", "config", cfg_json.clone()),
        (b"CRNi", "index", one.clone()),
        (b"CRNs", "snapshot", snap_min.to_vec()),
        (b"CRNp", "pack-magic", b"".to_vec()),
    ] {
        let f = sealed_file(magic, &plain);
        assert_eq!(fuzzing::sealed_file(&f, &key).unwrap(), plain);
        write("sealed_file", name, &f);
    }
    // As a put-only key writes them: wrap kind 2, sealed to the key's public key.
    for (pack, name, plain) in [
        (false, "snapshot-put-only", snap_min.to_vec()),
        (true, "pack-magic-put-only", b"".to_vec()),
    ] {
        let f = fuzzing::seal_as_put_only(pack, &key, &plain);
        assert_eq!(fuzzing::sealed_file(&f, &key).unwrap(), plain);
        write("sealed_file", name, &f);
    }

    // --- the TOML config file: the examples of docs/config.md ---
    for (name, text) in [
        ("empty", ""),
        ("repository", "[repository]\nurl = \"/srv/cairn\"\npassword-file = \"/etc/cairn/password\"\n"),
        ("full", include_str!("../corpus/toml_config/full")),
        ("offsite", include_str!("../corpus/toml_config/offsite")),
    ] {
        write("toml_config", name, text.as_bytes());
    }

    // --- chunker: 8-byte header then data ---
    for (name, hdr, len, s) in [
        ("avg64", [6u8, 0xff, 0xff, 0x00, 0x02, 0x00, 1, 3], 3000, 1),
        ("avg256-min100", [8, 0x00, 0x64, 0x10, 0x00, 0x00, 2, 17], 6000, 2),
        ("avg4k", [12, 0x00, 0x40, 0x00, 0x30, 0x00, 3, 200], 20000, 3),
        ("raw-mode", [0x80, 0x40, 0x00, 0x00, 0x10, 0x00, 4, 0], 500, 4),
        ("zeros-avg128", [7, 0x00, 0x80, 0x00, 0x01, 0x00, 5, 1], 2000, 0),
    ] {
        let mut input = hdr.to_vec();
        input.extend(if s == 0 { vec![0u8; len] } else { noise(len, s) });
        write("chunker", name, &input);
    }
}
