//! The IDX format of MNIST: a magic number (0, 0, type code, number of dimensions), the dimensions
//! as big-endian u32, then the values. Only unsigned bytes (type 0x08) are used by MNIST.

use anyhow::{Result, bail};

#[derive(Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses a whole IDX file, checking the magic number, the dimensions and the length.
pub fn parse(bytes: &[u8], what: &str) -> Result<Idx> {
    if bytes.len() < 4 {
        bail!("{what}: {} bytes is too short for an IDX file (truncated?)", bytes.len());
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        bail!("{what}: not an IDX file (magic {:02x}{:02x}{:02x}{:02x})", bytes[0], bytes[1], bytes[2], bytes[3]);
    }
    if bytes[2] != 0x08 {
        bail!("{what}: IDX value type 0x{:02x} is not unsigned bytes (0x08)", bytes[2]);
    }
    let rank = bytes[3] as usize;
    if rank == 0 || rank > 4 {
        bail!("{what}: IDX with {rank} dimensions is not MNIST");
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        bail!("{what}: truncated in the header ({} of {header} bytes)", bytes.len());
    }
    let dims: Vec<usize> =
        (0..rank).map(|k| u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().unwrap()) as usize).collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else { bail!("{what}: dimensions {dims:?} overflow") };
    let have = bytes.len() - header;
    if have != expected {
        bail!(
            "{what}: dimensions {dims:?} need {expected} bytes of values, the file has {have} ({})",
            if have < expected { "truncated" } else { "trailing garbage" }
        );
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// The bytes of an IDX file (for tests and tools).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let idx = parse(&bytes, "t").unwrap();
        assert_eq!(idx.dims, [2, 2, 3]);
        assert_eq!(idx.data[11], 12);
    }

    #[test]
    fn truncated_and_garbage_files_are_refused_with_a_reason() {
        let good = encode(&[3, 2], &[0; 6]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() - 1].to_vec(), "truncated"),
            (good[..6].to_vec(), "truncated in the header"),
            ([good.clone(), vec![9]].concat(), "trailing garbage"),
            (b"<html>404 not found</html>".to_vec(), "not an IDX file"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 0], "not unsigned bytes"),
            (vec![0, 0], "too short"),
        ];
        for (bytes, expected) in cases {
            let err = parse(&bytes, "file").unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
