//! `/proc/self/mountinfo` (spec §6.5): the mount table, with octal escapes decoded.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Device numbers (`major:minor`) of the mounted file system.
    pub(crate) dev: (u32, u32),
    /// The directory of the file system that forms the root of this mount (bind mounts).
    pub(crate) root: String,
    /// Where it is mounted, decoded (`\040` is a space).
    pub(crate) mount_point: PathBuf,
    /// File system type (`ext4`, `tmpfs`, `fuse.sshfs`).
    pub(crate) fstype: String,
    /// Mount source (`/dev/vda`, `tmpfs`, `server:/export`), decoded.
    pub(crate) source: String,
}

/// Parses mountinfo into `out` (cleared first). Returns the number of bad lines.
///
/// Format: `id parent major:minor root mount_point options [optional fields...] - fstype source super_options`.
pub(crate) fn parse_mountinfo(text: &str, out: &mut Vec<Mount>) -> usize {
    out.clear();
    let mut bad = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(m) => out.push(m),
            None => bad += 1,
        }
    }
    bad
}

fn parse_line(line: &str) -> Option<Mount> {
    let mut it = line.split(' ');
    let _id = it.next()?;
    let _parent = it.next()?;
    let (major, minor) = it.next()?.split_once(':')?;
    let dev = (major.parse().ok()?, minor.parse().ok()?);
    let root = it.next()?;
    let mount_point = it.next()?;
    let _options = it.next()?;
    // optional fields end at a lone "-"
    for tok in it.by_ref() {
        if tok == "-" {
            break;
        }
    }
    let fstype = it.next()?;
    let source = it.next()?;
    if mount_point.is_empty() || fstype.is_empty() {
        return None;
    }
    Some(Mount {
        dev,
        root: String::from_utf8_lossy(&unescape(root)).into_owned(),
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn vm_mount_table() {
        let mut v = Vec::new();
        assert_eq!(
            parse_mountinfo(
                include_str!("../../tests/data/proc-vm/self/mountinfo"),
                &mut v
            ),
            0
        );
        assert_eq!(v.len(), 20);
        let root = v.iter().find(|m| m.mount_point == Path::new("/")).unwrap();
        assert_eq!(root.fstype, "ext4");
        assert_eq!(root.source, "/dev/vda");
        assert_eq!(root.dev, (254, 0));
    }

    #[test]
    fn spaces_tabs_backslashes_and_optional_fields() {
        let mut v = Vec::new();
        let bad = parse_mountinfo(
            include_str!("../../tests/data/proc-odd/self/mountinfo"),
            &mut v,
        );
        assert_eq!(bad, 1);
        let spaced = v
            .iter()
            .find(|m| m.mount_point == Path::new("/mnt/my disk"))
            .unwrap();
        assert_eq!(spaced.fstype, "ext4");
        assert!(
            v.iter()
                .any(|m| m.mount_point == Path::new("/mnt/tab\there"))
        );
        assert!(
            v.iter()
                .any(|m| m.mount_point == Path::new("/mnt/back\\slash"))
        );
        let nfs = v.iter().find(|m| m.fstype == "nfs4").unwrap();
        assert_eq!(nfs.source, "server:/export");
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape("a\\040b"), b"a b");
        assert_eq!(unescape("trailing\\04"), b"trailing\\04");
        assert_eq!(unescape("\\999"), b"\\999");
        assert_eq!(unescape("\\"), b"\\");
        assert_eq!(unescape("\\134"), b"\\");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panic(text in "\\PC*") {
            let mut v = Vec::new();
            let _ = parse_mountinfo(&text, &mut v);
        }
    }
}
