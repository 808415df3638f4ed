//! Dropping privileges once `/dev/kvm` and the listening socket are open:
//! `--user` switches to another user (no supplementary groups), and
//! no-new-privileges is always set, so nothing the server runs later can
//! regain them.

use super::ServeError;

/// A user and group to run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `--user NAME`, `--user UID` or `--user UID:GID`; a name (or a uid
/// without a group) is looked up in `passwd` (the text of /etc/passwd).
pub fn parse_user(spec: &str, passwd: &str) -> Result<RunAs, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?, f.get(3)?);
        (*name == user || *uid == user).then(|| (uid.parse::<u32>().ok(), gid.parse::<u32>().ok()))
    });
    let uid = match (user.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some((Some(uid), _))) => uid,
        _ => return Err(format!("no user {user:?} in /etc/passwd")),
    };
    let gid = match (group, entry) {
        (Some(g), _) => g
            .parse::<u32>()
            .map_err(|_| format!("group `{g}` is not a number"))?,
        (None, Some((_, Some(gid)))) => gid,
        (None, _) => uid,
    };
    Ok(RunAs { uid, gid })
}

/// Set no-new-privileges, then (with `who`) become that user and group
/// with no supplementary groups. glibc applies set*id to every thread.
pub fn drop_privileges(who: Option<RunAs>) -> Result<(), ServeError> {
    let fail =
        |what: &str| ServeError::User(format!("{what}: {}", std::io::Error::last_os_error()));
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_NO_NEW_PRIVS"));
    }
    let Some(RunAs { uid, gid }) = who else {
        return Ok(());
    };
    // SAFETY: an empty list (null pointer with length 0) is allowed.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(fail("setgroups"));
    }
    // SAFETY: plain integer system calls; the group first, while still root.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(fail("setresgid"));
    }
    // SAFETY: as above; after it the capabilities are gone.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(fail("setresuid"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";

    #[test]
    fn users_by_name_or_number() {
        assert_eq!(
            parse_user("nobody", PASSWD),
            Ok(RunAs {
                uid: 65534,
                gid: 65534
            })
        );
        assert_eq!(
            parse_user("1000:100", PASSWD),
            Ok(RunAs {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(
            parse_user("1000", PASSWD),
            Ok(RunAs {
                uid: 1000,
                gid: 1000
            })
        );
        assert_eq!(parse_user("0", PASSWD), Ok(RunAs { uid: 0, gid: 0 }));
        assert!(parse_user("ghost", PASSWD).is_err());
        assert!(parse_user("nobody:staff", PASSWD).is_err());
    }
}
