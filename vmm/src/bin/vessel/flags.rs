//! Launcher flags versus app flags, and clap's usage errors as one line.
//!
//! Before `--`, every `--name` must be a launcher flag: a mistyped
//! `--mme 1G` is an error naming the closest one, not an app argument that
//! silently leaves the default memory. The list of flags is clap's own
//! definition (`Command::get_arguments`), so a flag added there is known here.

use std::ffi::OsString;

use clap::Command;

/// A `--name` before `--` that the launcher does not know.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownFlag {
    /// The argument as given (`--mme` or `--mme=1G`).
    pub given: String,
    /// The closest launcher flag, with its dashes.
    pub closest: Option<String>,
}

impl std::fmt::Display for UnknownFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown launcher flag `{}`", self.given)?;
        match &self.closest {
            Some(c) => write!(f, " (did you mean `{c}`?)")?,
            None => write!(f, " (`--help` lists them)")?,
        }
        write!(f, "; the app's own flags go after `--`")
    }
}

/// Check `args` (the words after the program or subcommand name) up to
/// the first `--`: each `--name[=value]` must be a long flag of `cmd`; a
/// flag that takes a value skips the next word unless given as `--name=v`.
pub fn check_long_flags(cmd: &Command, args: &[OsString]) -> Result<(), UnknownFlag> {
    let mut cmd = cmd.clone();
    cmd.build(); // adds --help and --version
    let mut words = args.iter().map(|a| a.to_string_lossy());
    while let Some(w) = words.next() {
        if w == "--" {
            break;
        }
        let takes_value = if let Some(long) = w.strip_prefix("--") {
            let (name, inline) = long
                .split_once('=')
                .map_or((long, false), |(n, _)| (n, true));
            let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(name)) else {
                let closest = closest(&cmd, name);
                return Err(UnknownFlag {
                    given: w.to_string(),
                    closest,
                });
            };
            !inline && arg.get_action().takes_values()
        } else if let Some(short) = w.strip_prefix('-').and_then(|s| s.chars().next()) {
            // `-e KEY`, but `-eKEY` carries its value.
            w.len() == 2
                && cmd
                    .get_arguments()
                    .any(|a| a.get_short() == Some(short) && a.get_action().takes_values())
        } else {
            false
        };
        if takes_value {
            words.next();
        }
    }
    Ok(())
}

/// The long flag of `cmd` nearest to `name` (edit distance), if it is
/// near enough to be what was meant (at most a third of it differs).
fn closest(cmd: &Command, name: &str) -> Option<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| (strsim::levenshtein(name, l), l))
        .min()
        .filter(|(d, l)| *d <= 1 + l.len().max(name.len()) / 3)
        .map(|(_, l)| format!("--{l}"))
}

/// The launcher flag that sets each [`vmm::VmConfig`] field a
/// configuration error can name ([`vmm::Error::config_field`]).
pub const FIELD_FLAGS: [(&str, &str); 6] = [
    ("mem_size", "--mem"),
    ("vcpus", "--cpus"),
    ("stack_size", "--stack"),
    ("env", "-e"),
    ("lazy", "--lazy"),
    ("sve", "--sve-vl/--sve"),
];

/// A library error as the command line says it: the field it names
/// becomes the flag that sets it (`vcpus 0 ...` -> `--cpus 0 ...`).
pub fn with_flags(e: &vmm::Error) -> String {
    let msg = e.to_string();
    let flag = e
        .config_field()
        .and_then(|field| FIELD_FLAGS.iter().find(|(f, _)| *f == field));
    match flag {
        Some((field, flag)) => msg.replacen(&format!(": {field}"), &format!(": {flag}"), 1),
        None => msg,
    }
}

/// A clap usage error as one line (clap's message, without its usage
/// block), plus one line of hint: clap's tip if it has one, else `--help`.
pub fn usage_error(e: &clap::Error, bin: &str) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("error: bad arguments")
        .trim_start_matches("error: ");
    let hint = lines
        .take_while(|l| !l.starts_with("Usage:"))
        .find_map(|l| l.strip_prefix("tip: "))
        .map_or_else(|| format!("see `{bin} --help`"), str::to_string);
    format!("{bin}: error: {first}\n{bin}: hint: {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cmd() -> Command {
        Command::new("app")
            .arg(Arg::new("mem").long("mem"))
            .arg(Arg::new("timeout").long("timeout"))
            .arg(
                Arg::new("env")
                    .short('e')
                    .long("env")
                    .action(ArgAction::Append),
            )
            .arg(
                Arg::new("dump-regs")
                    .long("dump-regs")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("args")
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true),
            )
    }

    fn check(args: &[&str]) -> Result<(), UnknownFlag> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        check_long_flags(&cmd(), &args)
    }

    #[test]
    fn a_mistyped_flag_names_the_closest() {
        let e = check(&["--mme", "1G"]).unwrap_err();
        assert_eq!(e.closest.as_deref(), Some("--mem"));
        assert_eq!(
            e.to_string(),
            "unknown launcher flag `--mme` (did you mean `--mem`?); the app's own flags go after `--`"
        );
        let e = check(&["--timout=3", "x"]).unwrap_err();
        assert_eq!(
            (e.given.as_str(), e.closest.as_deref()),
            ("--timout=3", Some("--timeout"))
        );
        // Also after the first app argument: before `--` is launcher land.
        let e = check(&["world", "--verbose"]).unwrap_err();
        assert_eq!(e.closest, None, "nothing is close to --verbose");
        assert!(e.to_string().contains("(`--help` lists them)"), "{e}");
    }

    #[test]
    fn known_flags_values_and_app_flags_after_the_separator_pass() {
        assert!(check(&["--mem", "1G", "--dump-regs", "--", "--mme", "x"]).is_ok());
        assert!(check(&["--mem=1G", "-e", "--not-a-flag", "a"]).is_ok());
        assert!(check(&["--mem", "--looks-like-a-flag"]).is_ok());
        assert!(check(&["--help"]).is_ok());
        assert!(check(&["-eK=V", "world"]).is_ok());
        assert!(check(&["-eK=V", "--nope"]).is_err());
    }

    #[test]
    fn config_errors_name_the_flag_not_the_field() {
        use vmm::layout::LayoutError;
        let e = vmm::Error::from(LayoutError::CpusOutOfRange(0));
        assert!(
            e.to_string()
                .starts_with("invalid configuration: vcpus 0 is outside"),
            "{e}"
        );
        assert!(
            with_flags(&e).starts_with("invalid configuration: --cpus 0 is outside"),
            "{e}"
        );
        let e = vmm::Error::from(LayoutError::MemNotPages(4097));
        assert_eq!(
            with_flags(&e),
            "invalid configuration: --mem 4097 is not a multiple of 4 KiB"
        );
        // Every flag named is one the launcher has.
        let mut cmd = <crate::cli::PackedCli as clap::CommandFactory>::command();
        cmd.build();
        for (_, flags) in FIELD_FLAGS {
            for flag in flags.split('/') {
                let known = cmd.get_arguments().any(|a| {
                    flag.strip_prefix("--")
                        .is_some_and(|l| a.get_long() == Some(l))
                        || flag.strip_prefix('-').and_then(|s| s.chars().next()) == a.get_short()
                });
                assert!(known, "{flag}");
            }
        }
    }

    #[test]
    fn usage_errors_are_one_line_and_a_hint() {
        let e = cmd().try_get_matches_from(["app", "--mem"]).unwrap_err();
        let msg = usage_error(&e, "hello");
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 2, "{msg}");
        assert!(
            lines[0].starts_with("hello: error: a value is required for '--mem"),
            "{msg}"
        );
        assert_eq!(lines[1], "hello: hint: see `hello --help`");
    }
}
