//! File identity: (device, inode) guarded by a checksum of the first bytes, so a reused inode or a
//! rotated copy is recognised for what it is.

use std::io::{self, Read, Seek, SeekFrom};

/// How many leading bytes the checksum covers at most.
pub const FINGERPRINT_BYTES: usize = 1024;

/// A checksum of a file's first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// FNV-1a 64 of the first `len` bytes.
    pub hash: u64,
    /// How many bytes it covers.
    pub len: u32,
}

/// FNV-1a 64.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Fingerprint {
    /// The fingerprint of a byte prefix.
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let n = bytes.len().min(FINGERPRINT_BYTES);
        Fingerprint {
            hash: fnv1a(&bytes[..n]),
            len: n as u32,
        }
    }

    /// Reads up to `len` leading bytes of a reader (restores nothing; callers reopen or seek).
    pub fn read_head<R: Read>(r: &mut R, len: usize) -> io::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(len);
        r.take(len as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    /// The fingerprint of a seekable file's first bytes (position restored to the start).
    pub fn of_file<F: Read + Seek>(f: &mut F, len: usize) -> io::Result<Fingerprint> {
        f.seek(SeekFrom::Start(0))?;
        let head = Fingerprint::read_head(f, len)?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Fingerprint::of(&head))
    }

    /// True when `head` (at least `self.len` bytes of a file) starts like the fingerprinted file.
    pub fn matches_head(&self, head: &[u8]) -> bool {
        head.len() >= self.len as usize && fnv1a(&head[..self.len as usize]) == self.hash
    }
}
