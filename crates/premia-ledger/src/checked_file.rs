//! Files beside the store that premia writes whole (the snapshot, the replay index): framed with
//! a header that names their kind and format, the body's length and a checksum, written to a
//! temporary file, synced and renamed into place, and read back with every one of those
//! checked, so that damage is named instead of decoded, and a damaged length cannot make a
//! decoder allocate without limit.
//!
//! ```text
//! magic "PREMIA\0F" | kind [4] | format u32 | body_len u64 | body_crc32 u32 | header_crc32 u32 | body
//! ```
//! (integers big-endian; CRC-32 (IEEE) detects damage: these files are caches of the log, whose
//! own chain is what makes tampering evident.)

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

const MAGIC: &[u8; 8] = b"PREMIA\0F";
pub const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4 + 4;

/// Why a checked file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileDamage {
    #[error("it is shorter than its header")]
    TruncatedHeader,
    #[error("its header is damaged (checksum mismatch)")]
    Header,
    #[error("it is not a {expected} file")]
    Kind { expected: String },
    #[error("it is {found} bytes long where its header says {expected}")]
    Length { expected: u64, found: u64 },
    #[error("its content is damaged (checksum mismatch)")]
    Body,
    #[error("its content cannot be decoded: {0}")]
    Decode(String),
    #[error("it is missing")]
    Missing,
}

/// What reading a checked file found.
#[derive(Debug)]
pub enum Checked<T> {
    Absent,
    /// Written by another version of premia (another format): not damage, just not usable.
    OtherFormat(u32),
    Damaged(FileDamage),
    Read(T),
}

/// The bincode settings of every framed body: those of `bincode::serialize`, with a limit.
fn codec(limit: u64) -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(limit)
}

fn header(kind: &[u8; 4], format: u32, body_len: u64, body_crc: u32) -> [u8; HEADER_LEN] {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(kind);
    bytes[12..16].copy_from_slice(&format.to_be_bytes());
    bytes[16..24].copy_from_slice(&body_len.to_be_bytes());
    bytes[24..28].copy_from_slice(&body_crc.to_be_bytes());
    let header_crc = crc32fast::hash(&bytes[..28]);
    bytes[28..32].copy_from_slice(&header_crc.to_be_bytes());
    bytes
}

/// A writer that counts and checksums what passes through it.
struct Summing<W> {
    inner: W,
    len: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `parts` (each bincode-encoded, one after the other) as the body of a checked file at
/// `path`: to `path.tmp`, synced, renamed over `path`, and the directory synced.
pub fn write_checked(path: &Path, kind: &[u8; 4], format: u32, parts: &[&dyn erased::Part]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(&[0u8; HEADER_LEN])?;
    let mut body = Summing { inner: BufWriter::with_capacity(1 << 20, file), len: 0, crc: crc32fast::Hasher::new() };
    for part in parts {
        part.encode(&mut body).map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    body.flush()?;
    let (len, crc) = (body.len, body.crc.finalize());
    let mut file = body.inner.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header(kind, format, len, crc))?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The bytes [`write_checked`] writes for `parts`, in memory (to compare a stored file with what
/// would be written).
pub fn encode_checked(kind: &[u8; 4], format: u32, parts: &[&dyn erased::Part]) -> Result<Vec<u8>, bincode::Error> {
    let mut body = Summing { inner: Vec::new(), len: 0, crc: crc32fast::Hasher::new() };
    for part in parts {
        part.encode(&mut body)?;
    }
    let mut bytes = header(kind, format, body.len, body.crc.finalize()).to_vec();
    bytes.extend_from_slice(&body.inner);
    Ok(bytes)
}

/// Reads the checked file at `path` of `kind` and `format`, decoding its body with `decode`
/// (given a bounded bincode reader over the body). The body's checksum is verified as it is
/// read; a value decoded from a body that turns out damaged is dropped.
pub fn read_checked<T>(
    path: &Path,
    kind: &[u8; 4],
    format: u32,
    decode: impl FnOnce(&mut dyn Read, u64) -> Result<T, bincode::Error>,
) -> std::io::Result<Checked<T>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checked::Absent),
        Err(e) => return Err(e),
    };
    let found_len = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; HEADER_LEN];
    if found_len < HEADER_LEN as u64 {
        return Ok(Checked::Damaged(FileDamage::TruncatedHeader));
    }
    input.read_exact(&mut head)?;
    let u32_at = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&head[..28]) != u32_at(28) || &head[..8] != MAGIC {
        return Ok(Checked::Damaged(FileDamage::Header));
    }
    if &head[8..12] != kind {
        return Ok(Checked::Damaged(FileDamage::Kind { expected: String::from_utf8_lossy(kind).into_owned() }));
    }
    if u32_at(12) != format {
        return Ok(Checked::OtherFormat(u32_at(12)));
    }
    let body_len = u64::from_be_bytes(head[16..24].try_into().expect("8 bytes"));
    if found_len - HEADER_LEN as u64 != body_len {
        return Ok(Checked::Damaged(FileDamage::Length { expected: body_len, found: found_len - HEADER_LEN as u64 }));
    }
    let mut body = Summed { inner: input.take(body_len), crc: crc32fast::Hasher::new() };
    let decoded = decode(&mut body, body_len);
    // Whatever the decoder left unread still counts towards the checksum.
    std::io::copy(&mut body, &mut std::io::sink())?;
    if body.crc.finalize() != u32_at(24) {
        return Ok(Checked::Damaged(FileDamage::Body));
    }
    Ok(match decoded {
        Ok(value) => Checked::Read(value),
        Err(e) => Checked::Damaged(FileDamage::Decode(e.to_string())),
    })
}

/// Decodes one bincode value from a framed body, reading at most `limit` bytes.
pub fn decode_part<T: DeserializeOwned>(input: &mut dyn Read, limit: u64) -> Result<T, bincode::Error> {
    codec(limit).deserialize_from(input)
}

/// Decodes one bincode value from bytes held in memory (a sled value), whole: no trailing bytes,
/// no allocation beyond the bytes' length.
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    codec(bytes.len() as u64).reject_trailing_bytes().deserialize(bytes)
}

/// A reader that checksums what passes through it.
struct Summed<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for Summed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// Values of different types encoded one after the other into one body.
pub mod erased {
    use super::*;

    pub trait Part {
        fn encode(&self, out: &mut dyn Write) -> Result<(), bincode::Error>;
    }

    impl<T: Serialize> Part for T {
        fn encode(&self, out: &mut dyn Write) -> Result<(), bincode::Error> {
            bincode::serialize_into(out, self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Checked<(String, Vec<u64>)> {
        read_checked(path, b"TEST", 2, |input, limit| {
            let text: String = decode_part(input, limit)?;
            let numbers: Vec<u64> = decode_part(input, limit)?;
            Ok((text, numbers))
        })
        .unwrap()
    }

    #[test]
    fn a_checked_file_round_trips_and_every_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        assert!(matches!(read(&path), Checked::Absent));
        let numbers: Vec<u64> = (0..100).collect();
        write_checked(&path, b"TEST", 2, &[&"hello".to_string(), &numbers]).unwrap();
        assert!(matches!(read(&path), Checked::Read((t, n)) if t == "hello" && n == numbers));
        let good = std::fs::read(&path).unwrap();
        assert_eq!(encode_checked(b"TEST", 2, &[&"hello".to_string(), &numbers]).unwrap(), good);

        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            match read(&path) {
                Checked::Damaged(_) => {}
                Checked::OtherFormat(_) if (12..16).contains(&at) => panic!("a damaged format went unnoticed at {at}"),
                other => panic!("a flip at byte {at} gave {other:?}"),
            }
        }
        for len in [0, 10, HEADER_LEN, good.len() - 1] {
            std::fs::write(&path, &good[..len]).unwrap();
            assert!(matches!(read(&path), Checked::Damaged(_)), "cut to {len} bytes");
        }
        write_checked(&path, b"TEST", 3, &[&"hello".to_string()]).unwrap();
        assert!(matches!(read(&path), Checked::OtherFormat(3)));
        write_checked(&path, b"OTHR", 2, &[&"hello".to_string()]).unwrap();
        assert!(matches!(read(&path), Checked::Damaged(FileDamage::Kind { .. })));
    }

    #[test]
    fn a_length_prefix_beyond_the_body_is_refused_without_allocating_it() {
        // A body whose vector claims 2^40 elements: bounded decoding refuses it at once.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        write_checked(&path, b"TEST", 2, &[&"hi".to_string(), &(1u64 << 40)]).unwrap();
        assert!(matches!(read(&path), Checked::Damaged(FileDamage::Decode(_))));
        assert!(decode_exact::<Vec<u64>>(&(1u64 << 40).to_le_bytes()).is_err());
    }
}
