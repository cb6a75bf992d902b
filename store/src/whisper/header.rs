//! The whisper header: 16 bytes of metadata and a 12-byte entry per archive, big-endian
//! (spec section 1). Parsing is pure and stricter than the reference (section 1.4).

use crate::aggregation::AggregationMethod;
use crate::error::Corruption;
use crate::retention::Retention;

/// Size of the metadata block.
pub(crate) const METADATA_SIZE: usize = 16;
/// Size of one archive-table entry.
pub(crate) const ARCHIVE_INFO_SIZE: usize = 12;
/// Size of one stored point: u32 interval + f64 value.
pub(crate) const POINT_SIZE: usize = 12;

/// One archive as described by the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// Absolute byte offset of the archive's first slot.
    pub offset: u32,
    /// Seconds per point.
    pub step: u32,
    /// Number of slots.
    pub points: u32,
}

impl ArchiveInfo {
    /// Seconds covered: `step × points`.
    pub fn retention(&self) -> i64 {
        i64::from(self.step) * i64::from(self.points)
    }

    /// Bytes of the data region.
    pub fn size(&self) -> usize {
        self.points as usize * POINT_SIZE
    }

    /// Step and points as a [`Retention`].
    pub fn as_retention(&self) -> Retention {
        Retention::new(self.step, self.points)
    }

    /// The start of the interval containing `timestamp`.
    pub(crate) fn interval(&self, timestamp: i64) -> i64 {
        timestamp - timestamp.rem_euclid(i64::from(self.step))
    }
}

/// A parsed and validated header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// How points roll up into coarser archives.
    pub aggregation: AggregationMethod,
    /// Largest archive retention in seconds.
    pub max_retention: u32,
    /// Fraction of known points needed for a rollup, as stored (single precision).
    pub x_files_factor: f32,
    /// Archives, finest first.
    pub archives: Vec<ArchiveInfo>,
}

/// Bytes of a file with these archives.
pub(crate) fn file_size(retentions: &[Retention]) -> u64 {
    let points: u64 = retentions.iter().map(|r| u64::from(r.points)).sum();
    (METADATA_SIZE + ARCHIVE_INFO_SIZE * retentions.len()) as u64 + POINT_SIZE as u64 * points
}

impl Header {
    /// The header of a new file with these (validated, sorted) archives.
    pub(crate) fn new(
        retentions: &[Retention],
        x_files_factor: f32,
        aggregation: AggregationMethod,
    ) -> Header {
        let mut offset = (METADATA_SIZE + ARCHIVE_INFO_SIZE * retentions.len()) as u32;
        let archives = retentions
            .iter()
            .map(|r| {
                let info = ArchiveInfo {
                    offset,
                    step: r.step,
                    points: r.points,
                };
                offset += r.points * POINT_SIZE as u32;
                info
            })
            .collect();
        let max_retention = retentions.iter().map(Retention::seconds).max().unwrap_or(0) as u32;
        Header {
            aggregation,
            max_retention,
            x_files_factor,
            archives,
        }
    }

    /// Size of the metadata plus the archive table.
    pub fn len(&self) -> usize {
        METADATA_SIZE + ARCHIVE_INFO_SIZE * self.archives.len()
    }

    /// Never true for a parsed header; present for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.archives.is_empty()
    }

    /// Total file size the header describes.
    pub fn file_size(&self) -> u64 {
        let data: u64 = self.archives.iter().map(|a| a.size() as u64).sum();
        self.len() as u64 + data
    }

    /// The header bytes exactly as whisper writes them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.encode_metadata(&mut out);
        for a in &self.archives {
            out.extend_from_slice(&a.offset.to_be_bytes());
            out.extend_from_slice(&a.step.to_be_bytes());
            out.extend_from_slice(&a.points.to_be_bytes());
        }
        out
    }

    /// The first 16 bytes.
    pub(crate) fn encode_metadata(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.aggregation.code().to_be_bytes());
        out.extend_from_slice(&self.max_retention.to_be_bytes());
        out.extend_from_slice(&self.x_files_factor.to_be_bytes());
        out.extend_from_slice(&(self.archives.len() as u32).to_be_bytes());
    }

    /// Parses and validates a header at the start of `bytes`, the whole file.
    pub fn parse(bytes: &[u8]) -> Result<Header, Corruption> {
        Self::parse_prefix(bytes, bytes.len() as u64)
    }

    /// Parses and validates a header from the first bytes of a file of `len` bytes; `bytes`
    /// holds at least the metadata and archive table, or the whole file if it is shorter.
    pub(crate) fn parse_prefix(bytes: &[u8], len: u64) -> Result<Header, Corruption> {
        if bytes.len() < METADATA_SIZE {
            return Err(Corruption::ShortHeader { len });
        }
        let code = be_u32(bytes, 0);
        let aggregation =
            AggregationMethod::from_code(code).ok_or(Corruption::AggregationType(code))?;
        let max_retention = be_u32(bytes, 4);
        let x_files_factor = f32::from_bits(be_u32(bytes, 8));
        if !(0.0..=1.0).contains(&x_files_factor) {
            return Err(Corruption::XFilesFactor(x_files_factor.to_string()));
        }
        let count = be_u32(bytes, 12);
        if count == 0 {
            return Err(Corruption::NoArchives);
        }
        let table_end = METADATA_SIZE as u64 + ARCHIVE_INFO_SIZE as u64 * u64::from(count);
        if len < table_end || (bytes.len() as u64) < table_end {
            // The first entry that does not fit, as whisper reports it.
            let index = ((len - METADATA_SIZE as u64) / ARCHIVE_INFO_SIZE as u64) as u32;
            return Err(Corruption::ShortArchiveTable { index, len });
        }
        let mut archives = Vec::with_capacity(count as usize);
        let mut expected_offset = table_end;
        let mut largest_retention = 0u64;
        for index in 0..count {
            let at = METADATA_SIZE + ARCHIVE_INFO_SIZE * index as usize;
            let info = ArchiveInfo {
                offset: be_u32(bytes, at),
                step: be_u32(bytes, at + 4),
                points: be_u32(bytes, at + 8),
            };
            if info.step == 0 {
                return Err(Corruption::ZeroStep { index });
            }
            if info.points == 0 {
                return Err(Corruption::ZeroPoints { index });
            }
            if u64::from(info.offset) != expected_offset {
                return Err(Corruption::Offset {
                    index,
                    found: info.offset,
                    expected: expected_offset,
                });
            }
            if archives
                .last()
                .is_some_and(|prev: &ArchiveInfo| prev.step >= info.step)
            {
                return Err(Corruption::StepOrder {
                    index,
                    step: info.step,
                });
            }
            expected_offset += info.size() as u64;
            largest_retention = largest_retention.max(info.retention() as u64);
            archives.push(info);
        }
        if u64::from(max_retention) != largest_retention {
            return Err(Corruption::MaxRetention {
                found: max_retention,
                expected: largest_retention,
            });
        }
        if len != expected_offset {
            return Err(Corruption::Size {
                len,
                expected: expected_offset,
            });
        }
        Ok(Header {
            aggregation,
            max_retention,
            x_files_factor,
            archives,
        })
    }
}

/// Reads a big-endian u32; `at + 4` must be within `bytes` (checked by callers).
pub(crate) fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Reads the point at `at`: (interval, value).
pub(crate) fn read_point(bytes: &[u8], at: usize) -> (u32, f64) {
    let mut b = [0u8; POINT_SIZE];
    b.copy_from_slice(&bytes[at..at + POINT_SIZE]);
    let interval = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let value = f64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
    (interval, value)
}

/// Encodes a point into its 12 bytes.
pub(crate) fn encode_point(out: &mut [u8; POINT_SIZE], interval: u32, value: f64) {
    out[..4].copy_from_slice(&interval.to_be_bytes());
    out[4..].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::parse_retentions;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Spec vector V04: the header bytes whisper writes for five combinations.
    #[test]
    fn header_bytes_vector_v04() {
        let cases = [
            (
                "60:1440",
                0.5,
                "average",
                17308,
                "00000001000151803f000000000000010000001c0000003c000005a0",
            ),
            (
                "10s:6h,1m:7d,10m:5y",
                0.5,
                "average",
                3300532,
                "00000001096601803f00000000000003000000340000000a00000870000065740000003c0000276000023df40000025800040290",
            ),
            (
                "1s:1d",
                0.0,
                "sum",
                1036828,
                "000000020001518000000000000000010000001c0000000100015180",
            ),
            (
                "1m:1d,1h:30d",
                0.1,
                "absmin",
                25960,
                "0000000800278d003dcccccd00000002000000280000003c000005a0000043a800000e10000002d0",
            ),
            (
                "1d:1y,1h:1w",
                1.0,
                "max",
                6436,
                "0000000401e133803f800000000000020000002800000e10000000a800000808000151800000016d",
            ),
        ];
        for (retentions, xff, method, size, header_hex) in cases {
            let list = parse_retentions(retentions).unwrap();
            let header = Header::new(&list, xff as f32, method.parse().unwrap());
            assert_eq!(hex(&header.encode()), header_hex, "{retentions}");
            assert_eq!(header.file_size(), size, "{retentions}");
            assert_eq!(file_size(&list), size);
            let mut file = header.encode();
            file.resize(size as usize, 0);
            assert_eq!(Header::parse(&file).unwrap(), header);
        }
    }

    fn sample() -> Vec<u8> {
        let list = parse_retentions("10s:1m,1m:5m").unwrap();
        let mut file = Header::new(&list, 0.5, AggregationMethod::Average).encode();
        file.resize(file_size(&list) as usize, 0);
        file
    }

    #[test]
    fn corrupt_headers_are_typed_errors() {
        let good = sample();
        assert_eq!(
            Header::parse(&good[..10]),
            Err(Corruption::ShortHeader { len: 10 })
        );
        let mut bad = good.clone();
        bad[3] = 9;
        assert_eq!(Header::parse(&bad), Err(Corruption::AggregationType(9)));
        bad[3] = 0;
        assert_eq!(Header::parse(&bad), Err(Corruption::AggregationType(0)));
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&1.5f32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad),
            Err(Corruption::XFilesFactor(_))
        ));
        bad[8..12].copy_from_slice(&f32::NAN.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad),
            Err(Corruption::XFilesFactor(_))
        ));
        let mut bad = good.clone();
        bad[15] = 3;
        assert_eq!(
            Header::parse(&bad[..40]),
            Err(Corruption::ShortArchiveTable { index: 2, len: 40 })
        );
        bad[15] = 0;
        assert_eq!(Header::parse(&bad), Err(Corruption::NoArchives));
        let mut bad = good.clone();
        bad[16..20].copy_from_slice(&44u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad),
            Err(Corruption::Offset { index: 0, .. })
        ));
        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Header::parse(&bad), Err(Corruption::ZeroStep { index: 0 }));
        let mut bad = good.clone();
        bad[32..36].copy_from_slice(&10u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad),
            Err(Corruption::StepOrder { index: 1, .. })
        ));
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&299u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad),
            Err(Corruption::MaxRetention { .. })
        ));
        assert!(matches!(
            Header::parse(&good[..good.len() - 1]),
            Err(Corruption::Size { .. })
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            Header::parse(&longer),
            Err(Corruption::Size { .. })
        ));
    }

    proptest::proptest! {
        /// Random bytes, and valid files with random bytes flipped, never panic the parser.
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn flipped_headers_never_panic(at in 0usize..40, byte in proptest::num::u8::ANY) {
            let mut file = sample();
            file[at] = byte;
            if let Ok(header) = Header::parse(&file) {
                proptest::prop_assert_eq!(header.file_size(), file.len() as u64);
            }
        }
    }
}
