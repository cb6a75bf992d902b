//! Which entries of the plugin directory are plugins (spec §4.1), and which plugin-conf.d
//! files are read (spec §4.6).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Debian's `ignore_file` patterns: backup and package-manager leftovers.
fn ignored(name: &str) -> bool {
    name.ends_with('#')
        || name.ends_with('~')
        || name.ends_with("DEADJOE")
        || name.ends_with(".bak")
        || name.ends_with('%')
        || [".dpkg-tmp", ".dpkg-new", ".dpkg-old", ".dpkg-dist"]
            .iter()
            .any(|s| name.ends_with(s))
        || name.ends_with(".rpmsave")
        || name.ends_with(".rpmnew")
        || name.ends_with(".pod")
}

/// `^[-\w@.:]+$`, not hidden, not `*.conf`, not ignored.
pub(crate) fn plugin_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with(".conf")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '.' | ':'))
        && !ignored(name)
}

/// plugin-conf.d file names: `^[-\w.:]+$`, not hidden, not ignored.
pub(crate) fn conf_file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && !ignored(name)
}

/// Plugin names in `dir`, sorted: regular files or symlinks to regular files with an
/// execute bit, whose names pass [`plugin_name_ok`].
pub(crate) fn list_plugins(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !plugin_name_ok(&name) {
            continue;
        }
        // follows symlinks: a dangling link or a link to a directory is not a plugin
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn names() {
        for ok in [
            "cpu",
            "if_eth0",
            "snmp__if_1",
            "a@b",
            "x.y:z",
            "if_eth0.100",
        ] {
            assert!(plugin_name_ok(ok), "{ok}");
        }
        for bad in [
            ".hidden",
            "x.conf",
            "x~",
            "x.bak",
            "x.dpkg-old",
            "a b",
            "x.pod",
            "x%",
            "",
            "a/b",
        ] {
            assert!(!plugin_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn listing_follows_symlinks_and_needs_exec_bit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let write = |name: &str, mode: u32| {
            let f = p.join(name);
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("good", 0o755);
        write("noexec", 0o644);
        write("old.bak", 0o755);
        std::fs::create_dir(p.join("subdir")).unwrap();
        symlink(p.join("good"), p.join("if_eth0")).unwrap();
        symlink(p.join("missing"), p.join("dangling")).unwrap();
        assert_eq!(list_plugins(p).unwrap(), vec!["good", "if_eth0"]);
    }
}
